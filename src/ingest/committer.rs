//! The committer thread: drains the queue, restores per-run order, appends, syncs, and
//! writes in-band drop reports.
//!
//! Where it sits: the only consumer of [`super::queue::IngestQueue`] and the only caller
//! of the log's write methods on behalf of a recorder. It owns all serialization work
//! (slot decode, msgpack encode inside the log), so producers only copy bytes. It
//! takes from the queue's shards in turn, starting each batch at the next shard.
//!
//! # Invariants
//! - Producers never wake it: it polls, parking for a short, adaptive timeout when
//!   idle (`PARK_MIN` doubling up to the configured `idle_park`). Only `flush` and
//!   `close`, which may block anyway, unpark it.
//! - It parks at most a tenth of the group-commit interval, and while it holds events
//!   or finishes waiting for a record before them, at most a tenth of
//!   `reorder_window`: a long idle park delays neither syncs nor releases by more.
//! - Every record it takes is settled exactly once: written, or counted as a drop by
//!   reason (oversized, rejected, I/O failure).
//! - A flush ticket is completed only after every record accepted before the ticket was
//!   taken has been appended and a sync has returned (or failed, which the waiter sees).
//! - Under `Durability::GroupCommit`, appended data is synced at most about one interval
//!   after it was appended even when no more records arrive.
//! - It stops only once `closed` is set and the queue is empty, after releasing every
//!   held event, reporting every drop counted so far and syncing.
//! - A run's finish that reaches it before the run's start (the two were recorded on
//!   threads of different shards) is not refused at once: it is held and retried with
//!   every batch for up to `reorder_window`, and at a flush or close once everything
//!   taken before has been written. Only then is a finish for an unknown run refused.

use std::str::from_utf8;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::codec::{CallRef, DropReport, EncodedRecord, Record, RecordKind};
use crate::config::Durability;
use crate::error::Error;
use crate::limits;
use crate::model::{DropReason, OutcomeKind, Timestamp};

use super::metrics::{DropCounts, DropSpan};
use super::queue::Popped;
use super::reorder::{Order, Reorder, Sequenced};
use super::shape::ShapeCache;
use super::transcode::PayloadBuf;
use super::{Shared, slot, transcode};

/// Whether a finish for a run not started yet may wait for the start.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Early {
    /// Hold it, up to the reorder window: the start may be in another shard.
    Hold,
    /// Refuse it: everything taken before it has been written.
    Refuse,
}

/// The shortest idle park.
const PARK_MIN: Duration = Duration::from_micros(50);

/// The longest the committer parks: `idle_park`, and under group commit at most a tenth
/// of the interval, so data is synced within about 1.1 intervals of being recorded.
fn park_max(idle_park: Duration, durability: Durability) -> Duration {
    let park = match durability {
        Durability::GroupCommit { interval_ms } => {
            idle_park.min(Duration::from_millis(interval_ms) / 10)
        }
        Durability::None | Durability::EveryBatch => idle_park,
    };
    park.max(PARK_MIN)
}

/// `park`, or a tenth of the reorder window if shorter while records wait for their
/// window to end, so they are released at most a tenth of a window late.
fn while_waiting(park: Duration, waiting: bool, reorder_window: Duration) -> Duration {
    if waiting {
        park.min(reorder_window / 10).max(PARK_MIN)
    } else {
        park
    }
}

/// Spare record buffers kept for reuse, and the largest payload buffer kept.
const SPARE_MAX: usize = limits::INGEST_SPARE_RECORDS_MAX;
const SPARE_PAYLOAD_BYTES_MAX: usize = limits::INGEST_SPARE_PAYLOAD_BYTES_MAX;

/// A record taken from the queue, encoded as its payload, waiting to be written. Its
/// buffers are reused once it is written, so steady recording allocates nothing here.
#[derive(Debug)]
struct Taken {
    kind: RecordKind,
    payload: PayloadBuf,
    /// The run of an event or a finish (empty for other kinds).
    run_id: String,
    /// The sequence of an event.
    sequence: u64,
    /// A transcoded call's index fields, so the index need not read them back.
    call: CallFields,
}

/// A call's index fields, in buffers a `Taken` keeps for reuse.
#[derive(Debug)]
struct CallFields {
    /// Whether the fields below describe the record.
    known: bool,
    ts: i64,
    call_id: String,
    tool_id: String,
    caller_id: String,
    has_caller: bool,
    kind: OutcomeKind,
}

impl CallFields {
    fn new() -> CallFields {
        CallFields {
            known: false,
            ts: 0,
            call_id: String::new(),
            tool_id: String::new(),
            caller_id: String::new(),
            has_caller: false,
            kind: OutcomeKind::Success,
        }
    }

    /// Takes the slot's fields; forgets them if a string is not UTF-8 (the index then
    /// reads the payload, which refuses it).
    fn fill(&mut self, key: Option<&transcode::CallKey<'_>>) {
        self.known = false;
        let Some(key) = key else { return };
        let (Ok(call_id), Ok(tool_id), Ok(caller_id)) = (
            from_utf8(key.call_id),
            from_utf8(key.tool_id),
            key.caller_id.map(from_utf8).transpose(),
        ) else {
            return;
        };
        for (held, new) in [
            (&mut self.call_id, call_id),
            (&mut self.tool_id, tool_id),
            (&mut self.caller_id, caller_id.unwrap_or_default()),
        ] {
            held.clear();
            held.push_str(new);
        }
        self.has_caller = caller_id.is_some();
        self.ts = key.ts;
        self.kind = key.kind;
        self.known = true;
    }

    fn as_ref(&self) -> Option<CallRef<'_>> {
        self.known.then(|| CallRef {
            ts: Timestamp::from_unix_nanos(self.ts),
            call_id: &self.call_id,
            tool_id: &self.tool_id,
            caller_id: self.has_caller.then_some(self.caller_id.as_str()),
            kind: self.kind,
        })
    }
}

impl Taken {
    /// Boxed: a record's `Taken` moves through the reorder buffer, the batch and back to
    /// the spares, and moved by value (152 bytes) those copies were about a tenth
    /// of the committer's samples (docs/benchmarks.md).
    fn new() -> Box<Taken> {
        Box::new(Taken {
            kind: RecordKind::DropReport,
            payload: PayloadBuf::default(),
            run_id: String::new(),
            sequence: 0,
            call: CallFields::new(),
        })
    }

    /// Fills from an inline slot, transcoding when the kind allows it.
    fn fill_from_slot(&mut self, bytes: &[u8], shapes: &mut ShapeCache) -> Result<(), String> {
        self.run_id.clear();
        match transcode::transcode(bytes, &mut self.payload, shapes).map_err(|e| e.to_string())? {
            Some(transcoded) => {
                self.kind = transcoded.kind;
                if let Some((run_id, sequence)) = transcoded.event {
                    self.run_id.push_str(run_id);
                    self.sequence = sequence;
                }
                self.call.fill(transcoded.call.as_ref());
                Ok(())
            }
            None => self.fill_from_record(&slot::decode(bytes, shapes).map_err(|e| e.to_string())?),
        }
    }

    /// Fills from a record by encoding it.
    fn fill_from_record(&mut self, record: &Record) -> Result<(), String> {
        self.run_id.clear();
        self.call.fill(None);
        self.kind = record.kind();
        self.payload
            .encode_with(|out| record.encode_payload(out))
            .map_err(|e| format!("cannot encode a recorded {:?}: {e}", self.kind))?;
        match record.order() {
            Order::Event { run_id, sequence } => {
                self.run_id.push_str(run_id);
                self.sequence = sequence;
            }
            Order::Finish { run_id } => self.run_id.push_str(run_id),
            Order::Other => {}
        }
        Ok(())
    }
}

impl Sequenced for Taken {
    fn order(&self) -> Order<'_> {
        match self.kind {
            RecordKind::EventAppended => Order::Event {
                run_id: &self.run_id,
                sequence: self.sequence,
            },
            RecordKind::RunFinished => Order::Finish {
                run_id: &self.run_id,
            },
            _ => Order::Other,
        }
    }
}

/// What flush waiters and `close` wait on.
#[derive(Debug, Default)]
pub(crate) struct FlushState {
    /// The highest flush ticket completed.
    pub completed: u64,
    /// The error of the last sync, if it failed.
    pub error: Option<String>,
    /// The committer has drained, synced and returned.
    pub stopped: bool,
}

/// The flush handshake between callers and the committer.
#[derive(Debug, Default)]
pub(crate) struct FlushSignal {
    pub state: Mutex<FlushState>,
    pub changed: Condvar,
}

impl FlushSignal {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, FlushState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The committer's state; the thread returns it so the last handle can drain stragglers.
#[derive(Debug)]
pub(crate) struct Committer {
    shared: Arc<Shared>,
    reorder: Reorder<Box<Taken>>,
    /// Records taken and ordered, waiting for the next append.
    #[allow(clippy::vec_box, reason = "moved per record: see `Taken::new`")]
    ordered: Vec<Box<Taken>>,
    /// Written records whose buffers are kept for reuse.
    #[allow(clippy::vec_box, reason = "moved per record: see `Taken::new`")]
    spare: Vec<Box<Taken>>,
    /// Where an inline record's bytes are copied out of the ring.
    scratch: Vec<u8>,
    /// The event shapes met so far.
    shapes: ShapeCache,
    reported: DropCounts,
    /// When the oldest appended, unsynced record under group commit was appended.
    unsynced_since: Option<Instant>,
    flushed_ticket: u64,
    /// The log refused a write or sync; nothing further can be acknowledged.
    poisoned: bool,
    /// The shard the next batch starts at.
    next_shard: usize,
    /// The last batch stopped at its limit, leaving records in the queue.
    behind: bool,
    /// Finishes whose run had not started when they were written, with when they were
    /// first refused; retried with every batch.
    early_finishes: Vec<(Box<Taken>, Instant)>,
}

impl Committer {
    pub fn new(shared: Arc<Shared>) -> Committer {
        let window = shared.config.reorder_window;
        let slot_bytes = shared.config.slot_bytes();
        Committer {
            shapes: ShapeCache::new(Arc::clone(&shared.shapes)),
            shared,
            reorder: Reorder::new(window),
            ordered: Vec::with_capacity(limits::INGEST_BATCH_MAX),
            spare: Vec::with_capacity(SPARE_MAX),
            scratch: Vec::with_capacity(slot_bytes),
            reported: DropCounts::default(),
            unsynced_since: None,
            flushed_ticket: 0,
            poisoned: false,
            next_shard: 0,
            behind: false,
            early_finishes: Vec::new(),
        }
    }

    /// The state it shares with the recorder's handles.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The thread's body: runs until closed and drained.
    pub fn run(mut self) -> Committer {
        let idle_park_max = self.park_max();
        let mut park = PARK_MIN;
        loop {
            let closing = self.shared.closed.load(Ordering::Acquire);
            let n_taken = self.take_batch(limits::INGEST_BATCH_MAX);
            self.reorder
                .release_expired(Instant::now(), &mut self.ordered);
            self.write_ordered(Early::Hold);
            self.report_drops();
            self.serve_flush();
            self.group_commit_timer();
            if closing && self.shared.queue.len() == 0 {
                break;
            }
            // Only a full batch means the producers are ahead: loop at once. A partial
            // batch parks briefly too, so at moderate rates records are taken in
            // batches and the queue's cache lines are not pulled back and forth per
            // record between producer and committer cores.
            if n_taken == 0 {
                std::thread::park_timeout(self.while_waiting(park));
                park = (park * 2).min(idle_park_max);
            } else if n_taken < limits::INGEST_BATCH_MAX / 4 {
                std::thread::park_timeout(self.while_waiting(idle_park_max));
                park = PARK_MIN;
            } else {
                park = PARK_MIN;
            }
        }
        self.finish();
        self
    }

    /// The longest park (see [`park_max`]).
    fn park_max(&self) -> Duration {
        park_max(self.shared.config.idle_park, self.shared.durability)
    }

    /// `park`, shortened while held events or early finishes wait for their window.
    fn while_waiting(&self, park: Duration) -> Duration {
        let waiting = self.reorder.is_holding() || !self.early_finishes.is_empty();
        while_waiting(park, waiting, self.shared.config.reorder_window)
    }

    /// Pops up to `max` records into the ordered buffer from the shards in turn,
    /// starting at the next one; returns how many.
    ///
    /// It also updates the queue's high-water mark. While the committer keeps up, what a
    /// batch takes is what was waiting, counted from its own cursors; only while it is
    /// behind does it read the bytes in use from the producers' claim counters, since
    /// reading one pulls its cache line away from the producer, whose next claim then
    /// waits for it (up to a tenth of a microsecond on a record call's p99 here, see
    /// docs/benchmarks.md).
    fn take_batch(&mut self, max: usize) -> usize {
        if self.behind {
            let in_use = self.shared.queue.len_bytes();
            (self.shared.counters.high_water).fetch_max(in_use, Ordering::Relaxed);
        }
        let n_shards = self.shared.queue.shards();
        let first = self.next_shard;
        self.next_shard = (first + 1) % n_shards;
        let mut n_taken = 0;
        let mut bytes_taken = 0;
        for i in 0..n_shards {
            if n_taken == max {
                break;
            }
            let (n, bytes) = self.take_from((first + i) % n_shards, max - n_taken);
            n_taken += n;
            bytes_taken += bytes;
        }
        (self.shared.counters.high_water).fetch_max(bytes_taken, Ordering::Relaxed);
        self.behind = n_taken == max;
        n_taken
    }

    /// Pops up to `max` records of one shard into the ordered buffer; returns how many
    /// and the ring bytes they took.
    fn take_from(&mut self, shard: usize, max: usize) -> (usize, u64) {
        let shared = Arc::clone(&self.shared);
        let queue = &shared.queue;
        let counters = &shared.counters;
        let now = Instant::now();
        let mark = queue.consumed_mark(shard);
        let mut n_taken = 0;
        let shapes = &mut self.shapes;
        while n_taken < max {
            let mut taken = self.spare.pop().unwrap_or_else(Taken::new);
            let popped = queue.pop_with(shard, &mut self.scratch, |popped| match popped {
                Popped::Inline(bytes) => taken.fill_from_slot(bytes, shapes),
                Popped::Boxed(record) => {
                    counters.slow_path.fetch_add(1, Ordering::Relaxed);
                    taken.fill_from_record(&record)
                }
            });
            let Some(filled) = popped else {
                self.spare.push(taken);
                break;
            };
            n_taken += 1;
            match filled {
                Ok(()) => self.reorder.push(taken, now, &mut self.ordered),
                Err(why) => {
                    debug_assert!(false, "{why}");
                    self.spare.push(taken);
                    counters.drop_one(DropReason::Rejected);
                    counters.settled.fetch_add(1, Ordering::Relaxed);
                    counters.set_error(why);
                }
            }
        }
        let bytes = queue.bytes_consumed_since(shard, mark);
        queue.release(shard);
        counters.taken.fetch_add(n_taken as u64, Ordering::Relaxed);
        (n_taken, bytes)
    }

    /// Appends the ordered records, settling each as written or dropped, and retries the
    /// finishes held for their run's start after them.
    fn write_ordered(&mut self, early: Early) {
        if self.ordered.is_empty() && self.early_finishes.is_empty() {
            return;
        }
        // Held finishes go last: this batch may hold their starts.
        let n_new = self.ordered.len();
        let mut first_refused: Vec<Instant> = Vec::with_capacity(self.early_finishes.len());
        for (taken, since) in self.early_finishes.drain(..) {
            self.ordered.push(taken);
            first_refused.push(since);
        }
        let shared = Arc::clone(&self.shared);
        let counters = &shared.counters;
        let encoded: Vec<EncodedRecord<'_>> = (self.ordered.iter())
            .map(|taken| EncodedRecord {
                kind: taken.kind,
                payload: taken.payload.as_slice(),
                event: Some((taken.run_id.as_str(), taken.sequence)),
                call: taken.call.as_ref(),
            })
            .collect();
        let results = shared.log.append_encoded(&encoded);
        drop(encoded);
        debug_assert_eq!(results.len(), self.ordered.len());
        let now = Timestamp::now();
        let instant = Instant::now();
        let window = shared.config.reorder_window;
        let mut n_written = 0u64;
        let mut n_settled = 0u64;
        let mut last_error = None;
        for (i, (taken, result)) in self.ordered.drain(..).zip(results).enumerate() {
            let since = i.checked_sub(n_new).map_or(instant, |j| first_refused[j]);
            match result {
                Ok(_) => n_written += 1,
                Err(Error::NotFound { .. })
                    if taken.kind == RecordKind::RunFinished
                        && early == Early::Hold
                        && instant.duration_since(since) < window
                        && self.early_finishes.len() < limits::INGEST_REORDER_HELD_MAX =>
                {
                    self.early_finishes.push((taken, since));
                    continue;
                }
                Err(error) => {
                    let reason = match &error {
                        Error::RecordTooLarge { .. } => DropReason::Oversized,
                        Error::Io { .. } | Error::Poisoned { .. } | Error::Closed => {
                            self.poisoned = true;
                            DropReason::IoFailure
                        }
                        _ => DropReason::Rejected,
                    };
                    counters.drop_n(reason, 1, now);
                    last_error = Some(error.to_string());
                }
            }
            n_settled += 1;
            if self.spare.len() < SPARE_MAX && taken.payload.capacity() <= SPARE_PAYLOAD_BYTES_MAX {
                self.spare.push(taken);
            }
        }
        counters.written.fetch_add(n_written, Ordering::Relaxed);
        counters.settled.fetch_add(n_settled, Ordering::Release);
        if let Some(error) = last_error {
            counters.set_error(error);
        }
        if n_written > 0 && self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
    }

    /// Writes a `DropReport` for every reason whose count grew since the last report.
    fn report_drops(&mut self) {
        if self.poisoned {
            // The log acknowledges nothing more: the counts stay in `metrics()` and the
            // close report.
            return;
        }
        let spans = self.shared.counters.take_spans(&mut self.reported);
        if spans.is_empty() {
            return;
        }
        let reports: Vec<Record> = spans
            .iter()
            .map(|span: &DropSpan| {
                Record::DropReport(DropReport {
                    reason: span.reason,
                    n_dropped: span.n_dropped,
                    first_at: span.first_at,
                    last_at: span.last_at,
                })
            })
            .collect();
        let counters = &self.shared.counters;
        for result in self.shared.log.append_each(&reports) {
            match result {
                Ok(_) => {
                    counters
                        .drop_reports_written
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    self.poisoned = true;
                    counters.set_error(error.to_string());
                }
            }
        }
        if self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
    }

    /// Syncs the log; remembers a failure.
    fn sync(&mut self) -> Result<(), String> {
        self.unsynced_since = None;
        match self.shared.log.flush() {
            Ok(()) => Ok(()),
            Err(error) => {
                self.poisoned = true;
                let why = error.to_string();
                self.shared.counters.set_error(why.clone());
                Err(why)
            }
        }
    }

    /// Completes flush tickets taken since the last one served.
    fn serve_flush(&mut self) {
        let requested = self.shared.flush_requested.load(Ordering::Acquire);
        if requested <= self.flushed_ticket {
            return;
        }
        // Everything accepted before the ticket was taken is in the queue now (or was
        // taken already): in each shard, at most its `len` records, the oldest ones.
        for shard in 0..self.shared.queue.shards() {
            let mut remaining = self.shared.queue.shard_len(shard);
            while remaining > 0 {
                let (n, _) = self.take_from(shard, remaining.min(limits::INGEST_BATCH_MAX));
                self.write_ordered(Early::Hold);
                if n == 0 {
                    break;
                }
                remaining -= n;
            }
        }
        self.reorder.release_all(&mut self.ordered);
        self.write_ordered(Early::Refuse);
        self.report_drops();
        let result = self.sync();
        self.flushed_ticket = requested;
        let signal = &self.shared.flush;
        let mut state = signal.lock();
        state.completed = state.completed.max(requested);
        state.error = result.err();
        signal.changed.notify_all();
    }

    /// Under group commit, syncs data older than the interval even when idle.
    fn group_commit_timer(&mut self) {
        let Durability::GroupCommit { interval_ms } = self.shared.durability else {
            self.unsynced_since = None;
            return;
        };
        if let Some(since) = self.unsynced_since {
            if since.elapsed() >= Duration::from_millis(interval_ms) {
                let _ = self.sync();
            }
        }
    }

    /// Drains everything left, releases held events, reports drops and syncs.
    pub fn drain_and_sync(&mut self) -> Result<(), String> {
        while self.take_batch(limits::INGEST_BATCH_MAX) > 0 {
            self.write_ordered(Early::Hold);
        }
        self.reorder.release_all(&mut self.ordered);
        self.write_ordered(Early::Refuse);
        self.report_drops();
        self.sync()
    }

    fn finish(&mut self) {
        let result = self.drain_and_sync();
        let signal = &self.shared.flush;
        let mut state = signal.lock();
        state.completed = self.shared.flush_requested.load(Ordering::Acquire);
        state.error = result.err();
        state.stopped = true;
        signal.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_park_is_the_configured_one_unless_group_commit_is_sooner() {
        assert_eq!(park_max(MS, Durability::None), MS);
        assert_eq!(park_max(MS, Durability::EveryBatch), MS);
        let every_2ms = Durability::GroupCommit { interval_ms: 2 };
        assert_eq!(park_max(MS, every_2ms), MS / 5);
        let every_100ms = Durability::GroupCommit { interval_ms: 100 };
        assert_eq!(park_max(MS, every_100ms), MS);
        let every_0ms = Durability::GroupCommit { interval_ms: 0 };
        assert_eq!(park_max(MS, every_0ms), PARK_MIN);
        assert_eq!(park_max(Duration::ZERO, Durability::None), PARK_MIN);
    }

    #[test]
    fn records_waiting_for_their_window_shorten_the_park() {
        let window = 5 * MS;
        assert_eq!(while_waiting(MS, false, window), MS);
        assert_eq!(while_waiting(MS, true, window), MS / 2);
        assert_eq!(while_waiting(MS / 4, true, window), MS / 4);
        assert_eq!(while_waiting(MS, true, Duration::ZERO), PARK_MIN);
    }
}
