//! The store follower reads a store another handle is writing, without its lock: it
//! returns every record exactly once, in log order, as segments fill, roll, are
//! compacted and as the store is closed and reopened; from the end it returns only
//! new records; a frame that does not verify yet is waited for, never returned.

mod common;

use std::time::{Duration, Instant};

use auditlog::follow::FollowStart;
use auditlog::model::{Run, Timestamp};
use auditlog::{AuditLog, Lsn, Record, Storage, StoreFollower};

use common::{all_records, event, small_config};

/// Polls until `want` records came back (or fails after a bounded wait).
fn poll_until(follower: &mut StoreFollower, got: &mut Vec<(Lsn, Record)>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < want {
        follower
            .poll(|lsn, record| got.push((lsn, record)))
            .unwrap();
        assert!(Instant::now() < deadline, "{} of {want} records", got.len());
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn it_follows_a_store_being_written_across_rolls_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let log = AuditLog::open(config.clone()).unwrap();
    let mut follower = StoreFollower::new(&config, FollowStart::Beginning).unwrap();
    let mut got = Vec::new();
    assert_eq!(follower.poll(|_, _| panic!("an empty store")).unwrap(), 0);

    // A writer thread appends while the follower polls: many rolls of 16 KiB segments.
    let n = 2_000u64;
    let writer = std::thread::spawn(move || {
        for seq in 1..=n {
            log.append(&event("a", seq, &"x".repeat((seq % 50) as usize)))
                .unwrap();
        }
        log
    });
    poll_until(&mut follower, &mut got, n as usize);
    let log = writer.join().unwrap();
    assert!(common::segment_files(dir.path()).len() > 10, "it rolled");
    assert_eq!(got, all_records(&log), "every record once, in log order");
    log.close().unwrap();

    // Closed (the active segment sealed) and reopened (a new active segment).
    let log = AuditLog::open(config.clone()).unwrap();
    log.append(&event("b", 1, "after the reopen")).unwrap();
    poll_until(&mut follower, &mut got, n as usize + 1);
    assert_eq!(got, all_records(&log));
    assert_eq!(follower.poll(|_, _| panic!("nothing new")).unwrap(), 0);
    log.close().unwrap();
}

#[test]
fn from_the_end_it_returns_only_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let log = AuditLog::open(config.clone()).unwrap();
    for seq in 1..=300 {
        log.append(&event("old", seq, "before")).unwrap();
    }
    let mut follower = StoreFollower::new(&config, FollowStart::End).unwrap();
    assert_eq!(follower.poll(|_, _| panic!("an old record")).unwrap(), 0);
    log.append(&event("new", 1, "after")).unwrap();
    let mut got = Vec::new();
    poll_until(&mut follower, &mut got, 1);
    assert!(matches!(&got[0].1, Record::EventAppended(e) if e.run_id == "new"));
    log.close().unwrap();
}

#[test]
fn compaction_under_a_lagging_follower_is_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let log = AuditLog::open(config.clone()).unwrap();
    let mut follower = StoreFollower::new(&config, FollowStart::Beginning).unwrap();
    let mut got = Vec::new();
    // The follower has read a little of the first segment only.
    let mut old = Run::new("old", "s");
    old.started_at = Timestamp::from_unix_millis(1_000);
    log.start_run(&old).unwrap();
    poll_until(&mut follower, &mut got, 1);
    for seq in 1..=400 {
        log.append_log(&auditlog::model::RunEvent {
            run_id: "old".into(),
            sequence: seq,
            event_type: "step".into(),
            payload: Default::default(),
            created_at: Timestamp::from_unix_millis(1_000 + seq as i64),
        })
        .unwrap();
    }
    log.start_run(&Run::new("kept", "s")).unwrap();
    assert_eq!(
        log.purge_older_than(Timestamp::from_unix_millis(2_000_000))
            .unwrap(),
        1
    );
    let report = log.compact().unwrap();
    assert!(
        report.n_segments_deleted + report.n_segments_rewritten > 0,
        "{report:?}"
    );
    log.append(&event("kept", 1, "after the compaction"))
        .unwrap();

    // Whatever compaction left is returned in order, ending with the newest records.
    let mut more = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !more
        .iter()
        .any(|(_, r): &(Lsn, Record)| matches!(r, Record::EventAppended(e) if e.run_id == "kept"))
    {
        follower
            .poll(|lsn, record| more.push((lsn, record)))
            .unwrap();
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    got.extend(more);
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "log order, no repeat"
    );
    let written = all_records(&log);
    for (lsn, record) in &got[1..] {
        if let Some((_, now)) = written.iter().find(|(l, _)| l == lsn) {
            assert_eq!(now, record);
        }
    }
    assert!(got.iter().any(|(_, r)| matches!(r, Record::Purge(_))));
    log.close().unwrap();
}

#[test]
fn a_frame_that_does_not_verify_yet_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let log = AuditLog::open(config.clone()).unwrap();
    log.append(&event("a", 1, "whole")).unwrap();
    log.flush().unwrap();
    let end = log.durable_lsn().unwrap();
    let mut follower = StoreFollower::new(&config, FollowStart::Beginning).unwrap();
    let mut got = Vec::new();
    poll_until(&mut follower, &mut got, 1);

    // Half a frame where the next one goes: as a reader sees a batch being written.
    let active = common::segment_files(dir.path()).pop().unwrap();
    let next = log.append(&event("a", 2, "second")).unwrap();
    log.flush().unwrap();
    assert_eq!(next, end);
    let offset = 128
        + (next.0 - {
            let name = active.file_stem().unwrap().to_str().unwrap();
            name.parse::<u64>().unwrap()
        });
    let bytes = std::fs::read(&active).unwrap();
    let whole = bytes.clone();
    let mut torn = bytes;
    torn[offset as usize + 24..offset as usize + 30].fill(0);
    std::fs::write(&active, &torn).unwrap();
    assert_eq!(follower.poll(|_, _| panic!("a torn frame")).unwrap(), 0);
    std::fs::write(&active, &whole).unwrap();
    poll_until(&mut follower, &mut got, 2);
    assert_eq!(got, all_records(&log));
    log.close().unwrap();
}
