//! Every drop reason is counted, and — while the log can still be written — reported
//! in the log itself by a `DropReport` record naming the reason, the count and the
//! span, so a reader of the log sees the gap: queue full, oversized, after shutdown,
//! rejected. An I/O failure is counted and named in `metrics()`; it cannot be reported
//! in-band because a failed write poisons the log, which then acknowledges nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use auditlog::ingest::{Backpressure, EventRef, FieldValue};
use auditlog::model::{DropReason, Timestamp};
use auditlog::vfs::{FaultPlan, FaultyVfs, OsVfs};
use auditlog::{AuditLog, Config, Durability, IngestConfig, Lsn, Record, Recorded, Recorder};

fn open(dir: &std::path::Path) -> Arc<AuditLog> {
    Arc::new(AuditLog::open(Config::new(dir).durability(Durability::None)).unwrap())
}

fn event<'a>(
    run_id: &'a str,
    sequence: u64,
    fields: &'a [(&'a str, FieldValue<'a>)],
) -> EventRef<'a> {
    EventRef {
        run_id,
        sequence,
        event_type: "step",
        fields,
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
    }
}

/// The drop reports in the log: (reason, n_dropped) in log order, with their spans valid.
fn drop_reports(log: &AuditLog) -> Vec<(DropReason, u64)> {
    log.records_from(Lsn(0))
        .unwrap()
        .into_iter()
        .filter_map(|(_, record)| match record {
            Record::DropReport(report) => {
                assert!(
                    report.first_at <= report.last_at,
                    "span ends before it starts"
                );
                assert!(report.n_dropped > 0);
                Some((report.reason, report.n_dropped))
            }
            _ => None,
        })
        .collect()
}

fn reported(log: &AuditLog, reason: DropReason) -> u64 {
    drop_reports(log)
        .into_iter()
        .filter(|(r, _)| *r == reason)
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn a_full_queue_drops_without_blocking_and_the_log_shows_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    // The smallest buffer: a 4 KiB ring, a few dozen small events.
    let config = IngestConfig::default().queue_bytes(4 << 10);
    let shards = config.shard_count() as u64;
    let recorder = Recorder::start(Arc::clone(&log), config).unwrap();
    let (mut n_accepted, mut n_full) = (0u64, 0u64);
    // A producer loop outruns a committer that writes to disk; stop at the first
    // batch of drops (bounded so a broken queue cannot spin forever).
    for seq in 1..=10_000_000u64 {
        match recorder.record_event(&event("run-1", seq, &[])) {
            Recorded::Accepted => n_accepted += 1,
            Recorded::Dropped(DropReason::QueueFull) => n_full += 1,
            other => panic!("unexpected {other:?}"),
        }
        if n_full >= 100 {
            break;
        }
    }
    assert!(n_full >= 100, "a 4 KiB ring never filled");
    recorder.flush().unwrap();
    let metrics = recorder.metrics();
    assert_eq!(metrics.dropped.queue_full, n_full);
    assert_eq!(metrics.dropped.total(), n_full);
    assert_eq!(metrics.written, n_accepted);
    assert_eq!(metrics.enqueued, n_accepted);
    assert!(
        0 < metrics.queue_high_water_bytes
            && metrics.queue_high_water_bytes <= metrics.queue_capacity_bytes
    );
    // One ring per shard; this thread wrote to one of them.
    assert_eq!(metrics.queue_capacity_bytes, shards * (4 << 10));
    assert_eq!(reported(&log, DropReason::QueueFull), n_full);
    assert!(metrics.drop_reports_written >= 1);
}

#[test]
fn a_record_larger_than_the_log_allows_is_dropped_as_oversized_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        AuditLog::open(
            Config::new(dir.path())
                .durability(Durability::None)
                .record_bytes_max(256),
        )
        .unwrap(),
    );
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let text = "y".repeat(400);
    let fields = [("text", FieldValue::Str(&text))];
    // It fits an inline slot, so it is accepted; the log refuses it when written.
    assert_eq!(
        recorder.record_event(&event("run-1", 1, &fields)),
        Recorded::Accepted
    );
    assert_eq!(
        recorder.record_event(&event("run-1", 2, &[])),
        Recorded::Accepted
    );
    recorder.flush().unwrap();
    let metrics = recorder.metrics();
    assert_eq!(metrics.dropped.oversized, 1);
    assert_eq!(
        metrics.written, 1,
        "one refused record does not fail the batch"
    );
    assert!(
        metrics
            .last_error
            .unwrap()
            .contains("larger than the limit")
    );
    assert_eq!(reported(&log, DropReason::Oversized), 1);
}

#[test]
fn invalid_records_are_rejected_at_once_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let rejected = Recorded::Dropped(DropReason::Rejected);
    assert_eq!(
        recorder.record_event(&event("", 1, &[])),
        rejected,
        "empty run id"
    );
    assert_eq!(
        recorder.record_event(&event("run-1", 0, &[])),
        rejected,
        "sequence 0"
    );
    let long_id = "r".repeat(auditlog::limits::ID_BYTES_MAX + 1);
    assert_eq!(recorder.record_event(&event(&long_id, 1, &[])), rejected);
    recorder.flush().unwrap();
    assert_eq!(recorder.metrics().dropped.rejected, 3);
    assert_eq!(reported(&log, DropReason::Rejected), 3);
}

#[test]
fn records_after_close_are_dropped_as_after_shutdown_and_reported_when_the_handle_goes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    assert!(recorder.record_event(&event("run-1", 1, &[])).is_accepted());
    let report = recorder.close(std::time::Duration::from_secs(30));
    assert!(report.completed);
    assert_eq!(report.written, 1);
    for seq in 2..=4 {
        assert_eq!(
            recorder.record_event(&event("run-1", seq, &[])),
            Recorded::Dropped(DropReason::AfterShutdown)
        );
    }
    assert_eq!(recorder.metrics().dropped.after_shutdown, 3);
    drop(recorder);
    assert_eq!(reported(&log, DropReason::AfterShutdown), 3);
}

#[test]
fn a_failing_disk_drops_every_record_of_the_batch_as_io_failure() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let log = Arc::new(
        AuditLog::open(
            Config::new(dir.path())
                .durability(Durability::None)
                .vfs(Arc::new(FaultyVfs::new(OsVfs, plan.clone()))),
        )
        .unwrap(),
    );
    let recorder = Recorder::start(
        Arc::clone(&log),
        IngestConfig::default().backpressure(Backpressure::Block),
    )
    .unwrap();
    assert!(recorder.record_event(&event("run-1", 1, &[])).is_accepted());
    recorder.flush().unwrap();
    plan.fail_writes.store(true, Ordering::SeqCst);
    for seq in 2..=11 {
        assert!(
            recorder
                .record_event(&event("run-1", seq, &[]))
                .is_accepted()
        );
    }
    assert!(
        recorder.flush().is_err(),
        "a flush after a failed write fails"
    );
    let metrics = recorder.metrics();
    assert_eq!(metrics.written, 1);
    assert_eq!(metrics.dropped.io_failure, 10);
    assert!(metrics.last_error.is_some());
    let report = recorder.close(std::time::Duration::from_secs(30));
    assert_eq!(report.dropped.io_failure, 10);
    assert_eq!(report.unflushed, 0, "every accepted record is settled");
    assert!(report.error.is_some());
}

#[test]
fn duplicates_found_by_the_index_at_commit_are_rejected_and_reported_and_the_originals_kept() {
    use auditlog::Storage;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let first = [("text", FieldValue::Str("original"))];
    let second = [("text", FieldValue::Str("imposter"))];
    // Accepted on the hot path (it cannot see the index); refused at commit.
    assert_eq!(
        recorder.record_event(&event("run-1", 1, &first)),
        Recorded::Accepted
    );
    assert_eq!(
        recorder.record_event(&event("run-1", 1, &second)),
        Recorded::Accepted
    );
    recorder.flush().unwrap();
    assert_eq!(recorder.metrics().dropped.rejected, 1);
    assert_eq!(reported(&log, DropReason::Rejected), 1);
    let events = log.list_logs_by_run("run-1").unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["text"], "original");
}
