//! Lock-free ingest: the record path a dispatch server calls on its hot path.
//!
//! Where it sits: in front of [`AuditLog`]. Producers call `Recorder::record_*` from any
//! thread; those calls work out the length of the borrowed fields' encoding (layout in
//! `slot.rs`), claim that many bytes in a preallocated ring (`ring.rs`; one per producer
//! shard, wrapped by `queue.rs`) and encode straight into them, then return. One
//! committer thread (`committer.rs`) drains the rings in batches, writes each record's
//! msgpack payload straight from its bytes (`transcode.rs`; run starts and finishes are
//! decoded into records and encoded), restores each run's sequence order
//! (`reorder.rs`), appends the payloads with the crate-private
//! `AuditLog::append_encoded` (the same checks and index updates as
//! `AuditLog::append_each`), applies group commit, and writes in-band drop reports
//! (`metrics.rs`). This is the only module of the crate that owns a thread.
//!
//! ```text
//! record_*() ─length─▶ claim (one CAS) ─encode─▶ publish (release store) ─▶ committer: copy out ─▶ transcode ─▶ reorder ─▶ append_encoded ─▶ sync
//!   (any thread, no alloc, no syscall, no lock)                     (one thread, batches ≤ 1024, parks 50–200 µs)
//! ```
//!
//! The design follows the loggers that reach tens of nanoseconds per call (NanoLog,
//! fmtlog, Quill, the LMAX Disruptor, Aeron's many-to-one ring buffer): the producer
//! only copies raw argument bytes into preallocated memory and publishes with a release
//! store; formatting (here: msgpack encoding) happens on the consumer side; the
//! consumer polls instead of being signalled, so producers never make a syscall. The
//! ring is Aeron's many-to-one design in safe Rust: its words are atomics, and
//! `tests/loom_ring.rs` model-checks the protocol.
//!
//! # Invariants
//! - Under [`Backpressure::Drop`] (the default) a `record_*` call never blocks, never
//!   takes a lock and makes no syscall. For an event whose inline encoding is at most
//!   `inline_bytes` of fields plus `INGEST_SLOT_OVERHEAD_BYTES` of ids and names it
//!   also never allocates; larger events, and fields holding nested JSON, take the slow
//!   path: the producer builds an owned `Record` (allocating) and sends it through the
//!   same ring (as a marker naming it) under a separate byte budget. Reading the clock
//!   happens only when a drop is counted.
//! - Every call returns [`Recorded::Accepted`] or [`Recorded::Dropped`] with the reason,
//!   and every drop is counted by reason ([`Recorder::metrics`]) and, while the log can
//!   still be written, reported in the log by a `Record::DropReport`.
//! - An accepted record is written unless the log refuses it (counted as oversized,
//!   rejected or I/O failure). `close`, and dropping the last handle, write everything
//!   accepted before they return.
//! - [`Recorder::flush`] returns once every record accepted before it is durable.
//!   [`Recorder::flush_within`] waits for the same, but never longer than its bound.
//! - Events of one run are stored in sequence order, provided each reaches the committer
//!   within `reorder_window` (default 5 ms) of the one after it (see `reorder.rs`).
//! - A thread's records are written in the order its calls completed. Records of
//!   different threads may be written in either order (each thread pushes to its own
//!   shard), except that a run's finish is never refused for arriving before its start
//!   (see `committer.rs`).

mod committer;
mod copy;
mod metrics;
mod queue;
mod reorder;
mod ring;
#[cfg(test)]
mod ring_tests;
mod shape;
mod slot;
mod transcode;

/// The atomics `ring.rs` is written against; `tests/loom_ring.rs` includes that file
/// with loom's instead, to model-check it.
mod sync {
    pub(crate) use crate::hint::prefetch;
    pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

    /// The first `len` bytes of `words`, to write in place.
    ///
    /// # Safety
    /// Nothing else may read or write `words` while the slice lives, and `len` must be
    /// at most `8 * words.len()`.
    #[inline(always)]
    #[allow(
        clippy::mut_from_ref,
        reason = "the words are interior-mutable; exclusive use is the caller's promise"
    )]
    pub(crate) unsafe fn bytes_mut(words: &[AtomicU64], len: usize) -> &mut [u8] {
        debug_assert!(len <= 8 * words.len());
        // SAFETY: an `AtomicU64` has the size and alignment of a `u64` and holds it in
        // an `UnsafeCell`, so its bytes may be written through a pointer made from a
        // shared reference; the pointer is the whole slice's, and `len` stays inside
        // it. The caller promises that no other access overlaps the slice's life.
        unsafe { std::slice::from_raw_parts_mut(words.as_ptr().cast::<u8>().cast_mut(), len) }
    }

    /// Asks the OS to back the whole 2 MiB pages inside `len` bytes from `addr` with huge
    /// pages, so a ring of megabytes takes a few TLB entries instead of thousands.
    pub(crate) fn advise_huge_pages(addr: usize, len: usize) {
        #[cfg(target_os = "linux")]
        {
            const HUGE: usize = 2 << 20;
            let start = addr.next_multiple_of(HUGE);
            let end = (addr + len) / HUGE * HUGE;
            if start < end {
                // SAFETY: advice only; it neither reads nor writes the range, which
                // lies inside an allocation the caller owns. A refusal changes nothing.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE)
                };
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (addr, len);
    }
}

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_utils::{Backoff, CachePadded};

use crate::codec::Record;
use crate::codec::RunFinished;
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::follow::{Follow, Subscription};
use crate::limits;
use crate::log::AuditLog;
use crate::model::{CallEvent, DropReason, Payload, Run, RunEvent, RunStats, Timestamp, Value};

use committer::{Committer, FlushSignal};
use metrics::Counters;
pub use metrics::{DropCounts, Metrics};
use queue::{IngestQueue, Push};
pub use shape::EventShape;
use shape::ShapeTable;
use slot::Inline;

/// What a full queue does to a `record_*` call.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Backpressure {
    /// Drop the event and count it (`DropReason::QueueFull`): never blocks.
    #[default]
    Drop,
    /// Wait (spin, yield, then sleep in short steps) until there is room.
    Block,
    /// Wait up to the given time, then drop.
    BlockTimeout(Duration),
}

/// How a recorder buffers and commits.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// Bytes of each preallocated ring inline records are written to (the bounded
    /// buffer), rounded up to a power of two. It must hold two of the largest inline
    /// records. There is one ring per shard, so the buffers take `shards` times this.
    pub queue_bytes: usize,
    /// Producer shards: rings that producer threads are dealt to, round-robin, so that
    /// producers on different cores do not contend for one ring. `0` (the default)
    /// makes one per CPU, at most [`limits::INGEST_SHARDS_AUTO_MAX`].
    pub shards: usize,
    /// Bytes of fields an event may carry and still be recorded without allocating.
    pub inline_bytes: usize,
    /// Bytes the slow path may hold at once.
    pub slow_path_bytes: usize,
    /// What a full queue does.
    pub backpressure: Backpressure,
    /// How long an event waits for an earlier sequence of its run.
    pub reorder_window: Duration,
    /// The longest the committer parks when idle (default 1 ms): about the longest an
    /// accepted record waits in the queue before the committer takes it. Shorter costs
    /// the committer more CPU while recording is idle or slow; under group commit it
    /// parks at most a tenth of the interval, and while events wait for an earlier
    /// sequence at most a tenth of `reorder_window`.
    pub idle_park: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            queue_bytes: limits::INGEST_QUEUE_BYTES_DEFAULT,
            shards: 0,
            inline_bytes: limits::INGEST_INLINE_BYTES_DEFAULT,
            slow_path_bytes: limits::INGEST_SLOW_PATH_BYTES_DEFAULT,
            backpressure: Backpressure::Drop,
            reorder_window: Duration::from_millis(limits::INGEST_REORDER_WINDOW_MS_DEFAULT),
            idle_park: Duration::from_micros(limits::INGEST_IDLE_PARK_US_DEFAULT),
        }
    }
}

impl IngestConfig {
    /// Sets the buffer size in bytes.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Sets the number of producer shards (`0`: one per CPU, up to a few).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// The number of shards a recorder makes: `shards`, or for `0` one per CPU up to
    /// [`limits::INGEST_SHARDS_AUTO_MAX`].
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(limits::INGEST_SHARDS_AUTO_MAX),
            n => n,
        }
    }

    /// Sets the inline field size.
    pub fn inline_bytes(mut self, bytes: usize) -> Self {
        self.inline_bytes = bytes;
        self
    }

    /// Sets the slow-path budget.
    pub fn slow_path_bytes(mut self, bytes: usize) -> Self {
        self.slow_path_bytes = bytes;
        self
    }

    /// Sets what a full queue does.
    pub fn backpressure(mut self, backpressure: Backpressure) -> Self {
        self.backpressure = backpressure;
        self
    }

    /// Sets the reorder window.
    pub fn reorder_window(mut self, window: Duration) -> Self {
        self.reorder_window = window;
        self
    }

    /// Sets the longest the committer parks when idle.
    pub fn idle_park(mut self, park: Duration) -> Self {
        self.idle_park = park;
        self
    }

    /// The most bytes one inline record may take: its fields, ids and names.
    pub fn slot_bytes(&self) -> usize {
        self.inline_bytes + limits::INGEST_SLOT_OVERHEAD_BYTES
    }

    /// Checks every value against the bounds in `limits`.
    pub fn validate(&self) -> Result<()> {
        let invalid = |why: String| Err(Error::InvalidConfig(why));
        if !(1..=limits::INGEST_INLINE_BYTES_MAX).contains(&self.inline_bytes) {
            return invalid(format!(
                "ingest inline_bytes {} is outside 1..={}",
                self.inline_bytes,
                limits::INGEST_INLINE_BYTES_MAX
            ));
        }
        if !(limits::INGEST_QUEUE_BYTES_MIN..=limits::INGEST_QUEUE_BYTES_MAX)
            .contains(&self.queue_bytes)
            || self.queue_bytes < 2 * (self.slot_bytes() + 8)
        {
            return invalid(format!(
                "ingest queue_bytes {} is outside {}..={} or holds fewer than two inline \
                 records of {} bytes",
                self.queue_bytes,
                limits::INGEST_QUEUE_BYTES_MIN,
                limits::INGEST_QUEUE_BYTES_MAX,
                self.slot_bytes()
            ));
        }
        if self.shards > limits::INGEST_SHARDS_MAX {
            return invalid(format!(
                "ingest shards {} is over the limit of {}",
                self.shards,
                limits::INGEST_SHARDS_MAX
            ));
        }
        if self.reorder_window > Duration::from_secs(60)
            || self.idle_park > Duration::from_micros(limits::INGEST_IDLE_PARK_US_MAX)
        {
            return invalid(format!(
                "ingest reorder_window {:?} (max 60 s) or idle_park {:?} (max 1 s) too long",
                self.reorder_window, self.idle_park
            ));
        }
        Ok(())
    }
}

/// What became of one `record_*` call.
#[must_use = "a dropped record is counted, but the caller may want to know"]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Queued; it will be written unless the log refuses it.
    Accepted,
    /// Not queued, and counted under this reason.
    Dropped(DropReason),
}

impl Recorded {
    /// Whether the record was queued.
    pub fn is_accepted(self) -> bool {
        self == Recorded::Accepted
    }
}

/// A field value borrowed from the caller.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum FieldValue<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'a str),
    /// Any JSON: scalars are recorded inline, arrays and objects take the slow path.
    Json(&'a Value),
}

impl FieldValue<'_> {
    /// The owned JSON value.
    pub fn to_value(self) -> Value {
        match self {
            FieldValue::Null => Value::Null,
            FieldValue::Bool(v) => Value::Bool(v),
            FieldValue::I64(v) => Value::from(v),
            FieldValue::U64(v) => Value::from(v),
            FieldValue::F64(v) => Value::from(v),
            FieldValue::Str(v) => Value::from(v),
            FieldValue::Json(v) => v.clone(),
        }
    }
}

fn to_payload<'a>(fields: impl IntoIterator<Item = (&'a str, FieldValue<'a>)>) -> Payload {
    (fields.into_iter())
        .map(|(k, v)| (k.to_owned(), v.to_value()))
        .collect()
}

/// A run event borrowed from the caller (SPEC §2.3).
#[derive(Copy, Clone, Debug)]
pub struct EventRef<'a> {
    pub run_id: &'a str,
    /// Unique within the run; the first is 1.
    pub sequence: u64,
    pub event_type: &'a str,
    pub fields: &'a [(&'a str, FieldValue<'a>)],
    pub created_at: Timestamp,
}

impl EventRef<'_> {
    /// The owned event this view describes.
    pub fn to_owned_event(&self) -> RunEvent {
        RunEvent {
            run_id: self.run_id.to_owned(),
            sequence: self.sequence,
            event_type: self.event_type.to_owned(),
            payload: to_payload(self.fields.iter().copied()),
            created_at: self.created_at,
        }
    }
}

/// A run event of a registered shape, borrowed from the caller: its event type and
/// keys are the shape's, its values in the order of the shape's keys (see
/// [`Recorder::record_shaped`]).
#[derive(Copy, Clone, Debug)]
pub struct ShapedEventRef<'a> {
    pub run_id: &'a str,
    /// Unique within the run; the first is 1.
    pub sequence: u64,
    pub values: &'a [FieldValue<'a>],
    pub created_at: Timestamp,
}

impl ShapedEventRef<'_> {
    /// The owned event this view describes, given its shape.
    pub fn to_owned_event(&self, shape: &EventShape) -> RunEvent {
        RunEvent {
            run_id: self.run_id.to_owned(),
            sequence: self.sequence,
            event_type: shape.event_type().to_owned(),
            payload: to_payload(
                (shape.keys().iter().map(String::as_str)).zip(self.values.iter().copied()),
            ),
            created_at: self.created_at,
        }
    }
}

/// A run start borrowed from the caller (SPEC §2.1, the fields known at start).
#[derive(Copy, Clone, Debug)]
pub struct RunRef<'a> {
    pub id: &'a str,
    pub skill_id: &'a str,
    pub caller_id: &'a str,
    pub channel_id: &'a str,
    /// Empty for a top-level run.
    pub parent_run_id: &'a str,
    pub inputs: &'a [(&'a str, FieldValue<'a>)],
    pub started_at: Timestamp,
}

impl RunRef<'_> {
    /// The owned, running run this view describes.
    pub fn to_owned_run(&self) -> Run {
        Run {
            id: self.id.to_owned(),
            skill_id: self.skill_id.to_owned(),
            caller_id: self.caller_id.to_owned(),
            channel_id: self.channel_id.to_owned(),
            parent_run_id: self.parent_run_id.to_owned(),
            inputs: to_payload(self.inputs.iter().copied()),
            started_at: self.started_at,
            ..Run::default()
        }
    }
}

/// What `close` did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// Records the log acknowledged over the recorder's life.
    pub written: u64,
    /// Records not written, by reason.
    pub dropped: DropCounts,
    /// Records accepted but not settled (written or dropped) when close returned:
    /// non-zero only if the deadline passed first; they are written by the committer
    /// in the background and at the latest when the last handle is dropped.
    pub unflushed: u64,
    /// Whether the committer drained, synced and stopped before the deadline.
    pub completed: bool,
    /// The last error the log returned, if any.
    pub error: Option<String>,
}

/// State shared by the handles and the committer.
#[derive(Debug)]
struct Shared {
    log: Arc<AuditLog>,
    durability: Durability,
    config: IngestConfig,
    queue: IngestQueue,
    counters: Counters,
    shapes: Arc<ShapeTable>,
    /// Set once by `close`; producers check it before queueing.
    closed: CachePadded<AtomicBool>,
    /// Flush tickets taken.
    flush_requested: CachePadded<AtomicU64>,
    flush: FlushSignal,
}

/// The one owner of the committer thread; dropping it closes the recorder.
#[derive(Debug)]
struct Owner {
    shared: Arc<Shared>,
    committer_thread: Thread,
    join: Mutex<Option<JoinHandle<Committer>>>,
    /// The committer's state once its thread has returned, for stragglers.
    stopped: Mutex<Option<Committer>>,
}

/// The recording handle: `Send + Sync`, cheap to clone (an `Arc`).
///
/// Dropping the last clone closes the recorder and writes everything accepted.
#[derive(Clone, Debug)]
pub struct Recorder {
    owner: Arc<Owner>,
    /// The owner's, held here too: a record call reaches the queue one load sooner.
    shared: Arc<Shared>,
}

// A recorder is shared across dispatch threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Recorder>();
};

impl Recorder {
    /// Starts the committer thread for `log`.
    pub fn start(log: Arc<AuditLog>, config: IngestConfig) -> Result<Recorder> {
        config.validate()?;
        let queue = IngestQueue::new(
            config.shard_count(),
            config.queue_bytes,
            config.slot_bytes(),
            config.slow_path_bytes,
        );
        let shared = Arc::new(Shared {
            durability: log.durability(),
            log,
            config,
            queue,
            counters: Counters::default(),
            shapes: Arc::default(),
            closed: CachePadded::new(AtomicBool::new(false)),
            flush_requested: CachePadded::new(AtomicU64::new(0)),
            flush: FlushSignal::default(),
        });
        let committer = Committer::new(Arc::clone(&shared));
        let join = std::thread::Builder::new()
            .name("auditlog-committer".into())
            .spawn(move || {
                let _guard = PanicGuard(Arc::clone(committer.shared()));
                committer.run()
            })
            .map_err(|source| Error::Io {
                op: "spawn the committer thread for",
                path: "auditlog ingest".into(),
                source,
            })?;
        Ok(Recorder {
            shared: Arc::clone(&shared),
            owner: Arc::new(Owner {
                shared,
                committer_thread: join.thread().clone(),
                join: Mutex::new(Some(join)),
                stopped: Mutex::new(None),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Records one run event. Never blocks under `Backpressure::Drop`.
    pub fn record_event(&self, event: &EventRef<'_>) -> Recorded {
        if !valid_id(event.run_id) || event.sequence == 0 {
            return self.dropped(DropReason::Rejected);
        }
        self.record_with(Inline::Event(event), || {
            Record::EventAppended(event.to_owned_event())
        })
    }

    /// Registers an event shape: an event type and the keys of its payload, so that
    /// [`Recorder::record_shaped`] copies only an event's values, not its type and keys.
    /// Register a shape once per kind of event (as a log statement is written once),
    /// not per event; registering the same type and keys again returns the same shape.
    ///
    /// Errors: keys repeated, more than [`limits::INGEST_SHAPE_FIELDS_MAX`] keys, type
    /// and keys over [`limits::INGEST_SHAPE_BYTES_MAX`] bytes, or a recorder that
    /// already has [`limits::INGEST_SHAPES_MAX`] shapes (`Error::InvalidInput`).
    pub fn shape(&self, event_type: &str, keys: &[&str]) -> Result<EventShape> {
        self.shared().shapes.register(event_type, keys)
    }

    /// Records one run event of `shape`, its values in the order of the shape's keys.
    /// The log gets the same record [`Recorder::record_event`] writes for the same
    /// event. Never blocks under `Backpressure::Drop`.
    ///
    /// Rejected (counted, nothing written): a run id that is empty or too long, a
    /// sequence of 0, a value count other than the shape's key count, or a shape
    /// registered with another recorder.
    pub fn record_shaped(&self, shape: &EventShape, event: &ShapedEventRef<'_>) -> Recorded {
        if !valid_id(event.run_id)
            || event.sequence == 0
            || event.values.len() != shape.keys().len()
            || !shape.belongs_to(&self.shared().shapes)
        {
            return self.dropped(DropReason::Rejected);
        }
        let push = |queue: &IngestQueue| queue.try_push_shaped(shape.id(), event);
        self.record_pushed(push, || Record::EventAppended(event.to_owned_event(shape)))
    }

    /// Records a run start.
    pub fn record_run_started(&self, run: &RunRef<'_>) -> Recorded {
        if !valid_id(run.id) {
            return self.dropped(DropReason::Rejected);
        }
        self.record_with(Inline::RunStarted(run), || {
            Record::RunStarted(run.to_owned_run())
        })
    }

    /// Records a run's terminal state.
    pub fn record_run_finished(
        &self,
        run_id: &str,
        stats: &RunStats,
        finished_at: Timestamp,
    ) -> Recorded {
        if !valid_id(run_id) || !stats.status.is_terminal() {
            return self.dropped(DropReason::Rejected);
        }
        let view = Inline::RunFinished {
            run_id,
            stats,
            finished_at,
        };
        self.record_with(view, || {
            Record::RunFinished(RunFinished {
                run_id: run_id.to_owned(),
                stats: stats.clone(),
                finished_at,
            })
        })
    }

    /// Records a dispatch call event.
    pub fn record_call(&self, call: &CallEvent) -> Recorded {
        if !valid_id(&call.call_id) {
            return self.dropped(DropReason::Rejected);
        }
        self.record_with(Inline::Call(call), || Record::CallRecorded(call.clone()))
    }

    /// Records an owned record of any kind: inline when it has an inline form and fits,
    /// else through the slow path.
    pub fn record(&self, record: &Record) -> Recorded {
        match record {
            Record::CallRecorded(call) => self.record_call(call),
            Record::RunStarted(run) if valid_id(&run.id) => {
                self.record_with(Inline::Run(run), || record.clone())
            }
            Record::RunFinished(finish) => {
                self.record_run_finished(&finish.run_id, &finish.stats, finish.finished_at)
            }
            Record::EventAppended(event) => {
                if !valid_id(&event.run_id) || event.sequence == 0 {
                    return self.dropped(DropReason::Rejected);
                }
                self.record_with(Inline::RunEvent(event), || record.clone())
            }
            Record::RunStarted(_) => self.dropped(DropReason::Rejected),
            Record::Purge(_) | Record::DropReport(_) => self.record_slow(|| record.clone()),
        }
    }

    /// Counts and returns a drop.
    fn dropped(&self, reason: DropReason) -> Recorded {
        self.shared().counters.drop_one(reason);
        Recorded::Dropped(reason)
    }

    /// Records `view`, inline or through the slow path.
    #[inline]
    fn record_with(&self, view: Inline<'_>, owned: impl FnOnce() -> Record) -> Recorded {
        self.record_pushed(|queue| queue.try_push(&view), owned)
    }

    /// The hot path: `push` measures, claims ring room, encodes and publishes; else the
    /// slow path.
    #[inline]
    fn record_pushed(
        &self,
        push: impl Fn(&IngestQueue) -> Push,
        owned: impl FnOnce() -> Record,
    ) -> Recorded {
        let shared = self.shared();
        if shared.closed.load(Ordering::Acquire) {
            return self.dropped(DropReason::AfterShutdown);
        }
        match push(&shared.queue) {
            Push::Accepted => Recorded::Accepted,
            Push::NotInline => self.record_slow(owned),
            Push::Full => {
                let retry = || (push(&shared.queue) == Push::Accepted).then_some(());
                match self.wait_for(retry) {
                    Ok(()) => Recorded::Accepted,
                    Err(reason) => self.dropped(reason),
                }
            }
        }
    }

    /// The slow path: an owned record, charged by its encoded size.
    #[cold]
    fn record_slow(&self, owned: impl FnOnce() -> Record) -> Recorded {
        let shared = self.shared();
        if shared.closed.load(Ordering::Acquire) {
            return self.dropped(DropReason::AfterShutdown);
        }
        let record = owned();
        let mut encoded = Vec::new();
        if record.encode_payload(&mut encoded).is_err() {
            return self.dropped(DropReason::Rejected);
        }
        let bytes = encoded.len();
        let mut record = Some(Box::new(record));
        if !shared.queue.try_push_boxed(&mut record, bytes) {
            if let Err(reason) = self.wait_for(|| {
                shared
                    .queue
                    .try_push_boxed(&mut record, bytes)
                    .then_some(())
            }) {
                return self.dropped(reason);
            }
        }
        Recorded::Accepted
    }

    /// Retries `attempt` as the backpressure policy allows.
    #[cold]
    fn wait_for<T>(&self, mut attempt: impl FnMut() -> Option<T>) -> Result<T, DropReason> {
        let shared = self.shared();
        let deadline = match shared.config.backpressure {
            Backpressure::Drop => return Err(DropReason::QueueFull),
            Backpressure::Block => None,
            Backpressure::BlockTimeout(timeout) => Some(Instant::now() + timeout),
        };
        let backoff = Backoff::new();
        loop {
            if let Some(value) = attempt() {
                return Ok(value);
            }
            if shared.closed.load(Ordering::Acquire) {
                return Err(DropReason::AfterShutdown);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(DropReason::QueueFull);
            }
            if backoff.is_completed() {
                std::thread::sleep(Duration::from_micros(50));
            } else {
                backoff.snooze();
            }
        }
    }

    /// Returns once every record accepted before the call is durable (or has been
    /// dropped and counted). Blocks; never call it where a record call would do.
    pub fn flush(&self) -> Result<()> {
        let shared = self.shared();
        let ticket = shared.flush_requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.owner.committer_thread.unpark();
        let mut state = shared.flush.lock();
        while state.completed < ticket && !state.stopped {
            state = shared
                .flush
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        match &state.error {
            Some(reason) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// [`Recorder::flush`] bounded in time: returns `Ok(true)` once every record accepted
    /// before the call is durable (or dropped and counted), `Ok(false)` if `wait`
    /// passed first. The records stay queued either way; the committer writes them.
    pub fn flush_within(&self, wait: Duration) -> Result<bool> {
        let shared = self.shared();
        let until = Instant::now() + wait;
        let ticket = shared.flush_requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.owner.committer_thread.unpark();
        let mut state = shared.flush.lock();
        while state.completed < ticket && !state.stopped {
            let left = match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(false),
            };
            state = shared
                .flush
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match &state.error {
            Some(reason) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(state.completed >= ticket),
        }
    }

    /// [`Recorder::flush`] for async callers: waits on a blocking-pool thread.
    #[cfg(feature = "tokio")]
    pub async fn flush_async(&self) -> Result<()> {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.flush()).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(Error::Closed),
        }
    }

    /// A snapshot of the counters. Exact when the recorder is idle; while records flow,
    /// `enqueued` may be off by the few being handed over at that instant.
    pub fn metrics(&self) -> Metrics {
        let shared = self.shared();
        let counters = &shared.counters;
        let queue_len = shared.queue.len() as u64;
        let stats = shared.log.journal_stats().ok();
        Metrics {
            enqueued: counters.taken.load(Ordering::Acquire) + queue_len,
            slow_path: counters.slow_path.load(Ordering::Relaxed),
            written: counters.written.load(Ordering::Relaxed),
            dropped: counters.dropped(),
            drop_reports_written: counters.drop_reports_written.load(Ordering::Relaxed),
            bytes_appended: stats.as_ref().map_or(0, |s| s.bytes_appended),
            segments: stats.as_ref().map_or(0, |s| s.n_segments as u64),
            fsyncs: stats.as_ref().map_or(0, |s| s.n_fsyncs),
            queue_len,
            queue_bytes: shared.queue.len_bytes(),
            queue_capacity_bytes: shared.queue.capacity_bytes() as u64,
            queue_high_water_bytes: counters.high_water.load(Ordering::Relaxed),
            last_error: counters
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Subscribes to the log's new records; see [`AuditLog::subscribe`].
    pub fn subscribe(&self, follow: Follow, capacity: usize) -> Result<Subscription> {
        self.shared().log.subscribe(follow, capacity)
    }

    /// Stops accepting (later calls drop with `AfterShutdown`), writes and syncs
    /// everything accepted, and stops the committer, waiting at most `deadline`.
    pub fn close(&self, deadline: Duration) -> CloseReport {
        self.owner.close(Some(deadline))
    }
}

impl Owner {
    fn close(&self, deadline: Option<Duration>) -> CloseReport {
        let shared = &self.shared;
        shared.closed.store(true, Ordering::Release);
        self.committer_thread.unpark();
        let until = deadline.map(|d| Instant::now() + d);
        let mut completed = {
            let mut state = shared.flush.lock();
            while !state.stopped {
                let wait = match until {
                    None => Duration::from_millis(100),
                    Some(until) => match until.checked_duration_since(Instant::now()) {
                        Some(left) if !left.is_zero() => left,
                        _ => break,
                    },
                };
                state = shared
                    .flush
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            state.stopped
        };
        if completed {
            let join = self.join.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(join) = join {
                match join.join() {
                    Ok(committer) => {
                        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(committer)
                    }
                    Err(_) => {
                        shared
                            .counters
                            .set_error("the committer thread panicked".into());
                        completed = false;
                    }
                }
            }
            // A producer that saw `closed` unset may have queued after the committer's
            // last look: write those too.
            // Drops counted after the committer stopped (after shutdown) are reported by
            // this pass too.
            if let Some(committer) = self
                .stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
            {
                let _ = committer.drain_and_sync();
            }
        }
        let counters = &shared.counters;
        let taken = counters.taken.load(Ordering::Acquire) + shared.queue.len() as u64;
        let settled = counters.settled.load(Ordering::Acquire);
        CloseReport {
            written: counters.written.load(Ordering::Relaxed),
            dropped: counters.dropped(),
            unflushed: taken.saturating_sub(settled),
            completed,
            error: counters
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // No handle is left, so no producer can queue anything: this pass writes every
        // accepted record and reports every counted drop, however late.
        let _ = self.close(None);
    }
}

/// Marks the committer stopped if its thread unwinds, so `flush`, `close` and drop
/// report the failure instead of waiting for a thread that is gone.
struct PanicGuard(Arc<Shared>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self.0.flush.lock();
            state.stopped = true;
            state.error = Some("the ingest committer thread panicked".into());
            self.0.flush.changed.notify_all();
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= limits::ID_BYTES_MAX
}
