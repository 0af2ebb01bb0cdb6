//! `AuditLog::append_each` settles each record on its own: a record the log refuses
//! (too large) fails alone while the rest of the call is written, and a failed write
//! fails every record of the call, since a poisoned log acknowledges nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use auditlog::vfs::{FaultPlan, FaultyVfs, OsVfs};
use auditlog::{AuditLog, Error};
use common::{all_records, event, small_config};

#[test]
fn one_oversized_record_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    let records = [
        event("run-a", 1, "small"),
        event("run-a", 2, &"x".repeat(8 << 10)),
        event("run-a", 3, "small"),
    ];
    let results = log.append_each(&records);
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::RecordTooLarge { .. })));
    assert!(results[2].is_ok());
    let written: Vec<_> = all_records(&log).into_iter().map(|(_, r)| r).collect();
    assert_eq!(written, [records[0].clone(), records[2].clone()]);
}

#[test]
fn a_failed_write_fails_every_record_of_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let log =
        AuditLog::open(small_config(dir.path()).vfs(Arc::new(FaultyVfs::new(OsVfs, plan.clone()))))
            .unwrap();
    plan.fail_writes.store(true, Ordering::SeqCst);
    let results = log.append_each(&[event("run-a", 1, "one"), event("run-a", 2, "two")]);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::Poisoned { .. }) | Err(Error::Io { .. })))
    );
    assert!(log.append_each(&[event("run-a", 3, "three")])[0].is_err());
}
