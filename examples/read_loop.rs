//! Times one read query of the Storage API in a loop on the query benchmark's store,
//! for profiling a read path and comparing builds run in turn without the whole query
//! benchmark.
//!
//! `cargo run --release --example read_loop -- <dir> <n_runs> <query> [iterations]`
//! builds the store in `<dir>` (as `open_time` does) unless it exists, where
//! `<query>` is one of:
//! - `page`: `list_runs_filtered` with the default filter, the newest 50 runs;
//! - `get_run`: `get_run` of ids taken with a stride of 7919 over every run;
//! - `logs`: `list_logs_by_run` of those ids (20 events each);
//! - `chain`: `walk_parent_chain` from the deepest run of those ids' chains of 8;
//! - `page_clone`, `logs_clone`, `get_run_clone`: a clone of the answer `page`,
//!   `logs` and `get_run` gave once, which allocates and copies what the query must
//!   hand back and nothing more: the floor under the query.
//!
//! Prints the mean time per iteration (default 300 000 iterations). With
//! `AUDITLOG_BENCH_CONCURRENT_RUNS=<k>` a store it builds is written as `k` runs
//! recorded at once (one run's records `k` records apart), as a server writes them.

#[path = "../benches/common/query_store.rs"]
#[allow(dead_code)]
mod query_store;

use std::hint::black_box;
use std::time::Instant;

use auditlog::{AuditLog, RunFilter, Storage};
use query_store::{build_interleaved, config, run_id};

/// How many runs the store is written as recording at once:
/// `$AUDITLOG_BENCH_CONCURRENT_RUNS`, default 1 (each run's records together).
fn concurrent_runs() -> u64 {
    std::env::var("AUDITLOG_BENCH_CONCURRENT_RUNS")
        .ok()
        .map_or(1, |v| {
            v.parse()
                .expect("AUDITLOG_BENCH_CONCURRENT_RUNS is a number")
        })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(n), Some(query)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: read_loop <dir> <n_runs> <query> [iterations]");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("n_runs is a number");
    let iterations: u64 = args
        .get(4)
        .map_or(300_000, |s| s.parse().expect("a number"));
    let dir = std::path::Path::new(dir);
    if !dir.exists() {
        build_interleaved(dir, n, concurrent_runs());
    }
    let log = AuditLog::open(config(dir)).unwrap();
    let newest = RunFilter::default();
    let page = log.list_runs_filtered(&newest, 0, 50).unwrap();
    let logs = log.list_logs_by_run(&run_id(7)).unwrap();
    let run = log.get_run(&run_id(7)).unwrap();

    let mut i = 0u64;
    let started = Instant::now();
    for _ in 0..iterations {
        i = (i + 7919) % n;
        match query.as_str() {
            "page" => drop(black_box(log.list_runs_filtered(&newest, 0, 50).unwrap())),
            "get_run" => drop(black_box(log.get_run(&run_id(i)).unwrap())),
            "logs" => drop(black_box(log.list_logs_by_run(&run_id(i)).unwrap())),
            "chain" => {
                let leaf = (i - i % 8 + 7).min(n - 1);
                drop(black_box(log.walk_parent_chain(&run_id(leaf)).unwrap()));
            }
            "page_clone" => drop(black_box(page.clone())),
            "logs_clone" => drop(black_box(logs.clone())),
            "get_run_clone" => drop(black_box((run_id(i), run.clone()))),
            _ => {
                eprintln!("unknown query `{query}`");
                std::process::exit(2);
            }
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    println!("{query}: {per:.3} µs per iteration over {iterations}");
}
