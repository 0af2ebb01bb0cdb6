//! An event of a registered shape is the event it stands for: recorded with
//! `record_shaped`, inline or through the slow path (a value too large for a slot,
//! nested JSON), it reads back from the log equal to the same event recorded with
//! `record_event`, and the two logs hold the same records in the same order. Bad input
//! is rejected and reported: a value count other than the shape's, a shape registered
//! with another recorder, an empty run id, sequence 0. A shape registered from several
//! threads at once gets one number.

use std::sync::Arc;
use std::time::Duration;

use auditlog::ingest::{EventRef, EventShape, FieldValue, ShapedEventRef};
use auditlog::model::{DropReason, Timestamp};
use auditlog::{AuditLog, Config, Durability, IngestConfig, Lsn, Record, Recorded, Recorder};
use serde_json::json;

fn start(dir: &std::path::Path) -> (Arc<AuditLog>, Recorder) {
    let log = Arc::new(AuditLog::open(Config::new(dir).durability(Durability::None)).unwrap());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    (log, recorder)
}

fn written(log: &AuditLog) -> Vec<Record> {
    (log.records_from(Lsn(0)).unwrap().into_iter())
        .map(|(_, record)| record)
        .collect()
}

#[test]
fn a_shaped_event_is_written_as_the_same_event_recorded_with_its_keys() {
    let (plain_dir, shaped_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (plain_log, plain) = start(plain_dir.path());
    let (shaped_log, shaped) = start(shaped_dir.path());
    // Keys out of byte order: the payload map is sorted all the same.
    let keys = ["tool", "duration_ms", "ok", "args", "score"];
    let shape = shaped.shape("tool_call", &keys).unwrap();
    assert_eq!(shape.event_type(), "tool_call");
    assert_eq!(shape.keys(), keys);
    let nested = json!({"path": ["a", 1]});
    let scalar = json!(12);
    let big = "x".repeat(5000);
    let value_sets: [[FieldValue<'_>; 5]; 4] = [
        [
            FieldValue::Str("ref:echo.say"),
            FieldValue::U64(17),
            FieldValue::Bool(true),
            FieldValue::Null,
            FieldValue::F64(0.25),
        ],
        [
            FieldValue::Str(""),
            FieldValue::I64(-4),
            FieldValue::Bool(false),
            FieldValue::Json(&scalar),
            FieldValue::F64(f64::NAN),
        ],
        // Nested JSON: the slow path.
        [
            FieldValue::Str("ref:fs.read"),
            FieldValue::U64(0),
            FieldValue::Bool(true),
            FieldValue::Json(&nested),
            FieldValue::F64(1.0),
        ],
        // Larger than a slot: the slow path.
        [
            FieldValue::Str(&big),
            FieldValue::U64(1),
            FieldValue::Bool(true),
            FieldValue::Null,
            FieldValue::F64(2.0),
        ],
    ];
    let at = Timestamp::from_unix_millis(1_700_000_000_000);
    for (i, values) in value_sets.iter().enumerate() {
        let sequence = i as u64 + 1;
        let fields: Vec<(&str, FieldValue<'_>)> =
            keys.iter().copied().zip(values.iter().copied()).collect();
        let event = EventRef {
            run_id: "run-1",
            sequence,
            event_type: "tool_call",
            fields: &fields,
            created_at: at,
        };
        let shaped_event = ShapedEventRef {
            run_id: "run-1",
            sequence,
            values,
            created_at: at,
        };
        assert_eq!(
            shaped_event.to_owned_event(&shape),
            event.to_owned_event(),
            "event {i}"
        );
        assert_eq!(plain.record_event(&event), Recorded::Accepted);
        assert_eq!(
            shaped.record_shaped(&shape, &shaped_event),
            Recorded::Accepted
        );
    }
    for recorder in [&plain, &shaped] {
        let report = recorder.close(Duration::from_secs(60));
        assert!(report.completed);
        assert_eq!(report.dropped.total(), 0);
        assert_eq!(recorder.metrics().slow_path, 2, "nested JSON, 5000 bytes");
    }
    let records = written(&shaped_log);
    assert_eq!(records.len(), value_sets.len());
    assert_eq!(records, written(&plain_log));
}

#[test]
fn bad_shaped_events_are_rejected_at_once_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (log, recorder) = start(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let (_other_log, other) = start(other_dir.path());
    let shape = recorder.shape("step", &["a", "b"]).unwrap();
    let foreign = other.shape("step", &["a", "b"]).unwrap();
    let two = [FieldValue::U64(1), FieldValue::U64(2)];
    let event = |run_id, sequence, values| ShapedEventRef {
        run_id,
        sequence,
        values,
        created_at: Timestamp::from_unix_millis(1),
    };
    let rejected = Recorded::Dropped(DropReason::Rejected);
    let cases: [(&EventShape, ShapedEventRef<'_>, &str); 5] = [
        (&shape, event("run-1", 1, &two[..1]), "one value short"),
        (&shape, event("run-1", 1, &[]), "no values"),
        (
            &foreign,
            event("run-1", 1, &two),
            "another recorder's shape",
        ),
        (&shape, event("", 1, &two), "empty run id"),
        (&shape, event("run-1", 0, &two), "sequence 0"),
    ];
    for (shape, event, why) in &cases {
        assert_eq!(recorder.record_shaped(shape, event), rejected, "{why}");
    }
    assert_eq!(
        recorder.record_shaped(&shape, &event("run-1", 1, &two)),
        Recorded::Accepted
    );
    recorder.flush().unwrap();
    let metrics = recorder.metrics();
    assert_eq!(metrics.dropped.rejected, cases.len() as u64);
    assert_eq!(metrics.written, 1);
    drop(recorder);
    let events: Vec<Record> = written(&log)
        .into_iter()
        .filter(|r| matches!(r, Record::EventAppended(_)))
        .collect();
    assert_eq!(events.len(), 1);
}

#[test]
fn a_bad_shape_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, recorder) = start(dir.path());
    let repeated = recorder.shape("step", &["a", "b", "a"]).unwrap_err();
    assert!(matches!(repeated, auditlog::Error::InvalidInput(_)));
    assert!(repeated.to_string().contains("\"a\" twice"), "{repeated}");
    let keys: Vec<String> = (0..=auditlog::limits::INGEST_SHAPE_FIELDS_MAX)
        .map(|i| format!("k{i}"))
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert!(recorder.shape("step", &keys).is_err());
    // A shape with no keys is fine: an event with an empty payload.
    let empty = recorder.shape("tick", &[]).unwrap();
    let event = ShapedEventRef {
        run_id: "run-1",
        sequence: 1,
        values: &[],
        created_at: Timestamp::from_unix_millis(1),
    };
    assert_eq!(recorder.record_shaped(&empty, &event), Recorded::Accepted);
}

#[test]
fn a_shape_registered_from_several_threads_at_once_gets_one_number() {
    let dir = tempfile::tempdir().unwrap();
    let (log, recorder) = start(dir.path());
    let n_threads = 4;
    let n_events = 500u64;
    let shapes: Vec<EventShape> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n_threads)
            .map(|t| {
                let recorder = &recorder;
                scope.spawn(move || record_from_thread(recorder, t, n_events))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(shapes.windows(2).all(|pair| pair[0] == pair[1]));
    let report = recorder.close(Duration::from_secs(60));
    assert_eq!(report.dropped.total(), 0);
    let mut n_seen = 0;
    for record in written(&log) {
        if let Record::EventAppended(event) = record {
            assert_eq!(event.event_type, "step");
            let thread = event.payload["thread"].as_u64().unwrap();
            assert_eq!(event.run_id, format!("run-{thread}"));
            assert_eq!(event.payload["i"].as_u64(), Some(event.sequence));
            n_seen += 1;
        }
    }
    assert_eq!(n_seen, n_threads * n_events);
}

/// Registers the shape and records `n_events` of it for run `run-{t}`.
fn record_from_thread(recorder: &Recorder, t: u64, n_events: u64) -> EventShape {
    let shape = recorder.shape("step", &["thread", "i"]).unwrap();
    let run_id = format!("run-{t}");
    for i in 1..=n_events {
        let values = [FieldValue::U64(t), FieldValue::U64(i)];
        let event = ShapedEventRef {
            run_id: &run_id,
            sequence: i,
            values: &values,
            created_at: Timestamp::from_unix_millis(1),
        };
        // The default ring holds every event here: none is dropped as the queue full.
        assert!(recorder.record_shaped(&shape, &event).is_accepted());
    }
    shape
}
