//! A clean close and reopen loses nothing, across many segment rolls and many
//! reopens; what a flush made durable survives a crash; limits are enforced with
//! nothing written; files and directories are private to their owner.

mod common;

use std::os::unix::fs::PermissionsExt;

use auditlog::{AuditLog, Config, Durability, Error, Lsn, Record};
use common::{all_records, crash_image, event, events, segment_files, small_config};

#[test]
fn close_and_reopen_loses_nothing_across_rolls_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected: Vec<(Lsn, Record)> = Vec::new();
    for round in 0..5u64 {
        let log = AuditLog::open(small_config(dir.path())).unwrap();
        assert_eq!(
            all_records(&log),
            expected,
            "round {round}: everything from earlier rounds is there"
        );
        let batch: Vec<Record> = (0..150)
            .map(|i| event(&format!("run-{round}"), i + 1, &"y".repeat(i as usize % 90)))
            .collect();
        let lsns = log.append_batch(&batch).unwrap();
        assert!(
            expected.last().is_none_or(|(last, _)| lsns[0] > *last),
            "LSNs only grow across reopens"
        );
        expected.extend(lsns.into_iter().zip(batch));
        log.close().unwrap();
    }
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    assert_eq!(all_records(&log), expected);
    for (lsn, record) in expected.iter().step_by(37) {
        assert_eq!(&log.read(*lsn).unwrap(), record, "random access by LSN");
    }
    assert!(
        segment_files(dir.path()).len() > 5,
        "the workload rolled segments"
    );
    assert!(log.recovery_report().is_clean());
    assert!(
        log.recovery_report().torn_tail.is_none(),
        "a clean close leaves no torn tail"
    );
}

#[test]
fn what_flush_made_durable_survives_a_crash_in_every_durability_mode() {
    for durability in [
        Durability::None,
        Durability::GroupCommit { interval_ms: 5 },
        Durability::EveryBatch,
    ] {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join("live");
        let log = AuditLog::open(small_config(&live).durability(durability)).unwrap();
        let records = events(300);
        let lsns = log.append_batch(&records).unwrap();
        log.flush().unwrap();
        assert!(
            log.durable_lsn().unwrap() > *lsns.last().unwrap(),
            "{durability:?}: flush made everything durable"
        );
        let image = root.path().join("image");
        crash_image(&live, &image);
        drop(log);
        let log = AuditLog::open(small_config(&image)).unwrap();
        assert_eq!(
            all_records(&log),
            lsns.into_iter().zip(records).collect::<Vec<_>>(),
            "{durability:?}"
        );
    }
}

#[test]
fn every_batch_durability_syncs_before_returning() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(dir.path()).durability(Durability::EveryBatch)).unwrap();
    for record in events(20) {
        let lsn = log.append(&record).unwrap();
        assert!(log.durable_lsn().unwrap() > lsn);
    }
    assert_eq!(log.journal_stats().unwrap().n_fsyncs, 20);
}

#[test]
fn an_oversized_record_is_refused_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    let before = log.append(&event("r", 1, "small")).unwrap();
    let huge = event("r", 2, &"z".repeat(5000));
    match log.append_batch(&[event("r", 3, "ok"), huge]) {
        Err(Error::RecordTooLarge { max, .. }) => assert_eq!(max, 4 << 10),
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    // The log is not poisoned by a refused record.
    log.append(&event("r", 4, "after")).unwrap();
    log.close().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    let sequences: Vec<u64> = all_records(&log)
        .into_iter()
        .map(|(_, r)| match r {
            Record::EventAppended(e) => e.sequence,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        sequences,
        vec![1, 4],
        "no record of the refused batch was written, not even its first"
    );
    assert_eq!(all_records(&log)[0].0, before);
}

#[test]
fn a_refused_batch_that_would_have_rolled_a_segment_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    let mut batch = events(200);
    batch.push(event("r", 999, &"z".repeat(5000)));
    assert!(matches!(
        log.append_batch(&batch),
        Err(Error::RecordTooLarge { .. })
    ));
    assert_eq!(
        log.journal_stats().unwrap().n_segments,
        1,
        "no roll happened for a refused batch"
    );
    log.close().unwrap();
    let log = AuditLog::open(small_config(dir.path())).unwrap();
    assert!(all_records(&log).is_empty());
}

#[test]
fn invalid_configs_are_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let err = AuditLog::open(Config::new(&store).segment_bytes(100)).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    assert!(!store.exists());
}

#[test]
fn store_files_are_0600_and_directories_0700() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("nested").join("store");
    let log = AuditLog::open(small_config(&store)).unwrap();
    log.append_batch(&events(100)).unwrap();
    log.flush().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700);
    assert_eq!(mode(store.parent().unwrap()), 0o700);
    for entry in std::fs::read_dir(&store).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}
