//! Compaction figures: copy throughput, disk/live ratio after purging 50 % and 90 % of
//! the runs, and the record-call latency with and without a compaction running.
//!
//! `cargo run --release --example compaction_figures [store_mib] [trials]` (defaults 64
//! and 5).
//!
//! The latency of two record paths is compared with and without a compaction running,
//! in `trials` trials each on a fresh store: `AuditLog::append` (synchronous, it takes
//! the lock compaction swaps segments under) and `Recorder::record_event` paced at
//! 100 k/s (the ingest hot path). The windows without compaction are taken just before
//! and just after the one with it, so that load from outside the process weighs on
//! both alike; the median rise of p99 over the trials is printed last.
//!
//! The copy rate is the bytes written into rewritten segments over
//! `CompactionReport::copy_elapsed` (writing, syncing, renaming in and the directory
//! syncs; not the snapshot and the classification walk); the same bytes over the whole
//! `compact()` call are printed beside it.
//!
//! Runs are recorded interleaved (run events of several runs mixed in every segment)
//! and, for a purge share p, a fraction p of the runs get old start times, so the purge
//! leaves every segment partly dead and compaction has to rewrite, not just delete.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use auditlog::ingest::{EventRef, FieldValue};
use auditlog::model::Timestamp;
use auditlog::{AuditLog, IngestConfig, Storage};

#[path = "../benches/common/compaction_store.rs"]
mod compaction_store;

use compaction_store::{config, event, fill};

fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn space(store_bytes: u64, purge_share: f64) {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(tmp.path())).unwrap();
    let cutoff = fill(&log, store_bytes, purge_share);
    let n = log.purge_older_than(cutoff).unwrap();
    log.close().unwrap();
    let before = disk_bytes(tmp.path());
    let log = AuditLog::open(config(tmp.path())).unwrap();
    let started = Instant::now();
    let report = log.compact().unwrap();
    let elapsed = started.elapsed();
    log.close().unwrap();
    // Reopened, every segment is sealed: one more pass measures what is live.
    let log = AuditLog::open(config(tmp.path())).unwrap();
    let again = log.compact().unwrap();
    log.close().unwrap();
    let after = disk_bytes(tmp.path());
    println!(
        "purge {:.0} %: {n} runs purged; segment files {before} B before, {after} B after; \
         live frames {} B; disk/live = {:.4}; compact() {:?} ({} passes, {} rewritten, {} deleted), \
         copied {} B in {:?} = {:.1} MB/s ({:.1} MB/s over the whole compact()); lock held {:?}; \
         second compact removed {} frames",
        purge_share * 100.0,
        again.live_bytes,
        after as f64 / again.live_bytes as f64,
        elapsed,
        report.n_passes,
        report.n_segments_rewritten,
        report.n_segments_deleted,
        report.bytes_copied,
        report.copy_elapsed,
        report.bytes_copied as f64 / 1e6 / report.copy_elapsed.as_secs_f64(),
        report.bytes_copied as f64 / 1e6 / elapsed.as_secs_f64(),
        report.lock_held,
        again.n_frames_removed,
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Calls timed in each window without compaction, before and after the one with it.
const ALONE_CALLS: usize = 20_000;
/// The paced record calls of the ingest path: one every 10 µs (100 k/s).
const PACE: Duration = Duration::from_micros(10);

/// Which record path a trial times.
#[derive(Copy, Clone, Debug)]
enum RecordPath {
    /// `AuditLog::append` of one event: the synchronous path, which takes the lock
    /// compaction takes to swap segments.
    Append,
    /// `Recorder::record_event` paced at 100 k/s: the ingest hot path, which never
    /// takes a lock; its committer shares the machine with compaction.
    Recorder,
}

/// Times calls of `path` until `n_max` or until `stop` is set.
fn time_calls(
    log: &Arc<AuditLog>,
    recorder: &auditlog::Recorder,
    path: RecordPath,
    stop: Option<&AtomicBool>,
    n_max: usize,
    seq: &mut u64,
) -> Vec<Duration> {
    let fields = [("iter", FieldValue::U64(1)), ("ok", FieldValue::Bool(true))];
    let mut times = Vec::with_capacity(n_max.min(1 << 20));
    let mut next = Instant::now();
    while times.len() < n_max && stop.is_none_or(|f| !f.load(Ordering::SeqCst)) {
        *seq += 1;
        match path {
            RecordPath::Append => {
                let record = event("probe", *seq);
                let started = Instant::now();
                log.append(&record).unwrap();
                times.push(started.elapsed());
            }
            RecordPath::Recorder => {
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
                next += PACE;
                let event = EventRef {
                    run_id: "probe-ingest",
                    sequence: *seq,
                    event_type: "step",
                    fields: &fields,
                    created_at: Timestamp::from_unix_millis(1_700_000_000_000),
                };
                let started = Instant::now();
                let recorded = recorder.record_event(&event);
                times.push(started.elapsed());
                assert!(recorded.is_accepted(), "{recorded:?}");
            }
        }
    }
    times.sort();
    times
}

/// One trial: a fresh store with 90 % of its runs purged; `path` timed for
/// [`ALONE_CALLS`] calls, then while `compact()` runs on another thread, then for
/// [`ALONE_CALLS`] calls again. Returns the p99 without and with compaction.
fn impact_trial(store_bytes: u64, path: RecordPath, trial: usize) -> (Duration, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(config(tmp.path())).unwrap());
    let cutoff = fill(&log, store_bytes, 0.9);
    let recorder = auditlog::Recorder::start(log.clone(), IngestConfig::default()).unwrap();
    let mut seq = 0;
    let before = time_calls(&log, &recorder, path, None, ALONE_CALLS, &mut seq);
    log.purge_older_than(cutoff).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let compactor = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            let report = log.compact().unwrap();
            done.store(true, Ordering::SeqCst);
            report
        })
    };
    let during = time_calls(&log, &recorder, path, Some(&done), usize::MAX, &mut seq);
    let report = compactor.join().unwrap();
    let after = time_calls(&log, &recorder, path, None, ALONE_CALLS, &mut seq);
    let closed = recorder.close(Duration::from_secs(60));
    assert_eq!(closed.dropped.total(), 0, "{closed:?}");
    let mut alone = [before, after].concat();
    alone.sort();
    let (p99_alone, p99_during) = (percentile(&alone, 0.99), percentile(&during, 0.99));
    println!(
        "{path:?} trial {trial}: p50/p99/max alone {:?} / {p99_alone:?} / {:?} ({} calls, \
         half before and half after); during compaction {:?} / {p99_during:?} / {:?} \
         ({} calls; compaction copied {} B in {:?}, lock held {:?}); p99 {:+.1} %",
        percentile(&alone, 0.5),
        alone.last().unwrap(),
        alone.len(),
        percentile(&during, 0.5),
        during.last().unwrap(),
        during.len(),
        report.bytes_copied,
        report.copy_elapsed,
        report.lock_held,
        rise(p99_alone, p99_during),
    );
    (p99_alone, p99_during)
}

/// How much `during` is above `alone`, in percent.
fn rise(alone: Duration, during: Duration) -> f64 {
    (during.as_secs_f64() / alone.as_secs_f64() - 1.0) * 100.0
}

/// Times each record path in `n_trials` trials and prints the median rise of p99.
fn impact(store_bytes: u64, n_trials: usize) {
    for path in [RecordPath::Append, RecordPath::Recorder] {
        let mut rises: Vec<f64> = (1..=n_trials)
            .map(|trial| {
                let (alone, during) = impact_trial(store_bytes, path, trial);
                rise(alone, during)
            })
            .collect();
        rises.sort_by(f64::total_cmp);
        println!(
            "{path:?}: p99 rise while compacting, median of {n_trials} trials: {:+.1} % (all: {})",
            rises[rises.len() / 2],
            rises
                .iter()
                .map(|r| format!("{r:+.1} %"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn main() {
    let store_mib: u64 = std::env::args()
        .nth(1)
        .map_or(64, |a| a.parse().expect("store size in MiB"));
    let n_trials: usize = std::env::args()
        .nth(2)
        .map_or(5, |a| a.parse().expect("number of latency trials"));
    let store_bytes = store_mib << 20;
    space(store_bytes, 0.5);
    space(store_bytes, 0.9);
    impact(store_bytes, n_trials);
}
