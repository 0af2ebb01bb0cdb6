//! Nothing accepted is lost at a clean shutdown: after `close`, and after simply
//! dropping the last handle, reopening the store finds every accepted record. `flush`
//! returns only when everything accepted before it is durable, and under group commit
//! an idle tail becomes durable without any flush.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog::ingest::{EventRef, FieldValue};
use auditlog::model::Timestamp;
use auditlog::{AuditLog, Config, Durability, IngestConfig, Lsn, Record, Recorder};

fn config(dir: &std::path::Path, durability: Durability) -> Config {
    Config::new(dir)
        .durability(durability)
        .segment_bytes(1 << 20)
        .record_bytes_max(64 << 10)
}

/// Records `n` events from 2 threads under the drop policy; returns how many were accepted.
fn record_many(recorder: &Recorder, n_per_thread: u64) -> u64 {
    let big = "z".repeat(2000);
    std::thread::scope(|scope| {
        let handles: Vec<_> = ["run-a", "run-b"]
            .into_iter()
            .map(|run_id| {
                let recorder = recorder.clone();
                let big = &big;
                scope.spawn(move || {
                    let mut n_accepted = 0;
                    for seq in 1..=n_per_thread {
                        // Every 100th event takes the slow path.
                        let text = if seq % 100 == 0 {
                            big.as_str()
                        } else {
                            "small"
                        };
                        let fields = [("text", FieldValue::Str(text)), ("n", FieldValue::U64(seq))];
                        let event = EventRef {
                            run_id,
                            sequence: seq,
                            event_type: "step",
                            fields: &fields,
                            created_at: Timestamp::from_unix_millis(seq as i64),
                        };
                        n_accepted += u64::from(recorder.record_event(&event).is_accepted());
                    }
                    n_accepted
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn count_events_after_reopen(dir: &std::path::Path) -> u64 {
    let log = AuditLog::open(config(dir, Durability::None)).unwrap();
    log.records_from(Lsn(0))
        .unwrap()
        .into_iter()
        .filter(|(_, r)| matches!(r, Record::EventAppended(_)))
        .count() as u64
}

#[test]
fn close_writes_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(config(dir.path(), Durability::default())).unwrap());
    let recorder = Recorder::start(log, IngestConfig::default()).unwrap();
    let n_accepted = record_many(&recorder, 20_000);
    let report = recorder.close(Duration::from_secs(60));
    assert!(report.completed);
    assert_eq!(report.unflushed, 0);
    assert_eq!(report.written, n_accepted);
    assert_eq!(report.written + report.dropped.queue_full, 40_000);
    drop(recorder);
    assert_eq!(count_events_after_reopen(dir.path()), n_accepted);
}

#[test]
fn dropping_the_last_handle_writes_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(config(dir.path(), Durability::None)).unwrap());
    let recorder = Recorder::start(log, IngestConfig::default()).unwrap();
    let n_accepted = record_many(&recorder, 20_000);
    drop(recorder);
    assert_eq!(count_events_after_reopen(dir.path()), n_accepted);
}

#[test]
fn flush_returns_once_everything_before_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(config(dir.path(), Durability::None)).unwrap());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let n_accepted = record_many(&recorder, 5_000);
    recorder.flush().unwrap();
    let metrics = recorder.metrics();
    assert_eq!(metrics.written, n_accepted);
    assert_eq!(metrics.queue_len, 0);
    let records = log.records_from(Lsn(0)).unwrap();
    let (last_lsn, _) = records.last().unwrap();
    assert!(
        log.durable_lsn().unwrap() > *last_lsn,
        "the last record is durable"
    );
}

#[test]
fn group_commit_syncs_an_idle_tail_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        AuditLog::open(config(
            dir.path(),
            Durability::GroupCommit { interval_ms: 2 },
        ))
        .unwrap(),
    );
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let event = EventRef {
        run_id: "run-a",
        sequence: 1,
        event_type: "step",
        fields: &[],
        created_at: Timestamp::from_unix_millis(1),
    };
    assert!(recorder.record_event(&event).is_accepted());
    // Not a timing assertion: wait (generously bounded) for the committer's timer.
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let written = recorder.metrics().written == 1;
        if written && log.durable_lsn().unwrap() > Lsn(0) {
            break;
        }
        assert!(Instant::now() < give_up, "the idle tail was never synced");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(feature = "tokio")]
#[test]
fn flush_async_waits_like_flush() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(config(dir.path(), Durability::None)).unwrap());
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    let n_accepted = record_many(&recorder, 1_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(recorder.flush_async()).unwrap();
    assert_eq!(recorder.metrics().written, n_accepted);
    let (last_lsn, _) = log.records_from(Lsn(0)).unwrap().pop().unwrap();
    assert!(log.durable_lsn().unwrap() > last_lsn);
}
