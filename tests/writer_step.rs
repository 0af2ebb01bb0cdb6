//! Every rule SPEC §4 sets for `RunWriter::on_step`, read back through the `Storage`
//! API after `Recorder::flush`: the step fields and the ones left out when zero or
//! unknown, the 2000-character text cut with its `…[+N bytes]` marker (N = the UTF-8
//! bytes cut off) never splitting a multi-byte character, redaction for each
//! secret-bearing tool, the one-shot `resolved_model` event, running token totals,
//! `step_ms`, and sequences numbered from 1.

use std::sync::Arc;
use std::time::Duration;

use auditlog::model::{Run, RunEvent, Value};
use auditlog::writer::TokenUsage;
use auditlog::{
    AuditLog, Config, Durability, IngestConfig, Recorder, RunWriter, StepObservation, Storage,
};
use tempfile::TempDir;

fn open(run_id: &str) -> (TempDir, Arc<AuditLog>, Recorder, RunWriter) {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    log.start_run(&Run::new(run_id, "skill")).unwrap();
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let writer = RunWriter::new(recorder.clone(), run_id);
    (dir, log, recorder, writer)
}

fn events(log: &AuditLog, recorder: &Recorder, run_id: &str) -> Vec<RunEvent> {
    recorder.flush().unwrap();
    log.list_logs_by_run(run_id).unwrap()
}

fn text_step(text: &str) -> StepObservation<'_> {
    StepObservation {
        text,
        ..StepObservation::default()
    }
}

#[test]
fn a_step_carries_its_fields_and_leaves_out_zero_tokens_and_unknowns() {
    let (_dir, log, recorder, writer) = open("r");
    writer.on_step(
        1,
        &StepObservation {
            text: "  thinking out loud \n",
            model: Some("prov/model-a"),
            finish_reason: Some("tool_calls"),
            usage: TokenUsage {
                input: 10,
                output: 5,
                thinking: 0,
                cache_read: 3,
            },
            tool_names: &["search"],
        },
    );
    writer.on_step(2, &text_step(""));
    let events = events(&log, &recorder, "r");
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3], "step, resolved_model, step");
    let first = &events[0];
    assert_eq!(first.event_type, "step");
    let p = &first.payload;
    assert_eq!(p["iter"], 1);
    assert!(p["step_ms"].is_u64());
    assert_eq!(p["text_len"], "  thinking out loud \n".len());
    assert_eq!(p["text"], "thinking out loud", "trimmed");
    assert_eq!(p["model"], "prov/model-a");
    assert_eq!(p["finish_reason"], "tool_calls");
    assert_eq!(p["in_tokens"], 10);
    assert_eq!(p["out_tokens"], 5);
    assert_eq!(p["cache_read_tokens"], 3);
    assert!(
        !p.contains_key("thinking_tokens"),
        "zero counts are left out"
    );
    assert!(!p.contains_key("text_redacted"));

    let second = &events[2].payload;
    assert_eq!(second["iter"], 2);
    assert_eq!(second["text_len"], 0);
    for absent in [
        "model",
        "finish_reason",
        "in_tokens",
        "out_tokens",
        "thinking_tokens",
        "cache_read_tokens",
        "text",
        "text_redacted",
    ] {
        assert!(!second.contains_key(absent), "{absent} must be absent");
    }
}

#[test]
fn step_text_is_cut_at_2000_characters_with_the_bytes_cut_in_the_marker() {
    let (_dir, log, recorder, writer) = open("r");
    let exact = "a".repeat(2000);
    let long = "b".repeat(2500);
    writer.on_step(1, &text_step(&exact));
    writer.on_step(2, &text_step(&long));
    let events = events(&log, &recorder, "r");
    assert_eq!(events[0].payload["text"], exact.as_str(), "2000 fit uncut");
    let expected = format!("{}…[+500 bytes]", "b".repeat(2000));
    assert_eq!(events[1].payload["text"], expected.as_str());
    assert_eq!(events[1].payload["text_len"], 2500);
}

#[test]
fn the_step_text_cut_never_splits_a_multi_byte_character() {
    let (_dir, log, recorder, writer) = open("r");
    // 1999 one-byte characters, then three-byte characters straddling the cut: a byte
    // cut at 2000 would land inside the first `€`.
    let text = format!("{}{}", "x".repeat(1999), "€".repeat(10));
    writer.on_step(1, &text_step(&text));
    let events = events(&log, &recorder, "r");
    let stored = events[0].payload["text"].as_str().unwrap();
    let expected = format!("{}€…[+27 bytes]", "x".repeat(1999));
    assert_eq!(stored, expected, "2000 characters kept; 9 × 3 bytes cut");
}

#[test]
fn each_secret_bearing_tool_redacts_the_step_text() {
    for tool in [
        "mcp_call",
        "email_send",
        "http_get",
        "http_post",
        "http_request",
    ] {
        let (_dir, log, recorder, writer) = open("r");
        writer.on_step(
            1,
            &StepObservation {
                text: "sending the token sk-123 now",
                tool_names: &["search", tool],
                ..StepObservation::default()
            },
        );
        let events = events(&log, &recorder, "r");
        let p = &events[0].payload;
        assert_eq!(p["text_redacted"], true, "{tool}");
        assert!(!p.contains_key("text"), "{tool}: no text stored");
        assert_eq!(p["text_len"], "sending the token sk-123 now".len());
    }
}

#[test]
fn tools_that_only_resemble_secret_bearing_ones_keep_the_text() {
    let (_dir, log, recorder, writer) = open("r");
    writer.on_step(
        1,
        &StepObservation {
            text: "hello",
            tool_names: &["mcp_calls", "send_email", "fetch_http"],
            ..StepObservation::default()
        },
    );
    let events = events(&log, &recorder, "r");
    assert_eq!(events[0].payload["text"], "hello");
    assert!(!events[0].payload.contains_key("text_redacted"));
}

#[test]
fn the_first_step_naming_a_model_emits_one_resolved_model_event_per_run() {
    let (_dir, log, recorder, writer) = open("r");
    writer.on_step(1, &text_step("no model yet"));
    for (iteration, model) in [(2, "m-first"), (3, "m-first"), (4, "m-other")] {
        writer.on_step(
            iteration,
            &StepObservation {
                model: Some(model),
                ..StepObservation::default()
            },
        );
    }
    let events = events(&log, &recorder, "r");
    let resolved: Vec<&RunEvent> = events
        .iter()
        .filter(|e| e.event_type == "resolved_model")
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].payload["model"], "m-first");
    assert_eq!(
        resolved[0].sequence, 3,
        "right after the step that named it"
    );
    assert_eq!(events.len(), 5);
}

#[test]
fn token_totals_are_readable_at_any_time_and_sum_every_step() {
    let (_dir, _log, _recorder, writer) = open("r");
    assert_eq!(writer.token_totals(), TokenUsage::default());
    let usage = TokenUsage {
        input: 100,
        output: 20,
        thinking: 7,
        cache_read: 50,
    };
    let step = StepObservation {
        usage,
        ..StepObservation::default()
    };
    writer.on_step(1, &step);
    assert_eq!(writer.token_totals(), usage);
    writer.on_step(2, &step);
    writer.on_step(3, &StepObservation::default());
    assert_eq!(
        writer.token_totals(),
        TokenUsage {
            input: 200,
            output: 40,
            thinking: 14,
            cache_read: 100,
        }
    );
}

#[test]
fn step_ms_measures_from_the_writer_then_from_the_previous_step() {
    let (_dir, log, recorder, writer) = open("r");
    std::thread::sleep(Duration::from_millis(30));
    let window = std::time::Instant::now();
    writer.on_step(1, &StepObservation::default());
    writer.on_step(2, &StepObservation::default());
    let window_ms = window.elapsed().as_millis() as u64;
    let events = events(&log, &recorder, "r");
    let first = events[0].payload["step_ms"].as_u64().unwrap();
    let second = events[1].payload["step_ms"].as_u64().unwrap();
    assert!(
        first >= 30,
        "the first step counts from the writer: {first}"
    );
    // Both step times fall inside the window, so a second step counted from the
    // previous step fits in it; one counted from the writer would not (≥ 30 + window).
    assert!(
        second <= window_ms,
        "the second counts from the first step: {second} > {window_ms}"
    );
    assert!(matches!(events[0].payload["iter"], Value::Number(_)));
}
