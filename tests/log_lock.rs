//! One owner per store directory: a second opener, in this process or another, gets a
//! clear error naming the directory, and the owner is not disturbed.

mod common;

use std::process::Command;
use std::sync::Mutex;

use auditlog::{AuditLog, Error};
use common::{all_records, events, small_config};

/// A child forked by one test shares every open descriptor of this process until it
/// execs, the lock file's included; the tests take turns so that window never overlaps
/// another test's close and reopen.
static TURN: Mutex<()> = Mutex::new(());

#[test]
fn a_second_opener_in_the_same_process_is_refused() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    log.append_batch(&events(5)).unwrap();
    match AuditLog::open(small_config(dir.path())) {
        Err(err @ Error::Locked { .. }) => {
            assert!(
                err.to_string().contains(&dir.path().display().to_string()),
                "{err}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // The owner goes on undisturbed and the lock is released at close.
    log.append_batch(&events(5)).unwrap();
    log.close().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    assert_eq!(all_records(&log).len(), 10);
}

#[test]
fn another_process_cannot_take_the_lock_while_the_store_is_open() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    let lock_file = dir.path().join("LOCK");
    // util-linux flock(1) takes the same kind of lock (flock(2)) from another process.
    let held = Command::new("flock")
        .arg("--nonblock")
        .arg("--exclusive")
        .arg(&lock_file)
        .arg("true")
        .status();
    let Ok(held) = held else {
        panic!("flock(1) is needed for this test (util-linux)");
    };
    assert!(
        !held.success(),
        "another process took the lock of an open store"
    );
    log.close().unwrap();
    let free = Command::new("flock")
        .arg("--nonblock")
        .arg("--exclusive")
        .arg(&lock_file)
        .arg("true")
        .status()
        .unwrap();
    assert!(free.success(), "the lock is released at close");
}
