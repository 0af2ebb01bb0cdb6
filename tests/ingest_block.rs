//! Under `Backpressure::Block` a full queue makes the producer wait instead of
//! dropping: two producers pushing far more records than a five-slot buffer holds get
//! every record accepted and written. `BlockTimeout` waits, then drops as queue full.

use std::sync::Arc;
use std::time::Duration;

use auditlog::ingest::{Backpressure, EventRef};
use auditlog::model::Timestamp;
use auditlog::{AuditLog, Config, Durability, IngestConfig, Lsn, Record, Recorded, Recorder};

fn event(run_id: &str, sequence: u64) -> EventRef<'_> {
    EventRef {
        run_id,
        sequence,
        event_type: "step",
        fields: &[],
        created_at: Timestamp::from_unix_millis(1),
    }
}

#[test]
fn the_block_policy_never_drops() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    let config = IngestConfig::default()
        .queue_bytes(4 << 10)
        .backpressure(Backpressure::Block);
    let recorder = Recorder::start(Arc::clone(&log), config).unwrap();
    const N_PER_THREAD: u64 = 20_000;
    std::thread::scope(|scope| {
        for run_id in ["run-a", "run-b"] {
            let recorder = recorder.clone();
            scope.spawn(move || {
                for seq in 1..=N_PER_THREAD {
                    assert_eq!(
                        recorder.record_event(&event(run_id, seq)),
                        Recorded::Accepted
                    );
                }
            });
        }
    });
    let report = recorder.close(Duration::from_secs(60));
    assert!(report.completed);
    assert_eq!(report.dropped.total(), 0);
    assert_eq!(report.written, 2 * N_PER_THREAD);
    let n_events = log
        .records_from(Lsn(0))
        .unwrap()
        .into_iter()
        .filter(|(_, r)| matches!(r, Record::EventAppended(_)))
        .count() as u64;
    assert_eq!(n_events, 2 * N_PER_THREAD);
}

#[test]
fn block_with_a_timeout_gives_up_as_queue_full() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    let config = IngestConfig::default()
        .queue_bytes(4 << 10)
        .backpressure(Backpressure::BlockTimeout(Duration::from_micros(1)));
    let recorder = Recorder::start(Arc::clone(&log), config).unwrap();
    // Loop until one call gives up (bounded, so a broken policy cannot spin forever).
    let gave_up =
        (1..=10_000_000u64).any(|seq| !recorder.record_event(&event("run-a", seq)).is_accepted());
    assert!(gave_up);
    recorder.flush().unwrap();
    let metrics = recorder.metrics();
    assert!(metrics.dropped.queue_full >= 1);
    assert_eq!(metrics.dropped.total(), metrics.dropped.queue_full);
    assert_eq!(metrics.written, metrics.enqueued);
}
