//! `RunWriter::on_tool`, `log_event` and `log_error` (SPEC §4), read back through the
//! `Storage` API: each tool call is a `tool_call` {name, args, id} and a `tool_result`
//! {name, id, result, truncated} event; the result is cut at 4000 characters with the
//! `…[+N bytes]` marker (N = the UTF-8 bytes cut off) without splitting a multi-byte
//! character; calls are counted; custom and error events keep the writer's sequence.

use std::sync::Arc;

use auditlog::model::{Payload, Run, RunEvent};
use auditlog::{
    AuditLog, Config, Durability, IngestConfig, Recorder, RunWriter, Storage, ToolCall,
};
use serde_json::json;
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

const CALL: ToolCall<'static> = ToolCall {
    name: "search",
    args: r#"{"q":"rust"}"#,
    id: "call-1",
};

#[test]
fn a_tool_call_is_a_call_event_and_a_result_event_and_is_counted() {
    let (_dir, log, recorder, writer) = open("r");
    assert_eq!(writer.n_tool_calls(), 0);
    writer.on_tool(&CALL, "three hits");
    writer.on_tool(
        &ToolCall {
            id: "call-2",
            ..CALL
        },
        "",
    );
    assert_eq!(writer.n_tool_calls(), 2);
    let events = events(&log, &recorder, "r");
    let shape: Vec<(u64, &str)> = events
        .iter()
        .map(|e| (e.sequence, e.event_type.as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            (1, "tool_call"),
            (2, "tool_result"),
            (3, "tool_call"),
            (4, "tool_result")
        ]
    );
    assert_eq!(
        serde_json::to_value(&events[0].payload).unwrap(),
        json!({"name": "search", "args": "{\"q\":\"rust\"}", "id": "call-1"})
    );
    assert_eq!(
        serde_json::to_value(&events[1].payload).unwrap(),
        json!({"name": "search", "id": "call-1", "result": "three hits", "truncated": false})
    );
}

#[test]
fn a_tool_result_is_cut_at_4000_characters_with_the_marker() {
    let (_dir, log, recorder, writer) = open("r");
    let exact = "a".repeat(4000);
    let long = "b".repeat(4321);
    writer.on_tool(&CALL, &exact);
    writer.on_tool(&CALL, &long);
    let events = events(&log, &recorder, "r");
    assert_eq!(events[1].payload["result"], exact.as_str());
    assert_eq!(events[1].payload["truncated"], false);
    let expected = format!("{}…[+321 bytes]", "b".repeat(4000));
    assert_eq!(events[3].payload["result"], expected.as_str());
    assert_eq!(events[3].payload["truncated"], true);
}

#[test]
fn the_tool_result_cut_never_splits_a_multi_byte_character() {
    let (_dir, log, recorder, writer) = open("r");
    // A four-byte emoji starts at character 3999: a byte cut at 4000 would split the
    // second one.
    let result = format!("{}{}", "y".repeat(3998), "🦀".repeat(5));
    writer.on_tool(&CALL, &result);
    let events = events(&log, &recorder, "r");
    let expected = format!("{}🦀🦀…[+12 bytes]", "y".repeat(3998));
    assert_eq!(events[1].payload["result"], expected.as_str());
    assert_eq!(events[1].payload["truncated"], true);
}

#[test]
fn custom_and_error_events_take_the_next_sequences() {
    let (_dir, log, recorder, writer) = open("r");
    let mut payload = Payload::new();
    payload.insert("tokens_before".into(), 1200.into());
    payload.insert("detail".into(), json!({"kept": [1, 2]}));
    writer.log_event("compaction_fired", &payload);
    writer.log_error("model call timed out");
    let events = events(&log, &recorder, "r");
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].sequence, events[0].event_type.as_str()),
        (1, "compaction_fired")
    );
    assert_eq!(events[0].payload, payload);
    assert_eq!(
        (events[1].sequence, events[1].event_type.as_str()),
        (2, "error")
    );
    assert_eq!(events[1].payload["message"], "model call timed out");
}
