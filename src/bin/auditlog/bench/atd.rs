//! atd-runtime 1.2.1: `JsonLinesAuditSink` writing JSON lines to a file, built with
//! `JsonLinesAuditSink::file` as a dispatch server does (default queue of 1024 events,
//! `Drop` strategy: `try_send` of a clone, a drain thread writing and flushing each
//! line).

use std::path::Path;

use atd_runtime::audit::{AuditSink, CallEvent, JsonLinesAuditSink, Outcome};

use super::{Finished, System, workload};
use crate::CliResult;

pub const NAME: &str = "atd-runtime";

pub struct Atd {
    sink: JsonLinesAuditSink,
}

impl Atd {
    pub fn open(path: &Path) -> CliResult<Atd> {
        Ok(Atd {
            sink: JsonLinesAuditSink::file(&path.with_extension("jsonl"))?,
        })
    }
}

impl System for Atd {
    type Event = CallEvent;

    /// The runtime's form of the workload event, field for field.
    fn event(&self, seq: u64) -> CallEvent {
        let ours = workload::call_event(seq);
        CallEvent::new(
            ours.ts.to_rfc3339(),
            ours.call_id,
            ours.tool_id,
            ours.duration_ms,
            Outcome::Success,
            ours.tier,
        )
        .with_caller_id(ours.caller_id)
        .with_granted_capabilities(ours.granted_capabilities)
        .with_cursor_page(ours.cursor_page)
    }

    fn record(&self, event: &CallEvent) {
        self.sink.on_call(event);
    }

    /// Dropping the sink closes its channel and joins the drain thread, which writes
    /// every queued line first.
    fn finish(self) -> Finished {
        let n_dropped = AuditSink::drops(&self.sink);
        drop(self.sink);
        Finished { n_dropped }
    }
}
