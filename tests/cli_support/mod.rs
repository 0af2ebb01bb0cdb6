//! Helpers shared by the CLI tests: a small store with known contents, built through
//! the library, and a way to run the real `auditlog` binary on it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use auditlog::model::{
    CALL_EVENT_SCHEMA_VERSION, CallEvent, Outcome, Payload, Run, RunEvent, RunStats, Status,
    Timestamp,
};
use auditlog::{AuditLog, Config, Storage};

pub fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// A run of the store: id, skill, caller, parent, started_at, final status (None while
/// running).
pub type RunRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<Status>,
);

/// The runs of the store, in start order.
pub const RUNS: &[RunRow] = &[
    (
        "old-1",
        "summarize",
        "carol",
        "",
        "2026-01-01T08:00:00Z",
        Some(Status::Ok),
    ),
    (
        "root-1",
        "summarize",
        "alice",
        "",
        "2026-11-20T10:00:00Z",
        Some(Status::Ok),
    ),
    (
        "child-1",
        "triage",
        "alice",
        "root-1",
        "2026-11-20T10:01:00Z",
        Some(Status::Error),
    ),
    (
        "grand-1",
        "triage",
        "alice",
        "child-1",
        "2026-11-20T10:02:00Z",
        None,
    ),
    (
        "child-2",
        "research",
        "alice",
        "root-1",
        "2026-11-20T10:03:00Z",
        Some(Status::Ok),
    ),
    (
        "root-2",
        "triage",
        "bob",
        "",
        "2026-11-21T09:00:00Z",
        Some(Status::Ok),
    ),
    (
        "dry-1",
        "triage",
        "bob",
        "",
        "2026-11-21T11:00:00Z",
        Some(Status::DryRun),
    ),
];

/// Events, by run: (run id, event types in sequence order).
pub const EVENTS: &[(&str, &[&str])] = &[
    ("old-1", &["step"]),
    (
        "root-1",
        &["resolved_model", "step", "tool_call", "tool_result"],
    ),
    ("child-1", &["step", "error"]),
    ("root-2", &["step", "tool_call", "tool_result"]),
];

pub const N_RUNS: u64 = 7;
pub const N_EVENTS: u64 = 10;
pub const N_CALLS: u64 = 3;

/// A store in `dir` holding exactly `RUNS`, `EVENTS` and three call events, closed.
pub fn build_store(dir: &Path) {
    let log = AuditLog::open(Config::new(dir)).unwrap();
    for &(id, skill, caller, parent, started, status) in RUNS {
        let mut run = Run::new(id, skill);
        run.caller_id = caller.into();
        run.channel_id = "slack".into();
        run.parent_run_id = parent.into();
        run.started_at = at(started);
        run.inputs
            .insert("prompt".into(), format!("do {id}").into());
        log.start_run(&run).unwrap();
        let events = EVENTS
            .iter()
            .find(|(r, _)| *r == id)
            .map_or(&[][..], |e| e.1);
        for (i, event_type) in events.iter().enumerate() {
            let mut payload = Payload::new();
            if *event_type == "tool_call" || *event_type == "tool_result" {
                payload.insert("id".into(), format!("call-{id}").into());
                payload.insert("name".into(), "web.search".into());
            } else {
                payload.insert("text".into(), format!("{event_type} of {id}").into());
            }
            log.append_log(&RunEvent {
                run_id: id.into(),
                sequence: i as u64 + 1,
                event_type: (*event_type).into(),
                payload,
                created_at: Timestamp::from_unix_nanos(
                    at(started).unix_nanos() + (i as i64 + 1) * 1_000_000_000,
                ),
            })
            .unwrap();
        }
        if let Some(status) = status {
            let stats = RunStats {
                status,
                output: format!("output of {id}"),
                error: if status == Status::Error {
                    "tool failed".into()
                } else {
                    String::new()
                },
                tool_calls: 1,
                runtime_seconds: 1.5,
                input_tokens: 100,
                output_tokens: 20,
                thinking_tokens: 5,
            };
            let finished = Timestamp::from_unix_nanos(at(started).unix_nanos() + 30_000_000_000);
            log.finish_run_at(id, &stats, finished).unwrap();
        }
    }
    for (call_id, caller, tool, outcome, ts) in [
        (
            "call-root-1",
            "alice",
            "web.search",
            Outcome::Success,
            "2026-11-20T10:00:03Z",
        ),
        (
            "call-root-2",
            "bob",
            "web.search",
            Outcome::ExecutionFailed {
                code: "TIMEOUT".into(),
                retryable: true,
            },
            "2026-11-21T09:00:03Z",
        ),
        (
            "call-x",
            "alice",
            "fs.read",
            Outcome::RateLimited {
                retry_after_ms: Some(250),
            },
            "2026-11-21T09:30:00Z",
        ),
    ] {
        log.record_call(&CallEvent {
            ts: at(ts),
            call_id: call_id.into(),
            tool_id: tool.into(),
            caller_id: Some(caller.into()),
            granted_capabilities: vec!["read".into()],
            duration_ms: 12,
            outcome,
            tier: "warm".into(),
            dry_run: false,
            schema_version: CALL_EVENT_SCHEMA_VERSION,
            secrets_resolved: false,
            cursor_page: None,
        })
        .unwrap();
    }
    log.close().unwrap();
}

/// Runs the real binary with `args`.
pub fn auditlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the auditlog binary runs")
}

/// Runs the binary on the store in `dir`; asserts it succeeded; returns its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--dir", dir.to_str().unwrap()]);
    let out = auditlog(&all);
    assert!(
        out.status.success(),
        "auditlog {all:?} failed with {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Like [`ok`] with `--json`, parsed.
pub fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(dir, &all)).expect("--json prints one JSON document")
}

/// Runs the binary on the store in `dir`; asserts it failed; returns (code, stdout, stderr).
pub fn fails(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--dir", dir.to_str().unwrap()]);
    let out = auditlog(&all);
    assert!(!out.status.success(), "auditlog {all:?} should have failed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
