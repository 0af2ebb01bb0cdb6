//! Compaction figures: copy throughput, disk/live ratio after purging 50 % and 90 % of
//! the runs, and the record-call latency with and without a compaction running.
//!
//! `cargo run --release --example compaction_figures [store_mib]` (default 64).
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

use auditlog::{AuditLog, Storage};

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

/// Times single-record appends, alone and while `compact()` runs on another thread.
fn impact(store_bytes: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(config(tmp.path())).unwrap());
    let cutoff = fill(&log, store_bytes, 0.9);
    let measure = |log: &AuditLog, while_flag: Option<&AtomicBool>, n_max: usize| {
        let mut times = Vec::with_capacity(n_max.min(1 << 20));
        let mut seq = 0;
        while times.len() < n_max && while_flag.is_none_or(|f| !f.load(Ordering::SeqCst)) {
            seq += 1;
            let record = event("probe", seq);
            let started = Instant::now();
            log.append(&record).unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        times
    };
    let alone = measure(&log, None, 20_000);
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
    let during = measure(&log, Some(&done), usize::MAX);
    let report = compactor.join().unwrap();
    println!(
        "record p50/p99/max alone: {:?} / {:?} / {:?} ({} calls); \
         during compaction: {:?} / {:?} / {:?} ({} calls, compaction copied {} B in {:?}, lock held {:?})",
        percentile(&alone, 0.5),
        percentile(&alone, 0.99),
        alone.last().unwrap(),
        alone.len(),
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        during.last().unwrap(),
        during.len(),
        report.bytes_copied,
        report.copy_elapsed,
        report.lock_held,
    );
}

fn main() {
    let store_mib: u64 = std::env::args()
        .nth(1)
        .map_or(64, |a| a.parse().expect("store size in MiB"));
    let store_bytes = store_mib << 20;
    space(store_bytes, 0.5);
    space(store_bytes, 0.9);
    impact(store_bytes);
}
