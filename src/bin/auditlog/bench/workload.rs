//! The event every system under test records: one dispatch call event (SPEC §2.4)
//! whose JSON line is about 200 bytes.
//!
//! Where it sits: used by the harness (`auditlog bench`) for every system and included
//! with `#[path]` by `benches/ingest.rs`, so the criterion hot path and the harness
//! time the same record.

use auditlog::model::{CallEvent, Outcome, Timestamp};

/// The first event's `ts`; each later one is 1 µs later.
const TS_BASE_NANOS: i64 = 1_763_719_200_000_000_000;

/// Call event number `seq`: a successful, paginated call of a web-search tool by an
/// agent gateway holding two capabilities.
pub fn call_event(seq: u64) -> CallEvent {
    CallEvent {
        ts: Timestamp::from_unix_nanos(TS_BASE_NANOS + seq as i64 * 1_000),
        call_id: format!("call-{seq:016x}"),
        tool_id: "ref:search.web_query".into(),
        caller_id: Some("caller-0042-agent-gateway".into()),
        granted_capabilities: vec!["net.http.get".into(), "fs.read.workspace".into()],
        duration_ms: seq % 97,
        outcome: Outcome::Success,
        tier: "standard".into(),
        dry_run: false,
        schema_version: 3,
        secrets_resolved: false,
        cursor_page: Some(1),
    }
}

/// Bytes of the event as one JSON line (without the newline).
pub fn json_line_bytes(event: &CallEvent) -> usize {
    serde_json::to_vec(event)
        .expect("a call event always serializes")
        .len()
}
