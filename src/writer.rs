//! The per-run writer (SPEC §4): turns one run's agent-loop steps and tool calls into
//! that run's events.
//!
//! Where it sits: in front of [`Recorder`], built only on its public API, beside
//! `session` (the iteration-session events). A program starts a run, makes one
//! [`RunWriter`] for it, calls `on_step` / `on_tool` / `log_event` / `log_error` while
//! the run goes on, and `close` once at the end.
//!
//! # Invariants
//! - Every call but `close` only hands a record to the recorder: it never blocks (under
//!   the recorder's default `Backpressure::Drop`), never waits for the disk and never
//!   fails the caller. A refused record is counted (`n_dropped`), never raised: audit
//!   must not break the run it audits.
//! - The writer numbers its run's events itself; the first is 1 and each call takes
//!   the next, so two events of one writer never share a sequence.
//! - Text is cut by characters (Unicode scalar values), so a cut never splits a UTF-8
//!   character. The marker `…[+N bytes]` counts the UTF-8 bytes that were cut off, not
//!   the characters: it tells a reader how much of the original payload is missing.
//! - `close` is idempotent and takes no deadline from the caller on purpose: a caller
//!   whose own deadline has passed must still finish its run (a run left `running`
//!   forever is the failure this prevents). Its wait is bounded by the writer's own
//!   `close_wait` instead.
//! - A step that fired a secret-bearing tool (`mcp_call`, `email_send`, any `http_*`)
//!   never has its text stored, because the narration around such a call can echo the
//!   secret being sent.
//! - A disabled writer holds nothing and every call on it is a no-op.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::ingest::{EventRef, FieldValue, Recorded, Recorder};
use crate::limits::{
    STEP_TEXT_CHARS_MAX, TOOL_RESULT_CHARS_MAX, WRITER_CLOSE_WAIT_MS_DEFAULT,
    WRITER_CLOSE_WAIT_MS_MAX,
};
use crate::model::{DropReason, Payload, RunStats, Timestamp};

/// Token counts of one step, or running totals over a run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub thinking: u64,
    pub cache_read: u64,
}

/// What the agent loop saw in one step.
#[derive(Copy, Clone, Debug, Default)]
pub struct StepObservation<'a> {
    /// The model's text for this step, untrimmed.
    pub text: &'a str,
    /// The model that served the step, when known.
    pub model: Option<&'a str>,
    /// Why generation stopped, when known.
    pub finish_reason: Option<&'a str>,
    pub usage: TokenUsage,
    /// Names of the tools the step fired.
    pub tool_names: &'a [&'a str],
}

/// One tool call the run made.
#[derive(Copy, Clone, Debug)]
pub struct ToolCall<'a> {
    pub name: &'a str,
    /// The arguments as the model sent them (JSON text).
    pub args: &'a str,
    pub id: &'a str,
}

/// What `RunWriter::close` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// The finish was recorded and is durable.
    Durable,
    /// The finish was recorded, but `close_wait` passed before it was durable; the
    /// committer writes it in the background.
    Pending,
    /// An earlier `close` already finished the run; nothing was recorded.
    AlreadyClosed,
    /// The writer is disabled.
    Disabled,
    /// The recorder refused the finish (for example a status that is not terminal).
    Dropped(DropReason),
    /// The log failed while the finish was being made durable.
    Failed(String),
}

/// Whether a tool's call may carry a secret, so that the step text around it is not
/// stored: `mcp_call`, `email_send` and every `http_*` tool.
pub fn is_secret_bearing_tool(name: &str) -> bool {
    matches!(name, "mcp_call" | "email_send") || name.starts_with("http_")
}

/// The longest prefix of `text` with at most `max_chars` characters, and the number of
/// bytes after it. Never splits a UTF-8 character.
pub fn cut_chars(text: &str, max_chars: usize) -> (&str, usize) {
    let end = text
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(byte_idx, _)| byte_idx);
    debug_assert!(text.is_char_boundary(end));
    (&text[..end], text.len() - end)
}

/// `text` cut to `max_chars` characters, followed by `…[+N bytes]` when anything was
/// cut, N being the bytes cut off; and whether anything was cut.
pub fn cut_with_marker(text: &str, max_chars: usize) -> (String, bool) {
    match cut_chars(text, max_chars) {
        (kept, 0) => (kept.to_owned(), false),
        (kept, n_bytes_cut) => (format!("{kept}…[+{n_bytes_cut} bytes]"), true),
    }
}

/// The writer for one started run (SPEC §4). `Send + Sync`; every method takes `&self`.
#[derive(Debug)]
pub struct RunWriter {
    inner: Option<Inner>,
}

#[derive(Debug)]
struct Inner {
    recorder: Recorder,
    run_id: String,
    /// The sequence the last event took; the next takes one more.
    last_sequence: AtomicU64,
    n_tool_calls: AtomicU64,
    n_dropped: AtomicU64,
    close_wait: Duration,
    state: Mutex<State>,
}

/// What several fields must agree on, so it is read and changed under one lock.
#[derive(Debug)]
struct State {
    made_at: Instant,
    last_step_at: Option<Instant>,
    totals: TokenUsage,
    resolved_model_logged: bool,
    closed: bool,
}

// A writer is shared by the threads of one run (the loop and its tool executors).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RunWriter>();
};

impl RunWriter {
    /// A writer for `run_id`, which the caller has started (or is starting through the
    /// same recorder). Step timing starts now.
    pub fn new(recorder: Recorder, run_id: impl Into<String>) -> RunWriter {
        RunWriter {
            inner: Some(Inner {
                recorder,
                run_id: run_id.into(),
                last_sequence: AtomicU64::new(0),
                n_tool_calls: AtomicU64::new(0),
                n_dropped: AtomicU64::new(0),
                close_wait: Duration::from_millis(WRITER_CLOSE_WAIT_MS_DEFAULT),
                state: Mutex::new(State {
                    made_at: Instant::now(),
                    last_step_at: None,
                    totals: TokenUsage::default(),
                    resolved_model_logged: false,
                    closed: false,
                }),
            }),
        }
    }

    /// A writer whose every call is a no-op, for runs that are not audited.
    pub fn disabled() -> RunWriter {
        RunWriter { inner: None }
    }

    /// Sets the longest time `close` waits for the finish to be durable, capped at
    /// [`WRITER_CLOSE_WAIT_MS_MAX`].
    pub fn close_wait(mut self, wait: Duration) -> RunWriter {
        if let Some(inner) = self.inner.as_mut() {
            inner.close_wait = wait.min(Duration::from_millis(WRITER_CLOSE_WAIT_MS_MAX));
        }
        self
    }

    /// Whether calls record anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The run this writer records, if enabled.
    pub fn run_id(&self) -> Option<&str> {
        self.inner.as_ref().map(|inner| inner.run_id.as_str())
    }

    /// Token totals over every step so far.
    pub fn token_totals(&self) -> TokenUsage {
        self.inner
            .as_ref()
            .map_or_else(TokenUsage::default, |inner| inner.lock().totals)
    }

    /// Tool calls seen so far.
    pub fn n_tool_calls(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.n_tool_calls.load(Ordering::Relaxed))
    }

    /// Records the recorder refused so far (each is also counted by the recorder).
    pub fn n_dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.n_dropped.load(Ordering::Relaxed))
    }

    /// Records one `step` event for loop iteration `iteration`, and the run's one
    /// `resolved_model` event if this is the first step naming a model.
    ///
    /// `text_len` is the byte length of the text as given; the stored `text` is the
    /// trimmed text cut to [`STEP_TEXT_CHARS_MAX`] characters. When the step fired a
    /// secret-bearing tool, `text_redacted: true` stands in its place; a step with no
    /// text after trimming has neither field.
    pub fn on_step(&self, iteration: u64, observation: &StepObservation<'_>) {
        let Some(inner) = &self.inner else { return };
        let now = Instant::now();
        let usage = observation.usage;
        let model = observation.model.filter(|m| !m.is_empty());
        let (step_ms, log_resolved_model) = {
            let mut state = inner.lock();
            let since = state.last_step_at.unwrap_or(state.made_at);
            state.last_step_at = Some(now);
            let totals = &mut state.totals;
            totals.input = totals.input.saturating_add(usage.input);
            totals.output = totals.output.saturating_add(usage.output);
            totals.thinking = totals.thinking.saturating_add(usage.thinking);
            totals.cache_read = totals.cache_read.saturating_add(usage.cache_read);
            let first_model = model.is_some() && !state.resolved_model_logged;
            state.resolved_model_logged |= first_model;
            let step_ms = u64::try_from(now.duration_since(since).as_millis()).unwrap_or(u64::MAX);
            (step_ms, first_model)
        };

        let trimmed = observation.text.trim();
        let redacted = observation
            .tool_names
            .iter()
            .any(|name| is_secret_bearing_tool(name));
        let text = (!trimmed.is_empty() && !redacted)
            .then(|| cut_with_marker(trimmed, STEP_TEXT_CHARS_MAX).0);

        let mut fields: Vec<(&str, FieldValue<'_>)> = Vec::with_capacity(11);
        fields.push(("iter", FieldValue::U64(iteration)));
        fields.push(("step_ms", FieldValue::U64(step_ms)));
        fields.push(("text_len", FieldValue::U64(observation.text.len() as u64)));
        if let Some(model) = model {
            fields.push(("model", FieldValue::Str(model)));
        }
        if let Some(reason) = observation.finish_reason.filter(|r| !r.is_empty()) {
            fields.push(("finish_reason", FieldValue::Str(reason)));
        }
        for (name, count) in [
            ("in_tokens", usage.input),
            ("out_tokens", usage.output),
            ("thinking_tokens", usage.thinking),
            ("cache_read_tokens", usage.cache_read),
        ] {
            if count > 0 {
                fields.push((name, FieldValue::U64(count)));
            }
        }
        if let Some(text) = &text {
            fields.push(("text", FieldValue::Str(text)));
        } else if redacted && !trimmed.is_empty() {
            fields.push(("text_redacted", FieldValue::Bool(true)));
        }
        inner.record("step", &fields);

        if let (true, Some(model)) = (log_resolved_model, model) {
            inner.record("resolved_model", &[("model", FieldValue::Str(model))]);
        }
    }

    /// Records a `tool_call` and a `tool_result` event, the result cut to
    /// [`TOOL_RESULT_CHARS_MAX`] characters, and counts the call.
    pub fn on_tool(&self, call: &ToolCall<'_>, result: &str) {
        let Some(inner) = &self.inner else { return };
        inner.n_tool_calls.fetch_add(1, Ordering::Relaxed);
        inner.record(
            "tool_call",
            &[
                ("name", FieldValue::Str(call.name)),
                ("args", FieldValue::Str(call.args)),
                ("id", FieldValue::Str(call.id)),
            ],
        );
        let (result, truncated) = cut_with_marker(result, TOOL_RESULT_CHARS_MAX);
        inner.record(
            "tool_result",
            &[
                ("name", FieldValue::Str(call.name)),
                ("id", FieldValue::Str(call.id)),
                ("result", FieldValue::Str(&result)),
                ("truncated", FieldValue::Bool(truncated)),
            ],
        );
    }

    /// Records a custom event with the given payload.
    pub fn log_event(&self, event_type: &str, payload: &Payload) {
        let Some(inner) = &self.inner else { return };
        let fields: Vec<(&str, FieldValue<'_>)> = payload
            .iter()
            .map(|(key, value)| (key.as_str(), FieldValue::Json(value)))
            .collect();
        inner.record(event_type, &fields);
    }

    /// Records an `error` event; the run's terminal status is set by `close`.
    pub fn log_error(&self, message: &str) {
        let Some(inner) = &self.inner else { return };
        inner.record("error", &[("message", FieldValue::Str(message))]);
    }

    /// Finishes the run with `stats`, once: the tool-call count is the writer's own, and
    /// each token total the caller left at 0 is the writer's running total. Waits at
    /// most `close_wait` for the finish to be durable; later calls do nothing.
    pub fn close(&self, stats: &RunStats) -> CloseOutcome {
        let Some(inner) = &self.inner else {
            return CloseOutcome::Disabled;
        };
        let totals = {
            let mut state = inner.lock();
            if state.closed {
                return CloseOutcome::AlreadyClosed;
            }
            state.closed = true;
            state.totals
        };
        let mut stats = stats.clone();
        stats.tool_calls = inner.n_tool_calls.load(Ordering::Relaxed);
        for (field, total) in [
            (&mut stats.input_tokens, totals.input),
            (&mut stats.output_tokens, totals.output),
            (&mut stats.thinking_tokens, totals.thinking),
        ] {
            if *field == 0 {
                *field = total;
            }
        }
        let recorded = inner
            .recorder
            .record_run_finished(&inner.run_id, &stats, Timestamp::now());
        if let Recorded::Dropped(reason) = recorded {
            inner.n_dropped.fetch_add(1, Ordering::Relaxed);
            return CloseOutcome::Dropped(reason);
        }
        match inner.recorder.flush_within(inner.close_wait) {
            Ok(true) => CloseOutcome::Durable,
            Ok(false) => CloseOutcome::Pending,
            Err(error) => CloseOutcome::Failed(error.to_string()),
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a
        // plain field write.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, event_type: &str, fields: &[(&str, FieldValue<'_>)]) {
        let sequence = self.last_sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let recorded = self.recorder.record_event(&EventRef {
            run_id: &self.run_id,
            sequence,
            event_type,
            fields,
            created_at: Timestamp::now(),
        });
        if !recorded.is_accepted() {
            self.n_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_counts_characters_and_reports_the_bytes_cut() {
        assert_eq!(cut_chars("héllo", 2), ("hé", 3));
        assert_eq!(cut_chars("héllo", 5), ("héllo", 0));
        assert_eq!(cut_chars("", 0), ("", 0));
        assert_eq!(
            cut_with_marker("日本語", 1),
            ("日…[+6 bytes]".to_owned(), true)
        );
        assert_eq!(cut_with_marker("ab", 2), ("ab".to_owned(), false));
    }

    proptest::proptest! {
        #[test]
        fn a_cut_keeps_a_char_prefix_and_counts_every_byte_it_removes(
            text in "\\PC{0,40}",
            max_chars in 0usize..45,
        ) {
            let (kept, n_bytes_cut) = cut_chars(&text, max_chars);
            proptest::prop_assert!(text.starts_with(kept));
            proptest::prop_assert_eq!(kept.len() + n_bytes_cut, text.len());
            proptest::prop_assert_eq!(kept.chars().count(), text.chars().count().min(max_chars));
        }
    }

    #[test]
    fn secret_bearing_tools_are_named_exactly_or_by_the_http_prefix() {
        for name in ["mcp_call", "email_send", "http_get", "http_post", "http_"] {
            assert!(is_secret_bearing_tool(name), "{name}");
        }
        for name in ["mcp_calls", "email", "xhttp_get", "search", "HTTP_GET"] {
            assert!(!is_secret_bearing_tool(name), "{name}");
        }
    }
}
