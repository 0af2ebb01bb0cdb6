//! The store the query benchmark and the open-time example measure: runs in chains of
//! 8 (parent links), 20 skills, 1000 callers, 50 channels, every 10th run a dry run,
//! each with 20 events of a 40-character text. Included by `benches/query.rs` and
//! `examples/open_time.rs` with `#[path]`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use auditlog::codec::RunFinished;
use auditlog::model::{Run, RunEvent, RunStats, Status, Timestamp};
use auditlog::{AuditLog, Config, Durability, Record, Storage};

/// Events per run.
pub const N_EVENTS: u64 = 20;

/// The config both open the store with.
pub fn config(dir: &Path) -> Config {
    Config::new(dir)
        .durability(Durability::None)
        .checkpoint_every_records(0)
}

/// The id of run number `i`.
pub fn run_id(i: u64) -> String {
    format!("run-{i:012}")
}

/// Writes `n_runs` runs with their events and finishes into a new store in `dir`.
pub fn build(dir: &Path, n_runs: u64) {
    build_interleaved(dir, n_runs, 1);
}

/// [`build`], with the runs written `width` at a time as [`for_each_batch_interleaved`]
/// orders them.
pub fn build_interleaved(dir: &Path, n_runs: u64, width: u64) {
    let log = AuditLog::open(config(dir)).unwrap();
    for_each_batch_interleaved(n_runs, width, |batch| {
        log.append_batch(batch).unwrap();
    });
    log.close().unwrap();
}

/// Hands the records of `n_runs` runs to `apply` in batches of about 4000, in the
/// order `build` writes them (so other stores can be loaded with the same records):
/// each run's start, events and finish together.
pub fn for_each_batch(n_runs: u64, apply: impl FnMut(&[Record])) {
    for_each_batch_interleaved(n_runs, 1, apply);
}

/// [`for_each_batch`] for runs that are recorded `width` at once, as a server runs
/// them: the starts of `width` runs, then the first event of each, then the second,
/// and so on, then their finishes; so one run's records lie `width` records apart.
pub fn for_each_batch_interleaved(n_runs: u64, width: u64, mut apply: impl FnMut(&[Record])) {
    let width = width.max(1);
    let mut batch = Vec::with_capacity(4096);
    for first in (0..n_runs).step_by(width as usize) {
        let mut runs: Vec<_> = (first..n_runs.min(first + width))
            .map(|i| run_records(i).into_iter())
            .collect();
        for _ in 0..N_EVENTS + 2 {
            batch.extend(
                runs.iter_mut()
                    .map(|run| run.next().expect("every run has them")),
            );
            if batch.len() >= 4000 {
                apply(&batch);
                batch.clear();
            }
        }
    }
    apply(&batch);
}

/// Run `i`'s records: its start, its events in sequence order and its finish.
fn run_records(i: u64) -> Vec<Record> {
    let id = run_id(i);
    let mut records = Vec::with_capacity(N_EVENTS as usize + 2);
    records.push(Record::RunStarted(Run {
        id: id.clone(),
        skill_id: format!("skill-{}", i % 20),
        caller_id: format!("caller-{}", i % 1000),
        channel_id: format!("channel-{}", i % 50),
        started_at: Timestamp::from_unix_millis(1_700_000_000_000 + i as i64),
        // Chains of 8: a depth-8 walk from every 8th run.
        parent_run_id: if i % 8 == 0 {
            String::new()
        } else {
            run_id(i - 1)
        },
        ..Run::default()
    }));
    for seq in 1..=N_EVENTS {
        let mut event = RunEvent {
            run_id: id.clone(),
            sequence: seq,
            event_type: "step".into(),
            ..RunEvent::default()
        };
        event.payload.insert("text".into(), "x".repeat(40).into());
        records.push(Record::EventAppended(event));
    }
    records.push(Record::RunFinished(RunFinished {
        run_id: id,
        stats: RunStats {
            status: if i % 10 == 0 {
                Status::DryRun
            } else {
                Status::Ok
            },
            ..RunStats::default()
        },
        finished_at: Timestamp::from_unix_millis(1_700_000_001_000 + i as i64),
    }));
    records
}

/// Times `get_run` of 100 000 ids drawn at random from `n` runs and prints the p50,
/// p99 and max, with `what` after the label.
pub fn get_run_percentiles(log: &AuditLog, n: u64, what: &str) {
    let mut samples: Vec<Duration> = Vec::with_capacity(100_000);
    let mut x = 12345u64;
    for _ in 0..100_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let id = run_id((x >> 33) % n);
        let t = Instant::now();
        black_box(log.get_run(&id).unwrap());
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "get_run over 100000 random ids{what}: p50 {:?}, p99 {:?}, max {:?}",
        samples[50_000], samples[99_000], samples[99_999]
    );
}
