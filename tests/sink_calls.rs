//! `CallSink` over a `Recorder`, read back through the `Storage` API: each call event
//! handed to `on_call` is stored unchanged; a refused event is counted in `drops()`
//! and returned to the caller as dropped, without blocking; dropping the sink drains
//! what it queued, so the events are readable without a flush.

use std::sync::Arc;
use std::time::Duration;

use auditlog::model::{CALL_EVENT_SCHEMA_VERSION, CallEvent, DropReason, Outcome, Timestamp};
use auditlog::{
    AuditLog, CallFilter, CallSink, Config, Durability, IngestConfig, Recorded, Recorder, Storage,
};
use tempfile::TempDir;

fn open() -> (TempDir, Arc<AuditLog>, Recorder) {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    (dir, log, recorder)
}

fn call(call_id: &str, millis: i64) -> CallEvent {
    CallEvent {
        ts: Timestamp::from_unix_millis(millis),
        call_id: call_id.into(),
        tool_id: "ref:echo.say".into(),
        caller_id: Some("me".into()),
        granted_capabilities: vec!["read".into()],
        duration_ms: 12,
        outcome: Outcome::RateLimited {
            retry_after_ms: Some(250),
        },
        tier: "warm".into(),
        dry_run: false,
        schema_version: CALL_EVENT_SCHEMA_VERSION,
        secrets_resolved: true,
        cursor_page: Some(2),
    }
}

#[test]
fn calls_are_stored_unchanged_and_dropping_the_sink_drains_them() {
    let (_dir, log, recorder) = open();
    let sink = CallSink::new(recorder.clone()).drain_wait(Duration::from_secs(10));
    let calls = [call("c1", 1_000), call("c2", 2_000)];
    for c in &calls {
        assert_eq!(sink.on_call(c), Recorded::Accepted);
    }
    assert_eq!(sink.drops(), 0);
    drop(sink);
    let stored = log.list_calls(&CallFilter::default(), 0, 10).unwrap();
    assert_eq!(stored, [calls[1].clone(), calls[0].clone()], "newest first");
}

#[test]
fn a_refused_call_is_counted_as_a_drop() {
    let (_dir, _log, recorder) = open();
    let sink = CallSink::new(recorder.clone());
    assert_eq!(
        sink.on_call(&call("", 1)),
        Recorded::Dropped(DropReason::Rejected)
    );
    // After the recorder closes, calls drop without blocking.
    let _ = recorder.close(Duration::from_secs(10));
    assert_eq!(
        sink.on_call(&call("late", 2)),
        Recorded::Dropped(DropReason::AfterShutdown)
    );
    assert_eq!(sink.drops(), 2);
}
