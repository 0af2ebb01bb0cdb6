//! Query latencies over a store of `AUDITLOG_BENCH_RUNS` runs (default 100 000) with 20
//! events each and as many call events, beside SQLite holding the same records; and
//! open times with and without the index checkpoint.
//!
//! `cargo bench --bench query` (set `AUDITLOG_BENCH_RUNS=1000000` for the target's full
//! scale). Every read query of the Storage API is timed on both systems in the same
//! run (`query_<n>_runs/<query>/<system>`), plus a run's whole write path (start, 20
//! events, finish). SQLite is the harness's `SqliteStorage` (WAL, `synchronous =
//! NORMAL`, an index for every query), loaded with the same records in transactions of
//! about 4000. Besides criterion's means, it prints the p99 of `get_run` over 100 000
//! single calls, measured one by one: on the log the rebuild just mapped in whole, and
//! at the end on the log reopened with its checkpoint (cold maps), then reopened with
//! `Config::prefault_segments`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use auditlog::model::{CallEvent, Run, RunEvent, RunStats, Status, Timestamp};
use auditlog::{AuditLog, CallFilter, Record, RunFilter, Storage};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[path = "common/query_store.rs"]
mod query_store;
#[path = "../src/bin/auditlog/bench/sqlite.rs"]
mod sqlite;
#[path = "../src/bin/auditlog/bench/workload.rs"]
mod workload;

use query_store::{N_EVENTS, build, config, for_each_batch, get_run_percentiles, run_id};
use sqlite::{SqliteStorage, SqliteSync};

/// Callers and tools the call events are spread over.
const N_CALL_CALLERS: u64 = 1000;
const N_CALL_TOOLS: u64 = 50;

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

    // get_run p99, measured call by call. The rebuild above read every frame through
    // the segment maps, so every page is mapped here.
    get_run_percentiles(&log, n, "");

    // The same records in SQLite, and call events in both.
    let calls: Vec<Record> = (0..n).map(|i| Record::CallRecorded(call(i))).collect();
    for chunk in calls.chunks(4000) {
        log.append_batch(chunk).unwrap();
    }
    let started = Instant::now();
    let sqlite = SqliteStorage::open(&tmp.path().join("peer.sqlite"), SqliteSync::Normal).unwrap();
    for_each_batch(n, |batch| sqlite.apply_batch(batch).unwrap());
    for chunk in calls.chunks(4000) {
        sqlite.apply_batch(chunk).unwrap();
    }
    println!(
        "sqlite: loaded the same {n} runs x {N_EVENTS} events and {n} calls in {:.1?}",
        started.elapsed()
    );
    drop(calls);
    println!(
        "call events: {} bytes as a JSON line",
        workload::json_line_bytes(&call(0))
    );

    let mut group = c.benchmark_group(format!("query_{n}_runs"));
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let systems: [(&str, &dyn Storage); 2] = [("auditlog", &log), ("sqlite", &sqlite)];
    for (system, store) in systems {
        bench_reads(&mut group, system, store, n);
    }
    for (system, store) in systems {
        let mut i = 0u64;
        group.bench_function(BenchmarkId::new("write_run_22_records", system), |b| {
            b.iter(|| {
                i += 1;
                write_run(store, &format!("{system}-written-{i:09}"));
            })
        });
    }
    group.finish();
    drop(log);
    // The store directory must hold only the log's files to be opened again.
    drop(sqlite);
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("peer.sqlite")
        {
            std::fs::remove_file(path).unwrap();
        }
    }

    // The same p99 on a log just opened with its checkpoint, whose maps are cold: the
    // first read of each page faults it in. Then with the sealed segments prefaulted
    // at open, so the first reads no longer fault.
    let log = AuditLog::open(config(tmp.path())).unwrap();
    get_run_percentiles(&log, n, " (opened with the checkpoint, cold maps)");
    drop(log);
    let t = Instant::now();
    let log = AuditLog::open(config(tmp.path()).prefault_segments(true)).unwrap();
    println!(
        "open with checkpoint and prefault_segments: {:.1?}",
        t.elapsed()
    );
    get_run_percentiles(&log, n, " (prefault_segments)");
}

/// Times `get_run` call by call over 100 000 random ids and prints p50, p99 and max.
/// Call event `i`: the harness's event, spread over callers, tools and time.
fn call(i: u64) -> CallEvent {
    let mut call = workload::call_event(i);
    call.caller_id = Some(format!("caller-{}", i % N_CALL_CALLERS));
    call.tool_id = format!("tool-{}", i % N_CALL_TOOLS);
    call.ts = Timestamp::from_unix_millis(1_700_000_000_000 + i as i64);
    call
}

/// One run's writes through the Storage API: start, 20 events, finish.
fn write_run(store: &dyn Storage, id: &str) {
    let mut run = Run::new(id, "skill-written");
    run.started_at = Timestamp::from_unix_millis(1_800_000_000_000);
    store.start_run(&run).unwrap();
    for sequence in 1..=N_EVENTS {
        let mut event = RunEvent {
            run_id: id.to_owned(),
            sequence,
            event_type: "step".into(),
            ..RunEvent::default()
        };
        event.payload.insert("text".into(), "x".repeat(40).into());
        store.append_log(&event).unwrap();
    }
    let stats = RunStats {
        status: Status::Ok,
        ..RunStats::default()
    };
    store.finish_run(id, &stats).unwrap();
}

/// Every read query of the Storage API on `store`.
fn bench_reads(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    system: &str,
    store: &dyn Storage,
    n: u64,
) {
    let mut i = 0u64;
    let mut next = move || {
        i = (i + 7919) % n;
        i
    };
    let mut bench = |query: &str, f: &mut dyn FnMut()| {
        group.bench_function(BenchmarkId::new(query, system), |b| b.iter(&mut *f));
    };
    bench("get_run", &mut || {
        black_box(store.get_run(&run_id(next())).unwrap());
    });
    bench("list_logs_by_run_20_events", &mut || {
        black_box(store.list_logs_by_run(&run_id(next())).unwrap());
    });
    bench("list_runs_by_skill_50", &mut || {
        black_box(store.list_runs_by_skill("skill-3", 50).unwrap());
    });
    bench("list_runs_by_skill_paginated_offset_100", &mut || {
        black_box(
            store
                .list_runs_by_skill_paginated("skill-3", 100, 50, false)
                .unwrap(),
        );
    });
    bench("count_runs_by_skill", &mut || {
        black_box(store.count_runs_by_skill("skill-3", false).unwrap());
    });
    bench("list_runs_by_caller_50", &mut || {
        black_box(store.list_runs_by_caller("caller-7", 50).unwrap());
    });
    let by_skill = RunFilter {
        skill_id: Some("skill-3".into()),
        ..RunFilter::default()
    };
    bench("list_runs_filtered_page_50_skill", &mut || {
        black_box(store.list_runs_filtered(&by_skill, 100, 50).unwrap());
    });
    bench("list_runs_filtered_page_50_all", &mut || {
        black_box(
            store
                .list_runs_filtered(&RunFilter::default(), 0, 50)
                .unwrap(),
        );
    });
    let everything = RunFilter {
        include_dry_run: true,
        ..RunFilter::default()
    };
    bench("count_runs_filtered_all", &mut || {
        black_box(store.count_runs_filtered(&everything).unwrap());
    });
    bench("count_runs_filtered_excluding_dry_run", &mut || {
        black_box(store.count_runs_filtered(&RunFilter::default()).unwrap());
    });
    bench("list_children_by_parent", &mut || {
        black_box(store.list_children_by_parent(&run_id(next())).unwrap());
    });
    bench("walk_parent_chain_depth_8", &mut || {
        let i = next();
        let leaf = i - i % 8 + 7;
        black_box(store.walk_parent_chain(&run_id(leaf.min(n - 1))).unwrap());
    });
    let cutoff = Timestamp::from_unix_millis(1_700_000_001_000 + n as i64 / 2);
    bench("list_finished_runs_before_50", &mut || {
        black_box(store.list_finished_runs_before(cutoff, 50).unwrap());
    });
    let skills = ["skill-1", "skill-2", "skill-3", "skill-4", "skill-5"];
    bench("last_run_by_skills_5", &mut || {
        black_box(store.last_run_by_skills(&skills, false).unwrap());
    });
    let by_caller = CallFilter {
        caller_id: Some("caller-7".into()),
        ..CallFilter::default()
    };
    bench("list_calls_page_50_caller", &mut || {
        black_box(store.list_calls(&by_caller, 0, 50).unwrap());
    });
    bench("count_calls_caller", &mut || {
        black_box(store.count_calls(&by_caller).unwrap());
    });
}

criterion_group!(benches, queries);
criterion_main!(benches);
