//! Query latencies over a store of `AUDITLOG_BENCH_RUNS` runs (default 100 000) with 20
//! events each, and open times with and without the index checkpoint.
//!
//! `cargo bench --bench query` (set `AUDITLOG_BENCH_RUNS=1000000` for the target's full
//! scale). Besides criterion's means, it prints the p99 of `get_run` over 100 000 single
//! calls, measured one by one.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use auditlog::{AuditLog, RunFilter, Storage};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "common/query_store.rs"]
mod query_store;

use query_store::{N_EVENTS, build, config, run_id};

fn n_runs() -> u64 {
    std::env::var("AUDITLOG_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn queries(c: &mut Criterion) {
    let n = n_runs();
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    build(tmp.path(), n);
    let log_bytes = dir_bytes(tmp.path());
    println!(
        "built {n} runs x {N_EVENTS} events: {log_bytes} bytes on disk in {:.1?}",
        started.elapsed()
    );

    // Open times.
    for _ in 0..3 {
        let t = Instant::now();
        let log = AuditLog::open(config(tmp.path())).unwrap();
        println!(
            "open with checkpoint: {:.1?} ({:?})",
            t.elapsed(),
            log.checkpoint_use()
        );
        drop(log);
    }
    let ckpt = tmp.path().join("index.ckpt");
    let saved = std::fs::read(&ckpt).unwrap();
    println!("checkpoint file: {} bytes", saved.len());
    std::fs::remove_file(&ckpt).unwrap();
    let t = Instant::now();
    let log = AuditLog::open(config(tmp.path())).unwrap();
    let elapsed = t.elapsed();
    println!(
        "open without checkpoint: {elapsed:.1?} for {log_bytes} bytes = {:.2} s/GB",
        elapsed.as_secs_f64() / (log_bytes as f64 / 1e9)
    );

    // get_run p99, measured call by call.
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
        "get_run over 100000 random ids: p50 {:?}, p99 {:?}, max {:?}",
        samples[50_000], samples[99_000], samples[99_999]
    );

    let mut group = c.benchmark_group(format!("query_{n}_runs"));
    group.sample_size(30);
    let mut i = 0u64;
    group.bench_function("get_run", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            black_box(log.get_run(&run_id(i)).unwrap())
        })
    });
    group.bench_function("list_logs_by_run_20_events", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            black_box(log.list_logs_by_run(&run_id(i)).unwrap())
        })
    });
    let by_skill = RunFilter {
        skill_id: Some("skill-3".into()),
        ..RunFilter::default()
    };
    group.bench_function("list_runs_filtered_page_50_skill", |b| {
        b.iter(|| black_box(log.list_runs_filtered(&by_skill, 100, 50).unwrap()))
    });
    group.bench_function("list_runs_filtered_page_50_all", |b| {
        b.iter(|| {
            black_box(
                log.list_runs_filtered(&RunFilter::default(), 0, 50)
                    .unwrap(),
            )
        })
    });
    let everything = RunFilter {
        include_dry_run: true,
        ..RunFilter::default()
    };
    group.bench_function("count_runs_filtered_all", |b| {
        b.iter(|| black_box(log.count_runs_filtered(&everything).unwrap()))
    });
    group.bench_function("count_runs_filtered_excluding_dry_run", |b| {
        b.iter(|| black_box(log.count_runs_filtered(&RunFilter::default()).unwrap()))
    });
    group.bench_function("walk_parent_chain_depth_8", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            let leaf = i - i % 8 + 7;
            black_box(log.walk_parent_chain(&run_id(leaf.min(n - 1))).unwrap())
        })
    });
    group.finish();
    drop(log);
}

criterion_group!(benches, queries);
criterion_main!(benches);
