//! auditlog: `Recorder::record_call` into a store with `Durability::None` (records go
//! to the OS as they are written, no fsync per record, like every peer here) and the
//! default ingest config (drop when the queue is full; the committer writes).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use auditlog::model::CallEvent;
use auditlog::{AuditLog, Config, Durability, IngestConfig, Recorder};

use super::{Finished, System, workload};
use crate::CliResult;

pub const NAME: &str = "auditlog";

/// How long `finish` waits for the committer to write what was accepted.
const CLOSE_WAIT: Duration = Duration::from_secs(300);

pub struct Ours {
    recorder: Recorder,
}

impl Ours {
    pub fn open(dir: &Path) -> CliResult<Ours> {
        let log = AuditLog::open(Config::new(dir).durability(Durability::None))?;
        let recorder = Recorder::start(Arc::new(log), IngestConfig::default())?;
        Ok(Ours { recorder })
    }
}

impl System for Ours {
    type Event = CallEvent;

    fn event(&self, seq: u64) -> CallEvent {
        workload::call_event(seq)
    }

    fn record(&self, event: &CallEvent) {
        // Refusals are counted by reason in the recorder's metrics.
        let _ = self.recorder.record_call(event);
    }

    fn finish(self) -> Finished {
        let report = self.recorder.close(CLOSE_WAIT);
        assert!(
            report.completed,
            "the committer did not drain within {CLOSE_WAIT:?}"
        );
        Finished {
            n_dropped: report.dropped.total(),
        }
    }
}
