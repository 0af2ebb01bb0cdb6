//! Bytes that fail verification are never returned as records: a bit flip in the tail
//! cuts the log there (and says so when verifiable frames followed), a bit flip in a
//! sealed segment is reported with its segment and offset and skipped (at open when
//! open verifies every frame; on read when a checkpoint let open skip it), strict mode
//! refuses to open, and stale or foreign frames past the tail of a preallocated segment
//! never read as records.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use auditlog::{AuditLog, CorruptionKind, Error, RecoveryMode, Storage};
use common::{
    all_records, crash_image, events, flip_bits, frame_offset, rolled_store, segment_files,
    small_config,
};

/// `result` is the error a read of the damaged frame at `offset` of `segment` gives.
fn assert_names_damage<T: std::fmt::Debug>(result: Result<T, Error>, segment: &Path, offset: u64) {
    match result {
        Err(Error::Corrupt {
            segment: named,
            offset: at,
            ..
        }) => {
            assert_eq!(named, segment);
            assert_eq!(at, offset);
        }
        other => panic!("a damaged record must not be read, got {other:?}"),
    }
}

#[test]
fn a_bit_flip_in_a_sealed_segment_is_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (records, lsns, segments) = rolled_store(dir.path());

    // Damage the 3rd record of the first (sealed) segment.
    let victim = frame_offset(&segments[0], lsns[2]) + 22;
    flip_bits(&segments[0], victim, 0x04);

    // Below the checkpoint written at close, a default open verifies only segment
    // headers: the damaged record is refused when read, naming where it is.
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    assert!(log.recovery_report().damaged.is_empty());
    let at = frame_offset(&segments[0], lsns[2]);
    assert_names_damage(log.read(lsns[2]), &segments[0], at);
    // So is a query that reads it among others.
    assert_names_damage(log.list_logs_by_run("run-a"), &segments[0], at);
    assert!(matches!(
        log.records_from(auditlog::Lsn(0)),
        Err(Error::Corrupt { .. })
    ));
    assert!(log.read(lsns[3]).is_ok());
    drop(log);

    let log = AuditLog::open(small_config(dir.path()).verify_all_at_open(true)).unwrap();
    let report = log.recovery_report();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    let damage = &report.damaged[0];
    assert_eq!(damage.segment, segments[0]);
    assert_eq!(damage.damage.offset, frame_offset(&segments[0], lsns[2]));
    assert_eq!(damage.damage.kind, CorruptionKind::BadChecksum);

    let got = all_records(&log);
    let expected: Vec<_> = lsns
        .iter()
        .copied()
        .zip(records.iter().cloned())
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        got, expected,
        "every other record survives, the damaged one is never returned"
    );
    assert!(matches!(log.read(lsns[2]), Err(Error::Corrupt { .. })));
    drop(log);

    let strict = AuditLog::open(small_config(dir.path()).recovery(RecoveryMode::Strict));
    match strict {
        Err(Error::Corrupt {
            segment, offset, ..
        }) => {
            assert_eq!(segment, segments[0]);
            assert_eq!(offset, frame_offset(&segments[0], lsns[2]));
        }
        other => panic!("strict open must refuse, got {other:?}"),
    }
}

#[test]
fn a_bit_flip_in_the_tail_cuts_the_log_and_reports_the_frames_after_it() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let log = AuditLog::open(small_config(&live)).unwrap();
    let lsns = log.append_batch(&events(10)).unwrap();
    log.flush().unwrap();
    let image = root.path().join("image");
    crash_image(&live, &image);
    drop(log);

    let segment = segment_files(&image).pop().unwrap();
    flip_bits(&segment, frame_offset(&segment, lsns[6]) + 30, 0x04);
    let log = AuditLog::open(small_config(&image)).unwrap();
    assert_eq!(all_records(&log).len(), 6);
    let report = log.recovery_report();
    assert_eq!(
        report.torn_tail.as_ref().map(|(_, offset)| *offset),
        Some(frame_offset(&segment, lsns[6]))
    );
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(
        report.damaged[0].damage.kind,
        CorruptionKind::FramesAfterTornTail { n_frames: 3 }
    );
}

#[test]
fn stale_and_foreign_frames_past_the_tail_never_read_as_records() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let log = AuditLog::open(small_config(&live)).unwrap();
    // Enough to roll once, so there is a frame from another segment to plant.
    let lsns = log.append_batch(&events(200)).unwrap();
    log.flush().unwrap();
    let image = root.path().join("image");
    crash_image(&live, &image);
    drop(log);

    let segments = segment_files(&image);
    let (first, last) = (&segments[0], segments.last().unwrap());
    assert!(segments.len() >= 2, "the workload rolled");
    let first_bytes = fs::read(first).unwrap();
    let last_bytes = fs::read(last).unwrap();
    let frame_len = |bytes: &[u8], at: usize| {
        20 + u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize
    };
    let tail = frame_offset(last, *lsns.last().unwrap()) as usize;
    let end_of_data = (tail + frame_len(&last_bytes, tail)) as u64;
    assert!(
        end_of_data < last_bytes.len() as u64,
        "preallocated space follows the data"
    );

    // 1. A whole frame copied from the first segment (another salt and segment id).
    let foreign = {
        let at = frame_offset(first, lsns[0]) as usize;
        first_bytes[at..at + frame_len(&first_bytes, at)].to_vec()
    };
    // 2. A frame of the same segment, repeated at the tail (wrong position).
    let repeated = last_bytes[tail..end_of_data as usize].to_vec();
    // 3. A frame header that claims a huge length, then garbage.
    let mut garbage = vec![0xFFu8; 64];
    garbage[4..8].copy_from_slice(&(u32::MAX - 1).to_le_bytes());

    for (name, planted) in [
        ("foreign", foreign),
        ("repeated", repeated),
        ("garbage", garbage),
    ] {
        let case = root.path().join(name);
        crash_image(&live, &case);
        let file = OpenOptions::new()
            .write(true)
            .open(case.join(last.file_name().unwrap()))
            .unwrap();
        file.write_all_at(&planted, end_of_data).unwrap();
        drop(file);
        let log = AuditLog::open(small_config(&case)).unwrap();
        let got = all_records(&log);
        assert_eq!(got.len(), lsns.len(), "{name}: nothing extra, nothing lost");
        assert_eq!(got.last().unwrap().0, *lsns.last().unwrap(), "{name}");
        assert!(
            log.recovery_report().is_clean(),
            "{name}: a bad tail is a cut, not damage"
        );
    }
}

#[test]
fn verify_reports_damage_and_changes_nothing_even_on_a_store_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    let lsns = log.append_batch(&events(300)).unwrap();
    log.flush().unwrap();
    let segments = segment_files(dir.path());
    flip_bits(&segments[0], frame_offset(&segments[0], lsns[1]) + 25, 0x04);
    let snapshot = |dir: &std::path::Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        segment_files(dir)
            .into_iter()
            .map(|p| (p.clone(), fs::read(&p).unwrap()))
            .collect()
    };
    let before = snapshot(dir.path());

    // The store is open (and locked) by `log`; verify reads it all the same.
    let report = AuditLog::verify(&small_config(dir.path())).unwrap();
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(
        report.damaged[0].damage.offset,
        frame_offset(&segments[0], lsns[1])
    );
    assert_eq!(report.n_frames, lsns.len() as u64 - 1);
    assert_eq!(snapshot(dir.path()), before, "verify changed the store");
    assert!(matches!(
        AuditLog::verify(&small_config(dir.path()).recovery(RecoveryMode::Strict)),
        Err(Error::Corrupt { .. })
    ));
    drop(log);
}
