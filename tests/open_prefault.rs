//! `Config::prefault_segments` maps the sealed segments in at open and changes nothing
//! else: every record reads back as it does without it, and a damaged frame below the
//! checkpoint is still refused when read, naming its segment, not returned.

mod common;

use auditlog::{AuditLog, CheckpointUse, Error};
use common::{flip_bits, frame_offset, rolled_store, small_config};

#[test]
fn a_prefaulted_open_reads_every_record_and_still_verifies_each_frame_read() {
    let dir = tempfile::tempdir().unwrap();
    let (records, lsns, segments) = rolled_store(dir.path());
    flip_bits(&segments[0], frame_offset(&segments[0], lsns[2]) + 22, 0x40);

    let log = AuditLog::open(small_config(dir.path()).prefault_segments(true)).unwrap();
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
    for (i, &lsn) in lsns.iter().enumerate() {
        match log.read(lsn) {
            Ok(record) => assert_eq!(record, records[i], "record {i}"),
            Err(Error::Corrupt { segment, .. }) => {
                assert_eq!(i, 2);
                assert_eq!(segment, segments[0]);
            }
            Err(other) => panic!("record {i}: {other}"),
        }
    }
}
