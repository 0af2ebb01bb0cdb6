//! The bounded ingest queue: preallocated inline slots and a slow path, in one FIFO.
//!
//! Where it sits: producers (`record_*` calls) push, the committer pops. Built from two
//! `crossbeam_queue::ArrayQueue`s, no `unsafe` and no hand-written ring:
//!
//! - `free` holds the preallocated slot buffers not in use. A producer pops one (a
//!   pointer move), encodes its event into it, and pushes it to `ready`. The committer
//!   decodes it and pushes the buffer back to `free`. An empty `free` is a full queue.
//! - `ready` is the single FIFO the committer drains. Slow-path records (boxed, allocated
//!   by the producer) go through the same FIFO, so records keep the order in which their
//!   `record_*` calls completed whichever path they took.
//!
//! # Invariants
//! - Nothing here allocates after [`SlotQueue::new`]: buffers circulate between `free`
//!   and `ready`; `ready` has room for every slot plus every slow-path record allowed, so
//!   a push to it after a successful reservation cannot fail.
//! - Memory is bounded: `n_slots * slot_bytes` for inline slots (allocated and touched up
//!   front so the hot path takes no page fault), and the slow-path byte and record
//!   budgets for boxed records.
//! - A producer that reserved a slot or slow-path budget always either publishes to
//!   `ready` or gives the reservation back.

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use crate::codec::Record;

/// One preallocated inline buffer.
#[derive(Debug)]
pub(crate) struct SlotBuf(Box<[u8]>);

impl SlotBuf {
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// What the committer pops.
#[derive(Debug)]
pub(crate) enum Item {
    /// An event encoded in the first `len` bytes of a slot.
    Inline { slot: SlotBuf, len: u32 },
    /// A record built by the slow path, charged `bytes` against its budget.
    Boxed { record: Box<Record>, bytes: usize },
}

/// The queue between producers and the committer.
#[derive(Debug)]
pub(crate) struct SlotQueue {
    free: ArrayQueue<SlotBuf>,
    ready: ArrayQueue<Item>,
    slot_bytes: usize,
    slow_bytes: CachePadded<AtomicUsize>,
    slow_records: CachePadded<AtomicUsize>,
    slow_bytes_max: usize,
}

impl SlotQueue {
    /// A queue of `n_slots` slots of `slot_bytes`, and a slow path of at most
    /// `slow_bytes_max` bytes in [`crate::limits::INGEST_SLOW_PATH_RECORDS_MAX`] records.
    pub fn new(n_slots: usize, slot_bytes: usize, slow_bytes_max: usize) -> SlotQueue {
        assert!(
            n_slots > 0 && slot_bytes > 0,
            "an empty queue cannot accept"
        );
        let free = ArrayQueue::new(n_slots);
        for _ in 0..n_slots {
            // Writing every byte (not just allocating zeroed memory, which the OS maps
            // lazily) takes the page faults now rather than on the hot path.
            let mut buf = vec![0u8; slot_bytes].into_boxed_slice();
            buf.fill(0x5a);
            let pushed = free.push(SlotBuf(buf));
            assert!(pushed.is_ok(), "free list sized to hold every slot");
        }
        SlotQueue {
            free,
            ready: ArrayQueue::new(n_slots + crate::limits::INGEST_SLOW_PATH_RECORDS_MAX),
            slot_bytes,
            slow_bytes: CachePadded::new(AtomicUsize::new(0)),
            slow_records: CachePadded::new(AtomicUsize::new(0)),
            slow_bytes_max,
        }
    }

    /// Records the queue can hold at once.
    pub fn capacity(&self) -> usize {
        self.ready.capacity()
    }

    /// Records waiting now.
    pub fn len(&self) -> usize {
        self.ready.len()
    }

    /// Takes a free slot, if any: the queue is full when there is none.
    pub fn try_reserve_slot(&self) -> Option<SlotBuf> {
        self.free.pop()
    }

    /// Gives back a slot that was reserved but not used.
    pub fn unreserve_slot(&self, slot: SlotBuf) {
        let pushed = self.free.push(slot);
        debug_assert!(pushed.is_ok(), "more slots returned than exist");
    }

    /// Publishes an encoded slot to the committer.
    pub fn publish_slot(&self, slot: SlotBuf, len: usize) {
        debug_assert!(len <= self.slot_bytes);
        let len = u32::try_from(len).expect("slot lengths fit u32 (limits)");
        let pushed = self.ready.push(Item::Inline { slot, len });
        // `ready` holds every slot plus every slow-path record: it cannot be full here.
        debug_assert!(pushed.is_ok(), "ready queue overflow");
        if let Err(Item::Inline { slot, .. }) = pushed {
            self.unreserve_slot(slot);
        }
    }

    /// Reserves slow-path budget for a record of `bytes`; false when over budget.
    pub fn try_reserve_slow(&self, bytes: usize) -> bool {
        let records_ok = self
            .slow_records
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < crate::limits::INGEST_SLOW_PATH_RECORDS_MAX).then_some(n + 1)
            })
            .is_ok();
        if !records_ok {
            return false;
        }
        let bytes_ok = self
            .slow_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                // One record larger than the whole budget still goes through when the
                // path is empty, so the limit of a record is the log's, not this one.
                (n == 0 || n.saturating_add(bytes) <= self.slow_bytes_max)
                    .then_some(n.saturating_add(bytes))
            })
            .is_ok();
        if !bytes_ok {
            self.slow_records.fetch_sub(1, Ordering::AcqRel);
        }
        bytes_ok
    }

    /// Publishes a slow-path record whose budget was reserved.
    pub fn publish_boxed(&self, record: Box<Record>, bytes: usize) {
        let pushed = self.ready.push(Item::Boxed { record, bytes });
        debug_assert!(pushed.is_ok(), "ready queue overflow");
        if pushed.is_err() {
            self.release_slow(bytes);
        }
    }

    fn release_slow(&self, bytes: usize) {
        self.slow_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.slow_records.fetch_sub(1, Ordering::AcqRel);
    }

    /// Takes the oldest record, giving its slot or budget back once `f` has read it.
    pub fn pop_with<T>(&self, f: impl FnOnce(Popped<'_>) -> T) -> Option<T> {
        let item = self.ready.pop()?;
        Some(match item {
            Item::Inline { slot, len } => {
                let out = f(Popped::Inline(&slot.0[..len as usize]));
                self.unreserve_slot(slot);
                out
            }
            Item::Boxed { record, bytes } => {
                self.release_slow(bytes);
                f(Popped::Boxed(record))
            }
        })
    }

    /// Whether every slot is back in the free list (nothing in flight inline).
    #[cfg(test)]
    pub fn all_slots_free(&self) -> bool {
        self.free.len() == self.free.capacity()
    }
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
    use crate::model::{Run, Timestamp};

    #[test]
    fn slots_circulate_and_the_queue_is_full_when_none_is_free() {
        let q = SlotQueue::new(2, 16, 1024);
        let mut a = q.try_reserve_slot().unwrap();
        a.bytes_mut()[0] = 7;
        let b = q.try_reserve_slot().unwrap();
        assert!(q.try_reserve_slot().is_none(), "two slots, both taken");
        q.publish_slot(a, 1);
        q.unreserve_slot(b);
        assert_eq!(q.len(), 1);
        let seen = q.pop_with(|p| match p {
            Popped::Inline(bytes) => bytes.to_vec(),
            Popped::Boxed(_) => panic!("inline expected"),
        });
        assert_eq!(seen, Some(vec![7]));
        assert!(q.all_slots_free());
    }

    #[test]
    fn the_slow_path_is_bounded_in_bytes_and_keeps_fifo_order_with_slots() {
        let q = SlotQueue::new(1, 16, 100);
        assert!(q.try_reserve_slow(60));
        assert!(!q.try_reserve_slow(60), "over the byte budget");
        let mut run = Run::new("r", "s");
        run.started_at = Timestamp::EPOCH;
        q.publish_boxed(Box::new(crate::Record::RunStarted(run)), 60);
        let slot = q.try_reserve_slot().unwrap();
        q.publish_slot(slot, 0);
        assert!(matches!(
            q.pop_with(|p| matches!(p, Popped::Boxed(_))),
            Some(true)
        ));
        assert!(q.try_reserve_slow(60), "budget given back on pop");
        assert!(matches!(
            q.pop_with(|p| matches!(p, Popped::Inline(_))),
            Some(true)
        ));
    }
}
