//! Events of one run recorded from four threads at once are stored in sequence order:
//! the threads share the run's sequence counter, so they enqueue out of order, and the
//! committer's hold-back restores the order. Read back in log order, each run's events
//! are exactly 1, 2, 3, … with none missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auditlog::ingest::{Backpressure, EventRef, FieldValue};
use auditlog::model::Timestamp;
use auditlog::{AuditLog, Config, Durability, IngestConfig, Lsn, Record, Recorded, Recorder};

#[test]
fn one_runs_events_from_four_producers_are_stored_in_sequence_order() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    // Blocking, so nothing is dropped; a window long enough that no preemption of a
    // producer between taking a sequence and recording it can outlast it.
    let config = IngestConfig::default()
        .queue_bytes(64 << 10)
        .backpressure(Backpressure::Block)
        .reorder_window(Duration::from_secs(60));
    let recorder = Recorder::start(Arc::clone(&log), config).unwrap();
    const RUNS: [&str; 2] = ["run-a", "run-b"];
    const N_PER_RUN: u64 = 20_000;
    let next_seq: [AtomicU64; 2] = [AtomicU64::new(1), AtomicU64::new(1)];
    std::thread::scope(|scope| {
        for thread_idx in 0..4 {
            let recorder = recorder.clone();
            let next_seq = &next_seq;
            scope.spawn(move || {
                loop {
                    let run_idx = thread_idx % 2;
                    let seq = next_seq[run_idx].fetch_add(1, Ordering::Relaxed);
                    if seq > N_PER_RUN {
                        break;
                    }
                    let fields = [("thread", FieldValue::U64(thread_idx as u64))];
                    let event = EventRef {
                        run_id: RUNS[run_idx],
                        sequence: seq,
                        event_type: "step",
                        fields: &fields,
                        created_at: Timestamp::from_unix_millis(seq as i64),
                    };
                    assert_eq!(recorder.record_event(&event), Recorded::Accepted);
                }
            });
        }
    });
    let report = recorder.close(Duration::from_secs(60));
    assert!(report.completed);
    assert_eq!(report.written, 2 * N_PER_RUN);
    for run_id in RUNS {
        let sequences: Vec<u64> = log
            .records_from(Lsn(0))
            .unwrap()
            .into_iter()
            .filter_map(|(_, record)| match record {
                Record::EventAppended(event) if event.run_id == run_id => Some(event.sequence),
                _ => None,
            })
            .collect();
        let expected: Vec<u64> = (1..=N_PER_RUN).collect();
        assert!(
            sequences == expected,
            "{run_id} is out of order or incomplete"
        );
    }
}
