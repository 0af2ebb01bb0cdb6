//! A many-to-one ring of variable-length records in preallocated atomic words.
//!
//! Where it sits: inside [`super::queue::IngestQueue`]. Producers (`record_*` calls on any
//! thread) claim room, write a record and publish it; the committer is the one consumer.
//! It knows nothing of what the records mean: each is a tag and up to `u32::MAX` bytes.
//!
//! # Protocol
//! The ring is `2^k` words of `AtomicU64`. A record is one header word followed by its
//! bytes, packed little-endian into whole words:
//!
//! ```text
//! header = 1 << 63 | tag << 32 | byte length      (never 0: 0 means "not published")
//! ```
//!
//! - **Claim** (producers): one compare-and-swap on `tail` moves it past the record. A
//!   record that would cross the end of the ring is placed at index 0 instead, and the
//!   words skipped are claimed with it and marked by a `PAD` header. The claim fails
//!   (the ring is full) when the claimed words would reach those not yet consumed.
//! - **Publish** (producers): the bytes are written into the claimed words, then the
//!   header is stored with a release store. Nothing else is shared between producers
//!   and the consumer.
//! - **Consume** (the committer): an acquire load of the header at `head`; 0 means the
//!   record there is not yet published (or nothing was claimed) and the consumer stops.
//!   Otherwise it copies the bytes out, stores 0 into every word it read, and moves
//!   its own cursor past them. It gives the words back by moving `head` to that cursor
//!   with a release store, once a sixteenth of the ring (at most 32 KiB) has gathered
//!   and whenever it finds the ring empty: a store per record would pull `head`'s line
//!   away from a producer polling a full ring at every record. A producer's acquire
//!   load of `head` thus makes those zeroes visible before it writes there again.
//!
//! `tail` and `head` each pack two counters: records (upper 28 bits) and words (lower
//! 36 bits), both wrapping. Their differences give the records and words in flight
//! exactly, without a shared counter that every producer would have to touch.
//!
//! This follows Aeron's many-to-one ring buffer and the LMAX Disruptor: a producer's cost
//! is one uncontended CAS (with one producer thread the `tail` line stays in its cache)
//! and stores into words the consumer zeroed, and the consumer polls instead of being
//! signalled. Records are packed, so a stream of small events touches few cache lines.
//!
//! # Invariants
//! - Every word outside the claimed-but-unconsumed range `[head, tail)` is 0.
//! - Only the producer that claimed a range writes to it, and only until it publishes.
//! - The consumer reads records in claim order; a claimed record that is never
//!   published would stop it, so a [`Claim`] dropped unpublished publishes itself as
//!   [`TAG_VOID`] (a panicking encoder cannot wedge the ring).
//! - One `unsafe` block: a producer encodes its record straight into the bytes of the
//!   claimed words ([`Claim::bytes_mut`]), which the protocol gives it alone until it
//!   publishes. Everything else is atomics. `tests/loom_ring.rs` model-checks the
//!   protocol (with claims written through atomic stores, which loom can follow), and
//!   a test of claims written through their bytes runs under Miri (`ring_tests.rs`).

use super::sync::{AtomicU64, Ordering, advise_huge_pages, bytes_mut, prefetch};
use crossbeam_utils::CachePadded;

/// Tag of the words skipped at the end of the ring.
const TAG_PAD: u8 = 0;
/// Tag of a claim that was dropped without being published: the consumer skips it.
pub(crate) const TAG_VOID: u8 = 0xff;

const PUBLISHED: u64 = 1 << 63;
const WORD_BITS: u32 = 36;
const WORD_MASK: u64 = (1 << WORD_BITS) - 1;
const RECORD_MASK: u64 = (1 << (64 - WORD_BITS)) - 1;

/// The largest ring: `2^27` words (1 GiB), far below what the packed counters can hold.
pub(crate) const RING_WORDS_MAX: usize = 1 << 27;

fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

/// A packed position: records and words passed, each wrapping.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Cursor(u64);

impl Cursor {
    fn words(self) -> u64 {
        self.0 & WORD_MASK
    }
    fn records(self) -> u64 {
        self.0 >> WORD_BITS
    }
    fn advance(self, records: u64, words: u64) -> Cursor {
        let r = (self.records() + records) & RECORD_MASK;
        let w = (self.words() + words) & WORD_MASK;
        Cursor(r << WORD_BITS | w)
    }
    /// Words from `earlier` to `self`.
    fn words_since(self, earlier: Cursor) -> u64 {
        self.words().wrapping_sub(earlier.words()) & WORD_MASK
    }
    /// Records from `earlier` to `self`.
    fn records_since(self, earlier: Cursor) -> u64 {
        self.records().wrapping_sub(earlier.records()) & RECORD_MASK
    }
}

/// The ring. See the module docs for the protocol.
pub(crate) struct Ring {
    words: Box<[AtomicU64]>,
    mask: u64,
    /// Claimed so far; producers only.
    tail: CachePadded<AtomicU64>,
    /// Consumed and given back to the producers; stored by the consumer only, once
    /// per `release_words` consumed (or when it finds the ring empty) rather
    /// than once per record, so a producer polling a full ring does not pull the line
    /// away from the consumer at every record.
    head: CachePadded<AtomicU64>,
    /// Consumed so far, given back or not; the consumer's own.
    consumed: CachePadded<AtomicU64>,
    /// How many consumed words the consumer gathers before it gives them back.
    release_words: u64,
    /// A copy of `head` that producers read on every claim and refresh from `head` only
    /// when the ring looks full, so they rarely touch the consumer's line.
    head_seen: CachePadded<AtomicU64>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity_bytes", &self.capacity_bytes())
            .field("len", &self.len())
            .field("len_bytes", &self.len_bytes())
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// A ring of at least `bytes` bytes (rounded up to a power of two words, at least 4).
    pub fn with_capacity(bytes: usize) -> Ring {
        let n = words_for(bytes).next_power_of_two().max(4);
        assert!(
            n <= RING_WORDS_MAX,
            "ring of {bytes} bytes is over the limit"
        );
        let mut words = Vec::with_capacity(n);
        // Asked for before the first write, so the pages are huge from the start.
        advise_huge_pages(words.as_ptr() as usize, n * 8);
        // Writing every word faults the fresh pages in now, not one page per 4 KiB on
        // the producers' first lap.
        words.extend((0..n).map(|_| AtomicU64::new(0)));
        let words: Box<[AtomicU64]> = words.into_boxed_slice();
        Ring {
            words,
            mask: n as u64 - 1,
            // A sixteenth of the ring, at most 32 KiB: producers lose little of the ring
            // to it, and `head` moves about once per 300 records of 100 bytes.
            release_words: (n as u64 / 16).clamp(1, 4096),
            tail: CachePadded::new(AtomicU64::new(0)),
            head: CachePadded::new(AtomicU64::new(0)),
            consumed: CachePadded::new(AtomicU64::new(0)),
            head_seen: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// The ring's size in bytes.
    pub fn capacity_bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// The longest record a claim can hold: half the ring less its header, so a record
    /// and the padding before it always fit an empty ring.
    pub fn max_record_bytes(&self) -> usize {
        (self.words.len() / 2 - 1) * 8
    }

    /// Claims room for a record of `len` bytes; `None` when the ring has no room now
    /// (or never will: `len` over [`Ring::max_record_bytes`]).
    ///
    /// Always inlined: called out of line, the claim came back through the stack, and
    /// a profile put a sixth of the caller's samples on reloading it from there (16-byte
    /// loads of what the callee stored 8 bytes at a time). Inlined, a record call takes
    /// about 4 ns less (docs/benchmarks.md).
    #[inline(always)]
    pub fn try_claim(&self, len: usize) -> Option<Claim<'_>> {
        if len > self.max_record_bytes() {
            return None;
        }
        let cap = self.words.len() as u64;
        let need = 1 + words_for(len) as u64;
        // `head_seen` is loaded before `tail`: whatever head it shows was reached after
        // the claims below it, so the tail read next is never behind it.
        let mut head = Cursor(self.head_seen.load(Ordering::Acquire));
        let mut tail = Cursor(self.tail.load(Ordering::Relaxed));
        let mut refreshed = false;
        loop {
            let at = tail.words() & self.mask;
            let pad = if need > cap - at { cap - at } else { 0 };
            let total = pad + need;
            if tail.words_since(head) + total > cap {
                if refreshed {
                    return None;
                }
                // Looks full: read the consumer's own `head`, then `tail` again (in
                // that order, for the same reason as above).
                head = Cursor(self.head.load(Ordering::Acquire));
                self.head_seen.store(head.0, Ordering::Release);
                tail = Cursor(self.tail.load(Ordering::Relaxed));
                refreshed = true;
                continue;
            }
            let next = tail.advance(1, total);
            match self.tail.compare_exchange_weak(
                tail.0,
                next.0,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if pad > 0 {
                        // The consumer skips from here to index 0.
                        self.words[at as usize].store(PUBLISHED, Ordering::Release);
                    }
                    let start = ((at + pad) & self.mask) as usize;
                    return Some(Claim {
                        ring: self,
                        header: start,
                        len,
                        published: false,
                    });
                }
                Err(now) => tail = Cursor(now),
            }
        }
    }

    /// Records claimed and not yet given back (consumed records count until the consumer
    /// gives their words back).
    pub fn len(&self) -> u64 {
        let head = Cursor(self.head.load(Ordering::Acquire));
        let tail = Cursor(self.tail.load(Ordering::Acquire));
        tail.records_since(head)
    }

    /// Bytes claimed and not yet given back (headers and padding included).
    pub fn len_bytes(&self) -> u64 {
        let head = Cursor(self.head.load(Ordering::Acquire));
        let tail = Cursor(self.tail.load(Ordering::Acquire));
        tail.words_since(head) * 8
    }

    /// Takes the oldest record if it is published: copies its bytes into `out`
    /// (replacing what was there) and returns its tag. Consumer only.
    pub fn pop_into(&self, out: &mut Vec<u8>) -> Option<u8> {
        let cap = self.words.len() as u64;
        let mut head = Cursor(self.consumed.load(Ordering::Relaxed));
        loop {
            let at = (head.words() & self.mask) as usize;
            let header = self.words[at].load(Ordering::Acquire);
            if header == 0 {
                self.release();
                return None;
            }
            let tag = (header >> 32) as u8;
            self.words[at].store(0, Ordering::Relaxed);
            if tag == TAG_PAD {
                head = head.advance(0, cap - at as u64);
                self.consumed.store(head.0, Ordering::Relaxed);
                continue;
            }
            let len = (header & u64::from(u32::MAX)) as usize;
            let n = words_for(len);
            out.clear();
            out.resize(n * 8, 0);
            for (word, bytes) in self.words[at + 1..at + 1 + n]
                .iter()
                .zip(out.chunks_exact_mut(8))
            {
                bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
                word.store(0, Ordering::Relaxed);
            }
            out.truncate(len);
            head = head.advance(1, 1 + n as u64);
            self.consumed.store(head.0, Ordering::Relaxed);
            let given_back = Cursor(self.head.load(Ordering::Relaxed));
            if head.words_since(given_back) >= self.release_words {
                self.head.store(head.0, Ordering::Release);
            }
            return Some(tag);
        }
    }

    /// The consumer's position, for [`Ring::bytes_consumed_since`]. Consumer only: it
    /// reads the consumer's own counter, no line a producer writes.
    pub fn consumed_mark(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    /// Bytes consumed since `mark` (headers and padding included), counted as at most
    /// the ring's size: records claimed while the consumer was taking the others can
    /// make what it took more than the ring held at once. Consumer only.
    pub fn bytes_consumed_since(&self, mark: u64) -> u64 {
        let words = Cursor(self.consumed.load(Ordering::Relaxed)).words_since(Cursor(mark));
        (words * 8).min(self.capacity_bytes() as u64)
    }

    /// Gives every word consumed so far back to the producers. Consumer only.
    pub fn release(&self) {
        let consumed = self.consumed.load(Ordering::Relaxed);
        if self.head.load(Ordering::Relaxed) != consumed {
            self.head.store(consumed, Ordering::Release);
        }
    }

    /// The same ring, giving consumed words back `words` at a time: for tests of
    /// rings too small to gather any by default (`tests/loom_ring.rs`).
    #[allow(dead_code)]
    pub fn releasing_every(mut self, words: u64) -> Ring {
        self.release_words = words.max(1);
        self
    }
}

/// Room claimed for one record; written with [`Claim::write_all`] or through
/// [`Claim::writer`], then [`Claim::publish`]ed. Dropped unpublished, it publishes itself as [`TAG_VOID`].
#[derive(Debug)]
pub(crate) struct Claim<'r> {
    ring: &'r Ring,
    header: usize,
    len: usize,
    published: bool,
}

impl<'r> Claim<'r> {
    /// The claimed bytes, to encode a record straight into (the record path). They
    /// start as zeroes.
    #[inline(always)]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let data = &self.ring.words[self.header + 1..self.header + 1 + words_for(self.len)];
        // SAFETY: the claimed words are this claim's alone until it publishes. Other
        // producers' claims never overlap them (the compare-and-swap on `tail`), and
        // the consumer reads them only after the header's release store, which
        // `publish` makes once this borrow of `self` has ended; it gave them back
        // zeroed, with a release store of `head` that `try_claim` acquired. `len`
        // bytes fit the `words_for(len)` words.
        unsafe { bytes_mut(data, self.len) }
    }

    /// A writer over the claimed bytes, a word at a time (the ring's tests and loom
    /// model write claims with it).
    #[cfg(test)]
    #[inline]
    pub fn writer(&mut self) -> WordWriter<'r> {
        let data = &self.ring.words[self.header + 1..self.header + 1 + words_for(self.len)];
        WordWriter {
            words: data,
            next: 0,
            acc: 0,
            fill: 0,
            room: self.len,
        }
    }

    /// Writes the whole record from `bytes` (its claimed length), a word at a time.
    #[inline]
    pub fn write_all(&mut self, bytes: &[u8]) {
        assert_eq!(bytes.len(), self.len, "a record is written whole");
        let data = &self.ring.words[self.header + 1..self.header + 1 + words_for(self.len)];
        let mut chunks = bytes.chunks_exact(8);
        for (word, chunk) in data.iter().zip(&mut chunks) {
            let chunk: [u8; 8] = chunk.try_into().expect("chunks of 8");
            word.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            data[data.len() - 1].store(le_word(rest), Ordering::Relaxed);
        }
    }

    /// Makes the record visible to the consumer, with `tag`.
    #[inline]
    pub fn publish(mut self, tag: u8) {
        self.publish_as(tag);
        // The next record is most likely written just past this one: start bringing
        // those lines into the cache now, so that its stores need not wait for them.
        let next = self.header + 1 + words_for(self.len);
        for line in 0..PREFETCH_LINES {
            let at = (next + line * LINE_WORDS) & self.ring.mask as usize;
            prefetch(&self.ring.words[at]);
        }
    }

    fn publish_as(&mut self, tag: u8) {
        debug_assert!(tag != TAG_PAD, "the pad tag is the ring's own");
        let header = PUBLISHED | u64::from(tag) << 32 | self.len as u64;
        self.ring.words[self.header].store(header, Ordering::Release);
        self.published = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.published {
            self.publish_as(TAG_VOID);
        }
    }
}

/// Cache lines past a published record brought in ahead of the next one.
const PREFETCH_LINES: usize = 3;
/// Ring words in a 64-byte cache line.
const LINE_WORDS: usize = 64 / 8;

/// Up to 8 bytes as the little-endian word they start, zero above them.
///
/// Built in a register: copying them into a stack buffer and loading that as one word
/// made the load wait for every earlier store to drain, the ring stores included
/// (a load cannot be served from several smaller pending stores), which cost the
/// producer tens of nanoseconds per record when those stores missed the cache.
#[inline]
fn le_word(bytes: &[u8]) -> u64 {
    debug_assert!(bytes.len() <= 8);
    bytes
        .iter()
        .rev()
        .fold(0, |word, &b| word << 8 | u64::from(b))
}

#[cfg(test)]
/// Writes bytes into claimed words, a word at a time.
#[derive(Debug)]
pub(crate) struct WordWriter<'r> {
    words: &'r [AtomicU64],
    next: usize,
    acc: u64,
    /// Bytes held in `acc`, 0..8.
    fill: usize,
    /// Bytes that may still be written.
    room: usize,
}

#[cfg(test)]
/// A write past the end of a claim.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

#[cfg(test)]
impl WordWriter<'_> {
    /// Appends `bytes`; refuses (writing nothing) what would pass the claim's length.
    #[inline]
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), Overflow> {
        if bytes.len() > self.room {
            return Err(Overflow);
        }
        self.room -= bytes.len();
        while !bytes.is_empty() {
            let n = bytes.len().min(8);
            let v = le_word(&bytes[..n]);
            self.acc |= v << (8 * self.fill);
            let filled = self.fill + n;
            if filled >= 8 {
                self.words[self.next].store(self.acc, Ordering::Relaxed);
                self.next += 1;
                self.acc = if self.fill == 0 {
                    0
                } else {
                    v >> (8 * (8 - self.fill))
                };
                self.fill = filled - 8;
            } else {
                self.fill = filled;
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Stores the last partial word. Bytes never written stay 0.
    #[inline]
    pub fn finish(self) {
        if self.fill > 0 {
            self.words[self.next].store(self.acc, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
impl Ring {
    /// Whether every word is 0 (tests of the zeroing invariant).
    pub fn is_all_zero(&self) -> bool {
        self.words.iter().all(|w| w.load(Ordering::Relaxed) == 0)
    }
}
