//! `AuditLog`: the handle a program holds on one store directory.
//!
//! Where it sits: the entry point. It opens the journal (running recovery), appends
//! records, and applies the durability mode.
//!
//! # Invariants
//! - `flush()` returns only once everything appended before it is durable.
//! - Under `Durability::EveryBatch` an append returns only once its record is durable.
//! - Under `Durability::GroupCommit`, an append syncs when the oldest unsynced record is
//!   older than the interval. An idle tail is synced by `flush`, `close` or drop; the
//!   ingest committer adds a timer for it.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::codec::{Lsn, Record};
use crate::config::{Config, Durability, RecoveryMode};
use crate::error::{Error, Result};
use crate::segment::{Journal, JournalOptions, JournalStats, RecoveryReport};

/// An open store.
#[derive(Debug)]
pub struct AuditLog {
    state: Mutex<State>,
    durability: Durability,
    report: RecoveryReport,
}

#[derive(Debug)]
struct State {
    journal: Option<Journal>,
    /// When the oldest record not yet synced was appended.
    unsynced_since: Option<Instant>,
}

impl AuditLog {
    /// Opens (creating if missing) the store described by `config`.
    pub fn open(config: Config) -> Result<AuditLog> {
        config.validate()?;
        let options = JournalOptions {
            segment_bytes: config.segment_bytes,
            record_bytes_max: config.record_bytes_max,
            strict: config.recovery == RecoveryMode::Strict,
        };
        let (journal, report) = Journal::open(&config.dir, config.vfs.clone(), options, |_| {})?;
        Ok(AuditLog {
            state: Mutex::new(State {
                journal: Some(journal),
                unsynced_since: None,
            }),
            durability: config.durability,
            report,
        })
    }

    /// The durability mode the log was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// What recovery found when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the journal half-updated in a way
        // that matters: every write path poisons the journal before returning an error.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends records as one batch and applies the durability mode to it. Returns the
    /// LSN of each record.
    ///
    /// Records are validated (size) before any is appended: an oversized record fails
    /// the whole batch with nothing written.
    pub fn append_batch(&self, records: &[Record]) -> Result<Vec<Lsn>> {
        let mut state = self.lock();
        let state = &mut *state;
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        let mut lsns = Vec::with_capacity(records.len());
        for record in records {
            lsns.push(journal.append(record)?);
        }
        if lsns.is_empty() {
            return Ok(lsns);
        }
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
        Ok(lsns)
    }

    /// Appends records under one lock, each on its own: one refused record (too large,
    /// unencodable) does not refuse the others. Applies the durability mode once, to all
    /// of them. Returns one result per record, in order.
    ///
    /// A failed write or sync fails every record of the call, including those appended
    /// before the failure: after it the log acknowledges nothing (see poisoning).
    pub fn append_each(&self, records: &[Record]) -> Vec<Result<Lsn>> {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(journal) = state.journal.as_mut() else {
            return records.iter().map(|_| Err(Error::Closed)).collect();
        };
        let mut results: Vec<Result<Lsn>> = records.iter().map(|r| journal.append(r)).collect();
        let failure = results.iter().find_map(|r| match r {
            Err(e @ (Error::Io { .. } | Error::Poisoned { .. })) => Some(e.to_string()),
            _ => None,
        });
        let durability = if results.iter().any(Result::is_ok) && failure.is_none() {
            match self.durability {
                Durability::None => journal.write(),
                Durability::EveryBatch => journal.sync(),
                Durability::GroupCommit { interval_ms } => {
                    let since = *state.unsynced_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_millis(interval_ms) {
                        let synced = journal.sync();
                        state.unsynced_since = None;
                        synced
                    } else {
                        journal.write()
                    }
                }
            }
        } else {
            Ok(())
        };
        let failure = failure.or_else(|| durability.err().map(|e| e.to_string()));
        if let Some(reason) = failure {
            for result in &mut results {
                if result.is_ok() {
                    *result = Err(Error::Poisoned {
                        reason: reason.clone(),
                    });
                }
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

    /// Syncs everything, seals the active segment and releases the directory.
    pub fn close(self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&self) -> Result<()> {
        let journal = self.lock().journal.take();
        match journal {
            Some(journal) => journal.close(),
            None => Ok(()),
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Drop cannot report an error; `close()` is the way to see one. A failure here
        // leaves the store as a crash would, which the next open recovers.
        let _ = self.close_inner();
    }
}
