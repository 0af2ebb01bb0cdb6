//! With the `atd-runtime` feature, `CallSink` is an `atd_runtime::AuditSink`: a call
//! event built by that crate (every outcome kind, optional fields set and unset) is
//! stored with the same fields, readable through the `Storage` API, and the sink
//! reports its drops and the never-blocking `Drop` strategy to the runtime.

use std::sync::Arc;

use atd_runtime::audit::{AuditSink, BackpressureStrategy, CallEvent, Outcome};
use auditlog::model::{self, Timestamp};
use auditlog::{
    AuditLog, CallFilter, CallSink, Config, Durability, IngestConfig, Recorder, Storage,
};

#[test]
fn runtime_call_events_are_stored_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let sink: Box<dyn AuditSink> = Box::new(CallSink::new(recorder.clone()));
    assert!(matches!(
        sink.backpressure_strategy(),
        BackpressureStrategy::Drop
    ));

    let outcomes = [
        (Outcome::Success, model::Outcome::Success),
        (
            Outcome::ExecutionFailed {
                code: "E1".into(),
                retryable: true,
            },
            model::Outcome::ExecutionFailed {
                code: "E1".into(),
                retryable: true,
            },
        ),
        (
            Outcome::InvalidArgs {
                message: "m".into(),
            },
            model::Outcome::InvalidArgs {
                message: "m".into(),
            },
        ),
        (
            Outcome::CapabilityDenied {
                missing: vec!["net".into()],
            },
            model::Outcome::CapabilityDenied {
                missing: vec!["net".into()],
            },
        ),
        (
            Outcome::RateLimited {
                retry_after_ms: Some(9),
            },
            model::Outcome::RateLimited {
                retry_after_ms: Some(9),
            },
        ),
        (Outcome::ToolNotFound, model::Outcome::ToolNotFound),
    ];
    for (idx, (outcome, _)) in outcomes.iter().enumerate() {
        let ts = format!("2026-11-21T10:00:0{idx}Z");
        let event = CallEvent::new(
            ts,
            format!("call-{idx}"),
            "ref:echo.say",
            7,
            outcome.clone(),
            "hot",
        )
        .with_caller_id((idx % 2 == 0).then(|| "caller".to_owned()))
        .with_granted_capabilities(vec!["read".into()])
        .with_dry_run(idx == 1)
        .with_secrets_resolved(idx == 2)
        .with_cursor_page((idx == 3).then_some(4));
        sink.on_call(&event);
    }
    assert_eq!(sink.drops(), 0);
    drop(sink);

    let mut stored = log.list_calls(&CallFilter::default(), 0, 50).unwrap();
    stored.reverse();
    assert_eq!(stored.len(), outcomes.len());
    for (idx, (call, (_, expected))) in stored.iter().zip(&outcomes).enumerate() {
        assert_eq!(call.call_id, format!("call-{idx}"));
        assert_eq!(
            call.ts,
            Timestamp::parse_rfc3339(&format!("2026-11-21T10:00:0{idx}Z")).unwrap()
        );
        assert_eq!(call.tool_id, "ref:echo.say");
        assert_eq!(call.caller_id.is_some(), idx % 2 == 0);
        assert_eq!(call.granted_capabilities, ["read"]);
        assert_eq!(call.duration_ms, 7);
        assert_eq!(&call.outcome, expected);
        assert_eq!(call.tier, "hot");
        assert_eq!(call.dry_run, idx == 1);
        assert_eq!(call.secrets_resolved, idx == 2);
        assert_eq!(call.cursor_page, (idx == 3).then_some(4));
        assert_eq!(call.schema_version, atd_runtime::SCHEMA_VERSION);
    }
}
