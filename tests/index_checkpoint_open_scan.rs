//! Open with a valid index checkpoint verifies only the log after its coverage (plus
//! segment headers), yet never returns a frame that fails verification: a damaged
//! frame below the coverage, in a sealed segment or in the last one, is refused when
//! read with its segment and offset, the log is not cut, the records around it read
//! back, and an open that verifies everything reports it.

mod common;

use auditlog::{AuditLog, CheckpointUse, Error, Lsn};
use common::{flip_bits, frame_offset, rolled_store, small_config};

#[test]
fn frames_below_the_checkpoint_are_verified_when_read_not_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (records, lsns, segments) = rolled_store(dir.path());
    let last = segments.last().unwrap();

    // One damaged frame in the first (sealed) segment and one early in the last.
    let in_last = lsns
        .iter()
        .position(|&lsn| is_in(last, lsn))
        .expect("the last segment holds frames");
    assert!(
        in_last + 1 < lsns.len(),
        "the last segment holds two frames"
    );
    // Not the last frame: that one is the checkpoint's fingerprint.
    let victims = [2, in_last];
    for &v in &victims {
        let segment = if v == 2 { &segments[0] } else { last };
        flip_bits(segment, frame_offset(segment, lsns[v]) + 22, 0x40);
    }
    let bytes_before: Vec<u64> = segments
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();

    let log = AuditLog::open(small_config(dir.path())).unwrap();
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
    let report = log.recovery_report();
    assert!(
        report.damaged.is_empty() && report.torn_tail.is_none(),
        "{report:?}"
    );
    assert!(
        report.n_frames < lsns.len() as u64,
        "only the tail was scanned"
    );
    for (i, &lsn) in lsns.iter().enumerate() {
        match log.read(lsn) {
            Ok(record) => {
                assert!(!victims.contains(&i));
                assert_eq!(record, records[i]);
            }
            Err(Error::Corrupt { .. }) => assert!(victims.contains(&i), "record {i}"),
            Err(other) => panic!("record {i}: {other}"),
        }
    }
    assert!(matches!(
        log.records_from(Lsn(0)),
        Err(Error::Corrupt { .. })
    ));
    drop(log);
    let bytes_after: Vec<u64> = segments
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert_eq!(bytes_before, bytes_after, "nothing was cut");

    let log = AuditLog::open(small_config(dir.path()).verify_all_at_open(true)).unwrap();
    assert_eq!(log.recovery_report().damaged.len(), 2);
}

/// Whether `lsn` falls inside the segment file `path` (named by its base LSN).
fn is_in(path: &std::path::Path, lsn: Lsn) -> bool {
    let name = path.file_stem().unwrap().to_str().unwrap();
    let base: u64 = name.parse().unwrap();
    let len = std::fs::metadata(path).unwrap().len();
    lsn.0 >= base && lsn.0 < base + len - auditlog::limits::SEGMENT_HEADER_BYTES
}
