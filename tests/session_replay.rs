//! `session::replay` (SPEC §5) over events recorded by `Session` and read back through
//! the `Storage` API: phases accumulate into the current iteration and a verdict closes
//! it; a phase whose index jumps ahead before a verdict flushes the open iteration with
//! no verdict; an iteration still open at the end is flushed the same way; a verdict
//! with no phases makes an iteration of its own; other event types and other sessions
//! do not change the history.

use std::sync::Arc;

use auditlog::model::Timestamp;
use auditlog::session::{
    Phase, PhaseEvent, PhaseStatus, SamplingEvent, SamplingScope, ScriptCallEvent, VerdictEvent,
};
use auditlog::{AuditLog, Config, Durability, IngestConfig, Iteration, Recorder, Session, replay};
use tempfile::TempDir;

fn open() -> (TempDir, Arc<AuditLog>, Recorder) {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    (dir, log, recorder)
}

fn phase(session: &Session, iteration_index: u64, phase: Phase) {
    let at = Timestamp::from_unix_millis(1_000 * iteration_index as i64);
    session.phase(&PhaseEvent {
        iteration_index,
        phase,
        status: PhaseStatus::Succeeded,
        started_at: at,
        ended_at: at,
        error_message: None,
    });
}

fn verdict(session: &Session, iteration_index: u64, verdict: &str) {
    session.verdict(&VerdictEvent {
        iteration_index,
        verdict,
        verdict_reason: "because",
        revision_rationale: (verdict == "adjust").then_some("revise"),
    });
}

/// (index, phase names, verdict) of each iteration.
fn summary(iterations: &[Iteration]) -> Vec<(Option<u64>, Vec<&str>, Option<&str>)> {
    iterations
        .iter()
        .map(|it| {
            (
                it.iteration_index,
                it.phases.iter().map(|p| p.phase.as_str()).collect(),
                it.verdict.as_deref(),
            )
        })
        .collect()
}

#[test]
fn phases_accumulate_and_a_verdict_closes_the_iteration() {
    let (_dir, log, recorder) = open();
    let session = Session::new(recorder.clone(), "s");
    for index in 0..2 {
        for p in [
            Phase::Propose,
            Phase::Execute,
            Phase::Observe,
            Phase::Evaluate,
            Phase::Decide,
        ] {
            phase(&session, index, p);
        }
        verdict(&session, index, if index == 0 { "adjust" } else { "stop" });
    }
    recorder.flush().unwrap();
    let iterations = replay(&*log, "s").unwrap();
    let all = vec!["propose", "execute", "observe", "evaluate", "decide"];
    assert_eq!(
        summary(&iterations),
        [
            (Some(0), all.clone(), Some("adjust")),
            (Some(1), all, Some("stop"))
        ]
    );
    assert_eq!(iterations[0].verdict_reason.as_deref(), Some("because"));
    assert_eq!(iterations[0].revision_rationale.as_deref(), Some("revise"));
    assert_eq!(iterations[1].revision_rationale, None);
    assert_eq!(iterations[0].phases[0].status, "succeeded");
    assert_eq!(
        iterations[1].phases[0].started_at,
        Timestamp::from_unix_millis(1_000).to_rfc3339()
    );
}

#[test]
fn a_phase_jumping_ahead_before_a_verdict_flushes_the_open_iteration_without_one() {
    let (_dir, log, recorder) = open();
    let session = Session::new(recorder.clone(), "s");
    phase(&session, 0, Phase::Propose);
    phase(&session, 0, Phase::Execute);
    phase(&session, 1, Phase::Propose);
    verdict(&session, 1, "stop");
    recorder.flush().unwrap();
    let iterations = replay(&*log, "s").unwrap();
    assert_eq!(
        summary(&iterations),
        [
            (Some(0), vec!["propose", "execute"], None),
            (Some(1), vec!["propose"], Some("stop"))
        ]
    );
    assert_eq!(iterations[0].verdict_reason, None);
    assert_eq!(iterations[0].revision_rationale, None);
}

#[test]
fn an_iteration_open_at_the_end_is_flushed_without_a_verdict() {
    let (_dir, log, recorder) = open();
    let session = Session::new(recorder.clone(), "s");
    phase(&session, 0, Phase::Propose);
    verdict(&session, 0, "continue");
    phase(&session, 1, Phase::Propose);
    phase(&session, 1, Phase::Execute);
    recorder.flush().unwrap();
    let iterations = replay(&*log, "s").unwrap();
    assert_eq!(
        summary(&iterations),
        [
            (Some(0), vec!["propose"], Some("continue")),
            (Some(1), vec!["propose", "execute"], None)
        ]
    );
}

#[test]
fn a_verdict_with_no_phases_makes_an_iteration_of_its_own() {
    let (_dir, log, recorder) = open();
    let session = Session::new(recorder.clone(), "s");
    phase(&session, 0, Phase::Decide);
    verdict(&session, 0, "continue");
    verdict(&session, 1, "cadence_skip");
    phase(&session, 2, Phase::Propose);
    verdict(&session, 2, "stop");
    recorder.flush().unwrap();
    let iterations = replay(&*log, "s").unwrap();
    assert_eq!(
        summary(&iterations),
        [
            (Some(0), vec!["decide"], Some("continue")),
            (Some(1), vec![], Some("cadence_skip")),
            (Some(2), vec!["propose"], Some("stop"))
        ]
    );
}

#[test]
fn other_event_types_and_other_sessions_do_not_change_the_history() {
    let (_dir, log, recorder) = open();
    let session = Session::new(recorder.clone(), "s");
    let other = Session::new(recorder.clone(), "other");
    phase(&session, 0, Phase::Propose);
    phase(&other, 5, Phase::Propose);
    verdict(&other, 5, "stop");
    session.sampling(&SamplingEvent {
        scope: SamplingScope::Iteration(0),
        purpose: "p",
        status: "used",
        backend: "b",
        model_id: None,
        model_output_bytes: None,
        validation_error: None,
        input_tokens: None,
        output_tokens: None,
    });
    session.script_call(&ScriptCallEvent {
        iteration_index: 7,
        tool_name: "t",
        tool_status: "ok",
        duration_ms: 1,
        error_message: None,
    });
    phase(&session, 0, Phase::Execute);
    verdict(&session, 0, "stop");
    recorder.flush().unwrap();
    let iterations = replay(&*log, "s").unwrap();
    assert_eq!(
        summary(&iterations),
        [(Some(0), vec!["propose", "execute"], Some("stop"))]
    );
    assert!(replay(&*log, "never-recorded").unwrap().is_empty());
}
