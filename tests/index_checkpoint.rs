//! The index checkpoint: a clean close writes one and the next open loads it and
//! replays only the log after it; a periodic one is written every N records; a
//! damaged, truncated, foreign or stale checkpoint is detected and ignored, and the
//! index rebuilt from the log gives exactly the same answers.

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use auditlog::index::checkpoint;
use auditlog::limits::CHECKPOINT_LOG_GROWTH;
use auditlog::model::{Run, RunEvent, RunStats, Status, Timestamp};
use auditlog::vfs::{FaultPlan, FaultyVfs, OsVfs, WriteHook};
use auditlog::{AuditLog, CheckpointUse, Config, Record, RunFilter, Storage};

fn open(dir: &Path) -> AuditLog {
    let config = Config::new(dir)
        .segment_bytes(64 << 10)
        .record_bytes_max(16 << 10)
        .checkpoint_every_records(0);
    AuditLog::open(config).unwrap()
}

fn at(n: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + n * 1000)
}

/// Writes `n_runs` runs (of which every third is a child and every fifth a dry run),
/// each with a few events, and purges the oldest.
fn fill(log: &AuditLog, first: usize, n_runs: usize) {
    for i in first..first + n_runs {
        let id = format!("run-{i}");
        let run = Run {
            id: id.clone(),
            skill_id: format!("skill-{}", i % 4),
            caller_id: format!("caller-{}", i % 3),
            channel_id: "chan".into(),
            started_at: at(i as i64),
            parent_run_id: if i % 3 == 0 && i > 0 {
                format!("run-{}", i - 1)
            } else {
                String::new()
            },
            ..Run::default()
        };
        log.start_run(&run).unwrap();
        for seq in (1..=4).rev() {
            let event = RunEvent {
                run_id: id.clone(),
                sequence: seq,
                event_type: "step".into(),
                created_at: at(i as i64),
                ..RunEvent::default()
            };
            log.append_log(&event).unwrap();
        }
        let status = if i % 5 == 0 {
            Status::DryRun
        } else {
            Status::Ok
        };
        if i % 7 != 0 {
            let stats = RunStats {
                status,
                ..RunStats::default()
            };
            log.finish_run_at(&id, &stats, at(i as i64 + 1)).unwrap();
        }
    }
    log.purge_older_than(at(first as i64 + 3)).unwrap();
}

/// The answers to a fixed battery of queries, as text.
fn answers(log: &AuditLog) -> Vec<String> {
    let mut out = Vec::new();
    let all = RunFilter {
        include_dry_run: true,
        ..RunFilter::default()
    };
    out.push(format!(
        "{:?}",
        log.list_runs_filtered(&all, 0, 500).unwrap()
    ));
    out.push(format!(
        "{:?}",
        log.count_runs_filtered(&RunFilter::default()).unwrap()
    ));
    for skill in ["skill-0", "skill-1", "skill-3"] {
        out.push(format!(
            "{:?}",
            log.list_runs_by_skill_paginated(skill, 1, 5, true).unwrap()
        ));
        out.push(format!(
            "{:?}",
            log.count_runs_by_skill(skill, false).unwrap()
        ));
    }
    out.push(format!(
        "{:?}",
        log.list_runs_by_caller("caller-1", 10).unwrap()
    ));
    for i in [0, 5, 20, 59, 60, 119] {
        let id = format!("run-{i}");
        out.push(format!("{:?}", log.get_run(&id).map_err(|e| e.to_string())));
        out.push(format!("{:?}", log.list_logs_by_run(&id).unwrap()));
        out.push(format!(
            "{:?}",
            log.walk_parent_chain(&id).map_err(|e| e.to_string())
        ));
        out.push(format!("{:?}", log.list_children_by_parent(&id).unwrap()));
    }
    out.push(format!(
        "{:?}",
        log.list_finished_runs_before(at(50), 100).unwrap()
    ));
    out.push(format!(
        "{:?}",
        log.last_run_by_skills(&["skill-0", "skill-2", "none"], false)
            .unwrap()
    ));
    out
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            let name = e.file_name().into_string().unwrap();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// A store with 60 runs closed cleanly, and the answers it gave before closing.
fn closed_store() -> (tempfile::TempDir, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    fill(&log, 0, 60);
    let expected = answers(&log);
    log.close().unwrap();
    (tmp, expected)
}

fn ckpt(dir: &Path) -> std::path::PathBuf {
    dir.join("index.ckpt")
}

#[test]
fn a_clean_close_writes_a_checkpoint_that_the_next_open_loads() {
    let (tmp, expected) = closed_store();
    assert!(ckpt(tmp.path()).exists());
    let log = open(tmp.path());
    assert!(
        matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }),
        "{:?}",
        log.checkpoint_use()
    );
    assert_eq!(answers(&log), expected);
}

#[test]
fn open_with_a_checkpoint_replays_the_tail_written_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = {
        let log = open(tmp.path());
        fill(&log, 0, 40);
        log.checkpoint().unwrap();
        fill(&log, 40, 80);
        let expected = answers(&log);
        // A crash-like end: the handle is leaked, so close never writes a newer
        // checkpoint.
        log.flush().unwrap();
        std::mem::forget(log);
        expected
    };
    // The leaked handle still holds the directory lock in this process: copy the files
    // to a fresh directory, as a restarted process would see them.
    let copy = tempfile::tempdir().unwrap();
    for (name, bytes) in files(tmp.path()) {
        std::fs::write(copy.path().join(name), bytes).unwrap();
    }
    let log = open(copy.path());
    let CheckpointUse::Loaded { covered } = log.checkpoint_use().clone() else {
        panic!("{:?}", log.checkpoint_use());
    };
    assert!(covered.0 > 0);
    assert_eq!(answers(&log), expected);
}

#[test]
fn a_checkpoint_is_written_every_n_records() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::new(tmp.path()).checkpoint_every_records(25);
    let log = AuditLog::open(config).unwrap();
    fill(&log, 0, 3);
    assert!(!ckpt(tmp.path()).exists(), "fewer than 25 records so far");
    fill(&log, 3, 10);
    // Written on a thread of its own: its outcome is waited for.
    assert_eq!(log.checkpoint_error(), None);
    assert!(ckpt(tmp.path()).exists());
}

#[test]
fn a_periodic_checkpoint_waits_until_the_log_has_grown_by_the_last_ones_size() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::new(tmp.path())
        .segment_bytes(64 << 10)
        .record_bytes_max(16 << 10)
        .checkpoint_every_records(1);
    let log = AuditLog::open(config).unwrap();
    // (covered LSN, file size) of each checkpoint written, in order.
    let mut written: Vec<(u64, u64)> = Vec::new();
    let mut end = 0;
    for i in 0..1000 {
        let run = Run::new(format!("run-{i}"), format!("skill-{}", i % 4));
        // The log ends at `lsn` before this append.
        let lsn = log.append(&Record::RunStarted(run)).unwrap().0;
        assert_eq!(log.checkpoint_error(), None, "waits for one in flight");
        let bytes = std::fs::read(ckpt(tmp.path())).unwrap();
        let covered = checkpoint::decode(&bytes).unwrap().coverage.covered.0;
        if written.last().is_some_and(|&(at, _)| at == covered) {
            continue;
        }
        // A new checkpoint, covering the log to its end: not before the log reached
        // the last one's coverage plus `CHECKPOINT_LOG_GROWTH` times its size, and on
        // the first record past that.
        let due_at = written
            .last()
            .map_or(0, |&(at, size)| at + size * CHECKPOINT_LOG_GROWTH);
        assert!(covered >= due_at, "checkpoint {} came early", written.len());
        assert!(
            written.is_empty() || lsn < due_at,
            "checkpoint {} came late: due at {due_at}, the log was at {lsn} already",
            written.len()
        );
        written.push((covered, bytes.len() as u64));
        end = covered;
    }
    assert_eq!(log.checkpoint_error(), None);
    // Checkpoints kept coming, far fewer than one per record, and their bytes (all but
    // the last) are bounded by a fraction of the log's.
    assert!(written.len() >= 3 && written.len() < 100, "{written:?}");
    let before_last: u64 = written[..written.len() - 1].iter().map(|w| w.1).sum();
    assert!(
        before_last * CHECKPOINT_LOG_GROWTH <= end,
        "{before_last} checkpoint bytes for {end} of log"
    );
}

/// A store whose periodic checkpoints are held at their first write until the test
/// lets them go (or, were the writer the appending thread, for at most a while).
/// Returns the log; its fault plan (taking the write hook away lifts the hold); a
/// receiver of the name of the thread writing each held checkpoint; and the sender
/// that lets a held checkpoint go on.
type Held = (
    AuditLog,
    Arc<FaultPlan>,
    mpsc::Receiver<Option<String>>,
    mpsc::Sender<()>,
);

fn open_with_held_checkpoints(dir: &Path, every_records: u64) -> Held {
    let plan = FaultPlan::new();
    let config = Config::new(dir)
        .vfs(Arc::new(FaultyVfs::new(OsVfs, Arc::clone(&plan))))
        .checkpoint_every_records(every_records);
    let log = AuditLog::open(config).unwrap();
    let (writer_tx, writer) = mpsc::channel::<Option<String>>();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let hook = move |path: &Path, offset: u64| {
        if path.ends_with("index.ckpt.tmp") && offset != 0 {
            let _ = writer_tx.send(std::thread::current().name().map(str::to_owned));
            let held = go_rx.lock().unwrap_or_else(|e| e.into_inner());
            let _ = held.recv_timeout(Duration::from_secs(5));
        }
    };
    *plan.before_write.lock().unwrap() = Some(WriteHook(Arc::new(hook)));
    (log, plan, writer, go)
}

#[test]
fn appends_go_on_while_a_periodic_checkpoint_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, plan, writer, go) = open_with_held_checkpoints(tmp.path(), 100);
    let runs: Vec<Record> = (0..100)
        .map(|i| Record::RunStarted(Run::new(format!("run-{i}"), "s")))
        .collect();
    log.append_batch(&runs).unwrap();
    let name = writer.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(name.as_deref(), Some("auditlog-checkpoint"));
    // The checkpoint is held mid-write: appends and queries do not wait for it.
    for i in 100..150 {
        log.append(&Record::RunStarted(Run::new(format!("run-{i}"), "s")))
            .unwrap();
    }
    assert_eq!(log.count_runs_filtered(&RunFilter::default()).unwrap(), 150);
    go.send(()).unwrap();
    assert_eq!(log.checkpoint_error(), None);
    *plan.before_write.lock().unwrap() = None;
    // Closing writes a checkpoint of all 150 (after the one in flight); it is loaded.
    drop(log);
    let log = open(tmp.path());
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
    assert_eq!(log.count_runs_filtered(&RunFilter::default()).unwrap(), 150);
}

#[test]
fn a_damaged_checkpoint_is_ignored_and_the_rebuild_gives_identical_answers() {
    let (tmp, expected) = closed_store();
    let bytes = std::fs::read(ckpt(tmp.path())).unwrap();
    for at in [0, 9, 13, 20, 30, 44, 60, bytes.len() / 2, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        std::fs::write(ckpt(tmp.path()), &damaged).unwrap();
        let log = open(tmp.path());
        assert!(
            matches!(log.checkpoint_use(), CheckpointUse::Ignored(_)),
            "flip at {at}: {:?}",
            log.checkpoint_use()
        );
        assert_eq!(answers(&log), expected, "flip at {at}");
        drop(log);
    }
}

#[test]
fn a_truncated_checkpoint_is_ignored_and_the_rebuild_gives_identical_answers() {
    let (tmp, expected) = closed_store();
    let bytes = std::fs::read(ckpt(tmp.path())).unwrap();
    for len in [0, 10, 47, 48, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(ckpt(tmp.path()), &bytes[..len]).unwrap();
        let log = open(tmp.path());
        assert!(
            matches!(log.checkpoint_use(), CheckpointUse::Ignored(_)),
            "length {len}: {:?}",
            log.checkpoint_use()
        );
        assert_eq!(answers(&log), expected, "length {len}");
        drop(log);
    }
}

#[test]
fn a_checkpoint_newer_than_the_log_is_stale_and_ignored() {
    // The log is restored from an older copy, next to a checkpoint that covers more.
    let tmp = tempfile::tempdir().unwrap();
    let old_files = {
        let log = open(tmp.path());
        fill(&log, 0, 30);
        log.close().unwrap();
        files(tmp.path())
    };
    {
        let log = open(tmp.path());
        fill(&log, 30, 30);
        log.close().unwrap();
    }
    let newer_ckpt = std::fs::read(ckpt(tmp.path())).unwrap();
    let restored = tempfile::tempdir().unwrap();
    for (name, bytes) in &old_files {
        std::fs::write(restored.path().join(name), bytes).unwrap();
    }
    let expected = answers(&open(restored.path()));
    std::fs::write(ckpt(restored.path()), newer_ckpt).unwrap();
    let log = open(restored.path());
    assert!(
        matches!(log.checkpoint_use(), CheckpointUse::Ignored(why) if why.contains("does not match")),
        "{:?}",
        log.checkpoint_use()
    );
    assert_eq!(answers(&log), expected);
}

#[test]
fn a_checkpoint_from_another_store_is_ignored() {
    let (tmp, expected) = closed_store();
    let other = tempfile::tempdir().unwrap();
    {
        let log = open(other.path());
        fill(&log, 500, 70);
        log.close().unwrap();
    }
    std::fs::copy(ckpt(other.path()), ckpt(tmp.path())).unwrap();
    let log = open(tmp.path());
    assert!(
        matches!(log.checkpoint_use(), CheckpointUse::Ignored(_)),
        "{:?}",
        log.checkpoint_use()
    );
    assert_eq!(answers(&log), expected);
}

#[test]
fn an_ignored_checkpoint_is_replaced_at_the_next_close() {
    let (tmp, _) = closed_store();
    std::fs::write(ckpt(tmp.path()), b"garbage").unwrap();
    open(tmp.path()).close().unwrap();
    let log = open(tmp.path());
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
}

/// Starts `run-{i}` (at `at(i)`) if `start`, then appends events of the sequences
/// `seqs` to it.
fn events_of_run(log: &AuditLog, i: usize, start: bool, seqs: &[u64]) {
    let id = format!("run-{i}");
    if start {
        let mut run = Run::new(id.clone(), format!("skill-{}", i % 4));
        run.started_at = at(i as i64);
        log.start_run(&run).unwrap();
    }
    for &sequence in seqs {
        let event = RunEvent {
            run_id: id.clone(),
            sequence,
            event_type: "step".into(),
            created_at: at(i as i64),
            ..RunEvent::default()
        };
        log.append_log(&event).unwrap();
    }
}

/// Every run's events, and the run counts.
fn event_answers(log: &AuditLog, n_runs: usize) -> Vec<String> {
    let mut out: Vec<String> = (0..n_runs)
        .map(|i| format!("{:?}", log.list_logs_by_run(&format!("run-{i}")).unwrap()))
        .collect();
    out.push(format!(
        "{:?}",
        log.count_runs_filtered(&RunFilter::default()).unwrap()
    ));
    out
}

#[test]
fn a_periodic_checkpoint_holds_the_index_as_copied_while_the_live_one_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, plan, writer, go) = open_with_held_checkpoints(tmp.path(), 50);
    // The same records in a store that never takes a periodic checkpoint.
    let twin_tmp = tempfile::tempdir().unwrap();
    let twin = open(twin_tmp.path());
    for store in [&log, &twin] {
        for i in 0..20 {
            events_of_run(store, i, true, &[1, 2, 3]);
        }
    }
    // The periodic checkpoint has copied the index and is held mid-write. Meanwhile
    // some runs' lists grow (at the end and in the middle), some runs are purged,
    // and new runs come.
    writer.recv_timeout(Duration::from_secs(60)).unwrap();
    let changed = |store: &AuditLog| {
        for i in (0..20).step_by(3) {
            events_of_run(store, i, false, &[7, 4]);
        }
        store.purge_older_than(at(2)).unwrap();
        for i in 20..25 {
            events_of_run(store, i, true, &[2, 1]);
        }
    };
    changed(&log);
    changed(&twin);
    go.send(()).unwrap();
    assert_eq!(log.checkpoint_error(), None);
    *plan.before_write.lock().unwrap() = None;
    // The copy the checkpoint was written from shares its unchanged parts with the
    // live index: it holds the index as it was when taken, and the live index all
    // that came after.
    let bytes = std::fs::read(ckpt(tmp.path())).unwrap();
    let copy = checkpoint::decode(&bytes).unwrap().index;
    for i in 0..25 {
        let sequences: Vec<u64> = (copy.events_of(&format!("run-{i}")).iter())
            .map(|(sequence, _)| sequence)
            .collect();
        // The copy was taken after the 50th record; run `i` started with the record
        // numbered 4i, its events 1, 2 and 3 right after.
        let n_in_copy = 50usize.saturating_sub(4 * i + 1).min(3) as u64;
        let expected: Vec<u64> = (1..=n_in_copy).collect();
        assert_eq!(sequences, expected, "run-{i} in the checkpoint");
    }
    assert_eq!(event_answers(&log, 25), event_answers(&twin, 25));
    // The lists change again, and read back whole.
    for store in [&log, &twin] {
        for i in (1..25).step_by(2) {
            events_of_run(store, i, false, &[9, 5]);
        }
    }
    let expected = event_answers(&twin, 25);
    assert_eq!(event_answers(&log, 25), expected);
    drop(log);
    let log = open(tmp.path());
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
    assert_eq!(event_answers(&log, 25), expected);
}

#[test]
fn event_lists_read_from_a_checkpoint_outlive_its_replacement() {
    // A store of 25 runs closed with its checkpoint; reopened, the runs' event lists
    // are read from that file.
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    for i in 0..25 {
        events_of_run(&log, i, true, &[1, 2, 3]);
    }
    log.close().unwrap();
    let log = open(tmp.path());
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
    let twin_tmp = tempfile::tempdir().unwrap();
    let twin = open(twin_tmp.path());
    for i in 0..25 {
        events_of_run(&twin, i, true, &[1, 2, 3]);
    }
    // A different checkpoint replaces the file, and another after a compaction;
    // the lists loaded from the first still read back whole, changed or not.
    for store in [&log, &twin] {
        for i in (0..25).step_by(4) {
            events_of_run(store, i, false, &[9, 6]);
        }
        store.purge_older_than(at(3)).unwrap();
    }
    log.checkpoint().unwrap();
    assert_eq!(event_answers(&log, 25), event_answers(&twin, 25));
    log.compact().unwrap();
    log.checkpoint().unwrap();
    assert_eq!(event_answers(&log, 25), event_answers(&twin, 25));
    for store in [&log, &twin] {
        for i in (1..25).step_by(3) {
            events_of_run(store, i, false, &[5]);
        }
    }
    let expected = event_answers(&twin, 25);
    assert_eq!(event_answers(&log, 25), expected);
    log.close().unwrap();
    let log = open(tmp.path());
    assert!(matches!(log.checkpoint_use(), CheckpointUse::Loaded { .. }));
    assert_eq!(event_answers(&log, 25), expected);
}
