//! The typed session helpers of SPEC §5, read back through the `Storage` API: each
//! event type with exactly its fields, optional ones absent unless given, the
//! 200-character caps (no marker) never splitting a multi-byte character, a sampling
//! scope routed to `iteration_index` or `sampling_context`, `via_script: true`, an own
//! emission `timestamp` on every entry, and the session's own sequence counter.

use std::sync::Arc;

use auditlog::model::{RunEvent, Timestamp};
use auditlog::session::Phase;
use auditlog::session::{
    PhaseEvent, PhaseStatus, SamplingEvent, SamplingScope, ScriptCallEvent, VerdictEvent,
};
use auditlog::{AuditLog, Config, Durability, IngestConfig, Recorder, Session, Storage};
use serde_json::json;
use tempfile::TempDir;

fn open(session_id: &str) -> (TempDir, Arc<AuditLog>, Recorder, Session) {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let session = Session::new(recorder.clone(), session_id);
    (dir, log, recorder, session)
}

fn events(log: &AuditLog, recorder: &Recorder, session_id: &str) -> Vec<RunEvent> {
    recorder.flush().unwrap();
    log.list_logs_by_run(session_id).unwrap()
}

/// The payload without its emission timestamp, which is checked on its own.
fn without_timestamp(event: &RunEvent) -> serde_json::Value {
    let mut payload = event.payload.clone();
    let stamp = payload
        .remove("timestamp")
        .expect("every entry has a timestamp");
    let stamp = Timestamp::parse_rfc3339(stamp.as_str().unwrap()).unwrap();
    assert!((stamp.unix_millis() - event.created_at.unix_millis()).abs() < 1000);
    serde_json::to_value(payload).unwrap()
}

fn sampling() -> SamplingEvent<'static> {
    SamplingEvent {
        scope: SamplingScope::None,
        purpose: "lessons",
        status: "disabled",
        backend: "none",
        model_id: None,
        model_output_bytes: None,
        validation_error: None,
        input_tokens: None,
        output_tokens: None,
    }
}

#[test]
fn a_phase_event_carries_its_fields_and_an_error_only_when_given() {
    let (_dir, log, recorder, session) = open("s");
    let started_at = Timestamp::parse_rfc3339("2026-11-21T10:00:00Z").unwrap();
    let ended_at = Timestamp::parse_rfc3339("2026-11-21T10:00:02Z").unwrap();
    let phase = PhaseEvent {
        iteration_index: 3,
        phase: Phase::Execute,
        status: PhaseStatus::Succeeded,
        started_at,
        ended_at,
        error_message: None,
    };
    session.phase(&phase);
    session.phase(&PhaseEvent {
        status: PhaseStatus::Failed,
        error_message: Some("boom"),
        ..phase
    });
    session.phase(&PhaseEvent {
        error_message: Some(""),
        ..phase
    });
    let events = events(&log, &recorder, "s");
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(events.iter().all(|e| e.event_type == "mission_phase_event"));
    let base = json!({
        "iteration_index": 3,
        "phase": "execute",
        "phase_status": "succeeded",
        "phase_started_at": started_at.to_rfc3339(),
        "phase_ended_at": ended_at.to_rfc3339(),
    });
    assert_eq!(without_timestamp(&events[0]), base);
    let mut failed = base.clone();
    failed["phase_status"] = "failed".into();
    failed["error_message"] = "boom".into();
    assert_eq!(without_timestamp(&events[1]), failed);
    assert_eq!(
        without_timestamp(&events[2]),
        base,
        "an empty message is left out"
    );
}

#[test]
fn a_verdict_event_carries_a_revision_rationale_only_when_given() {
    let (_dir, log, recorder, session) = open("s");
    let verdict = VerdictEvent {
        iteration_index: 2,
        verdict: "continue",
        verdict_reason: "criteria unmet",
        revision_rationale: None,
    };
    session.verdict(&verdict);
    session.verdict(&VerdictEvent {
        verdict: "adjust",
        revision_rationale: Some("narrow the search"),
        ..verdict
    });
    let events = events(&log, &recorder, "s");
    assert_eq!(
        without_timestamp(&events[0]),
        json!({"iteration_index": 2, "verdict": "continue", "verdict_reason": "criteria unmet"})
    );
    assert_eq!(
        without_timestamp(&events[1]),
        json!({"iteration_index": 2, "verdict": "adjust", "verdict_reason": "criteria unmet",
               "revision_rationale": "narrow the search"})
    );
    assert_eq!(events[1].event_type, "mission_verdict_event");
}

#[test]
fn a_sampling_event_routes_its_scope_and_records_optional_fields_only_when_present() {
    let (_dir, log, recorder, session) = open("s");
    session.sampling(&SamplingEvent {
        scope: SamplingScope::Iteration(4),
        status: "used",
        backend: "mcp",
        model_id: Some("m-1"),
        model_output_bytes: Some(812),
        input_tokens: Some(90),
        output_tokens: Some(30),
        ..sampling()
    });
    session.sampling(&SamplingEvent {
        scope: SamplingScope::Context("final_report"),
        status: "rejected",
        validation_error: Some("not json"),
        model_id: Some(""),
        ..sampling()
    });
    session.sampling(&SamplingEvent {
        scope: SamplingScope::Context(""),
        ..sampling()
    });
    session.sampling(&sampling());
    let events = events(&log, &recorder, "s");
    assert!(
        events
            .iter()
            .all(|e| e.event_type == "mission_sampling_event")
    );
    assert_eq!(
        without_timestamp(&events[0]),
        json!({"iteration_index": 4, "sampling_purpose": "lessons", "sampling_status": "used",
               "sampling_backend": "mcp", "sampling_model_id": "m-1",
               "model_output_bytes": 812, "input_tokens": 90, "output_tokens": 30})
    );
    assert_eq!(
        without_timestamp(&events[1]),
        json!({"sampling_context": "final_report", "sampling_purpose": "lessons",
               "sampling_status": "rejected", "sampling_backend": "none",
               "validation_error": "not json"})
    );
    let bare = json!({"sampling_purpose": "lessons", "sampling_status": "disabled",
                      "sampling_backend": "none"});
    assert_eq!(
        without_timestamp(&events[2]),
        bare,
        "an empty label is left out"
    );
    assert_eq!(without_timestamp(&events[3]), bare);
}

#[test]
fn a_script_call_event_is_marked_via_script() {
    let (_dir, log, recorder, session) = open("s");
    session.script_call(&ScriptCallEvent {
        iteration_index: 1,
        tool_name: "fetch",
        tool_status: "failed",
        duration_ms: 42,
        error_message: Some("refused"),
    });
    let events = events(&log, &recorder, "s");
    assert_eq!(events[0].event_type, "mission_script_call_event");
    assert_eq!(
        without_timestamp(&events[0]),
        json!({"via_script": true, "iteration_index": 1, "tool_name": "fetch",
               "tool_status": "failed", "duration_ms": 42, "error_message": "refused"})
    );
}

#[test]
fn error_messages_and_validation_errors_are_capped_at_200_characters_on_char_boundaries() {
    let (_dir, log, recorder, session) = open("s");
    // 199 one-byte characters then two-byte ones: a 200-byte cut would split an `é`.
    let long = format!("{}{}", "e".repeat(199), "é".repeat(50));
    let capped = format!("{}é", "e".repeat(199));
    let at = Timestamp::from_unix_millis(0);
    session.phase(&PhaseEvent {
        iteration_index: 0,
        phase: Phase::Propose,
        status: PhaseStatus::Failed,
        started_at: at,
        ended_at: at,
        error_message: Some(&long),
    });
    session.sampling(&SamplingEvent {
        validation_error: Some(&long),
        ..sampling()
    });
    session.script_call(&ScriptCallEvent {
        iteration_index: 0,
        tool_name: "t",
        tool_status: "failed",
        duration_ms: 1,
        error_message: Some(&long),
    });
    let exact = "z".repeat(200);
    session.script_call(&ScriptCallEvent {
        iteration_index: 0,
        tool_name: "t",
        tool_status: "failed",
        duration_ms: 1,
        error_message: Some(&exact),
    });
    let events = events(&log, &recorder, "s");
    assert_eq!(events[0].payload["error_message"], capped.as_str());
    assert_eq!(events[1].payload["validation_error"], capped.as_str());
    assert_eq!(events[2].payload["error_message"], capped.as_str());
    assert_eq!(events[3].payload["error_message"], exact.as_str());
}

#[test]
fn every_entry_has_its_own_emission_timestamp() {
    let (_dir, log, recorder, session) = open("s");
    let at = Timestamp::from_unix_millis(0);
    session.phase(&PhaseEvent {
        iteration_index: 0,
        phase: Phase::Decide,
        status: PhaseStatus::Succeeded,
        started_at: at,
        ended_at: at,
        error_message: None,
    });
    std::thread::sleep(std::time::Duration::from_millis(5));
    session.verdict(&VerdictEvent {
        iteration_index: 0,
        verdict: "stop",
        verdict_reason: "done",
        revision_rationale: None,
    });
    let events = events(&log, &recorder, "s");
    let stamps: Vec<Timestamp> = events
        .iter()
        .map(|e| Timestamp::parse_rfc3339(e.payload["timestamp"].as_str().unwrap()).unwrap())
        .collect();
    assert!(stamps[0] < stamps[1], "emission order: {stamps:?}");
    assert_ne!(stamps[0], at, "not the phase's own times");
}
