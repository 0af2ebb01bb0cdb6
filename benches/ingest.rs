//! Ingest benchmarks: the record hot path, sustained ingest through the recorder for
//! each durability mode, and durable ingest beside SQLite.
//!
//! Every benchmark records the harness's call event (`src/bin/auditlog/bench/
//! workload.rs`, about 200 bytes as JSON), and SQLite is the harness's
//! `SqliteStorage` (WAL mode, `synchronous = FULL` here, so a commit is durable when
//! it returns).
//!
//! - `record_hot_path`: one `Recorder::record_call`, timed in runs of 1024 calls into
//!   an empty queue (a flush between runs, outside the measured time), so every call
//!   takes the accept path and none is dropped.
//! - `sustained_ingest`: 20 000 events through a recorder with the blocking policy,
//!   then `flush`: events per second written and synced, per durability mode.
//! - `durable_ingest`: events durable when the call returns. `per_event`: one
//!   `Storage::record_call` per event on a log with `Durability::EveryBatch`, against
//!   one autocommit insert per event. `batch_1000`: 1000 `record_call`s then one
//!   `flush`, against one transaction of 1000 inserts.
//!
//! Each iteration records its events at later times than the one before (`advance`),
//! as a dispatch server records calls at the current time, for both systems. Recording
//! the same 1000 timestamps again every iteration (as these benchmarks did until
//! 2026-12-03) made every call after the first iteration arrive out of time order, a
//! B-tree insert in three of the call index's maps instead of a push, and halved our
//! durable batch rate (docs/benchmarks.md).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog::ingest::Backpressure;
use auditlog::model::{CallEvent, Timestamp};
use auditlog::{AuditLog, Config, Durability, IngestConfig, Record, Recorder, Storage};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[path = "common/dir.rs"]
mod dir;
#[path = "../src/bin/auditlog/bench/sqlite.rs"]
mod sqlite;
#[path = "../src/bin/auditlog/bench/workload.rs"]
mod workload;

use dir::bench_dir;
use sqlite::{SqliteStorage, SqliteSync};
use workload::{call_event, json_line_bytes};

/// Calls timed between two flushes in the hot-path benchmark: far below what the
/// queue's ring holds, so none is refused.
const HOT_PATH_RUN: u64 = 1024;
/// Events per iteration of the sustained benchmark.
const SUSTAINED_EVENTS: u64 = 20_000;
/// Events per iteration of the per-event durable benchmark.
const PER_EVENT: u64 = 100;
/// Events per durable batch.
const BATCH: u64 = 1000;

fn recorder(dir: &std::path::Path, durability: Durability, backpressure: Backpressure) -> Recorder {
    let log = AuditLog::open(Config::new(dir).durability(durability)).expect("open a store");
    Recorder::start(
        Arc::new(log),
        IngestConfig::default().backpressure(backpressure),
    )
    .expect("start the recorder")
}

fn events(n: u64) -> Vec<CallEvent> {
    (0..n).map(call_event).collect()
}

/// Moves each event past the times of the whole slice, so the next iteration records
/// later calls (the workload spaces calls 1 µs apart).
fn advance(events: &mut [CallEvent]) {
    let span = events.len() as i64 * 1_000;
    for event in events {
        event.ts = Timestamp::from_unix_nanos(event.ts.unix_nanos() + span);
    }
}

/// [`advance`] for the same events as records.
fn advance_records(records: &mut [Record]) {
    let span = records.len() as i64 * 1_000;
    for record in records {
        if let Record::CallRecorded(event) = record {
            event.ts = Timestamp::from_unix_nanos(event.ts.unix_nanos() + span);
        }
    }
}

fn record_hot_path(c: &mut Criterion) {
    let dir = bench_dir("hot-path");
    let recorder = recorder(dir.path(), Durability::None, Backpressure::Drop);
    let run = events(HOT_PATH_RUN);
    println!(
        "record_hot_path: the call event is {} bytes as a JSON line",
        json_line_bytes(&run[0])
    );
    let mut group = c.benchmark_group("record_hot_path");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("record_call", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut n_done = 0;
            while n_done < iters {
                let n = (iters - n_done).min(HOT_PATH_RUN) as usize;
                let started = Instant::now();
                for event in &run[..n] {
                    let _ = black_box(recorder.record_call(event));
                }
                elapsed += started.elapsed();
                recorder.flush().expect("flush between runs");
                n_done += n as u64;
            }
            elapsed
        });
    });
    group.finish();
    let dropped = recorder.metrics().dropped.total();
    assert_eq!(
        dropped, 0,
        "the hot path benchmark must time accepted calls only"
    );
}

fn sustained_ingest(c: &mut Criterion) {
    let mut batch = events(SUSTAINED_EVENTS);
    let mut group = c.benchmark_group("sustained_ingest");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(SUSTAINED_EVENTS));
    for (name, durability) in [
        ("none", Durability::None),
        (
            "group_commit_2ms",
            Durability::GroupCommit { interval_ms: 2 },
        ),
        ("every_batch", Durability::EveryBatch),
    ] {
        let dir = bench_dir("sustained");
        let recorder = recorder(dir.path(), durability, Backpressure::Block);
        group.bench_function(name, |b| {
            b.iter(|| {
                advance(&mut batch);
                for event in &batch {
                    let _ = black_box(recorder.record_call(event));
                }
                recorder.flush().expect("flush");
            });
        });
        assert_eq!(recorder.metrics().dropped.total(), 0);
    }
    group.finish();
}

fn durable_ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_ingest");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let mut per_event = events(PER_EVENT);
    group.throughput(Throughput::Elements(PER_EVENT));
    let ours_dir = bench_dir("durable-ours");
    let ours = AuditLog::open(Config::new(ours_dir.path()).durability(Durability::EveryBatch))
        .expect("open a store");
    group.bench_function(BenchmarkId::new("per_event", "auditlog"), |b| {
        b.iter(|| {
            advance(&mut per_event);
            for event in &per_event {
                ours.record_call(event).expect("record a call");
            }
        });
    });
    let mut per_event = events(PER_EVENT);
    let sqlite_dir = bench_dir("durable-sqlite");
    let full = SqliteStorage::open(&sqlite_dir.path().join("audit.sqlite"), SqliteSync::Full)
        .expect("open the SQLite database");
    group.bench_function(BenchmarkId::new("per_event", "sqlite"), |b| {
        b.iter(|| {
            advance(&mut per_event);
            for event in &per_event {
                full.record_call(event).expect("insert a call");
            }
        });
    });

    let mut batch = events(BATCH);
    let mut records: Vec<Record> = batch.iter().cloned().map(Record::CallRecorded).collect();
    group.throughput(Throughput::Elements(BATCH));
    let recorder_dir = bench_dir("durable-recorder");
    let recorder = recorder(recorder_dir.path(), Durability::None, Backpressure::Block);
    group.bench_function(BenchmarkId::new("batch_1000", "auditlog"), |b| {
        b.iter(|| {
            advance(&mut batch);
            for event in &batch {
                let _ = black_box(recorder.record_call(event));
            }
            recorder.flush().expect("flush");
        });
    });
    group.bench_function(BenchmarkId::new("batch_1000", "sqlite"), |b| {
        b.iter(|| {
            advance_records(&mut records);
            full.apply_batch(&records).expect("insert a batch")
        });
    });
    group.finish();

    // The same batches without a sync per commit, for scale.
    let normal = SqliteStorage::open(&sqlite_dir.path().join("normal.sqlite"), SqliteSync::Normal)
        .expect("open the SQLite database");
    let started = Instant::now();
    for _ in 0..10 {
        advance_records(&mut records);
        normal.apply_batch(&records).expect("insert a batch");
    }
    println!(
        "durable_ingest: for scale, SQLite with synchronous = NORMAL took {:?} per batch of {BATCH}",
        started.elapsed() / 10
    );
}

criterion_group!(benches, record_hot_path, sustained_ingest, durable_ingest);
criterion_main!(benches);
