//! `RunWriter::close` and the disabled writer (SPEC §4), read back through the
//! `Storage` API: close fills the tool-call count and the token totals and finishes the
//! run; a second close changes nothing; a close made after the caller's own deadline
//! has passed still lands, within the writer's bounded wait; a disabled writer records
//! nothing and every call on it is a no-op.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog::model::{Payload, Run, RunStats, Status};
use auditlog::writer::TokenUsage;
use auditlog::{
    AuditLog, CloseOutcome, Config, Durability, IngestConfig, Recorder, RunWriter, StepObservation,
    Storage, ToolCall,
};
use tempfile::TempDir;

fn open(run_id: &str) -> (TempDir, Arc<AuditLog>, Recorder) {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    log.start_run(&Run::new(run_id, "skill")).unwrap();
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    (dir, log, recorder)
}

const CALL: ToolCall<'static> = ToolCall {
    name: "search",
    args: "{}",
    id: "c",
};

fn ok() -> RunStats {
    RunStats {
        status: Status::Ok,
        output: "done".into(),
        runtime_seconds: 1.5,
        ..RunStats::default()
    }
}

#[test]
fn close_fills_tool_calls_and_token_totals_and_finishes_the_run() {
    let (_dir, log, recorder) = open("r");
    let writer = RunWriter::new(recorder.clone(), "r");
    writer.on_step(
        1,
        &StepObservation {
            usage: TokenUsage {
                input: 11,
                output: 22,
                thinking: 33,
                cache_read: 44,
            },
            ..StepObservation::default()
        },
    );
    writer.on_tool(&CALL, "x");
    writer.on_tool(&CALL, "y");
    let stats = RunStats {
        tool_calls: 99, // the writer's own count wins
        ..ok()
    };
    assert_eq!(writer.close(&stats), CloseOutcome::Durable);
    // `Durable` means no flush is needed before reading.
    let run = log.get_run("r").unwrap();
    assert_eq!(run.status, Status::Ok);
    assert_eq!(run.output, "done");
    assert_eq!(run.tool_calls_count, 2);
    assert_eq!(
        (
            run.total_input_tokens,
            run.total_output_tokens,
            run.total_thinking_tokens
        ),
        (11, 22, 33)
    );
    assert!(run.finished_at.is_some());
}

#[test]
fn token_totals_the_caller_gives_are_kept() {
    let (_dir, log, recorder) = open("r");
    let writer = RunWriter::new(recorder.clone(), "r");
    writer.on_step(
        1,
        &StepObservation {
            usage: TokenUsage {
                input: 5,
                output: 5,
                ..TokenUsage::default()
            },
            ..StepObservation::default()
        },
    );
    let stats = RunStats {
        input_tokens: 1000,
        ..ok()
    };
    assert_eq!(writer.close(&stats), CloseOutcome::Durable);
    let run = log.get_run("r").unwrap();
    assert_eq!((run.total_input_tokens, run.total_output_tokens), (1000, 5));
}

#[test]
fn close_is_idempotent() {
    let (_dir, log, recorder) = open("r");
    let writer = RunWriter::new(recorder.clone(), "r");
    writer.on_tool(&CALL, "x");
    assert_eq!(writer.close(&ok()), CloseOutcome::Durable);
    let first = log.get_run("r").unwrap();
    let failed = RunStats {
        status: Status::Error,
        error: "late".into(),
        ..RunStats::default()
    };
    assert_eq!(writer.close(&failed), CloseOutcome::AlreadyClosed);
    assert_eq!(writer.close(&ok()), CloseOutcome::AlreadyClosed);
    recorder.flush().unwrap();
    assert_eq!(
        log.get_run("r").unwrap(),
        first,
        "the second close wrote nothing"
    );
}

#[test]
fn close_after_the_callers_deadline_still_finishes_the_run_within_a_bounded_wait() {
    let (_dir, log, recorder) = open("r");
    let writer = RunWriter::new(recorder.clone(), "r").close_wait(Duration::from_secs(5));
    // The caller's run had a 10 ms deadline, and it has passed when cleanup runs.
    let caller_deadline = Instant::now() + Duration::from_millis(10);
    writer.on_step(1, &StepObservation::default());
    std::thread::sleep(Duration::from_millis(20));
    assert!(Instant::now() > caller_deadline);
    let started = Instant::now();
    let outcome = writer.close(&RunStats {
        status: Status::Timeout,
        error: "deadline exceeded".into(),
        ..RunStats::default()
    });
    assert!(started.elapsed() < Duration::from_secs(5), "bounded wait");
    assert_eq!(outcome, CloseOutcome::Durable);
    let run = log.get_run("r").unwrap();
    assert_eq!(run.status, Status::Timeout);
    assert_eq!(run.error, "deadline exceeded");
}

#[test]
fn close_waits_no_longer_than_its_bound_even_with_no_wait_at_all() {
    let (_dir, log, recorder) = open("r");
    let writer = RunWriter::new(recorder.clone(), "r").close_wait(Duration::ZERO);
    let started = Instant::now();
    let outcome = writer.close(&ok());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(outcome, CloseOutcome::Durable | CloseOutcome::Pending),
        "{outcome:?}"
    );
    // Pending or not, the finish was handed over and lands.
    recorder.flush().unwrap();
    assert_eq!(log.get_run("r").unwrap().status, Status::Ok);
}

#[test]
fn a_disabled_writer_is_a_valid_value_whose_every_call_is_a_no_op() {
    let (_dir, log, recorder) = open("r");
    let writer = RunWriter::disabled();
    assert!(!writer.is_enabled());
    assert_eq!(writer.run_id(), None);
    writer.on_step(
        1,
        &StepObservation {
            text: "t",
            model: Some("m"),
            usage: TokenUsage {
                input: 1,
                ..TokenUsage::default()
            },
            ..StepObservation::default()
        },
    );
    writer.on_tool(&CALL, "r");
    writer.log_event("custom", &Payload::new());
    writer.log_error("e");
    assert_eq!(writer.token_totals(), TokenUsage::default());
    assert_eq!(writer.n_tool_calls(), 0);
    assert_eq!(writer.close(&ok()), CloseOutcome::Disabled);
    assert_eq!(writer.close(&ok()), CloseOutcome::Disabled);
    recorder.flush().unwrap();
    assert!(log.list_logs_by_run("r").unwrap().is_empty());
    assert_eq!(log.get_run("r").unwrap().status, Status::Running);
    assert_eq!(recorder.metrics().enqueued, 0);
}

#[test]
fn a_close_with_a_status_that_is_not_terminal_is_refused_and_reported() {
    let (_dir, log, recorder) = open("r");
    let writer = RunWriter::new(recorder.clone(), "r");
    let outcome = writer.close(&RunStats::default());
    assert!(matches!(outcome, CloseOutcome::Dropped(_)), "{outcome:?}");
    assert_eq!(writer.n_dropped(), 1);
    recorder.flush().unwrap();
    assert_eq!(log.get_run("r").unwrap().status, Status::Running);
}
