//! Iteration sessions (SPEC §5): typed phase, verdict, sampling and script-call events,
//! and `replay`, which rebuilds a session's iteration history from them.
//!
//! Where it sits: beside `writer`, in front of [`Recorder`] for recording and on top
//! of [`Storage`] for replay. A session id is used as the run id of its events, and a
//! [`Session`] numbers them itself (the first is 1), as a `RunWriter` does for a run.
//!
//! # Invariants
//! - Recording never blocks and never fails the caller; a refused record is counted
//!   (`n_dropped`).
//! - Every event carries its own emission `timestamp` (RFC 3339, read when the helper
//!   is called), distinct from the phase's `phase_started_at` / `phase_ended_at`.
//! - Error messages and validation errors are cut to [`SESSION_TEXT_CHARS_MAX`]
//!   characters, with no marker, never splitting a UTF-8 character.
//! - Optional fields are absent, never null, when not given.
//! - `replay` is a pure fold over the stored events in sequence order; it reads only
//!   the session's own events and ignores event types it does not know.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::ingest::{EventRef, FieldValue, Recorder};
use crate::limits::SESSION_TEXT_CHARS_MAX;
use crate::model::{Payload, Timestamp, Value};
use crate::query::Storage;
use crate::writer::cut_chars;

/// The event type of a phase event.
pub const EVENT_TYPE_PHASE: &str = "mission_phase_event";
/// The event type of a verdict event.
pub const EVENT_TYPE_VERDICT: &str = "mission_verdict_event";
/// The event type of a sampling event.
pub const EVENT_TYPE_SAMPLING: &str = "mission_sampling_event";
/// The event type of a script-call event.
pub const EVENT_TYPE_SCRIPT_CALL: &str = "mission_script_call_event";

/// One phase of an iteration.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Propose,
    Execute,
    Observe,
    Evaluate,
    Decide,
}

impl Phase {
    /// The name stored in the event.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Propose => "propose",
            Phase::Execute => "execute",
            Phase::Observe => "observe",
            Phase::Evaluate => "evaluate",
            Phase::Decide => "decide",
        }
    }
}

/// How a phase ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PhaseStatus {
    Succeeded,
    Failed,
}

impl PhaseStatus {
    /// The name stored in the event.
    pub const fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Succeeded => "succeeded",
            PhaseStatus::Failed => "failed",
        }
    }
}

/// A `mission_phase_event`.
#[derive(Copy, Clone, Debug)]
pub struct PhaseEvent<'a> {
    pub iteration_index: u64,
    pub phase: Phase,
    pub status: PhaseStatus,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    /// Stored, cut to 200 characters, when non-empty.
    pub error_message: Option<&'a str>,
}

/// A `mission_verdict_event`: closes the current iteration.
#[derive(Copy, Clone, Debug)]
pub struct VerdictEvent<'a> {
    pub iteration_index: u64,
    pub verdict: &'a str,
    pub verdict_reason: &'a str,
    /// Stored when non-empty.
    pub revision_rationale: Option<&'a str>,
}

/// Where a sampling call happened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SamplingScope<'a> {
    /// Inside an iteration: stored as `iteration_index`.
    Iteration(u64),
    /// Outside any iteration: stored as `sampling_context` when non-empty.
    Context(&'a str),
    /// Neither field is stored.
    None,
}

/// A `mission_sampling_event`.
#[derive(Copy, Clone, Debug)]
pub struct SamplingEvent<'a> {
    pub scope: SamplingScope<'a>,
    pub purpose: &'a str,
    pub status: &'a str,
    pub backend: &'a str,
    /// Stored when non-empty.
    pub model_id: Option<&'a str>,
    pub model_output_bytes: Option<u64>,
    /// Stored, cut to 200 characters, when non-empty.
    pub validation_error: Option<&'a str>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// A `mission_script_call_event`: a tool called from inside a script.
#[derive(Copy, Clone, Debug)]
pub struct ScriptCallEvent<'a> {
    pub iteration_index: u64,
    pub tool_name: &'a str,
    pub tool_status: &'a str,
    pub duration_ms: u64,
    /// Stored, cut to 200 characters, when non-empty.
    pub error_message: Option<&'a str>,
}

/// Records one session's events. `Send + Sync`.
#[derive(Debug)]
pub struct Session {
    recorder: Recorder,
    session_id: String,
    last_sequence: AtomicU64,
    n_dropped: AtomicU64,
}

fn capped(text: Option<&str>) -> Option<&str> {
    text.filter(|t| !t.is_empty())
        .map(|t| cut_chars(t, SESSION_TEXT_CHARS_MAX).0)
}

impl Session {
    /// A session whose events are stored under `session_id`, numbered from 1.
    pub fn new(recorder: Recorder, session_id: impl Into<String>) -> Session {
        Session {
            recorder,
            session_id: session_id.into(),
            last_sequence: AtomicU64::new(0),
            n_dropped: AtomicU64::new(0),
        }
    }

    /// The session id (the run id of its events).
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Records the recorder refused so far.
    pub fn n_dropped(&self) -> u64 {
        self.n_dropped.load(Ordering::Relaxed)
    }

    /// Records a `mission_phase_event`.
    pub fn phase(&self, event: &PhaseEvent<'_>) {
        let started_at = event.started_at.to_rfc3339();
        let ended_at = event.ended_at.to_rfc3339();
        let mut fields = vec![
            ("iteration_index", FieldValue::U64(event.iteration_index)),
            ("phase", FieldValue::Str(event.phase.as_str())),
            ("phase_status", FieldValue::Str(event.status.as_str())),
            ("phase_started_at", FieldValue::Str(&started_at)),
            ("phase_ended_at", FieldValue::Str(&ended_at)),
        ];
        if let Some(message) = capped(event.error_message) {
            fields.push(("error_message", FieldValue::Str(message)));
        }
        self.record(EVENT_TYPE_PHASE, fields);
    }

    /// Records a `mission_verdict_event`.
    pub fn verdict(&self, event: &VerdictEvent<'_>) {
        let mut fields = vec![
            ("iteration_index", FieldValue::U64(event.iteration_index)),
            ("verdict", FieldValue::Str(event.verdict)),
            ("verdict_reason", FieldValue::Str(event.verdict_reason)),
        ];
        if let Some(rationale) = event.revision_rationale.filter(|r| !r.is_empty()) {
            fields.push(("revision_rationale", FieldValue::Str(rationale)));
        }
        self.record(EVENT_TYPE_VERDICT, fields);
    }

    /// Records a `mission_sampling_event`.
    pub fn sampling(&self, event: &SamplingEvent<'_>) {
        let mut fields = Vec::with_capacity(11);
        match event.scope {
            SamplingScope::Iteration(index) => {
                fields.push(("iteration_index", FieldValue::U64(index)))
            }
            SamplingScope::Context(label) if !label.is_empty() => {
                fields.push(("sampling_context", FieldValue::Str(label)))
            }
            SamplingScope::Context(_) | SamplingScope::None => {}
        }
        fields.push(("sampling_purpose", FieldValue::Str(event.purpose)));
        fields.push(("sampling_status", FieldValue::Str(event.status)));
        fields.push(("sampling_backend", FieldValue::Str(event.backend)));
        if let Some(model_id) = event.model_id.filter(|m| !m.is_empty()) {
            fields.push(("sampling_model_id", FieldValue::Str(model_id)));
        }
        if let Some(n_bytes) = event.model_output_bytes {
            fields.push(("model_output_bytes", FieldValue::U64(n_bytes)));
        }
        if let Some(error) = capped(event.validation_error) {
            fields.push(("validation_error", FieldValue::Str(error)));
        }
        if let Some(n) = event.input_tokens {
            fields.push(("input_tokens", FieldValue::U64(n)));
        }
        if let Some(n) = event.output_tokens {
            fields.push(("output_tokens", FieldValue::U64(n)));
        }
        self.record(EVENT_TYPE_SAMPLING, fields);
    }

    /// Records a `mission_script_call_event` (always `via_script: true`).
    pub fn script_call(&self, event: &ScriptCallEvent<'_>) {
        let mut fields = vec![
            ("via_script", FieldValue::Bool(true)),
            ("iteration_index", FieldValue::U64(event.iteration_index)),
            ("tool_name", FieldValue::Str(event.tool_name)),
            ("tool_status", FieldValue::Str(event.tool_status)),
            ("duration_ms", FieldValue::U64(event.duration_ms)),
        ];
        if let Some(message) = capped(event.error_message) {
            fields.push(("error_message", FieldValue::Str(message)));
        }
        self.record(EVENT_TYPE_SCRIPT_CALL, fields);
    }

    fn record(&self, event_type: &str, fields: Vec<(&str, FieldValue<'_>)>) {
        let created_at = Timestamp::now();
        let timestamp = created_at.to_rfc3339();
        let fields: Vec<(&str, FieldValue<'_>)> = fields
            .into_iter()
            .chain([("timestamp", FieldValue::Str(&timestamp))])
            .collect();
        let sequence = self.last_sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let recorded = self.recorder.record_event(&EventRef {
            run_id: &self.session_id,
            sequence,
            event_type,
            fields: &fields,
            created_at,
        });
        if !recorded.is_accepted() {
            self.n_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One phase as replay saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PhaseRecord {
    pub phase: String,
    pub status: String,
    pub started_at: String,
    pub ended_at: String,
    pub error_message: Option<String>,
}

/// One iteration rebuilt by [`replay`]. `verdict` and `verdict_reason` are `None` when
/// no verdict closed it (the stream jumped to another iteration, or ended).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Iteration {
    /// `None` only if the events did not carry an index.
    pub iteration_index: Option<u64>,
    pub phases: Vec<PhaseRecord>,
    pub verdict: Option<String>,
    pub verdict_reason: Option<String>,
    pub revision_rationale: Option<String>,
}

fn text(payload: &Payload, key: &str) -> Option<String> {
    payload.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Rebuilds the iteration history of `session_id` from its stored events:
/// - phases accumulate into the current iteration, and a verdict closes it;
/// - a phase whose iteration index differs from the open iteration's (it jumped ahead
///   before a verdict) first closes the open one with no verdict;
/// - an iteration still open at the end is closed the same way;
/// - a verdict with no phase before it makes an iteration of its own.
///
/// Sampling and script-call events, and any other type, do not change the history.
pub fn replay(storage: &impl Storage, session_id: &str) -> Result<Vec<Iteration>> {
    let events = storage.list_logs_by_run(session_id)?;
    let mut iterations = Vec::new();
    let mut open: Option<Iteration> = None;
    for event in &events {
        let payload = &event.payload;
        let index = payload.get("iteration_index").and_then(Value::as_u64);
        match event.event_type.as_str() {
            EVENT_TYPE_PHASE => {
                if let Some(current) = open.take_if(|current| current.iteration_index != index) {
                    iterations.push(current);
                }
                let current = open.get_or_insert_with(|| Iteration {
                    iteration_index: index,
                    phases: Vec::new(),
                    verdict: None,
                    verdict_reason: None,
                    revision_rationale: None,
                });
                current.phases.push(PhaseRecord {
                    phase: text(payload, "phase").unwrap_or_default(),
                    status: text(payload, "phase_status").unwrap_or_default(),
                    started_at: text(payload, "phase_started_at").unwrap_or_default(),
                    ended_at: text(payload, "phase_ended_at").unwrap_or_default(),
                    error_message: text(payload, "error_message"),
                });
            }
            EVENT_TYPE_VERDICT => {
                let mut closed = open.take().unwrap_or(Iteration {
                    iteration_index: index,
                    phases: Vec::new(),
                    verdict: None,
                    verdict_reason: None,
                    revision_rationale: None,
                });
                closed.verdict = text(payload, "verdict");
                closed.verdict_reason = text(payload, "verdict_reason");
                closed.revision_rationale = text(payload, "revision_rationale");
                iterations.push(closed);
            }
            _ => {}
        }
    }
    iterations.extend(open);
    Ok(iterations)
}
