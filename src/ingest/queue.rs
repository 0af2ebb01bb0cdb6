//! The bounded ingest queue: inline records in byte rings, and a slow path, in one FIFO
//! per producer shard.
//!
//! Where it sits: producers (`record_*` calls) push, the committer pops.
//!
//! - The queue is a few rings (shards), not one. Each producer thread is given a shard
//!   the first time it records (threads are dealt out round-robin), so two producers on
//!   two cores claim room in different rings and never pull each other's cache lines:
//!   with a single ring, every claim found the ring's tail last written by the other
//!   core and paid a cache-line transfer for it.
//!
//! - A record with an inline form is measured (an event's or a call's length summed,
//!   other kinds counted) and claims that room in [`Ring`] (`ring.rs`) with one
//!   compare-and-swap, and is encoded straight into it. No allocation, no syscall, no
//!   lock.
//! - A slow-path record (boxed, allocated by the producer) is parked in one of
//!   [`crate::limits::INGEST_SLOW_PATH_RECORDS_MAX`] cells, and a small marker naming the
//!   cell goes through the same ring. A thread's records therefore keep the order in
//!   which its `record_*` calls completed, whichever path they took.
//! - Across threads the committer sees no order: it takes from the shards in turn.
//!   What needs an order across threads is restored after it: a run's events by
//!   sequence (`reorder.rs`), and a finish that arrives before its run's start is held
//!   until the start is written (`committer.rs`).
//!
//! # Invariants
//! - Nothing here allocates after [`IngestQueue::new`] except the boxes the slow path
//!   brings with it.
//! - Memory is bounded: the rings' bytes, plus the slow path's byte budget and cells.
//! - A thread always pushes to the same shard, so its records leave in the order it
//!   pushed them.
//! - A producer that took a slow-path cell or budget always either publishes its marker
//!   or gives them back; the committer gives them back when it pops the marker.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use crossbeam_utils::atomic::AtomicCell;

use super::ShapedEventRef;
use super::ring::Ring;
use super::slot::{Inline, Refused, SliceSink, encode_event, encode_shaped, shaped_len};
use crate::codec::Record;

/// Ring tag of an inline record (its bytes are the slot encoding of `slot.rs`).
const TAG_INLINE: u8 = 1;
/// Ring tag of a slow-path marker: `u32` cell index, `u64` bytes charged.
const TAG_BOXED: u8 = 2;
const MARKER_BYTES: usize = 12;

thread_local! {
    /// A producer thread's shard number, before reduction by the shard count; dealt on
    /// its first push.
    static SHARD: Cell<u32> = const { Cell::new(UNDEALT) };
}

/// A thread that has not pushed yet.
const UNDEALT: u32 = u32::MAX;
/// The next shard number to deal to a thread, for every queue of the process.
static NEXT_SHARD: AtomicU32 = AtomicU32::new(0);

/// This thread's shard number (any `u32`; reduce it by the shard count).
#[inline]
fn thread_shard() -> u32 {
    SHARD
        .try_with(|shard| {
            let mut n = shard.get();
            if n == UNDEALT {
                n = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % UNDEALT;
                shard.set(n);
            }
            n
        })
        // A `Cell<u32>` has no destructor, so its slot is never torn down and this
        // never fails; any shard would still be a valid one.
        .unwrap_or(0)
}

/// What became of an inline push.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    Accepted,
    /// The ring has no room now.
    Full,
    /// No inline form, or over the inline size: the slow path's.
    NotInline,
}

/// The queue between producers and the committer.
pub(crate) struct IngestQueue {
    /// The shards: one ring each.
    rings: Box<[Ring]>,
    /// The most bytes one inline record may take.
    inline_max: usize,
    cells: Box<[AtomicCell<Option<Box<Record>>>]>,
    free_cells: ArrayQueue<u32>,
    slow_bytes: CachePadded<AtomicUsize>,
    slow_bytes_max: usize,
}

impl std::fmt::Debug for IngestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestQueue")
            .field("rings", &self.rings)
            .field("inline_max", &self.inline_max)
            .field("free_cells", &self.free_cells.len())
            .field("slow_bytes", &self.slow_bytes)
            .finish_non_exhaustive()
    }
}

impl IngestQueue {
    /// A queue over `shards` rings of at least `ring_bytes` each, taking inline records
    /// of up to `inline_max` bytes, and a slow path of at most `slow_bytes_max` bytes in
    /// [`crate::limits::INGEST_SLOW_PATH_RECORDS_MAX`] records.
    pub fn new(
        shards: usize,
        ring_bytes: usize,
        inline_max: usize,
        slow_bytes_max: usize,
    ) -> IngestQueue {
        assert!(shards >= 1, "a queue has at least one shard");
        let rings: Box<[Ring]> = (0..shards)
            .map(|_| Ring::with_capacity(ring_bytes))
            .collect();
        let max_record = rings[0].max_record_bytes();
        assert!(
            inline_max <= max_record && MARKER_BYTES <= max_record,
            "the ring must hold the largest inline record"
        );
        let n_cells = crate::limits::INGEST_SLOW_PATH_RECORDS_MAX;
        let free_cells = ArrayQueue::new(n_cells);
        for cell in 0..n_cells {
            let cell = u32::try_from(cell).expect("cell count fits u32 (limits)");
            assert!(free_cells.push(cell).is_ok(), "sized to hold every cell");
        }
        IngestQueue {
            rings,
            inline_max,
            cells: (0..n_cells).map(|_| AtomicCell::new(None)).collect(),
            free_cells,
            slow_bytes: CachePadded::new(AtomicUsize::new(0)),
            slow_bytes_max,
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.rings.len()
    }

    /// The calling thread's ring.
    #[inline]
    fn ring(&self) -> &Ring {
        &self.rings[thread_shard() as usize % self.rings.len()]
    }

    /// The rings' size in bytes, all shards together.
    pub fn capacity_bytes(&self) -> usize {
        self.rings.iter().map(Ring::capacity_bytes).sum()
    }

    /// Records waiting now, in every shard.
    pub fn len(&self) -> usize {
        self.rings.iter().map(|ring| ring.len() as usize).sum()
    }

    /// Records waiting now in one shard.
    pub fn shard_len(&self, shard: usize) -> usize {
        self.rings[shard].len() as usize
    }

    /// Ring bytes in use now, in every shard.
    pub fn len_bytes(&self) -> u64 {
        self.rings.iter().map(Ring::len_bytes).sum()
    }

    /// Writes `view` into the ring, if it has an inline form of at most `inline_max`
    /// bytes and the ring has room: its length first, then a claim of that room, then
    /// the encoding straight into it, so nothing is copied.
    #[inline]
    pub fn try_push(&self, view: &Inline<'_>) -> Push {
        let len = view.encoded_len(self.inline_max);
        match *view {
            // The event gets a copy of its own, which knows the kind. No other kind
            // gets one: with a call's beside it, the compiler stopped inlining the
            // event's encoder here, which cost the event's call 6 ns
            // (docs/benchmarks.md, 2026-12-05).
            Inline::Event(event) => self.push_encoded(view, len, |sink| encode_event(sink, event)),
            _ => self.push_encoded(view, len, |sink| view.encode(sink)),
        }
    }

    /// [`IngestQueue::try_push`] for an event of the shape numbered `shape`. A push of
    /// its own: an arm for it in `try_push` beside the event's changed how the
    /// compiler laid out the event's, which then took 604 instructions instead of 547.
    #[inline]
    pub fn try_push_shaped(&self, shape: u32, event: &ShapedEventRef<'_>) -> Push {
        let view = Inline::Shaped { shape, event };
        let len = shaped_len(event, self.inline_max);
        self.push_encoded(&view, len, |sink| encode_shaped(sink, shape, event))
    }

    /// Claims `len` bytes (`view`'s encoded length; `None`: it has no inline form) and
    /// encodes `view` into them with `encode`.
    #[inline(always)]
    fn push_encoded(
        &self,
        view: &Inline<'_>,
        len: Option<usize>,
        encode: impl FnOnce(&mut SliceSink<'_>) -> Result<(), Refused>,
    ) -> Push {
        let Some(len) = len else {
            return Push::NotInline;
        };
        let Some(mut claim) = self.ring().try_claim(len) else {
            return Push::Full;
        };
        let mut sink = SliceSink {
            buf: claim.bytes_mut(),
            pos: 0,
        };
        if encode(&mut sink).is_err() {
            // The length is the encoding's (a proptest in `slot.rs` holds the two
            // together), so this is a bug. Even so nothing is lost: the claim, dropped
            // unpublished, is skipped as void, and the record takes the slow path.
            debug_assert!(false, "an encoding refused after its length: {view:?}");
            return Push::NotInline;
        }
        debug_assert_eq!(sink.pos, len, "an encoding shorter than its length");
        claim.publish(TAG_INLINE);
        Push::Accepted
    }

    /// Queues a slow-path record charged `bytes`, taking it out of `record`; false
    /// (and `record` left as it was) when the slow path or the ring is full.
    pub fn try_push_boxed(&self, record: &mut Option<Box<Record>>, bytes: usize) -> bool {
        if !self.try_charge_slow(bytes) {
            return false;
        }
        let Some(cell) = self.free_cells.pop() else {
            self.release_slow(bytes);
            return false;
        };
        let Some(mut claim) = self.ring().try_claim(MARKER_BYTES) else {
            self.release_cell(cell);
            self.release_slow(bytes);
            return false;
        };
        self.cells[cell as usize].store(record.take());
        let mut marker = [0u8; MARKER_BYTES];
        marker[..4].copy_from_slice(&cell.to_le_bytes());
        marker[4..].copy_from_slice(&(bytes as u64).to_le_bytes());
        claim.write_all(&marker);
        claim.publish(TAG_BOXED);
        true
    }

    /// Charges `bytes` to the slow path's budget; false when over it.
    fn try_charge_slow(&self, bytes: usize) -> bool {
        self.slow_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                // One record larger than the whole budget still goes through when the
                // path is empty, so the limit of a record is the log's, not this one.
                (n == 0 || n.saturating_add(bytes) <= self.slow_bytes_max)
                    .then_some(n.saturating_add(bytes))
            })
            .is_ok()
    }

    fn release_slow(&self, bytes: usize) {
        self.slow_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn release_cell(&self, cell: u32) {
        let pushed = self.free_cells.push(cell);
        debug_assert!(pushed.is_ok(), "more cells returned than exist");
    }

    /// Takes the oldest record of `shard`, reading an inline one through `scratch`, and
    /// gives its room back. Committer only.
    ///
    /// Never inlined: inlined into the committer's loop, the slice of `scratch` handed
    /// to `f` was read back as one 16-byte load of the length `pop_into` had just stored
    /// with 8 bytes, which waited for every store before it to reach the cache, the
    /// ring words the consumer zeroes included; that load held two thirds of the
    /// committer's taking time, about 15 ns a record (docs/benchmarks.md).
    #[inline(never)]
    pub fn pop_with<T>(
        &self,
        shard: usize,
        scratch: &mut Vec<u8>,
        f: impl FnOnce(Popped<'_>) -> T,
    ) -> Option<T> {
        let ring = &self.rings[shard];
        loop {
            match ring.pop_into(scratch)? {
                TAG_INLINE => return Some(f(Popped::Inline(scratch))),
                TAG_BOXED => {
                    let Some((cell, bytes)) = read_marker(scratch) else {
                        debug_assert!(false, "a slow-path marker does not decode");
                        continue;
                    };
                    let record = self.cells[cell as usize].take();
                    self.release_cell(cell);
                    self.release_slow(bytes);
                    match record {
                        Some(record) => return Some(f(Popped::Boxed(record))),
                        None => debug_assert!(false, "a slow-path cell was empty"),
                    }
                }
                // A claim dropped unpublished: nothing was written.
                _ => continue,
            }
        }
    }

    /// The position of the committer in `shard`, for
    /// [`IngestQueue::bytes_consumed_since`]. Committer only.
    pub fn consumed_mark(&self, shard: usize) -> u64 {
        self.rings[shard].consumed_mark()
    }

    /// Ring bytes of `shard` taken since `mark` (headers and padding included).
    /// Committer only.
    pub fn bytes_consumed_since(&self, shard: usize, mark: u64) -> u64 {
        self.rings[shard].bytes_consumed_since(mark)
    }

    /// Gives the room of every record taken from `shard` back to its producers (taking
    /// gives it back only in larger steps, or when the shard is found empty).
    /// Committer only.
    pub fn release(&self, shard: usize) {
        self.rings[shard].release();
    }

    /// Whether no slow-path cell or budget is in use.
    #[cfg(test)]
    pub fn slow_path_idle(&self) -> bool {
        self.free_cells.len() == self.free_cells.capacity()
            && self.slow_bytes.load(Ordering::Acquire) == 0
    }
}

fn read_marker(bytes: &[u8]) -> Option<(u32, usize)> {
    let cell = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let charged = u64::from_le_bytes(bytes.get(4..MARKER_BYTES)?.try_into().ok()?);
    Some((cell, usize::try_from(charged).ok()?))
}

/// A record as the committer receives it.
#[derive(Debug)]
pub(crate) enum Popped<'a> {
    Inline(&'a [u8]),
    Boxed(Box<Record>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{EventRef, FieldValue};
    use crate::model::{Run, Timestamp};

    /// Calls `f` with the inline view of a step event of run `r` carrying `text`.
    fn with_event<T>(sequence: u64, text: &str, f: impl FnOnce(Inline<'_>) -> T) -> T {
        let fields = [("text", FieldValue::Str(text))];
        f(Inline::Event(&EventRef {
            run_id: "r",
            sequence,
            event_type: "step",
            fields: &fields,
            created_at: Timestamp::EPOCH,
        }))
    }

    fn event(sequence: u64, text: &str) -> Vec<u8> {
        with_event(sequence, text, super::super::slot::encode_to_vec)
    }

    fn try_push(q: &IngestQueue, sequence: u64, text: &str) -> Push {
        with_event(sequence, text, |view| q.try_push(&view))
    }

    fn push_event(q: &IngestQueue, sequence: u64, text: &str) -> bool {
        match try_push(q, sequence, text) {
            Push::Accepted => true,
            Push::Full => false,
            Push::NotInline => panic!("has an inline form"),
        }
    }

    fn pop(q: &IngestQueue, scratch: &mut Vec<u8>) -> Option<Result<Vec<u8>, Box<Record>>> {
        pop_from(q, 0, scratch)
    }

    fn pop_from(
        q: &IngestQueue,
        shard: usize,
        scratch: &mut Vec<u8>,
    ) -> Option<Result<Vec<u8>, Box<Record>>> {
        q.pop_with(shard, scratch, |p| match p {
            Popped::Inline(bytes) => Ok(bytes.to_vec()),
            Popped::Boxed(record) => Err(record),
        })
    }

    #[test]
    fn inline_records_come_out_as_encoded_and_the_ring_fills_and_drains() {
        let q = IngestQueue::new(1, 1024, 200, 1024);
        let mut scratch = Vec::new();
        let mut pushed = 0;
        while push_event(&q, pushed + 1, "some text") {
            pushed += 1;
        }
        assert!(pushed > 5, "a 1 KiB ring holds several small events");
        assert_eq!(q.len() as u64, pushed);
        for sequence in 1..=pushed {
            assert_eq!(
                pop(&q, &mut scratch),
                Some(Ok(event(sequence, "some text")))
            );
        }
        assert_eq!(pop(&q, &mut scratch), None);
        assert_eq!(q.len(), 0);
        assert_eq!(q.len_bytes(), 0);
        // Round and round: records of varying size cross the end of the ring.
        for round in 0..200u64 {
            let text = "x".repeat((round as usize * 7) % 90);
            assert!(push_event(&q, round + 1, &text));
            assert!(push_event(&q, round + 2, &text));
            assert_eq!(pop(&q, &mut scratch), Some(Ok(event(round + 1, &text))));
            assert_eq!(pop(&q, &mut scratch), Some(Ok(event(round + 2, &text))));
        }
    }

    #[test]
    fn a_large_inline_record_is_written_in_place_whole() {
        let q = IngestQueue::new(1, 64 << 10, 8 << 10, 1024);
        let mut scratch = Vec::new();
        for len in [1024, 2000, 5003] {
            let text = "y".repeat(len);
            assert!(push_event(&q, len as u64, &text));
            assert_eq!(pop(&q, &mut scratch), Some(Ok(event(len as u64, &text))));
        }
        // Over the inline size: the slow path's.
        assert_eq!(try_push(&q, 1, &"z".repeat(8 << 10)), Push::NotInline);
    }

    proptest::proptest! {
        /// Records of every kind come out as their encodings, in order, and are
        /// refused as not inline exactly where they have no inline form under the
        /// inline size.
        #[test]
        fn every_kind_comes_out_as_its_encoding(
            records in proptest::collection::vec(crate::codec::arbitrary::record(), 1..24),
            inline_max in 8usize..400,
        ) {
            let q = IngestQueue::new(1, 4096, inline_max, 1024);
            let mut scratch = Vec::new();
            for record in &records {
                let Some(view) = Inline::of(record) else {
                    continue;
                };
                let len = view.encoded_len(inline_max);
                let push = q.try_push(&view);
                proptest::prop_assert_eq!(push == Push::NotInline, len.is_none());
                if push == Push::Accepted {
                    let encoded = super::super::slot::encode_to_vec(view);
                    proptest::prop_assert_eq!(pop(&q, &mut scratch), Some(Ok(encoded)));
                }
                proptest::prop_assert_eq!(pop(&q, &mut scratch), None);
            }
        }
    }

    #[test]
    fn an_event_over_the_inline_size_is_not_inline() {
        let q = IngestQueue::new(1, 4096, 64, 1024);
        assert_eq!(try_push(&q, 1, &"x".repeat(100)), Push::NotInline);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn the_slow_path_is_bounded_in_bytes_and_keeps_fifo_order_with_inline_records() {
        let q = IngestQueue::new(1, 4096, 200, 100);
        let mut run = Run::new("r", "s");
        run.started_at = Timestamp::EPOCH;
        let record = crate::Record::RunStarted(run);
        let mut first = Some(Box::new(record.clone()));
        assert!(q.try_push_boxed(&mut first, 60));
        assert!(first.is_none(), "taken by the queue");
        let mut second = Some(Box::new(record.clone()));
        assert!(!q.try_push_boxed(&mut second, 60), "over the byte budget");
        assert!(second.is_some(), "left with the caller");
        assert!(push_event(&q, 1, "after"));
        let mut scratch = Vec::new();
        assert_eq!(pop(&q, &mut scratch), Some(Err(Box::new(record))));
        assert!(
            q.try_push_boxed(&mut second, 60),
            "budget given back on pop"
        );
        assert_eq!(pop(&q, &mut scratch), Some(Ok(event(1, "after"))));
        assert!(matches!(pop(&q, &mut scratch), Some(Err(_))));
        assert!(q.slow_path_idle());
    }

    #[test]
    fn each_thread_pushes_to_one_shard_and_its_records_leave_in_its_order() {
        let q = IngestQueue::new(2, 64 << 10, 200, 1024);
        assert_eq!(q.shards(), 2);
        let threads: Vec<String> = (0..4).map(|t| format!("thread-{t}")).collect();
        std::thread::scope(|scope| {
            for text in &threads {
                let q = &q;
                scope.spawn(move || {
                    for sequence in 1..=50 {
                        assert!(push_event(q, sequence, text));
                    }
                });
            }
        });
        assert_eq!(q.len(), 200);
        let mut scratch = Vec::new();
        let mut seen: Vec<Vec<u64>> = vec![Vec::new(); threads.len()];
        let mut shards_of: Vec<Vec<usize>> = vec![Vec::new(); threads.len()];
        for shard in 0..q.shards() {
            while let Some(Ok(bytes)) = pop_from(&q, shard, &mut scratch) {
                let (t, sequence) = (0..threads.len())
                    .flat_map(|t| (1..=50).map(move |s| (t, s)))
                    .find(|&(t, s)| event(s, &threads[t]) == bytes)
                    .expect("every record is one that was pushed");
                seen[t].push(sequence);
                if !shards_of[t].contains(&shard) {
                    shards_of[t].push(shard);
                }
            }
        }
        for (sequences, shards) in seen.iter().zip(&shards_of) {
            assert_eq!(*sequences, (1..=50).collect::<Vec<_>>());
            assert_eq!(shards.len(), 1, "a thread's records are all in one shard");
        }
        assert_eq!(q.len(), 0);
    }
}
