//! `Config::prefault_segments` maps the sealed segments in at open, and
//! `Config::warm_segments` (the default) faults them in on a thread after it, and
//! neither changes anything else: every record reads back as it does without them,
//! during the warming and after it, and a damaged frame below the checkpoint is still
//! refused when read, naming its segment, not returned.

mod common;

use std::path::PathBuf;

use auditlog::{AuditLog, CheckpointUse, Config, Error, Lsn, Record};
use common::{flip_bits, frame_offset, rolled_store, small_config};

/// Every record reads back but the third, which is refused naming its segment.
fn assert_reads(log: &AuditLog, records: &[Record], lsns: &[Lsn], segments: &[PathBuf]) {
    for (i, &lsn) in lsns.iter().enumerate() {
        match log.read(lsn) {
            Ok(record) => {
                assert_ne!(i, 2, "the damaged record was read");
                assert_eq!(record, records[i], "record {i}");
            }
            Err(Error::Corrupt { segment, .. }) => {
                assert_eq!(i, 2);
                assert_eq!(segment, segments[0]);
            }
            Err(other) => panic!("record {i}: {other}"),
        }
    }
}

/// A store of several segments whose third record is damaged, opened with `config`.
fn damaged_store(config: impl Fn(&std::path::Path) -> Config) {
    let dir = tempfile::tempdir().unwrap();
    let (records, lsns, segments) = rolled_store(dir.path());
    flip_bits(&segments[0], frame_offset(&segments[0], lsns[2]) + 22, 0x40);

    let log = AuditLog::open(config(dir.path())).unwrap();
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
    assert_reads(&log, &records, &lsns, &segments);
    while log.is_warming() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_reads(&log, &records, &lsns, &segments);
}

#[test]
fn a_prefaulted_open_reads_every_record_and_still_verifies_each_frame_read() {
    damaged_store(|dir| small_config(dir).prefault_segments(true));
}

#[test]
fn a_warmed_open_reads_every_record_while_warming_and_after() {
    damaged_store(small_config);
}

#[test]
fn an_open_told_not_to_warm_starts_no_warmer() {
    let dir = tempfile::tempdir().unwrap();
    rolled_store(dir.path());
    let log = AuditLog::open(small_config(dir.path()).warm_segments(false)).unwrap();
    assert!(!log.is_warming());
    drop(log);
    let log = AuditLog::open(small_config(dir.path()).prefault_segments(true));
    assert!(!log.unwrap().is_warming());
}
