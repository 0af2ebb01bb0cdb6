//! Model-checks the ingest ring (`src/ingest/ring.rs`) with loom: every interleaving of
//! producers and the consumer within a preemption bound, for claims that fit, claims
//! that must pad past the end of the ring, and claims that find it full.
//!
//! The file is included as it is, with loom's atomics in place of std's (its `sync`
//! import resolves to the module below), so what is checked is the code that runs.

mod sync {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

    /// No pages to advise in a model.
    pub(crate) fn advise_huge_pages(_addr: usize, _len: usize) {}

    /// No cache in a model.
    pub(crate) fn prefetch<T>(_value: &T) {}

    /// loom's atomics are not plain memory: the model writes claims through the word
    /// writer, with relaxed stores, which order with the publish the same way.
    #[allow(clippy::mut_from_ref, reason = "the signature of the real one")]
    pub(crate) unsafe fn bytes_mut(_words: &[AtomicU64], _len: usize) -> &mut [u8] {
        unimplemented!("the model writes claims a word at a time")
    }
}

#[allow(dead_code)]
#[path = "../src/ingest/ring.rs"]
mod ring;

use loom::sync::Arc;
use ring::Ring;

fn push(ring: &Ring, tag: u8, bytes: &[u8]) {
    loop {
        if let Some(mut claim) = ring.try_claim(bytes.len()) {
            let mut writer = claim.writer();
            writer.write(bytes).expect("within the claim");
            writer.finish();
            claim.publish(tag);
            return;
        }
        loom::thread::yield_now();
    }
}

/// Runs `producers` (each a list of records) against one consumer that checks every
/// record arrives, whole, in its producer's order.
fn check(
    preemptions: usize,
    ring_bytes: usize,
    warm_up: &'static [usize],
    producers: &'static [&'static [&'static [u8]]],
) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    // Waiting producers and the polling consumer spin (yielding), which takes branches.
    builder.max_branches = 100_000;
    builder.check(move || {
        let ring = Arc::new(Ring::with_capacity(ring_bytes));
        let mut out = Vec::new();
        // Move the ring's start so the records below land where the test wants them.
        for &len in warm_up {
            push(&ring, 9, &vec![0u8; len]);
            assert_eq!(ring.pop_into(&mut out), Some(9));
        }
        let handles: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(p, records)| {
                let ring = Arc::clone(&ring);
                loom::thread::spawn(move || {
                    for record in records.iter() {
                        push(&ring, p as u8 + 1, record);
                    }
                })
            })
            .collect();
        let mut next = vec![0usize; producers.len()];
        let total: usize = producers.iter().map(|r| r.len()).sum();
        let mut seen = 0;
        while seen < total {
            match ring.pop_into(&mut out) {
                Some(tag) => {
                    let p = usize::from(tag - 1);
                    assert_eq!(
                        &out[..],
                        producers[p][next[p]],
                        "producer {p} record {}",
                        next[p]
                    );
                    next[p] += 1;
                    seen += 1;
                }
                None => loom::thread::yield_now(),
            }
        }
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(ring.pop_into(&mut out), None);
        assert_eq!(ring.len(), 0);
        assert!(ring.is_all_zero(), "every consumed word is zeroed");
    });
}

#[test]
fn two_producers_one_record_each() {
    // 8 words; two records of 3 words fit side by side.
    check(
        3,
        64,
        &[],
        &[&[b"first-16-bytes!!"], &[b"second-16-bytes!"]],
    );
}

#[test]
fn a_claim_that_pads_past_the_end() {
    // Warm-up records of 4 and 3 words leave the tail at word 7 of 8: whichever 3-word
    // record is claimed first pads that word and starts over at 0.
    check(
        3,
        64,
        &[24, 16],
        &[&[b"first-16-bytes!!"], &[b"second-16-bytes!"]],
    );
}

#[test]
fn a_producer_that_finds_the_ring_full_waits_for_the_consumer() {
    // 8 words; three records of 3 words need 9: the third claim must wait for a pop.
    // One producer and a bound of 2: with two, the waiting loops of all three threads
    // multiply past what a test run can afford.
    check(
        2,
        64,
        &[],
        &[&[
            b"first-16-bytes!!",
            b"second-16-bytes!",
            b"third-16-bytes!!",
        ]],
    );
}

#[test]
fn words_consumed_are_given_back_in_steps() {
    // 8 words given back 4 at a time: 2-word records, four of them to fill it. The
    // producer's fifth and sixth claims must wait until the consumer has given back
    // what it consumed, which it does after two records or on finding the ring empty.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.max_branches = 100_000;
    builder.check(|| {
        let ring = Arc::new(Ring::with_capacity(64).releasing_every(4));
        let producer = {
            let ring = Arc::clone(&ring);
            loom::thread::spawn(move || {
                for i in 0..6u8 {
                    push(&ring, 1, &[i; 8]);
                }
            })
        };
        let mut out = Vec::new();
        let mut seen = 0u8;
        while seen < 6 {
            match ring.pop_into(&mut out) {
                Some(tag) => {
                    assert_eq!((tag, &out[..]), (1, &[seen; 8][..]), "record {seen}");
                    seen += 1;
                }
                None => loom::thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(ring.pop_into(&mut out), None);
        assert_eq!(ring.len(), 0);
        assert!(ring.is_all_zero(), "every consumed word is zeroed");
    });
}
