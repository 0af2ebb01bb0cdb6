//! tracing with tracing-appender: a `tracing::info!` event with the call's fields,
//! formatted as JSON by tracing-subscriber's `fmt` layer on the calling thread and
//! handed to `tracing_appender::non_blocking` (its defaults: lossy, 128 000 buffered
//! lines), whose worker thread writes the file.
//!
//! Drops: the non-blocking writer counts the lines it discarded because its channel
//! was full (`ErrorCounter::dropped_lines`); that is what is reported.

use std::path::Path;

use auditlog::model::CallEvent;
use tracing::Dispatch;
use tracing_appender::non_blocking::{ErrorCounter, WorkerGuard};

use super::{Finished, System, workload};
use crate::CliResult;

pub const NAME: &str = "tracing-appender";

pub struct Appender {
    dispatch: Dispatch,
    guard: WorkerGuard,
    errors: ErrorCounter,
}

impl Appender {
    pub fn open(path: &Path) -> CliResult<Appender> {
        let file = std::fs::File::create(path.with_extension("log"))?;
        let (writer, guard) = tracing_appender::non_blocking(file);
        let errors = writer.error_counter();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .finish();
        Ok(Appender {
            dispatch: Dispatch::new(subscriber),
            guard,
            errors,
        })
    }
}

impl System for Appender {
    type Event = CallEvent;

    fn event(&self, seq: u64) -> CallEvent {
        workload::call_event(seq)
    }

    fn record(&self, call: &CallEvent) {
        tracing::info!(
            target: "audit",
            ts = call.ts.unix_nanos(),
            call_id = %call.call_id,
            tool_id = %call.tool_id,
            caller_id = call.caller_id.as_deref(),
            granted_capabilities = ?call.granted_capabilities,
            duration_ms = call.duration_ms,
            outcome = call.outcome.kind().as_str(),
            tier = %call.tier,
            dry_run = call.dry_run,
            schema_version = call.schema_version,
            secrets_resolved = call.secrets_resolved,
            cursor_page = call.cursor_page,
        );
    }

    /// The subscriber is this thread's default while it produces: no global state,
    /// and no per-call cost beyond what an application with a global subscriber pays.
    fn in_producer<R>(&self, produce: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, produce)
    }

    /// Dropping the guard makes the worker write every buffered line, then stop.
    fn finish(self) -> Finished {
        drop(self.dispatch);
        drop(self.guard);
        Finished {
            n_dropped: self.errors.dropped_lines() as u64,
        }
    }
}
