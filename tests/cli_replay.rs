//! `auditlog replay SESSION` rebuilds a session's iteration history from a real store
//! (SPEC §5): a closed iteration with its verdict, and one flushed with no verdict when
//! the next iteration began; a table by default, the iterations with `--json`.

mod cli_support;

use std::sync::Arc;

use auditlog::model::Timestamp;
use auditlog::session::{Phase, PhaseEvent, PhaseStatus, VerdictEvent};
use auditlog::{AuditLog, Config, IngestConfig, Recorder, Session};
use cli_support::{json, ok};

#[test]
fn replay_prints_the_iterations_of_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let log = Arc::new(AuditLog::open(Config::new(d)).unwrap());
        let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
        let session = Session::new(recorder.clone(), "session-1");
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        let phase = |iteration_index, phase| PhaseEvent {
            iteration_index,
            phase,
            status: PhaseStatus::Succeeded,
            started_at: at,
            ended_at: at,
            error_message: None,
        };
        session.phase(&phase(0, Phase::Propose));
        session.phase(&phase(0, Phase::Execute));
        session.verdict(&VerdictEvent {
            iteration_index: 0,
            verdict: "adjust",
            verdict_reason: "one source disagreed",
            revision_rationale: None,
        });
        session.phase(&phase(1, Phase::Propose));
        // Iteration 2 begins before iteration 1 got a verdict.
        session.phase(&phase(2, Phase::Propose));
        recorder.flush().unwrap();
        recorder.close(std::time::Duration::from_secs(30));
        drop(session);
        drop(recorder);
        Arc::try_unwrap(log).unwrap().close().unwrap();
    }
    let replayed = json(d, &["replay", "session-1"]);
    let iterations = replayed["iterations"].as_array().unwrap();
    assert_eq!(iterations.len(), 3, "{replayed}");
    assert_eq!(iterations[0]["verdict"], "adjust");
    assert_eq!(iterations[0]["phases"].as_array().unwrap().len(), 2);
    assert!(
        iterations[1]["verdict"].is_null(),
        "flushed with no verdict: {replayed}"
    );
    assert!(
        iterations[2]["verdict"].is_null(),
        "open at the end: {replayed}"
    );
    let table = ok(d, &["replay", "session-1"]);
    assert!(
        table.contains("one source disagreed") && table.contains("3 iteration(s)"),
        "{table}"
    );
    assert!(ok(d, &["replay", "no-such-session"]).contains("no phase or verdict events"));
}
