//! A crash at every step of compaction keeps every live record and never brings a
//! purged one back.
//!
//! A store on `SimVfs` holds runs, half of them purged (the purge is durable). For every
//! k, a copy of it is opened, the k-th mutating file-system call of `compact()` fails
//! (EIO, or ENOSPC on odd k), and power is lost — dropping, keeping or garbling every
//! unsynced write and keeping a prefix, or any subset, of unsynced directory operations
//! (each `CrashMode`): a batch's renames and removals share one directory sync, so any
//! of them may survive without the others. After reopening: every live run and every one of its events is there
//! exactly as before, no purged run or event is visible (with the index checkpoint, and
//! rebuilt from the log alone), the recovery report is clean,
//! no `.compact` temporary is left, and a second `compact()` then removes every record
//! of the purged runs from the log, also after one more reopen. k runs until a
//! compaction completes without reaching the failing call, so every step of every pass
//! (horizon write, each rewrite's create, writes and sync, each rename and removal, the
//! batch's directory sync) is cut once.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use auditlog::compaction::Policy;
use auditlog::model::{Run, RunEvent};
use auditlog::vfs::{CrashMode, SimVfs, Vfs};
use auditlog::{AuditLog, Config, Durability, Error, Lsn, Storage};
use common::{before_run, numbered_run, record_runs, run_id_of};

const DIR: &str = "/store";

fn config(vfs: &SimVfs) -> Config {
    Config::new(DIR)
        .segment_bytes(4096)
        .record_bytes_max(1024)
        .durability(Durability::EveryBatch)
        .compaction_policy(Policy {
            removable_share_min: 0.0,
        })
        .vfs(Arc::new(vfs.clone()))
}

type Live = Vec<(Run, Vec<RunEvent>)>;

fn live_runs(log: &AuditLog) -> Live {
    (6..12)
        .map(|i| {
            let id = numbered_run(i).id;
            (
                log.get_run(&id).unwrap(),
                log.list_logs_by_run(&id).unwrap(),
            )
        })
        .collect()
}

fn purged_ids() -> HashSet<String> {
    (0..6).map(|i| numbered_run(i).id).collect()
}

/// Checks the store as open finds it, and again as a rebuild from the log alone finds
/// it: a checkpoint covering the crash point would hide records the crash brought
/// back, until the checkpoint is lost.
fn check(vfs: &SimVfs, expected: &Live, context: &str, compacted: bool) {
    let rebuilt = vfs.crash(CrashMode::KeepAll, 0);
    match rebuilt.remove_file(&Path::new(DIR).join("index.ckpt")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{context}: {e}"),
        _ => {}
    }
    check_open(vfs, expected, context, compacted);
    check_open(
        &rebuilt,
        expected,
        &format!("{context}, rebuilt"),
        compacted,
    );
}

fn check_open(vfs: &SimVfs, expected: &Live, context: &str, compacted: bool) {
    let log = AuditLog::open(config(vfs)).unwrap_or_else(|e| panic!("{context}: open: {e}"));
    assert!(
        log.recovery_report().is_clean(),
        "{context}: {:?}",
        log.recovery_report().damaged
    );
    assert_eq!(&live_runs(&log), expected, "{context}: live runs");
    for id in purged_ids() {
        assert!(
            matches!(log.get_run(&id), Err(Error::NotFound { .. })),
            "{context}: purged run {id} is back"
        );
        assert!(log.list_logs_by_run(&id).unwrap().is_empty(), "{context}");
    }
    let leftovers: Vec<_> = vfs
        .file_names()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".compact"))
        .collect();
    assert!(leftovers.is_empty(), "{context}: {leftovers:?}");
    if compacted {
        let purged = purged_ids();
        for (lsn, record) in log.records_from(Lsn(0)).unwrap() {
            assert!(
                run_id_of(&record).is_none_or(|id| !purged.contains(id)),
                "{context}: a record of a purged run is still in the log at {lsn}"
            );
        }
    }
}

#[test]
fn a_crash_at_any_step_of_compaction_keeps_live_records_and_purged_ones_gone() {
    let vfs = SimVfs::new();
    let log = AuditLog::open(config(&vfs)).unwrap();
    record_runs(&log, 0..12, 4, 100);
    assert_eq!(log.purge_older_than(before_run(6)).unwrap(), 6);
    let expected = live_runs(&log);
    log.close().unwrap();
    let base = vfs.crash(CrashMode::DropAll, 0);
    assert!(Path::new(DIR).is_absolute());

    let mut n_cut = 0;
    for k in 1.. {
        let image = base.crash(CrashMode::DropAll, 0);
        let log = AuditLog::open(config(&image)).unwrap();
        let before = image.n_mutating_calls();
        image.fail_call(k, k % 2 == 1);
        let result = log.compact();
        let used = image.n_mutating_calls() - before;
        std::mem::forget(log);
        let finished = result.is_ok() && used < k;
        for (mode, seed) in [
            (CrashMode::DropAll, 0),
            (CrashMode::KeepAll, 0),
            (CrashMode::Mixed, k),
            (CrashMode::Mixed, k + 1000),
            (CrashMode::MixedAnyOrder, k),
            (CrashMode::MixedAnyOrder, k + 1000),
        ] {
            let context = format!("fail call {k}, {mode:?} {seed}: {result:?}");
            let after = image.crash(mode, seed);
            check(&after, &expected, &context, false);
            // Compaction finishes on the recovered store, and sticks.
            let log = AuditLog::open(config(&after)).unwrap();
            log.compact()
                .unwrap_or_else(|e| panic!("{context}: compact after recovery: {e}"));
            log.close().unwrap();
            check(&after, &expected, &format!("{context}, compacted"), true);
        }
        if finished {
            break;
        }
        n_cut += 1;
    }
    assert!(n_cut > 10, "compaction made only {n_cut} mutating calls");
}
