//! The dispatch-call sink: hands each tool call a dispatch server ran to the
//! [`Recorder`] as a call event.
//!
//! Where it sits: in front of `ingest`, built only on the recorder's public API, beside
//! `writer` and `session`. A dispatch server holds one [`CallSink`] and calls
//! `on_call` after every tool call; with the `atd-runtime` feature the sink also
//! implements that crate's `AuditSink` trait (`atd.rs`), converting its events.
//!
//! # Invariants
//! - `on_call` never blocks, provided the recorder uses the default
//!   `Backpressure::Drop` (the sink cannot override a recorder's policy): it only
//!   queues the event.
//! - Every event the recorder refuses is counted in `drops()` (and, by reason, in the
//!   recorder's own metrics).
//! - Dropping the sink drains it: the drop waits, at most `drain_wait`, until every
//!   event it queued is durable. The recorder stays open; other handles keep using it.

#[cfg(feature = "atd-runtime")]
mod atd;
#[cfg(feature = "atd-runtime")]
pub use atd::call_event_from_atd;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::ingest::{Recorded, Recorder};
use crate::limits::{CALL_SINK_DRAIN_WAIT_MS_DEFAULT, WRITER_CLOSE_WAIT_MS_MAX};
use crate::model::CallEvent;

/// Records dispatch call events through a [`Recorder`]. `Send + Sync`.
#[derive(Debug)]
pub struct CallSink {
    recorder: Recorder,
    n_drops: AtomicU64,
    drain_wait: Duration,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CallSink>();
};

impl CallSink {
    /// A sink over `recorder`, draining for at most the default wait when dropped.
    pub fn new(recorder: Recorder) -> CallSink {
        CallSink {
            recorder,
            n_drops: AtomicU64::new(0),
            drain_wait: Duration::from_millis(CALL_SINK_DRAIN_WAIT_MS_DEFAULT),
        }
    }

    /// Sets the longest time dropping the sink waits for its events to be durable,
    /// capped like the writer's close wait.
    pub fn drain_wait(mut self, wait: Duration) -> CallSink {
        self.drain_wait = wait.min(Duration::from_millis(WRITER_CLOSE_WAIT_MS_MAX));
        self
    }

    /// Queues one call event; never blocks under the recorder's drop policy.
    pub fn on_call(&self, call: &CallEvent) -> Recorded {
        let recorded = self.recorder.record_call(call);
        if !recorded.is_accepted() {
            self.n_drops.fetch_add(1, Ordering::Relaxed);
        }
        recorded
    }

    /// Events this sink handed over that the recorder refused.
    pub fn drops(&self) -> u64 {
        self.n_drops.load(Ordering::Relaxed)
    }
}

impl Drop for CallSink {
    fn drop(&mut self) {
        // A failed or late drain leaves the events with the committer, which still
        // writes them or counts them as dropped; a destructor has no one to tell.
        let _ = self.recorder.flush_within(self.drain_wait);
    }
}
