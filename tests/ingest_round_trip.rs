//! What a recorder writes is what was recorded: every record kind, through the inline
//! path and through the slow path (a field too large for a slot, nested JSON, an owned
//! `Record`), reads back from the log equal to the record it describes, in the order the
//! calls were made (one producer).

use std::sync::Arc;
use std::time::Duration;

use auditlog::codec::RunFinished;
use auditlog::ingest::{EventRef, FieldValue, RunRef};
use auditlog::model::{
    CALL_EVENT_SCHEMA_VERSION, CallEvent, Outcome, Run, RunStats, Status, Timestamp,
};
use auditlog::{AuditLog, Config, Durability, IngestConfig, Lsn, Record, Recorder};
use serde_json::json;

#[test]
fn every_kind_reads_back_as_recorded_through_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let at = Timestamp::from_unix_millis(1_700_000_000_000);
    let mut expected = Vec::new();

    let inputs = [
        ("prompt", FieldValue::Str("hi")),
        ("n", FieldValue::I64(-2)),
    ];
    let run = RunRef {
        id: "run-1",
        skill_id: "summarize",
        caller_id: "alice",
        channel_id: "web",
        parent_run_id: "",
        inputs: &inputs,
        started_at: at,
    };
    assert!(recorder.record_run_started(&run).is_accepted());
    expected.push(Record::RunStarted(run.to_owned_run()));

    let nested = json!({"args": [1, "two", {"three": 3.5}]});
    let big = "b".repeat(5000);
    let field_sets: [&[(&str, FieldValue<'_>)]; 3] = [
        &[("ok", FieldValue::Bool(true)), ("none", FieldValue::Null)],
        &[("call", FieldValue::Json(&nested))],
        &[
            ("text", FieldValue::Str(&big)),
            ("pi", FieldValue::F64(3.5)),
        ],
    ];
    for (idx, fields) in field_sets.into_iter().enumerate() {
        let event = EventRef {
            run_id: "run-1",
            sequence: idx as u64 + 1,
            event_type: "step",
            fields,
            created_at: at,
        };
        assert!(recorder.record_event(&event).is_accepted());
        expected.push(Record::EventAppended(event.to_owned_event()));
    }

    let call = CallEvent {
        ts: at,
        call_id: "call-1".into(),
        tool_id: "ref:echo.say".into(),
        caller_id: None,
        granted_capabilities: vec![],
        duration_ms: 3,
        outcome: Outcome::CapabilityDenied {
            missing: vec!["net".into()],
        },
        tier: "hot".into(),
        dry_run: true,
        schema_version: CALL_EVENT_SCHEMA_VERSION,
        secrets_resolved: false,
        cursor_page: None,
    };
    assert!(recorder.record_call(&call).is_accepted());
    expected.push(Record::CallRecorded(call));

    let stats = RunStats {
        status: Status::Error,
        error: "boom".into(),
        ..RunStats::default()
    };
    assert!(
        recorder
            .record_run_finished("run-1", &stats, at)
            .is_accepted()
    );
    expected.push(Record::RunFinished(RunFinished {
        run_id: "run-1".into(),
        stats,
        finished_at: at,
    }));

    // Owned records: a start that has inline form, one that has not, an event.
    let mut owned_run = Run::new("run-2", "translate");
    owned_run.started_at = at;
    let mut nested_run = owned_run.clone();
    nested_run.id = "run-3".into();
    nested_run.inputs.insert("deep".into(), json!({"a": [1]}));
    let owned_event = match expected[1].clone() {
        Record::EventAppended(mut event) => {
            event.run_id = "run-2".into();
            Record::EventAppended(event)
        }
        other => panic!("expected an event, got {other:?}"),
    };
    for record in [
        Record::RunStarted(owned_run),
        Record::RunStarted(nested_run),
        owned_event,
    ] {
        assert!(recorder.record(&record).is_accepted());
        expected.push(record);
    }

    let report = recorder.close(Duration::from_secs(60));
    assert!(report.completed);
    assert_eq!(report.dropped.total(), 0);
    let written: Vec<Record> = log
        .records_from(Lsn(0))
        .unwrap()
        .into_iter()
        .map(|(_, record)| record)
        .collect();
    assert_eq!(written, expected);
    assert_eq!(
        recorder.metrics().slow_path,
        3,
        "nested JSON, 5000 bytes, nested input"
    );
}
