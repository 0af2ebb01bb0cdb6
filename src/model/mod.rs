//! The record model: runs, run events and dispatch call events (SPEC §2).
//!
//! Plain data with serde on everything. The same types are written to disk (msgpack,
//! see `codec`), exported as JSON lines and handed to callers of the query API.
//!
//! # Invariants
//! - No I/O and no clock reads other than the `now` constructors.
//! - `CallEvent` and `Outcome` keep the JSON field names of SPEC §2.4 exactly; optional
//!   fields are omitted when absent. A test pins the JSON shape.
//! - Fields are only ever added, with `#[serde(default)]`, so old records stay readable.

mod time;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use serde_json::{Map, Value};
pub use time::Timestamp;

/// A map of string keys to JSON-like values: run inputs and event payloads.
pub type Payload = Map<String, Value>;

/// The lifecycle state of a run (SPEC §2.1).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Started and not finished yet.
    #[default]
    Running,
    Ok,
    Error,
    Timeout,
    BudgetExceeded,
    DryRun,
    Preempted,
    LaneBusy,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 8] = [
        Status::Running,
        Status::Ok,
        Status::Error,
        Status::Timeout,
        Status::BudgetExceeded,
        Status::DryRun,
        Status::Preempted,
        Status::LaneBusy,
    ];

    /// The snake_case name used in JSON and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::BudgetExceeded => "budget_exceeded",
            Status::DryRun => "dry_run",
            Status::Preempted => "preempted",
            Status::LaneBusy => "lane_busy",
        }
    }

    /// Whether the run has ended.
    pub const fn is_terminal(self) -> bool {
        !matches!(self, Status::Running)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "unknown status `{text}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// One summary row per run (SPEC §2.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Run {
    pub id: String,
    pub skill_id: String,
    pub caller_id: String,
    pub channel_id: String,
    pub inputs: Payload,
    pub started_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub status: Status,
    pub output: String,
    pub error: String,
    pub tool_calls_count: u64,
    pub runtime_seconds: f64,
    /// Empty for a top-level run.
    pub parent_run_id: String,
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
    pub total_thinking_tokens: u64,
}

impl Run {
    /// A running, top-level run with the given id and skill, started now.
    pub fn new(id: impl Into<String>, skill_id: impl Into<String>) -> Run {
        Run {
            id: id.into(),
            skill_id: skill_id.into(),
            started_at: Timestamp::now(),
            ..Run::default()
        }
    }

    /// Whether the run has no parent.
    pub fn is_top_level(&self) -> bool {
        self.parent_run_id.is_empty()
    }

    /// Applies a run's terminal state, as `finish_run` does (SPEC §3.3).
    pub fn apply_finish(&mut self, stats: &RunStats, finished_at: Timestamp) {
        self.take_finish(stats.clone(), finished_at);
    }

    /// [`Run::apply_finish`] taking the stats, whose strings move into the run.
    pub(crate) fn take_finish(&mut self, stats: RunStats, finished_at: Timestamp) {
        let RunStats {
            status,
            output,
            error,
            tool_calls,
            runtime_seconds,
            input_tokens,
            output_tokens,
            thinking_tokens,
        } = stats;
        self.status = status;
        self.output = output;
        self.error = error;
        self.tool_calls_count = tool_calls;
        self.runtime_seconds = runtime_seconds;
        self.total_input_tokens = input_tokens;
        self.total_output_tokens = output_tokens;
        self.total_thinking_tokens = thinking_tokens;
        self.finished_at = Some(finished_at);
    }
}

/// The terminal state handed to `finish_run` (SPEC §2.2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunStats {
    pub status: Status,
    pub output: String,
    pub error: String,
    pub tool_calls: u64,
    pub runtime_seconds: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub thinking_tokens: u64,
}

/// One row of a run's log (SPEC §2.3).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunEvent {
    pub run_id: String,
    /// Unique within the run; the first is 1.
    pub sequence: u64,
    /// `step`, `tool_call`, `tool_result`, `error`, `resolved_model` or a custom name.
    pub event_type: String,
    pub payload: Payload,
    pub created_at: Timestamp,
}

/// The schema version written into new call events.
pub const CALL_EVENT_SCHEMA_VERSION: u32 = 2;

/// One event per tool call a dispatch server ran (SPEC §2.4).
///
/// The JSON form keeps these field names exactly; `caller_id` and `cursor_page` are
/// omitted when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    pub ts: Timestamp,
    pub call_id: String,
    pub tool_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    #[serde(default)]
    pub granted_capabilities: Vec<String>,
    #[serde(default)]
    pub duration_ms: u64,
    pub outcome: Outcome,
    #[serde(default)]
    pub tier: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default)]
    pub secrets_resolved: bool,
    /// 1-based page index for paginated calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_page: Option<u32>,
}

/// How a dispatched call ended (SPEC §2.4): a tagged union with tag field `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Success,
    ExecutionFailed { code: String, retryable: bool },
    InvalidArgs { message: String },
    CapabilityDenied { missing: Vec<String> },
    RateLimited { retry_after_ms: Option<u64> },
    ToolNotFound,
}

/// The variant of an [`Outcome`] without its fields, for filtering and indexing.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Success,
    ExecutionFailed,
    InvalidArgs,
    CapabilityDenied,
    RateLimited,
    ToolNotFound,
}

impl OutcomeKind {
    /// Every kind, in declaration order.
    pub const ALL: [OutcomeKind; 6] = [
        OutcomeKind::Success,
        OutcomeKind::ExecutionFailed,
        OutcomeKind::InvalidArgs,
        OutcomeKind::CapabilityDenied,
        OutcomeKind::RateLimited,
        OutcomeKind::ToolNotFound,
    ];

    /// The `kind` tag used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::ExecutionFailed => "execution_failed",
            OutcomeKind::InvalidArgs => "invalid_args",
            OutcomeKind::CapabilityDenied => "capability_denied",
            OutcomeKind::RateLimited => "rate_limited",
            OutcomeKind::ToolNotFound => "tool_not_found",
        }
    }

    /// The kind's place in [`OutcomeKind::ALL`], which lists the kinds in declaration
    /// order: the number the index and the ingest slot store for it.
    pub const fn index(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutcomeKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        OutcomeKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = OutcomeKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown outcome kind `{text}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl Outcome {
    /// The variant without its fields.
    pub const fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Success => OutcomeKind::Success,
            Outcome::ExecutionFailed { .. } => OutcomeKind::ExecutionFailed,
            Outcome::InvalidArgs { .. } => OutcomeKind::InvalidArgs,
            Outcome::CapabilityDenied { .. } => OutcomeKind::CapabilityDenied,
            Outcome::RateLimited { .. } => OutcomeKind::RateLimited,
            Outcome::ToolNotFound => OutcomeKind::ToolNotFound,
        }
    }
}

/// Why an event was not written (SPEC §7 drop accounting).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The bounded ingest buffer was full.
    QueueFull,
    /// The encoded event was larger than the record limit.
    Oversized,
    /// The event arrived after the log was closed.
    AfterShutdown,
    /// The event failed validation (a duplicate id or sequence, an empty id, ...).
    Rejected,
    /// A write or sync failed, or the log was poisoned by an earlier failure.
    IoFailure,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::Oversized,
        DropReason::AfterShutdown,
        DropReason::Rejected,
        DropReason::IoFailure,
    ];

    /// The snake_case name used in JSON and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Oversized => "oversized",
            DropReason::AfterShutdown => "after_shutdown",
            DropReason::Rejected => "rejected",
            DropReason::IoFailure => "io_failure",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_outcome_kind_is_numbered_by_its_place_in_all() {
        for (i, kind) in OutcomeKind::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(kind.index()), i, "{kind:?}");
        }
    }

    fn call(outcome: Outcome) -> CallEvent {
        CallEvent {
            ts: Timestamp::parse_rfc3339("2026-11-21T10:00:00Z").unwrap(),
            call_id: "call-1".into(),
            tool_id: "ref:echo.say".into(),
            caller_id: None,
            granted_capabilities: vec!["read".into()],
            duration_ms: 17,
            outcome,
            tier: "warm".into(),
            dry_run: false,
            schema_version: CALL_EVENT_SCHEMA_VERSION,
            secrets_resolved: false,
            cursor_page: None,
        }
    }

    #[test]
    fn call_event_json_keeps_the_spec_field_names_and_omits_absent_options() {
        let value = serde_json::to_value(call(Outcome::Success)).unwrap();
        assert_eq!(
            value,
            json!({
                "ts": "2026-11-21T10:00:00Z",
                "call_id": "call-1",
                "tool_id": "ref:echo.say",
                "granted_capabilities": ["read"],
                "duration_ms": 17,
                "outcome": {"kind": "success"},
                "tier": "warm",
                "dry_run": false,
                "schema_version": 2,
                "secrets_resolved": false
            })
        );
    }

    #[test]
    fn every_outcome_is_tagged_by_kind_in_snake_case() {
        let cases = [
            (Outcome::Success, json!({"kind": "success"})),
            (
                Outcome::ExecutionFailed {
                    code: "E".into(),
                    retryable: true,
                },
                json!({"kind": "execution_failed", "code": "E", "retryable": true}),
            ),
            (
                Outcome::InvalidArgs {
                    message: "m".into(),
                },
                json!({"kind": "invalid_args", "message": "m"}),
            ),
            (
                Outcome::CapabilityDenied {
                    missing: vec!["x".into()],
                },
                json!({"kind": "capability_denied", "missing": ["x"]}),
            ),
            (
                Outcome::RateLimited {
                    retry_after_ms: None,
                },
                json!({"kind": "rate_limited", "retry_after_ms": null}),
            ),
            (Outcome::ToolNotFound, json!({"kind": "tool_not_found"})),
        ];
        for (outcome, expected) in cases {
            assert_eq!(outcome.kind().as_str(), expected["kind"]);
            assert_eq!(serde_json::to_value(&outcome).unwrap(), expected);
            assert_eq!(
                serde_json::from_value::<Outcome>(expected).unwrap(),
                outcome
            );
        }
    }

    #[test]
    fn call_event_reads_json_lines_written_by_older_producers() {
        // A v1 line: no secrets_resolved, no cursor_page; caller_id present.
        let line = r#"{"ts":"2026-01-02T03:04:05.678+00:00","call_id":"c","tool_id":"t","caller_id":"me","granted_capabilities":[],"duration_ms":3,"outcome":{"kind":"rate_limited","retry_after_ms":250},"tier":"hot","dry_run":true,"schema_version":1}"#;
        let event: CallEvent = serde_json::from_str(line).unwrap();
        assert_eq!(event.caller_id.as_deref(), Some("me"));
        assert_eq!(
            event.outcome,
            Outcome::RateLimited {
                retry_after_ms: Some(250)
            }
        );
        assert!(!event.secrets_resolved);
        assert_eq!(event.cursor_page, None);
    }

    #[test]
    fn status_names_round_trip() {
        for status in Status::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        }
        assert!("done".parse::<Status>().is_err());
    }

    #[test]
    fn finish_applies_every_stat() {
        let mut run = Run::new("r", "s");
        let stats = RunStats {
            status: Status::Ok,
            output: "out".into(),
            error: "".into(),
            tool_calls: 3,
            runtime_seconds: 1.5,
            input_tokens: 10,
            output_tokens: 20,
            thinking_tokens: 30,
        };
        let at = Timestamp::from_unix_millis(42);
        run.apply_finish(&stats, at);
        assert_eq!(run.status, Status::Ok);
        assert_eq!(run.output, "out");
        assert_eq!(run.tool_calls_count, 3);
        assert_eq!(run.runtime_seconds, 1.5);
        assert_eq!(
            (
                run.total_input_tokens,
                run.total_output_tokens,
                run.total_thinking_tokens
            ),
            (10, 20, 30)
        );
        assert_eq!(run.finished_at, Some(at));
    }
}
