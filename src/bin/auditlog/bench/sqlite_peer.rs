//! The SQLite peer of the harness: `record_call` through [`SqliteStorage`], one
//! insert per call, each its own transaction, `synchronous = NORMAL` (no fsync per
//! commit, like the other systems of the harness). SQLite writes on the caller's
//! thread, so nothing is ever dropped; a failed insert would count as a drop.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use auditlog::Storage;
use auditlog::model::CallEvent;

use super::sqlite::{SqliteStorage, SqliteSync};
use super::{Finished, System, workload};
use crate::CliResult;

pub const NAME: &str = "sqlite";

/// One insert per call, each its own transaction, `synchronous = NORMAL` (no fsync
/// per commit, like the other systems here).
pub struct Sqlite {
    storage: SqliteStorage,
    n_failed: AtomicU64,
}

impl Sqlite {
    pub fn open(path: &Path) -> CliResult<Sqlite> {
        Ok(Sqlite {
            storage: SqliteStorage::open(&path.with_extension("sqlite"), SqliteSync::Normal)?,
            n_failed: AtomicU64::new(0),
        })
    }
}

impl System for Sqlite {
    type Event = CallEvent;

    fn event(&self, seq: u64) -> CallEvent {
        workload::call_event(seq)
    }

    fn record(&self, event: &CallEvent) {
        if self.storage.record_call(event).is_err() {
            self.n_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn finish(self) -> Finished {
        Finished {
            n_dropped: self.n_failed.into_inner(),
        }
    }
}
