//! Measures the bytes the in-memory index holds per run and per run event, with a
//! counting global allocator.
//!
//! `cargo run --release --example index_memory -- [n_runs] [n_events_per_run]`
//! (defaults: 1 000 000 runs, 20 events each). The index is built by applying records
//! directly (LSNs are synthetic; no log is written), once with no events and once with
//! the events, so the per-run and per-event shares are measured separately.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use auditlog::codec::RunFinished;
use auditlog::index::Index;
use auditlog::model::{Run, RunEvent, RunStats, Status, Timestamp};
use auditlog::{Lsn, Record};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is
// only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` was allocated by this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Builds an index of `n_runs` finished runs with `n_events` events each, and returns
/// the bytes it holds.
fn build(n_runs: u64, n_events: u64) -> (isize, Index) {
    let before = live();
    let mut index = Index::new();
    let mut lsn = 0u64;
    let mut next = || {
        lsn += 100;
        Lsn(lsn)
    };
    for i in 0..n_runs {
        let id = format!("run-{i:012}");
        let run = Run {
            id: id.clone(),
            skill_id: format!("skill-{}", i % 200),
            caller_id: format!("caller-{}", i % 5000),
            channel_id: format!("channel-{}", i % 100),
            started_at: Timestamp::from_unix_millis(1_700_000_000_000 + i as i64),
            parent_run_id: if i % 4 == 0 {
                String::new()
            } else {
                format!("run-{:012}", i - 1)
            },
            ..Run::default()
        };
        index.apply(next(), &Record::RunStarted(run));
        for seq in 1..=n_events {
            let event = RunEvent {
                run_id: id.clone(),
                sequence: seq,
                ..RunEvent::default()
            };
            index.apply(next(), &Record::EventAppended(event));
        }
        let finish = RunFinished {
            run_id: id,
            stats: RunStats {
                status: Status::Ok,
                ..RunStats::default()
            },
            finished_at: Timestamp::from_unix_millis(1_700_000_001_000 + i as i64),
        };
        index.apply(next(), &Record::RunFinished(finish));
    }
    (live() - before, index)
}

/// Prints the bytes each part of the index reserves, per `unit`.
fn print_parts(index: &Index, n: u64, unit: &str) {
    let parts = index.heap_bytes_by_part();
    for (part, bytes) in &parts {
        println!(
            "  {part:<36} {bytes:>11} bytes  {:>6.1} bytes/{unit}",
            *bytes as f64 / n as f64
        );
    }
    let total: usize = parts.iter().map(|(_, b)| b).sum();
    println!(
        "  {:<36} {total:>11} bytes  {:>6.1} bytes/{unit}",
        "sum of the parts",
        total as f64 / n as f64
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n_runs: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("n_runs"));
    let n_events: u64 = args
        .next()
        .map_or(20, |a| a.parse().expect("n_events_per_run"));

    let started = Instant::now();
    let (runs_only, index) = build(n_runs, 0);
    let per_run = runs_only as f64 / n_runs as f64;
    println!(
        "runs only: {n_runs} runs, {runs_only} bytes, {per_run:.1} bytes/run ({:.1?})",
        started.elapsed()
    );
    print_parts(&index, n_runs, "run");
    drop(index);

    let started = Instant::now();
    let (with_events, index) = build(n_runs, n_events);
    let n_total_events = n_runs * n_events;
    assert_eq!(index.n_events(), n_total_events);
    let per_event = (with_events - runs_only) as f64 / n_total_events as f64;
    println!(
        "with events: {n_runs} runs x {n_events} events, {with_events} bytes, \
         {per_event:.1} bytes/event beyond the runs ({:.1?})",
        started.elapsed()
    );
    print_parts(&index, n_total_events, "event (whole index)");
    println!("budget: <= 160 bytes/run, <= 24 bytes/event");
}
