//! A full disk, a failing write and a failing sync are errors, never a crash: the log
//! is poisoned for writing (it acknowledges nothing further and says why), reads go
//! on, and the next open recovers everything that was acknowledged.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use auditlog::vfs::{FaultPlan, FaultyVfs, OsVfs};
use auditlog::{AuditLog, Durability, Error, Lsn, Record};
use common::{all_records, event, small_config};

fn faulty(dir: &std::path::Path, plan: &Arc<FaultPlan>) -> auditlog::Config {
    small_config(dir)
        .durability(Durability::EveryBatch)
        .vfs(Arc::new(FaultyVfs::new(OsVfs, plan.clone())))
}

/// Appends one record at a time until an append fails; returns what was acknowledged.
fn append_until_error(log: &AuditLog) -> (Vec<(Lsn, Record)>, Error) {
    let mut acked = Vec::new();
    for seq in 1.. {
        let record = event("run-full", seq, &"d".repeat(200));
        match log.append(&record) {
            Ok(lsn) => acked.push((lsn, record)),
            Err(error) => return (acked, error),
        }
        assert!(seq < 100_000, "the injected fault never fired");
    }
    unreachable!()
}

#[test]
fn a_full_disk_is_an_error_that_poisons_the_log_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let log = AuditLog::open(faulty(dir.path(), &plan)).unwrap();
    // No room for another segment: the next roll must fail at allocation.
    plan.space_left_bytes.store(0, Ordering::SeqCst);
    let (acked, error) = append_until_error(&log);
    assert!(error.is_disk_full(), "{error}");
    assert!(error.to_string().contains("disk is full"), "{error}");
    assert!(!acked.is_empty());

    let next = log.append(&event("run-full", 999_999, "after"));
    match next {
        Err(Error::Poisoned { reason }) => assert!(reason.contains("disk is full"), "{reason}"),
        other => panic!("a poisoned log must refuse, got {other:?}"),
    }
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    // Reads go on.
    assert_eq!(log.read(acked[0].0).unwrap(), acked[0].1);
    drop(log);

    plan.space_left_bytes.store(u64::MAX, Ordering::SeqCst);
    let log = AuditLog::open(faulty(dir.path(), &plan)).unwrap();
    assert_eq!(
        all_records(&log),
        acked,
        "everything acknowledged, nothing else"
    );
    assert!(log.recovery_report().is_clean());
    log.append(&event("run-full", 1_000_000, "writable again"))
        .unwrap();
}

#[test]
fn a_full_disk_at_open_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    plan.space_left_bytes.store(0, Ordering::SeqCst);
    let error = AuditLog::open(faulty(dir.path(), &plan)).unwrap_err();
    assert!(error.is_disk_full(), "{error}");
    plan.space_left_bytes.store(u64::MAX, Ordering::SeqCst);
    AuditLog::open(faulty(dir.path(), &plan)).unwrap();
}

#[test]
fn a_failed_sync_is_never_acknowledged_and_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let log = AuditLog::open(faulty(dir.path(), &plan)).unwrap();
    let mut acked = Vec::new();
    for seq in 1..=10 {
        let record = event("run-sync", seq, "before");
        acked.push((log.append(&record).unwrap(), record));
    }
    plan.fail_syncs.store(true, Ordering::SeqCst);
    let error = log
        .append(&event("run-sync", 11, "unacknowledged"))
        .unwrap_err();
    assert!(error.to_string().contains("sync"), "{error}");
    plan.fail_syncs.store(false, Ordering::SeqCst);
    // Even with the disk healthy again, a poisoned log acknowledges nothing more.
    assert!(matches!(
        log.append(&event("run-sync", 12, "x")),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    drop(log);

    let log = AuditLog::open(faulty(dir.path(), &plan)).unwrap();
    let got = all_records(&log);
    assert_eq!(
        got[..acked.len()],
        acked[..],
        "every acknowledged record survives"
    );
    assert!(
        got.len() <= acked.len() + 1,
        "only the unacknowledged record may follow"
    );
}

#[test]
fn a_failed_write_poisons_the_log_and_the_next_open_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let log = AuditLog::open(faulty(dir.path(), &plan)).unwrap();
    let first = event("run-write", 1, "kept");
    let lsn = log.append(&first).unwrap();
    plan.fail_writes.store(true, Ordering::SeqCst);
    let error = log.append(&event("run-write", 2, "lost")).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Io {
                op: "write segment",
                ..
            }
        ),
        "{error}"
    );
    plan.fail_writes.store(false, Ordering::SeqCst);
    assert!(matches!(
        log.append(&event("run-write", 3, "x")),
        Err(Error::Poisoned { .. })
    ));
    drop(log);
    let log = AuditLog::open(faulty(dir.path(), &plan)).unwrap();
    assert_eq!(all_records(&log), vec![(lsn, first)]);
}
