//! `AuditLog`: the handle a program holds on one store directory.
//!
//! Where it sits: the entry point. It opens the journal (running recovery) and builds
//! the index in the same pass (or loads the index checkpoint, has the journal scan only
//! from the segment holding its coverage on, and replays only the log after it), appends records, applies the durability mode, keeps the index up to date
//! and answers the [`Storage`](crate::Storage) queries (see `query`).
//!
//! # Invariants
//! - `flush()` returns only once everything appended before it is durable.
//! - Under `Durability::EveryBatch` an append returns only once its record is durable.
//! - Under `Durability::GroupCommit`, an append syncs when the oldest unsynced record is
//!   older than the interval. An idle tail is synced by `flush`, `close` or drop; the
//!   ingest committer adds a timer for it.
//! - The index holds exactly the records of the journal: every record is applied right
//!   after it is appended, under the same lock, so a query sees every append that
//!   returned before it.
//! - An index checkpoint covers only durable frames: the journal is synced first.
//! - A checkpoint that covers less than the compaction horizon (the log's end when the
//!   last compaction pass that removed anything took its snapshot) is never used: its
//!   replay could miss records that pass removed (see `compaction`).
//! - A periodic checkpoint is encoded and written from a copy of the index on a thread
//!   of its own, at most one at a time; a checkpoint written in the foreground (an
//!   explicit one, or on close) first waits for it, so two never share the temporary
//!   file, and close never leaves one behind.
//! - Besides that one, only the compaction worker owns a thread here; it is stopped and
//!   joined before the journal is closed.
//! - Live subscriptions (`follow`) receive a batch's records only once the append and
//!   its durability step succeeded, under the same lock, so in LSN order; a refused or
//!   failed record is never published. With no subscription this costs one `is_empty`.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::codec::{CallRef, EncodedRecord, Lsn, Purge, Record, RecordKind};
use crate::compaction::{self, CompactionReport, PassState, Policy, RetentionReport, Worker};
use crate::config::{Config, Durability, RecoveryMode, Retention};
use crate::error::{Error, Result};
use crate::follow::{Follow, Followers, Subscription};
use crate::index::checkpoint::{self, CheckpointUse, Coverage};
use crate::index::{Index, RunSelect};
use crate::model::Timestamp;
use crate::segment::warm::Warmer;
use crate::segment::{self, Journal, JournalOptions, JournalStats, RecoveryReport, ScanFrom};
use crate::vfs::Vfs;

/// An open store.
#[derive(Debug)]
pub struct AuditLog {
    shared: Arc<Shared>,
    report: RecoveryReport,
    checkpoint_use: CheckpointUse,
    /// The background compaction worker, when the config asks for one.
    worker: Mutex<Option<Worker>>,
    /// The thread faulting in the segments found at open, until it is done.
    warmer: Mutex<Option<Warmer>>,
}

/// What the handle and the compaction worker share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    durability: Durability,
    pub(crate) dir: PathBuf,
    pub(crate) vfs: Arc<dyn Vfs>,
    checkpoint_every_records: u64,
    /// The periodic checkpoint being written on a thread of its own, if any.
    checkpoint_in_flight: Mutex<Option<InFlight>>,
    pub(crate) policy: Policy,
    pub(crate) retention: Retention,
    /// Held for a whole compaction pass, so passes never overlap; what a pass leaves
    /// for the next.
    pub(crate) pass: Mutex<PassState>,
    /// Why the last background compaction or retention step failed, if it did.
    pub(crate) compaction_error: Mutex<Option<String>>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) journal: Option<Journal>,
    pub(crate) index: Index,
    /// When the oldest record not yet synced was appended.
    unsynced_since: Option<Instant>,
    /// The coverage a checkpoint taken now would have: the last frame appended.
    last_frame: Option<Coverage>,
    /// Records appended since the last checkpoint.
    n_since_checkpoint: u64,
    /// A periodic checkpoint waits for the log to reach this LSN: the last
    /// checkpoint's coverage plus `CHECKPOINT_LOG_GROWTH` times its size.
    next_checkpoint_at: Lsn,
    /// Why the last periodic checkpoint failed, if it did.
    checkpoint_error: Option<String>,
    /// The LSN of the newest purge tombstone.
    pub(crate) last_purge_lsn: Option<Lsn>,
    /// The compaction horizon: no checkpoint covering less may be used.
    pub(crate) horizon: Lsn,
    /// Live subscriptions, fed after each acknowledged append.
    followers: Followers,
}

impl AuditLog {
    /// Opens (creating if missing) the store described by `config`.
    ///
    /// A valid index checkpoint is loaded and only the log after it is applied; a
    /// missing, damaged or stale one is ignored and the index is rebuilt from the whole
    /// log (see [`AuditLog::checkpoint_use`]).
    pub fn open(config: Config) -> Result<AuditLog> {
        config.validate()?;
        let options = journal_options(&config);
        let mut loaded = checkpoint::load(&*config.vfs, &config.dir);
        // With a checkpoint, the journal verifies only the segment headers below its
        // coverage (their frames are verified whenever read) and scans from the covered
        // LSN on; frames from that LSN on are applied to the
        // checkpoint's index. Without one, every frame is applied to a fresh index.
        let scan_from = match &loaded {
            Ok(Some(ckpt)) if !config.verify_all_at_open => Some(ScanFrom {
                lsn: ckpt.coverage.covered,
                last_frame: ckpt.coverage.last_frame,
            }),
            _ => None,
        };
        let mut n_tail_frames = 0u64;
        let mut fresh = Index::new();
        // Only the last frame's LSN: its coverage (a checksum of its payload) is taken
        // once, after the scan.
        let mut last_lsn = None;
        // Tombstones below a loaded checkpoint's coverage are not visited; compaction
        // only asks whether the newest one is in the active segment, and every frame
        // found at open is below it.
        let mut last_purge_lsn = None;
        let horizon = compaction::read_horizon(&*config.vfs, &config.dir);
        let (mut journal, mut report) = Journal::open(
            &config.dir,
            config.vfs.clone(),
            options,
            scan_from,
            |frame| {
                last_lsn = Some(frame.lsn);
                if frame.kind == RecordKind::Purge {
                    last_purge_lsn = Some(frame.lsn);
                }
                // The index decodes only the fields it needs; a record whose payload
                // cannot be decoded in full surfaces as `Error::Corrupt` when read, and
                // `verify` reports it.
                match &mut loaded {
                    Ok(Some(ckpt)) => {
                        if frame.lsn >= ckpt.coverage.covered {
                            n_tail_frames += 1;
                            ckpt.index.apply_frame(frame.lsn, frame.kind, frame.payload);
                        }
                    }
                    _ => {
                        fresh.apply_frame(frame.lsn, frame.kind, frame.payload);
                    }
                }
                Ok(())
            },
        )?;
        let mut last_frame = last_lsn.map(|lsn| coverage_at(&journal, lsn)).transpose()?;
        let loaded_bytes = loaded
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|c| c.bytes);
        let (index, checkpoint_use) = match loaded {
            Err(why) => (fresh, CheckpointUse::Ignored(why)),
            Ok(None) => (fresh, CheckpointUse::Missing),
            Ok(Some(ckpt)) => {
                // The fingerprint: the last covered frame, read (and verified) by LSN.
                let coverage = ckpt.coverage;
                let matches = journal
                    .with_frame(coverage.last_frame, |frame, _, _| {
                        Ok(coverage.is_last_frame(&frame))
                    })
                    .unwrap_or(false);
                let why = if !matches {
                    Some("it does not match the log (stale or from another store)".to_owned())
                } else if !report.is_clean() {
                    Some("the log has damaged ranges it may cover".to_owned())
                } else if ckpt.coverage.covered < horizon {
                    Some(format!(
                        "it covers the log up to {} only, and a compaction pass that \
                         started at {horizon} removed records since",
                        ckpt.coverage.covered
                    ))
                } else {
                    None
                };
                match why {
                    None => {
                        // The last frame is the last one visited after the coverage, or
                        // the covered one. (Frames below it may have been visited too:
                        // compacted segments are always scanned.)
                        last_frame = Some(match last_frame {
                            Some(last) if last.covered > coverage.covered => last,
                            _ => coverage,
                        });
                        (
                            ckpt.index,
                            CheckpointUse::Loaded {
                                covered: coverage.covered,
                            },
                        )
                    }
                    Some(why) => {
                        // Back to what an open without a checkpoint does: verify every
                        // frame, then index them all.
                        journal.verify_unscanned(&mut report)?;
                        let (index, last) = rebuild(&journal)?;
                        last_frame = last;
                        (index, CheckpointUse::Ignored(why))
                    }
                }
            }
        };
        if config.prefault_segments {
            journal.prefault_sealed();
        }
        let warmer = Warmer::start(journal.to_warm());
        // Anything the checkpoint on disk does not cover makes the next close write one.
        let (n_since_checkpoint, next_checkpoint_at) = match checkpoint_use {
            CheckpointUse::Loaded { covered } => (
                n_tail_frames,
                next_checkpoint_at(covered, loaded_bytes.unwrap_or(0)),
            ),
            _ => (report.n_frames, Lsn(0)),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                journal: Some(journal),
                index,
                unsynced_since: None,
                last_frame,
                n_since_checkpoint,
                next_checkpoint_at,
                checkpoint_error: None,
                last_purge_lsn,
                horizon,
                followers: Followers::default(),
            }),
            durability: config.durability,
            dir: config.dir,
            vfs: config.vfs,
            checkpoint_every_records: config.checkpoint_every_records,
            checkpoint_in_flight: Mutex::new(None),
            policy: config.compaction_policy,
            retention: config.retention,
            pass: Mutex::new(PassState::default()),
            compaction_error: Mutex::new(None),
        });
        let worker = config
            .compaction_interval_ms
            .map(|ms| Worker::start(shared.clone(), Duration::from_millis(ms)));
        Ok(AuditLog {
            shared,
            report,
            checkpoint_use,
            worker: Mutex::new(worker),
            warmer: Mutex::new(warmer),
        })
    }

    /// Runs compaction now, on this thread: passes until one removes nothing (at most
    /// `limits::COMPACTION_PASSES_MAX`). Recording goes on meanwhile; the log's lock is
    /// held only to take a snapshot and for each swap.
    pub fn compact(&self) -> Result<CompactionReport> {
        compaction::compact(&self.shared)
    }

    /// Applies the configured retention now (purges, then compacts).
    pub fn apply_retention(&self) -> Result<RetentionReport> {
        compaction::apply_retention(&self.shared, &self.shared.retention, Timestamp::now())
    }

    /// Why the last background compaction or retention step failed, if it did.
    pub fn compaction_error(&self) -> Option<String> {
        lock_unpoisoned(&self.shared.compaction_error).clone()
    }

    /// Verifies every frame of the store `config` names without changing anything
    /// (not even a torn tail) and without taking its lock, so a store in use can be
    /// checked. Strict mode turns damage into an error.
    pub fn verify(config: &Config) -> Result<RecoveryReport> {
        config.validate()?;
        segment::verify_store(&config.dir, &*config.vfs, &journal_options(config))
    }

    /// The durability mode the log was opened with.
    pub fn durability(&self) -> Durability {
        self.shared.durability
    }

    /// What recovery found when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Whether the segments found at open are still being faulted in (see
    /// `Config::warm_segments`). Reads meanwhile answer the same, a little slower.
    pub fn is_warming(&self) -> bool {
        lock_unpoisoned(&self.warmer)
            .as_ref()
            .is_some_and(|warmer| !warmer.is_finished())
    }

    /// Whether open used an index checkpoint, and if not, why.
    pub fn checkpoint_use(&self) -> &CheckpointUse {
        &self.checkpoint_use
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    pub(crate) fn commit(&self, state: &mut State, records: &[Record]) -> Result<Vec<Lsn>> {
        self.shared.commit(state, records)
    }

    /// Purges every run started before `before` (SPEC §3.13); see [`Shared::purge`].
    pub(crate) fn purge(&self, state: &mut State, before: Timestamp) -> Result<u64> {
        self.shared.purge(state, before)
    }

    /// Writes the index checkpoint now (it is also written every
    /// `Config::checkpoint_every_records` records and on close).
    pub fn checkpoint(&self) -> Result<()> {
        let mut state = self.lock();
        self.shared.write_checkpoint(&mut state)
    }

    /// Why the last periodic checkpoint failed, if it did; waits for one being written.
    pub fn checkpoint_error(&self) -> Option<String> {
        let mut state = self.lock();
        self.shared.settle_checkpoint_in_flight(&mut state, true);
        state.checkpoint_error.clone()
    }

    /// Subscribes to the new records `follow` selects: every record acknowledged from
    /// now on (appended, and synced as the durability mode says) is queued for the
    /// subscription, up to `capacity` records (at most `limits::FOLLOW_CAPACITY_MAX`).
    /// A slow follower loses records rather than slowing the log: they are counted in
    /// [`Subscription::missed`]. Dropping the subscription unsubscribes; closing the
    /// log ends it.
    pub fn subscribe(&self, follow: Follow, capacity: usize) -> Result<Subscription> {
        let mut state = self.lock();
        state.journal.as_ref().ok_or(Error::Closed)?;
        state.followers.subscribe(follow, capacity)
    }

    /// Live subscriptions (made and not dropped).
    pub fn n_followers(&self) -> usize {
        self.lock().followers.n_live()
    }

    /// Appends records as one batch and applies the durability mode to it. Returns the
    /// LSN of each record.
    ///
    /// Records are not validated against the index here: a record the query API would
    /// refuse (a duplicate run id, ...) is written but ignored by the index, now and
    /// on every replay. Use [`Storage`](crate::Storage) to have it refused instead.
    pub fn append_batch(&self, records: &[Record]) -> Result<Vec<Lsn>> {
        let mut state = self.lock();
        self.commit(&mut state, records)
    }

    /// Appends records under one lock, each on its own: a record the query API would
    /// refuse (a duplicate run id or sequence, an unknown run to finish, an empty id)
    /// or that is too large is refused alone, and the others go on. Each record is
    /// checked against the index as it stands after the records before it. Applies the
    /// durability mode once, to all of them. Returns one result per record, in order.
    ///
    /// A failed write or sync fails every record of the call, including those appended
    /// before the failure: after it the log acknowledges nothing (see poisoning).
    pub fn append_each(&self, records: &[Record]) -> Vec<Result<Lsn>> {
        self.append_each_of(records)
    }

    /// [`AuditLog::append_each`] for records already encoded as their payloads (the
    /// ingest committer writes them straight from its slots). Each payload is checked
    /// against the index by reading only the fields the index holds.
    pub(crate) fn append_encoded(&self, records: &[EncodedRecord<'_>]) -> Vec<Result<Lsn>> {
        self.append_each_of(records)
    }

    fn append_each_of<R: Appendable>(&self, records: &[R]) -> Vec<Result<Lsn>> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(journal) = state.journal.as_mut() else {
            return records.iter().map(|_| Err(Error::Closed)).collect();
        };
        let mut results = Vec::with_capacity(records.len());
        let mut lsns = Vec::with_capacity(records.len());
        for record in records {
            let result = record
                .check(&state.index)
                .and_then(|()| record.append(journal));
            if let Ok(lsn) = result {
                record.apply(&mut state.index, lsn);
                if record.kind() == RecordKind::Purge {
                    state.last_purge_lsn = Some(lsn);
                }
                lsns.push(lsn);
            }
            results.push(result);
        }
        let failure = results.iter().find_map(|r| match r {
            Err(e @ (Error::Io { .. } | Error::Poisoned { .. })) => Some(e.to_string()),
            _ => None,
        });
        let failure = failure.or_else(|| {
            self.shared
                .settle(state, &lsns)
                .err()
                .map(|e| e.to_string())
        });
        match failure {
            Some(reason) => {
                for result in &mut results {
                    if result.is_ok() {
                        *result = Err(Error::Poisoned {
                            reason: reason.clone(),
                        });
                    }
                }
            }
            None if state.followers.is_idle() => {}
            None => {
                let acknowledged: Vec<(Lsn, Cow<'_, Record>)> = results
                    .iter()
                    .zip(records)
                    .filter_map(|(result, record)| Some((*result.as_ref().ok()?, record.record()?)))
                    .collect();
                state
                    .followers
                    .publish(acknowledged.iter().map(|(lsn, record)| (*lsn, &**record)));
            }
        }
        results
    }

    /// Appends one record; see [`AuditLog::append_batch`].
    pub fn append(&self, record: &Record) -> Result<Lsn> {
        Ok(self.append_batch(std::slice::from_ref(record))?[0])
    }

    /// Returns once everything appended before the call is durable.
    pub fn flush(&self) -> Result<()> {
        let mut state = self.lock();
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        journal.sync()?;
        state.unsynced_since = None;
        Ok(())
    }

    /// Reads the record at `lsn`, verified.
    pub fn read(&self, lsn: Lsn) -> Result<Record> {
        let state = self.lock();
        state.journal.as_ref().ok_or(Error::Closed)?.read(lsn)
    }

    /// Every readable record with LSN ≥ `from`, in LSN order. A damaged frame open did
    /// not verify (below the checkpoint's coverage) fails the call with
    /// [`Error::Corrupt`] rather than being skipped; open with
    /// `Config::verify_all_at_open` to have it found and skipped at open.
    pub fn records_from(&self, from: Lsn) -> Result<Vec<(Lsn, Record)>> {
        let state = self.lock();
        let journal = state.journal.as_ref().ok_or(Error::Closed)?;
        let mut out = Vec::new();
        journal.for_each_frame(from, |frame| {
            let record = frame.record().map_err(|kind| Error::Corrupt {
                segment: journal.dir().to_path_buf(),
                offset: frame.lsn.0,
                kind,
            })?;
            out.push((frame.lsn, record));
            Ok(())
        })?;
        Ok(out)
    }

    /// Counters of the journal's work.
    pub fn journal_stats(&self) -> Result<JournalStats> {
        let state = self.lock();
        Ok(state.journal.as_ref().ok_or(Error::Closed)?.stats())
    }

    /// Every record below this LSN is durable.
    pub fn durable_lsn(&self) -> Result<Lsn> {
        let state = self.lock();
        Ok(state.journal.as_ref().ok_or(Error::Closed)?.durable_lsn())
    }

    /// The number of live runs and of run events the index holds.
    pub fn index_counts(&self) -> (usize, u64) {
        let state = self.lock();
        (state.index.n_runs(), state.index.n_events())
    }

    /// Syncs everything, writes the index checkpoint, seals the active segment and
    /// releases the directory.
    pub fn close(self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&self) -> Result<()> {
        // Stop the worker first: it takes the state lock, and may be mid-pass.
        if let Some(worker) = lock_unpoisoned(&self.worker).take() {
            worker.stop();
        }
        if let Some(warmer) = lock_unpoisoned(&self.warmer).take() {
            warmer.stop();
        }
        let mut state = self.lock();
        if state.journal.is_none() {
            return Ok(());
        }
        self.shared.settle_checkpoint_in_flight(&mut state, true);
        let checkpointed = if state.n_since_checkpoint > 0 {
            self.shared.write_checkpoint(&mut state)
        } else {
            Ok(())
        };
        state.followers.end_all();
        let journal = state.journal.take().expect("checked above");
        // The journal is closed even when the checkpoint failed: the next open then
        // replays more of the log, nothing is lost.
        journal.close()?;
        checkpointed
    }
}

/// A mutex whose holder panicked is still usable: every write path poisons the journal
/// before returning an error, so no half-done update is left behind.
pub(crate) fn lock_unpoisoned<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock_unpoisoned(&self.state)
    }

    /// Appends records to the journal and the index, then applies the durability mode.
    ///
    /// Every record is encoded and checked (size) before any is appended: an oversized
    /// record fails the whole batch with nothing written.
    pub(crate) fn commit(&self, state: &mut State, records: &[Record]) -> Result<Vec<Lsn>> {
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        let mut lsns = Vec::with_capacity(records.len());
        journal.append_batch(records, &mut lsns)?;
        for (record, lsn) in records.iter().zip(&lsns) {
            self.apply(state, *lsn, record);
        }
        self.settle(state, &lsns)?;
        state
            .followers
            .publish(lsns.iter().copied().zip(records.iter()));
        Ok(lsns)
    }

    /// Applies one appended record to the index and to what compaction tracks.
    pub(crate) fn apply(&self, state: &mut State, lsn: Lsn, record: &Record) {
        state.index.apply(lsn, record);
        if matches!(record, Record::Purge(_)) {
            state.last_purge_lsn = Some(lsn);
        }
    }

    /// After records were appended (at `lsns`): notes the checkpoint fingerprint,
    /// applies the durability mode, and writes a checkpoint when one is due.
    pub(crate) fn settle(&self, state: &mut State, lsns: &[Lsn]) -> Result<()> {
        let Some(&last) = lsns.last() else {
            return Ok(());
        };
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        state.last_frame = Some(coverage_at(journal, last)?);
        match self.durability {
            Durability::None => journal.write()?,
            Durability::EveryBatch => journal.sync()?,
            Durability::GroupCommit { interval_ms } => {
                let since = *state.unsynced_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(interval_ms) {
                    journal.sync()?;
                    state.unsynced_since = None;
                } else {
                    journal.write()?;
                }
            }
        }
        state.n_since_checkpoint += lsns.len() as u64;
        // Due after `checkpoint_every_records` records, and not before the log has grown
        // by `CHECKPOINT_LOG_GROWTH` times the last checkpoint's size: a checkpoint
        // rewrites the whole index, so without that bound its bytes per record appended
        // would grow with the store. The replay after a crash stays within that much
        // log (or that many records). Only once enough records are in is the outcome of
        // one written in the background taken (it moves the LSN the next one waits
        // for), so an append that cannot start a checkpoint does not lock for it.
        let due = self.checkpoint_every_records > 0
            && state.n_since_checkpoint >= self.checkpoint_every_records;
        let log_end = state.last_frame.map_or(Lsn(0), |frame| frame.covered);
        if due
            && self.settle_checkpoint_in_flight(state, false)
            && log_end >= state.next_checkpoint_at
        {
            // The records are appended; a failed checkpoint only means a longer replay
            // at the next open, so it is remembered rather than failing the append.
            if let Err(error) = self.start_checkpoint(state) {
                state.checkpoint_error = Some(error.to_string());
            }
        }
        Ok(())
    }

    /// Starts a periodic checkpoint: syncs the journal, takes a copy of the index (the
    /// only part that holds the log's lock) and writes it on a thread of its own, so
    /// appends go on while it is encoded and written.
    fn start_checkpoint(&self, state: &mut State) -> Result<()> {
        let Some(coverage) = Self::sync_for_checkpoint(state)? else {
            return Ok(());
        };
        let index = state.index.clone();
        let (vfs, dir) = (Arc::clone(&self.vfs), self.dir.clone());
        let thread = std::thread::Builder::new()
            .name("auditlog-checkpoint".into())
            .spawn(move || checkpoint::write(&*vfs, &dir, &index, coverage))
            .map_err(|source| Error::io("spawn the checkpoint thread for", &self.dir, source))?;
        state.n_since_checkpoint = 0;
        *lock_unpoisoned(&self.checkpoint_in_flight) = Some(InFlight {
            covered: coverage.covered,
            thread,
        });
        Ok(())
    }

    /// Syncs the journal, so a checkpoint covers only durable frames, and returns the
    /// coverage one taken now has (`None` with nothing appended yet).
    fn sync_for_checkpoint(state: &mut State) -> Result<Option<Coverage>> {
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        let Some(coverage) = state.last_frame else {
            return Ok(None);
        };
        journal.sync()?;
        state.unsynced_since = None;
        assert_eq!(
            coverage.covered,
            journal.next_lsn(),
            "a checkpoint covers every frame appended"
        );
        Ok(Some(coverage))
    }

    /// Takes the outcome of the periodic checkpoint written in the background, waiting
    /// for it with `wait`; returns whether none is in flight now.
    fn settle_checkpoint_in_flight(&self, state: &mut State, wait: bool) -> bool {
        let mut in_flight = lock_unpoisoned(&self.checkpoint_in_flight);
        match in_flight.as_ref() {
            None => return true,
            Some(flight) if !wait && !flight.thread.is_finished() => return false,
            Some(_) => {}
        }
        let flight = in_flight.take().expect("matched above");
        let outcome = match flight.thread.join() {
            Ok(written) => written.map_err(|e| e.to_string()),
            Err(_) => Err("the checkpoint thread panicked".to_owned()),
        };
        match outcome {
            Ok(bytes) => {
                state.next_checkpoint_at = next_checkpoint_at(flight.covered, bytes);
                state.checkpoint_error = None;
            }
            Err(why) => {
                // What it would have covered is covered by nothing newer: the next
                // close writes a checkpoint.
                state.n_since_checkpoint = state.n_since_checkpoint.max(1);
                state.checkpoint_error = Some(why);
            }
        }
        true
    }

    /// Syncs the journal and writes the index checkpoint covering everything appended,
    /// after the one being written in the background, if any.
    pub(crate) fn write_checkpoint(&self, state: &mut State) -> Result<()> {
        self.settle_checkpoint_in_flight(state, true);
        let Some(coverage) = Self::sync_for_checkpoint(state)? else {
            return Ok(());
        };
        let bytes = checkpoint::write(&*self.vfs, &self.dir, &state.index, coverage)?;
        state.n_since_checkpoint = 0;
        state.next_checkpoint_at = next_checkpoint_at(coverage.covered, bytes);
        Ok(())
    }

    /// Deletes every run started before `before` with its events: a tombstone is
    /// appended and synced (whatever the durability mode: a returned purge survives a
    /// crash) and the runs leave the index at once; compaction reclaims their space.
    /// Returns how many runs were deleted; with none to delete nothing is written.
    pub(crate) fn purge(&self, state: &mut State, before: Timestamp) -> Result<u64> {
        state.journal.as_ref().ok_or(Error::Closed)?;
        let select = RunSelect {
            until: Some(before),
            ..RunSelect::default()
        };
        let n_purged = state
            .index
            .resolve(&select)
            .map_or(0, |resolved| state.index.count_runs(&resolved));
        if n_purged == 0 {
            return Ok(0);
        }
        let record = Record::Purge(Purge {
            before,
            purged_at: Timestamp::now(),
        });
        self.commit(state, std::slice::from_ref(&record))?;
        state.journal.as_mut().ok_or(Error::Closed)?.sync()?;
        state.unsynced_since = None;
        Ok(n_purged)
    }

    /// Makes the next close write a checkpoint (after compaction, so the next open
    /// need not rebuild the index).
    pub(crate) fn checkpoint_due(state: &mut State) {
        state.n_since_checkpoint = state.n_since_checkpoint.max(1);
    }
}

/// A periodic checkpoint being written on a thread of its own.
#[derive(Debug)]
struct InFlight {
    /// The LSN it covers the log up to.
    covered: Lsn,
    /// Returns the checkpoint file's size.
    thread: std::thread::JoinHandle<Result<u64>>,
}

/// Where the log must reach before the periodic checkpoint after one of `bytes`
/// covering the log up to `covered`.
fn next_checkpoint_at(covered: Lsn, bytes: u64) -> Lsn {
    Lsn(covered
        .0
        .saturating_add(bytes.saturating_mul(crate::limits::CHECKPOINT_LOG_GROWTH)))
}

fn journal_options(config: &Config) -> JournalOptions {
    JournalOptions {
        segment_bytes: config.segment_bytes,
        record_bytes_max: config.record_bytes_max,
        strict: config.recovery == RecoveryMode::Strict,
        on_sealed: config.on_segment_sealed.clone(),
        warm_at_open: config.warm_segments && !config.prefault_segments,
    }
}

/// Builds the index from every frame of the journal; also returns the coverage a
/// checkpoint of all of them would have.
fn rebuild(journal: &Journal) -> Result<(Index, Option<Coverage>)> {
    let mut index = Index::new();
    let mut last = None;
    journal.for_each_frame(Lsn(0), |frame| {
        last = Some(frame.lsn);
        index.apply_frame(frame.lsn, frame.kind, frame.payload);
        Ok(())
    })?;
    let last = last.map(|lsn| coverage_at(journal, lsn)).transpose()?;
    Ok((index, last))
}

/// The coverage of a checkpoint whose last frame is the one at `lsn`.
fn coverage_at(journal: &Journal, lsn: Lsn) -> Result<Coverage> {
    journal.with_frame(lsn, |frame, _, _| Ok(Coverage::of_last_frame(&frame)))
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Drop cannot report an error; `close()` is the way to see one. A failure here
        // leaves the store as a crash would, which the next open recovers.
        let _ = self.close_inner();
    }
}

/// A record on its way into the log through [`AuditLog::append_each`]: owned, or
/// already encoded as its payload.
trait Appendable {
    fn kind(&self) -> RecordKind;
    /// Refuses what the query API would refuse (see [`Index::check`]).
    fn check(&self, index: &Index) -> Result<()>;
    fn append(&self, journal: &mut Journal) -> Result<Lsn>;
    fn apply(&self, index: &mut Index, lsn: Lsn);
    /// The record, for live subscriptions; `None` for a payload that does not decode
    /// (it was refused by `check`, so it is never asked for).
    fn record(&self) -> Option<Cow<'_, Record>>;
}

impl Appendable for Record {
    fn kind(&self) -> RecordKind {
        Record::kind(self)
    }
    fn check(&self, index: &Index) -> Result<()> {
        index.check(self)
    }
    fn append(&self, journal: &mut Journal) -> Result<Lsn> {
        journal.append(self)
    }
    fn apply(&self, index: &mut Index, lsn: Lsn) {
        index.apply(lsn, self);
    }
    fn record(&self) -> Option<Cow<'_, Record>> {
        Some(Cow::Borrowed(self))
    }
}

impl EncodedRecord<'_> {
    /// The event key the encoder passed along (checked against the payload in debug
    /// builds).
    fn known_event(&self) -> Option<(&str, u64)> {
        let (run_id, sequence) = self
            .event
            .filter(|_| self.kind == RecordKind::EventAppended)?;
        debug_assert!(
            crate::index::event_key(self.payload) == Some((run_id, sequence)),
            "the passed event key is the payload's"
        );
        Some((run_id, sequence))
    }

    /// The call key the encoder passed along (checked against the payload in debug
    /// builds).
    fn known_call(&self) -> Option<CallRef<'_>> {
        let call = self
            .call
            .filter(|_| self.kind == RecordKind::CallRecorded)?;
        debug_assert!(
            crate::index::call_key(self.payload) == Some(call),
            "the passed call key is the payload's"
        );
        Some(call)
    }
}

impl Appendable for EncodedRecord<'_> {
    fn kind(&self) -> RecordKind {
        self.kind
    }
    fn check(&self, index: &Index) -> Result<()> {
        if let Some((run_id, sequence)) = self.known_event() {
            return index.check_event(run_id, sequence);
        }
        if let Some(call) = self.known_call() {
            return crate::index::check_call(call.call_id, call.tool_id);
        }
        index.check_frame(self.kind, self.payload)
    }
    fn append(&self, journal: &mut Journal) -> Result<Lsn> {
        journal.append_encoded(self.kind, self.payload)
    }
    fn apply(&self, index: &mut Index, lsn: Lsn) {
        if let Some((run_id, sequence)) = self.known_event() {
            index.apply_event(lsn, run_id, sequence);
        } else if let Some(call) = self.known_call() {
            index.apply_call(lsn, call.ts, call.caller_id, call.tool_id, call.kind);
        } else {
            index.apply_frame(lsn, self.kind, self.payload);
        }
    }
    fn record(&self) -> Option<Cow<'_, Record>> {
        let record = Record::decode_payload(self.kind, self.payload);
        debug_assert!(record.is_ok(), "a checked payload decodes");
        record.ok().map(Cow::Owned)
    }
}
