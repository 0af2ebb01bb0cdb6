//! `AuditLog`: the handle a program holds on one store directory.
//!
//! Where it sits: the entry point. It opens the journal (running recovery) and builds
//! the index in the same pass (or loads the index checkpoint and replays only the log
//! after it), appends records, applies the durability mode, keeps the index up to date
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

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::codec::{Lsn, Record};
use crate::config::{Config, Durability, RecoveryMode};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::index::checkpoint::{self, CheckpointUse, Coverage};
use crate::segment::{self, Journal, JournalOptions, JournalStats, RecoveryReport};
use crate::vfs::Vfs;

/// An open store.
#[derive(Debug)]
pub struct AuditLog {
    state: Mutex<State>,
    durability: Durability,
    report: RecoveryReport,
    checkpoint_use: CheckpointUse,
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    checkpoint_every_records: u64,
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
    /// Why the last periodic checkpoint failed, if it did.
    checkpoint_error: Option<String>,
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
        // While a checkpoint is held, frames below its coverage are only checked for
        // its fingerprint; frames after it are applied to it. Without one, every frame
        // is applied to a fresh index.
        let mut fingerprint_seen = false;
        let mut n_tail_frames = 0u64;
        let mut fresh = Index::new();
        let mut last_frame = None;
        let (journal, report) = Journal::open(&config.dir, config.vfs.clone(), options, |frame| {
            last_frame = Some(Coverage::of_last_frame(&frame));
            match &mut loaded {
                Ok(Some(ckpt)) => {
                    if frame.lsn < ckpt.coverage.covered {
                        fingerprint_seen |= ckpt.coverage.is_last_frame(&frame);
                    } else if fingerprint_seen {
                        n_tail_frames += 1;
                        if let Ok(record) = frame.record() {
                            ckpt.index.apply(frame.lsn, &record);
                        }
                    }
                }
                _ => {
                    if let Ok(record) = frame.record() {
                        fresh.apply(frame.lsn, &record);
                    }
                }
            }
        })?;
        let (index, checkpoint_use) = match loaded {
            Err(why) => (fresh, CheckpointUse::Ignored(why)),
            Ok(None) => (fresh, CheckpointUse::Missing),
            Ok(Some(ckpt)) => {
                let why = if !fingerprint_seen {
                    Some("it does not match the log (stale or from another store)")
                } else if !report.is_clean() {
                    Some("the log has damaged ranges it may cover")
                } else {
                    None
                };
                match why {
                    None => (
                        ckpt.index,
                        CheckpointUse::Loaded {
                            covered: ckpt.coverage.covered,
                        },
                    ),
                    Some(why) => (rebuild(&journal)?, CheckpointUse::Ignored(why.into())),
                }
            }
        };
        // Anything the checkpoint on disk does not cover makes the next close write one.
        let n_since_checkpoint = match checkpoint_use {
            CheckpointUse::Loaded { .. } => n_tail_frames,
            _ => report.n_frames,
        };
        Ok(AuditLog {
            state: Mutex::new(State {
                journal: Some(journal),
                index,
                unsynced_since: None,
                last_frame,
                n_since_checkpoint,
                checkpoint_error: None,
            }),
            durability: config.durability,
            report,
            checkpoint_use,
            dir: config.dir,
            vfs: config.vfs,
            checkpoint_every_records: config.checkpoint_every_records,
        })
    }

    /// Verifies every frame of the store `config` names without changing anything
    /// (not even a torn tail) and without taking its lock, so a store in use can be
    /// checked. Strict mode turns damage into an error.
    pub fn verify(config: &Config) -> Result<RecoveryReport> {
        config.validate()?;
        segment::verify_store(&config.dir, &*config.vfs, &journal_options(config))
    }

    /// What recovery found when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Whether open used an index checkpoint, and if not, why.
    pub fn checkpoint_use(&self) -> &CheckpointUse {
        &self.checkpoint_use
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the journal half-updated in a way
        // that matters: every write path poisons the journal before returning an error.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
            state.index.apply(*lsn, record);
        }
        if lsns.is_empty() {
            return Ok(lsns);
        }
        let last = *lsns.last().expect("not empty");
        state.last_frame =
            Some(journal.with_frame(last, |frame, _, _| Ok(Coverage::of_last_frame(&frame)))?);
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
        if self.checkpoint_every_records > 0
            && state.n_since_checkpoint >= self.checkpoint_every_records
        {
            // The records are appended; a failed checkpoint only means a longer replay
            // at the next open, so it is remembered rather than failing the append.
            state.checkpoint_error = self.write_checkpoint(state).err().map(|e| e.to_string());
        }
        Ok(lsns)
    }

    /// Syncs the journal and writes the index checkpoint covering everything appended.
    fn write_checkpoint(&self, state: &mut State) -> Result<()> {
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        let Some(coverage) = state.last_frame else {
            return Ok(());
        };
        journal.sync()?;
        state.unsynced_since = None;
        assert_eq!(
            coverage.covered,
            journal.next_lsn(),
            "a checkpoint covers every frame appended"
        );
        checkpoint::write(&*self.vfs, &self.dir, &state.index, coverage)?;
        state.n_since_checkpoint = 0;
        Ok(())
    }

    /// Writes the index checkpoint now (it is also written every
    /// `Config::checkpoint_every_records` records and on close).
    pub fn checkpoint(&self) -> Result<()> {
        let mut state = self.lock();
        self.write_checkpoint(&mut state)
    }

    /// Why the last periodic checkpoint failed, if it did.
    pub fn checkpoint_error(&self) -> Option<String> {
        self.lock().checkpoint_error.clone()
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

    /// Every readable record with LSN ≥ `from`, in LSN order.
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
        let mut state = self.lock();
        if state.journal.is_none() {
            return Ok(());
        }
        let checkpointed = if state.n_since_checkpoint > 0 {
            self.write_checkpoint(&mut state)
        } else {
            Ok(())
        };
        let journal = state.journal.take().expect("checked above");
        // The journal is closed even when the checkpoint failed: the next open then
        // replays more of the log, nothing is lost.
        journal.close()?;
        checkpointed
    }
}

fn journal_options(config: &Config) -> JournalOptions {
    JournalOptions {
        segment_bytes: config.segment_bytes,
        record_bytes_max: config.record_bytes_max,
        strict: config.recovery == RecoveryMode::Strict,
        on_sealed: config.on_segment_sealed.clone(),
    }
}

/// Builds the index from every frame of the journal.
fn rebuild(journal: &Journal) -> Result<Index> {
    let mut index = Index::new();
    journal.for_each_frame(Lsn(0), |frame| {
        if let Ok(record) = frame.record() {
            index.apply(frame.lsn, &record);
        }
        Ok(())
    })?;
    Ok(index)
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Drop cannot report an error; `close()` is the way to see one. A failure here
        // leaves the store as a crash would, which the next open recovers.
        let _ = self.close_inner();
    }
}
