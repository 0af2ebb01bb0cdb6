//! Tests of `ring.rs`, kept apart so that `tests/loom_ring.rs` can include that file
//! alone with loom's atomics.

use super::ring::{Overflow, Ring, TAG_VOID};
use proptest::prelude::*;

fn push(ring: &Ring, tag: u8, pieces: &[&[u8]]) -> bool {
    let len = pieces.iter().map(|p| p.len()).sum();
    let Some(mut claim) = ring.try_claim(len) else {
        return false;
    };
    let mut writer = claim.writer();
    for piece in pieces {
        writer.write(piece).expect("within the claim");
    }
    assert_eq!(writer.write(&[0]), Err(Overflow), "one byte past the claim");
    writer.finish();
    claim.publish(tag);
    true
}

fn pop(ring: &Ring) -> Option<(u8, Vec<u8>)> {
    let mut out = vec![9; 3];
    let tag = ring.pop_into(&mut out)?;
    Some((tag, out))
}

/// The record path's way of writing a claim: through its bytes. Small enough for Miri,
/// which checks the byte view (`MIRIFLAGS=-Zmiri-disable-weak-memory-emulation cargo
/// +nightly miri test --lib -- ingest::ring_tests::claims_written`; the emulation
/// itself panics on bytes written over atomics).
#[test]
fn claims_written_through_their_bytes_come_out_whole_round_the_ring() {
    let ring = Ring::with_capacity(256);
    for round in 0..60usize {
        let len = (round * 7) % 41;
        let record: Vec<u8> = (0..len).map(|i| (round + i) as u8 | 1).collect();
        let mut claim = ring.try_claim(len).expect("room: one record at a time");
        let bytes = claim.bytes_mut();
        assert_eq!(bytes.len(), len);
        assert!(bytes.iter().all(|&b| b == 0), "a claim starts as zeroes");
        bytes.copy_from_slice(&record);
        claim.publish(4);
        assert_eq!(pop(&ring), Some((4, record)));
    }
    assert!(ring.is_all_zero());
}

#[test]
fn the_size_is_a_power_of_two_words_and_a_record_is_at_most_half() {
    let ring = Ring::with_capacity(1000);
    assert_eq!(ring.capacity_bytes(), 1024);
    assert_eq!(ring.max_record_bytes(), 504);
    assert!(ring.try_claim(505).is_none());
    assert!(ring.try_claim(504).is_some());
    assert_eq!(Ring::with_capacity(0).capacity_bytes(), 32);
}

#[test]
fn records_come_out_in_order_with_their_tags_and_the_ring_is_zero_after() {
    let ring = Ring::with_capacity(256);
    assert!(push(&ring, 1, &[b"hello", b" ", b"world"]));
    assert!(push(&ring, 2, &[]));
    assert!(push(&ring, 3, &[&[7u8; 17]]));
    assert_eq!(ring.len(), 3);
    assert_eq!(pop(&ring), Some((1, b"hello world".to_vec())));
    assert_eq!(pop(&ring), Some((2, vec![])));
    assert_eq!(pop(&ring), Some((3, vec![7u8; 17])));
    assert_eq!(pop(&ring), None);
    assert_eq!((ring.len(), ring.len_bytes()), (0, 0));
    assert!(ring.is_all_zero());
}

#[test]
fn the_consumer_counts_the_bytes_it_took_at_most_a_ring_at_a_time() {
    let ring = Ring::with_capacity(128); // 16 words
    let mark = ring.consumed_mark();
    assert_eq!(ring.bytes_consumed_since(mark), 0);
    assert!(push(&ring, 1, &[b"hello world"])); // header and 2 words
    assert!(push(&ring, 1, &[&[]])); // a header alone
    assert!(pop(&ring).is_some());
    assert_eq!(ring.bytes_consumed_since(mark), 24);
    assert!(pop(&ring).is_some());
    assert_eq!(ring.bytes_consumed_since(mark), 32);
    // Laps of a ring taken since the mark count as one ring.
    for _ in 0..40 {
        assert!(push(&ring, 1, &[&[1u8; 8]]));
        assert!(pop(&ring).is_some());
    }
    assert_eq!(ring.bytes_consumed_since(mark), 128);
}

#[test]
fn a_full_ring_refuses_until_the_consumer_frees_room() {
    let ring = Ring::with_capacity(128); // 16 words
    let mut n = 0;
    while push(&ring, 1, &[&[n as u8; 8]]) {
        n += 1;
    }
    assert_eq!(n, 8, "16 words hold eight 2-word records");
    assert!(!push(&ring, 1, &[]), "still full");
    assert_eq!(pop(&ring), Some((1, vec![0u8; 8])));
    assert!(push(&ring, 1, &[&[99u8; 8]]));
    for i in 1..8u8 {
        assert_eq!(pop(&ring), Some((1, vec![i; 8])));
    }
    assert_eq!(pop(&ring), Some((1, vec![99u8; 8])));
}

#[test]
fn a_record_that_would_cross_the_end_starts_over_at_zero() {
    let ring = Ring::with_capacity(256); // 32 words
    for _ in 0..2 {
        assert!(push(&ring, 1, &[&[1u8; 96]])); // 13 words
        assert_eq!(pop(&ring), Some((1, vec![1u8; 96])));
    }
    // 6 words left before the end; a 7-word record pads them and goes to 0.
    assert!(push(&ring, 2, &[&[2u8; 48]]));
    assert_eq!(ring.len_bytes(), (6 + 7) * 8);
    assert_eq!(ring.len(), 1, "padding is not a record");
    assert_eq!(pop(&ring), Some((2, vec![2u8; 48])));
    assert_eq!(ring.len_bytes(), 0);
}

#[test]
fn a_claim_dropped_unpublished_is_skipped_as_void() {
    let ring = Ring::with_capacity(256);
    drop(ring.try_claim(10));
    assert!(push(&ring, 1, &[b"next"]));
    assert_eq!(pop(&ring), Some((TAG_VOID, vec![0u8; 10])));
    assert_eq!(pop(&ring), Some((1, b"next".to_vec())));
}

#[test]
fn an_unpublished_claim_holds_back_the_records_after_it() {
    let ring = Ring::with_capacity(256);
    let mut first = ring.try_claim(3).unwrap();
    assert!(push(&ring, 2, &[b"second"]));
    assert_eq!(pop(&ring), None, "the first is not published yet");
    let mut writer = first.writer();
    writer.write(b"abc").unwrap();
    writer.finish();
    first.publish(1);
    assert_eq!(pop(&ring), Some((1, b"abc".to_vec())));
    assert_eq!(pop(&ring), Some((2, b"second".to_vec())));
}

#[test]
fn two_producers_lose_nothing_and_keep_their_own_order() {
    let ring = Ring::with_capacity(4096);
    const EACH: u64 = 200_000;
    std::thread::scope(|scope| {
        for producer in 0..2u8 {
            let ring = &ring;
            scope.spawn(move || {
                for i in 0..EACH {
                    // Lengths 8..=23 bytes, so records cross the end at every offset.
                    let extra = vec![producer; (i % 16) as usize];
                    while !push(ring, producer + 1, &[&i.to_le_bytes(), &extra]) {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let mut next = [0u64; 2];
        while next != [EACH; 2] {
            let Some((tag, bytes)) = pop(&ring) else {
                std::hint::spin_loop();
                continue;
            };
            let producer = usize::from(tag - 1);
            let i = u64::from_le_bytes(bytes[..8].try_into().unwrap());
            assert_eq!(i, next[producer], "producer {producer} out of order");
            assert_eq!(&bytes[8..], &vec![producer as u8; (i % 16) as usize][..]);
            next[producer] += 1;
        }
    });
    assert_eq!(pop(&ring), None);
}

proptest! {
    /// Any split of any bytes into writes comes out as the bytes, whatever the
    /// offset in the ring.
    #[test]
    fn writes_in_any_pieces_come_out_whole(
        records in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..60), proptest::collection::vec(0usize..60, 0..6)),
            1..40,
        )
    ) {
        let ring = Ring::with_capacity(256);
        for (bytes, cuts) in &records {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                pieces.push(&bytes[from..cut]);
                from = cut;
            }
            prop_assert!(push(&ring, 5, &pieces));
            prop_assert_eq!(pop(&ring), Some((5, bytes.clone())));
        }
        prop_assert!(ring.is_all_zero());
    }
}

#[test]
fn consumed_words_are_given_back_in_steps_and_whenever_the_ring_is_found_empty() {
    // 512 words: the consumer gives back 32 at a time. Records of 8 bytes take 2 words.
    let ring = Ring::with_capacity(4096);
    for i in 0..20u8 {
        assert!(push(&ring, 1, &[&[i; 8]]));
    }
    for i in 0..15u8 {
        assert_eq!(pop(&ring), Some((1, vec![i; 8])));
    }
    // 30 words consumed, not yet given back: the ring still counts them.
    assert_eq!((ring.len(), ring.len_bytes()), (20, 320));
    assert_eq!(pop(&ring), Some((1, vec![15; 8])));
    assert_eq!(
        (ring.len(), ring.len_bytes()),
        (4, 64),
        "32 words given back"
    );
    assert_eq!(pop(&ring), Some((1, vec![16; 8])));
    assert_eq!(ring.len(), 4);
    ring.release();
    assert_eq!(ring.len(), 3);
    while pop(&ring).is_some() {}
    assert_eq!(
        (ring.len(), ring.len_bytes()),
        (0, 0),
        "found empty: all given back"
    );
    assert!(ring.is_all_zero());
}

#[test]
fn a_producer_waits_for_words_given_back_not_merely_consumed() {
    // 16 words, given back 8 at a time: eight 2-word records fill it.
    let ring = Ring::with_capacity(128).releasing_every(8);
    for i in 0..8u8 {
        assert!(push(&ring, 1, &[&[i; 8]]));
    }
    assert!(!push(&ring, 1, &[&[8; 8]]));
    for i in 0..3u8 {
        assert_eq!(pop(&ring), Some((1, vec![i; 8])));
        assert!(
            !push(&ring, 1, &[&[8; 8]]),
            "6 words consumed, none given back"
        );
    }
    assert_eq!(pop(&ring), Some((1, vec![3; 8])));
    for i in 8..12u8 {
        assert!(push(&ring, 1, &[&[i; 8]]), "8 words given back");
    }
    assert!(!push(&ring, 1, &[&[12; 8]]));
    for i in 4..12u8 {
        assert_eq!(pop(&ring), Some((1, vec![i; 8])));
    }
    assert_eq!(pop(&ring), None);
    assert!(ring.is_all_zero());
}
