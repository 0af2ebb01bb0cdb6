//! Simulated power loss at any point of any workload keeps the log's promises:
//! - I1: every record acknowledged durable (its flush returned, or its append returned
//!   under `EveryBatch`, or a clean close) is present after reopen;
//! - I2: no record is returned unless it verifies (nothing appears that was not written);
//! - I3: records come back in the order they were appended, with strictly growing LSNs;
//! - I4: any loss is a suffix of the unacknowledged records;
//! - I5: open never panics, and the reopened log accepts and keeps new records.
//!
//! Workloads append, flush and reopen on small segments (so segment rolls happen often)
//! over `SimVfs`, which at the crash keeps, drops, tears or garbles every unsynced write
//! and keeps only a prefix of unsynced directory operations. Some cases also fail one
//! I/O call (EIO or ENOSPC) before the crash, and some crash a second time while the
//! first recovery is running. Index checkpoints are written every few records, so
//! crashes also land in the middle of checkpoint writes; after recovery the index
//! answers must agree with the records recovered (checkpoint plus replayed tail).

mod common;

use std::path::Path;
use std::sync::Arc;

use auditlog::vfs::{CrashMode, SimVfs};
use auditlog::{AuditLog, Config, Durability, Lsn, Record, Storage};
use common::event;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append { n: usize, text_len: usize },
    Flush,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..12, 0usize..400).prop_map(|(n, text_len)| Op::Append { n, text_len }),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

fn durability() -> impl Strategy<Value = Durability> {
    prop_oneof![
        Just(Durability::None),
        Just(Durability::GroupCommit { interval_ms: 1 }),
        Just(Durability::EveryBatch),
    ]
}

fn crash_mode() -> impl Strategy<Value = CrashMode> {
    prop_oneof![
        Just(CrashMode::DropAll),
        Just(CrashMode::KeepAll),
        Just(CrashMode::Mixed),
        Just(CrashMode::Mixed)
    ]
}

const DIR: &str = "/store";

fn config(vfs: &SimVfs, durability: Durability) -> Config {
    Config::new(DIR)
        .segment_bytes(4096)
        .record_bytes_max(1024)
        .durability(durability)
        .vfs(Arc::new(vfs.clone()))
}

/// What the workload did, as the checks need it.
#[derive(Default)]
struct Model {
    /// Every record handed to an append call, in order, including any of a call that
    /// failed (those may or may not have reached the disk).
    attempted: Vec<Record>,
    /// How many of `attempted` were acknowledged durable.
    n_durable: usize,
}

/// Runs the workload until it ends or an I/O call fails; returns the model.
fn run_workload(vfs: &SimVfs, durability: Durability, ops: &[Op]) -> Model {
    let mut model = Model::default();
    let Ok(mut log) = AuditLog::open(config(vfs, durability)) else {
        return model;
    };
    let mut next_seq = 1u64;
    for op in ops {
        let ok = match op {
            Op::Append { n, text_len } => {
                let batch: Vec<Record> = (0..*n)
                    .map(|i| {
                        next_seq += 1;
                        event("run", next_seq, &"t".repeat((text_len + i * 37) % 400))
                    })
                    .collect();
                model.attempted.extend(batch.iter().cloned());
                let ok = log.append_batch(&batch).is_ok();
                if ok && durability == Durability::EveryBatch {
                    model.n_durable = model.attempted.len();
                }
                ok
            }
            Op::Flush => {
                let ok = log.flush().is_ok();
                if ok {
                    model.n_durable = model.attempted.len();
                }
                ok
            }
            Op::Reopen => {
                let closed = log.close().is_ok();
                if closed {
                    model.n_durable = model.attempted.len();
                }
                match AuditLog::open(config(vfs, durability)) {
                    Ok(reopened) if closed => {
                        log = reopened;
                        true
                    }
                    _ => return model,
                }
            }
        };
        if !ok {
            // The log is poisoned; the process would now crash or restart.
            return model;
        }
    }
    // The crash comes with the log still open: leak it so no close or drop runs.
    std::mem::forget(log);
    model
}

fn check_invariants(vfs: &SimVfs, model: &Model, context: &str) -> Result<(), TestCaseError> {
    let log = AuditLog::open(config(vfs, Durability::EveryBatch));
    let log = match log {
        Ok(log) => log,
        Err(error) => {
            return Err(TestCaseError::fail(format!(
                "{context}: reopen failed: {error}"
            )));
        }
    };
    let got = log
        .records_from(Lsn(0))
        .map_err(|e| TestCaseError::fail(format!("{context}: read failed: {e}")))?;
    let records: Vec<&Record> = got.iter().map(|(_, r)| r).collect();
    prop_assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "{}: I3 LSNs grow",
        context
    );
    prop_assert!(
        records.len() <= model.attempted.len()
            && records.iter().zip(&model.attempted).all(|(a, b)| *a == b),
        "{}: I2/I3/I4 the log is a prefix of what was appended ({} records back, {} attempted)",
        context,
        records.len(),
        model.attempted.len()
    );
    prop_assert!(
        records.len() >= model.n_durable,
        "{}: I1 {} durable records acknowledged, {} back",
        context,
        model.n_durable,
        records.len()
    );
    // The index, from a checkpoint and the replayed tail or rebuilt, agrees with the
    // records recovered: the run's events in sequence order, nothing more.
    let indexed: Vec<u64> = log
        .list_logs_by_run("run")
        .map_err(|e| TestCaseError::fail(format!("{context}: query failed: {e}")))?
        .into_iter()
        .map(|event| event.sequence)
        .collect();
    let recovered: Vec<u64> = records
        .iter()
        .map(|record| match record {
            Record::EventAppended(event) => event.sequence,
            other => panic!("unexpected record {other:?}"),
        })
        .collect();
    prop_assert_eq!(
        indexed,
        recovered,
        "{}: I5 the index matches the recovered log",
        context
    );
    // I5: the recovered log takes new records and keeps them.
    let extra = event("after-crash", 1, "still writable");
    let lsn = log
        .append(&extra)
        .map_err(|e| TestCaseError::fail(format!("{context}: append after recovery: {e}")))?;
    prop_assert!(
        got.last().is_none_or(|(last, _)| lsn > *last),
        "{}: LSNs keep growing after recovery",
        context
    );
    drop(log);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn power_loss_at_any_point_keeps_every_invariant(
        ops in prop::collection::vec(op(), 1..40),
        durability in durability(),
        mode in crash_mode(),
        seed in any::<u64>(),
        fault in prop::option::of((1u64..400, any::<bool>())),
        crash_during_recovery in prop::option::of((1u64..12, any::<u64>())),
    ) {
        let vfs = SimVfs::new();
        if let Some((call, no_space)) = fault {
            vfs.fail_call(call, no_space);
        }
        let model = run_workload(&vfs, durability, &ops);
        let mut after = vfs.crash(mode, seed);
        if let Some((call, seed2)) = crash_during_recovery {
            // Crash again while the first recovery is cutting, sealing and creating.
            after.fail_call(call, false);
            if let Ok(log) = AuditLog::open(config(&after, durability)) {
                std::mem::forget(log);
            }
            after = after.crash(CrashMode::Mixed, seed2);
        }
        check_invariants(&after, &model, &format!("{durability:?} {mode:?} fault={fault:?}"))?;
    }
}

#[test]
fn a_crash_with_nothing_synced_since_open_loses_only_unacknowledged_records() {
    let vfs = SimVfs::new();
    let log = AuditLog::open(config(&vfs, Durability::None)).unwrap();
    let durable: Vec<Record> = (1..=30).map(|s| event("r", s, "synced")).collect();
    log.append_batch(&durable).unwrap();
    log.flush().unwrap();
    log.append_batch(&[event("r", 31, "never synced")]).unwrap();
    std::mem::forget(log);
    let after = vfs.crash(CrashMode::DropAll, 0);
    let log = AuditLog::open(config(&after, Durability::None)).unwrap();
    let got: Vec<Record> = log
        .records_from(Lsn(0))
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(got, durable);
    assert!(Path::new(DIR).is_absolute());
}
