//! Compaction gives the space of purged runs back and purged data stays gone:
//! - after `purge_older_than` and `compact()`, no record of a purged run is left in the
//!   log, every live record is, the segment files shrink, and the same holds after a
//!   reopen (with the checkpoint written on close, and rebuilding without one);
//! - a dead run start goes in the same pass as the rest of its run when all of it lies
//!   in the start's segment, and one pass later when it spans segments (see the
//!   `compaction` docs); `compact()` runs passes until nothing is removed;
//! - the active segment is never rewritten: dead records in it stay until it is sealed;
//! - readers and writers running while compaction passes run get correct answers;
//! - retention by age and by size purges the oldest runs, on demand and from the
//!   background thread.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use auditlog::compaction::Policy;
use auditlog::model::{RunStats, Status, Timestamp};
use auditlog::{AuditLog, CheckpointUse, Config, Error, Record, Retention, Storage};
use common::{
    all_records, before_run, numbered_run, record_runs, run_id_of, segment_bytes_on_disk,
};

/// Small segments, and a policy that rewrites any segment with something to remove, so
/// that every purged record is gone after `compact()`.
fn small_config(dir: &std::path::Path) -> Config {
    common::small_config(dir).compaction_policy(Policy {
        removable_share_min: 0.0,
    })
}

/// The records of live runs, by run, as queries return them.
fn snapshot(log: &AuditLog, runs: std::ops::Range<u64>) -> Vec<(auditlog::model::Run, usize)> {
    runs.map(|i| {
        let id = numbered_run(i).id;
        (
            log.get_run(&id).unwrap(),
            log.list_logs_by_run(&id).unwrap().len(),
        )
    })
    .collect()
}

fn assert_purged_gone(log: &AuditLog, purged: std::ops::Range<u64>, context: &str) {
    let purged_ids: HashSet<String> = purged.clone().map(|i| numbered_run(i).id).collect();
    for (lsn, record) in all_records(log) {
        if let Some(id) = run_id_of(&record) {
            assert!(
                !purged_ids.contains(id),
                "{context}: record of purged run {id} still in the log at {lsn}"
            );
        }
    }
    for i in purged {
        let id = numbered_run(i).id;
        assert!(
            matches!(log.get_run(&id), Err(Error::NotFound { .. })),
            "{context}"
        );
        assert!(log.list_logs_by_run(&id).unwrap().is_empty(), "{context}");
    }
}

#[test]
fn purged_runs_leave_the_log_and_the_disk_and_stay_gone_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    record_runs(&log, 0..60, 8, 150);
    let live_before = snapshot(&log, 30..60);
    assert_eq!(log.purge_older_than(before_run(30)).unwrap(), 30);
    let disk_before = segment_bytes_on_disk(tmp.path());
    let report = log.compact().unwrap();
    assert!(report.n_passes >= 2, "{report:?}");
    assert!(report.n_segments_deleted + report.n_segments_rewritten > 0);
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    assert_purged_gone(&log, 0..30, "after compaction");
    assert_eq!(snapshot(&log, 30..60), live_before);
    assert!(
        all_records(&log)
            .iter()
            .any(|(_, r)| matches!(r, Record::Purge(_))),
        "the tombstone is kept"
    );
    // A second call finds nothing more to do.
    assert_eq!(log.compact().unwrap().n_frames_removed, 0);
    log.close().unwrap();
    assert!(segment_bytes_on_disk(tmp.path()) < disk_before);

    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    assert!(log.recovery_report().is_clean());
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
    assert_purged_gone(&log, 0..30, "after reopen");
    assert_eq!(snapshot(&log, 30..60), live_before);
    // New records keep growing LSNs past everything compacted.
    let last = all_records(&log).last().unwrap().0;
    record_runs(&log, 60..61, 1, 10);
    assert!(all_records(&log).last().unwrap().0 > last);
    log.close().unwrap();

    std::fs::remove_file(tmp.path().join("index.ckpt")).unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    assert_eq!(log.checkpoint_use(), &CheckpointUse::Missing);
    assert_purged_gone(&log, 0..30, "after a rebuild");
    assert_eq!(snapshot(&log, 30..60), live_before);
}

/// Records with `record` into a fresh store, purges run 0 and compacts; checks that run
/// 0 is gone, also after a reopen, and that live run 1 keeps `n_events` events.
fn purge_run_0_and_compact(
    record: impl FnOnce(&AuditLog),
    n_events: usize,
    context: &str,
) -> auditlog::compaction::CompactionReport {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    record(&log);
    assert_eq!(log.purge_older_than(before_run(1)).unwrap(), 1, "{context}");
    let report = log.compact().unwrap();
    assert_purged_gone(&log, 0..1, context);
    log.close().unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    assert_purged_gone(&log, 0..1, &format!("{context}, reopened"));
    let run_1 = numbered_run(1).id;
    assert_eq!(log.list_logs_by_run(&run_1).unwrap().len(), n_events);
    report
}

#[test]
fn a_run_in_one_segment_goes_in_one_pass_and_a_run_across_segments_in_two() {
    // Run 0 and its events lie in one segment, beside live run 1: one pass rewrites the
    // segment without any record of run 0, the next finds nothing.
    let report = purge_run_0_and_compact(|log| record_runs(log, 0..2, 4, 100), 4, "one");
    assert_eq!(report.n_passes, 2, "{report:?}");
    assert_eq!(report.n_segments_rewritten, 1, "{report:?}");

    // Run 0 starts in one segment and has an event in the next: the event goes first,
    // the start one pass later.
    let event_of_run_0 = |sequence| auditlog::model::RunEvent {
        run_id: numbered_run(0).id,
        sequence,
        ..Default::default()
    };
    let across = |log: &AuditLog| {
        log.start_run(&numbered_run(0)).unwrap();
        log.append_log(&event_of_run_0(1)).unwrap();
        record_runs(log, 1..2, 40, 600);
        assert!(log.journal_stats().unwrap().n_segments >= 2);
        log.append_log(&event_of_run_0(2)).unwrap();
    };
    let report = purge_run_0_and_compact(across, 40, "across segments");
    assert_eq!(report.n_passes, 3, "{report:?}");
}

#[test]
fn purging_everything_leaves_only_tombstones_and_the_log_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    record_runs(&log, 0..40, 5, 200);
    log.purge_older_than(before_run(40)).unwrap();
    log.compact().unwrap();
    let left: Vec<Record> = all_records(&log).into_iter().map(|(_, r)| r).collect();
    assert!(
        left.iter().all(|r| matches!(r, Record::Purge(_))),
        "{left:?}"
    );
    record_runs(&log, 40..42, 2, 10);
    log.close().unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    assert_purged_gone(&log, 0..40, "after reopen");
    assert_eq!(log.list_logs_by_run(&numbered_run(41).id).unwrap().len(), 2);
}

#[test]
fn the_default_policy_leaves_mostly_live_segments_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(common::small_config(tmp.path())).unwrap();
    record_runs(&log, 0..60, 8, 150);
    log.purge_older_than(before_run(1)).unwrap();
    let report = log.compact().unwrap();
    assert_eq!(
        report.n_segments_deleted + report.n_segments_rewritten,
        0,
        "{report:?}"
    );
    assert_purged_gone_from_queries(&log, 0..1);
}

fn assert_purged_gone_from_queries(log: &AuditLog, purged: std::ops::Range<u64>) {
    for i in purged {
        let id = numbered_run(i).id;
        assert!(matches!(log.get_run(&id), Err(Error::NotFound { .. })));
        assert!(log.list_logs_by_run(&id).unwrap().is_empty());
    }
}

#[test]
fn the_active_segment_is_never_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    let run = numbered_run(1);
    log.start_run(&run).unwrap();
    let stats = |status| RunStats {
        status,
        ..RunStats::default()
    };
    // A superseded finish is dead, but it sits in the active segment.
    log.finish_run_at(
        &run.id,
        &stats(Status::Error),
        Timestamp::from_unix_millis(5),
    )
    .unwrap();
    log.finish_run_at(&run.id, &stats(Status::Ok), Timestamp::from_unix_millis(6))
        .unwrap();
    let before = all_records(&log);
    let report = log.compact().unwrap();
    assert_eq!(report.n_frames_removed, 0);
    assert_eq!(all_records(&log), before);
    assert_eq!(log.get_run(&run.id).unwrap().status, Status::Ok);
}

#[test]
fn readers_and_writers_get_correct_answers_while_compaction_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(small_config(tmp.path())).unwrap());
    record_runs(&log, 0..40, 6, 120);
    let live = snapshot(&log, 20..40);
    log.purge_older_than(before_run(20)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let compactor = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) || n < 3 {
                log.compact().unwrap();
                n += 1;
            }
        })
    };
    let mut next = 1000;
    for round in 0..30 {
        assert_eq!(snapshot(&log, 20..40), live, "round {round}");
        for i in 0..20 {
            assert!(log.get_run(&numbered_run(i).id).is_err());
        }
        record_runs(&log, next..next + 2, 3, 100);
        next += 2;
    }
    stop.store(true, Ordering::SeqCst);
    compactor.join().unwrap();
    for i in next - 4..next {
        assert_eq!(log.list_logs_by_run(&numbered_run(i).id).unwrap().len(), 3);
    }
    assert_purged_gone(&log, 0..20, "after concurrent compaction");
}

#[test]
fn retention_purges_by_age_and_by_size_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    // Runs started in 2023 are older than a year.
    let config = small_config(tmp.path()).retention(Retention {
        max_age: Some(Duration::from_secs(365 * 24 * 3600)),
        max_total_bytes: None,
    });
    let log = AuditLog::open(config).unwrap();
    record_runs(&log, 0..10, 3, 50);
    let report = log.apply_retention().unwrap();
    assert_eq!(report.n_runs_purged, 10);
    assert_purged_gone(&log, 0..10, "after retention by age");
    drop(log);

    let tmp = tempfile::tempdir().unwrap();
    let config = small_config(tmp.path()).retention(Retention {
        max_age: None,
        max_total_bytes: Some(40 << 10),
    });
    let log = AuditLog::open(config).unwrap();
    record_runs(&log, 0..100, 4, 200);
    let report = log.apply_retention().unwrap();
    assert!(
        report.n_runs_purged > 0 && report.n_runs_purged < 100,
        "{report:?}"
    );
    let n = report.n_runs_purged;
    assert_purged_gone(&log, 0..n, "after retention by size");
    assert!(
        log.get_run(&numbered_run(n).id).is_ok(),
        "the newest runs stay"
    );
    assert!(report.compaction.live_bytes <= 40 << 10, "{report:?}");
}

#[test]
fn the_background_worker_applies_retention_and_compacts() {
    let tmp = tempfile::tempdir().unwrap();
    // Recorded first, so the worker never purges a run while it is being written (its
    // later events would then be orphans, which are kept).
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    record_runs(&log, 0..30, 5, 200);
    log.close().unwrap();
    let config = small_config(tmp.path())
        .background_compaction(20)
        .retention(Retention {
            max_age: Some(Duration::from_secs(365 * 24 * 3600)),
            max_total_bytes: None,
        });
    let log = AuditLog::open(config).unwrap();
    let before = log.journal_stats().unwrap().disk_bytes;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = all_records(&log);
        let purged_left = records.iter().any(|(_, r)| run_id_of(r).is_some());
        if !purged_left {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never compacted: {:?}",
            log.compaction_error()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(log.compaction_error().is_none());
    assert!(log.journal_stats().unwrap().disk_bytes < before);
    log.close().unwrap();
}

#[test]
fn a_checkpoint_older_than_a_compaction_is_never_used() {
    use auditlog::model::RunEvent;
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    let purged = numbered_run(0);
    // An event before its run starts is kept as an orphan (SPEC §3.4)...
    let orphan = RunEvent {
        run_id: purged.id.clone(),
        sequence: 1,
        ..RunEvent::default()
    };
    log.append_log(&orphan).unwrap();
    log.start_run(&numbered_run(100)).unwrap();
    // ...and this checkpoint holds it as one.
    log.checkpoint().unwrap();
    let old_checkpoint = std::fs::read(tmp.path().join("index.ckpt")).unwrap();
    // The run starts (adopting the event) and is purged; compaction removes both.
    log.start_run(&purged).unwrap();
    record_runs(&log, 1..20, 4, 200);
    log.purge_older_than(before_run(1)).unwrap();
    let report = log.compact().unwrap();
    assert!(report.n_frames_removed >= 2, "{report:?}");
    log.close().unwrap();
    // An old copy of the checkpoint is put back: its replay would never see the start
    // that adopted the orphan, so it must not be used.
    std::fs::write(tmp.path().join("index.ckpt"), old_checkpoint).unwrap();
    let log = AuditLog::open(small_config(tmp.path())).unwrap();
    assert!(
        matches!(log.checkpoint_use(), CheckpointUse::Ignored(_)),
        "{:?}",
        log.checkpoint_use()
    );
    assert_purged_gone(&log, 0..1, "after an old checkpoint was put back");
    assert_eq!(log.list_logs_by_run(&numbered_run(5).id).unwrap().len(), 4);
}
