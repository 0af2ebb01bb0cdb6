//! Compaction benchmark: `AuditLog::compact` after half of the runs of a 32 MiB store
//! were purged, every segment left partly dead (`benches/common/compaction_store.rs`).
//!
//! Each iteration builds and purges a fresh store outside the measured time, then
//! times one `compact()` (every pass it needs: rewriting, verifying what it copies,
//! syncing and swapping each segment). Throughput is the store's segment bytes before
//! compaction. `examples/compaction_figures` prints the disk/live ratio, the copy rate
//! and the record-call latency while compaction runs.

use std::time::{Duration, Instant};

use auditlog::{AuditLog, Storage};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

#[path = "common/compaction_store.rs"]
mod compaction_store;
#[path = "common/dir.rs"]
mod dir;

use compaction_store::{config, fill};
use dir::bench_dir;

/// Bytes of records written before the purge.
const STORE_BYTES: u64 = 32 << 20;

/// A closed store of `STORE_BYTES` with half its runs purged.
fn purged_store() -> tempfile::TempDir {
    let dir = bench_dir("compaction");
    let log = AuditLog::open(config(dir.path())).expect("open a fresh store");
    let cutoff = fill(&log, STORE_BYTES, 0.5);
    let n_purged = log.purge_older_than(cutoff).expect("purge");
    assert!(n_purged > 0, "the purge removed nothing");
    log.close().expect("close the store");
    dir
}

fn compaction(c: &mut Criterion) {
    let mut group = c.benchmark_group("compaction");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(STORE_BYTES));
    group.bench_function("compact_after_purging_half", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let dir = purged_store();
                let log = AuditLog::open(config(dir.path())).expect("open the store");
                let started = Instant::now();
                let report = log.compact().expect("compact");
                elapsed += started.elapsed();
                assert!(report.n_segments_rewritten > 0, "{report:?}");
                log.close().expect("close the store");
            }
            elapsed
        });
    });
    group.finish();
}

criterion_group!(benches, compaction);
criterion_main!(benches);
