//! Times `AuditLog::open` on the query benchmark's workload, with and without the
//! index checkpoint, without the rest of the benchmark.
//!
//! `cargo run --release --example open_time -- <dir> [n_runs]`: builds the store in
//! `<dir>` (n_runs runs of 20 events, default 100 000) unless it already holds one,
//! then opens it three times with its checkpoint and three times without, and prints
//! each time with what recovery verified.
//!
//! `open_time <dir> <n_runs> rebuild` only opens the store once without its checkpoint
//! (for profiling the rebuild alone); `open_time <dir> <n_runs> checkpoint` only opens
//! it five times with its checkpoint (for profiling the checkpoint's load);
//! `open_time <dir> <n_runs> copy` times five copies of the index its checkpoint loads
//! (what a periodic checkpoint takes under the log's lock); `open_time <dir> <n_runs>
//! write [<parent dir>]` times five writes of that index's checkpoint into a scratch
//! directory (under /dev/shm by default), then maps and checksums the file written;
//! `open_time <dir> <n_runs> get_run` times `get_run` of random ids on the store just
//! opened, then again, then says when the warmer was done; `open_time <dir> <n_runs>
//! warm` times the open and the warming of the segments after it; `open_time <dir> <n_runs> floor` times, five times, mapping the checkpoint file and
//! taking the crc32 of all of it on one thread: what any load that checks every byte
//! pays before it decodes anything. `open_time <dir> <n_runs> first_write` times the
//! first five `start_run` calls after an open with the checkpoint, then the next
//! 10 000 together; it writes to the store, so give it a copy.

use std::path::Path;
use std::time::Instant;

#[path = "../benches/common/query_store.rs"]
#[allow(dead_code)]
mod query_store;

use auditlog::model::Run;
use auditlog::vfs::Vfs;
use auditlog::{AuditLog, Storage};
use query_store::{build, config, get_run_percentiles};

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`), so a busy shared
/// machine shows in the gap between wall and CPU time; 0 where unavailable.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Maps the file at `path` and takes its crc32, and prints the time both took.
fn checksum_floor(path: &Path) {
    let started = Instant::now();
    let view = auditlog::vfs::OsVfs
        .open_rw(path)
        .and_then(|file| file.map_readonly())
        .unwrap();
    let crc = crc32fast::hash(&view);
    println!(
        "map and crc32 of {} bytes: {:.1?} (crc {crc:08x})",
        view.len(),
        started.elapsed()
    );
}

fn open_once(dir: &Path, what: &str, log_bytes: u64) {
    let cpu = cpu_ns();
    let started = Instant::now();
    let log = AuditLog::open(config(dir)).unwrap();
    let elapsed = started.elapsed();
    let cpu_ms = (cpu_ns() - cpu) as f64 / 1e6;
    let report = log.recovery_report();
    println!(
        "{what}: {elapsed:.1?} wall, {cpu_ms:.1}ms cpu = {:.2} s/GB wall ({} frames verified, {:?}, {} runs)",
        elapsed.as_secs_f64() / (log_bytes as f64 / 1e9),
        report.n_frames,
        log.checkpoint_use(),
        log.index_counts().0,
    );
    log.close().unwrap();
}

/// Times writing the checkpoint of the index loaded from `dir`'s checkpoint into a
/// scratch directory under `parent` (by default /dev/shm: the encoding, checksum and
/// copy, no disk), then mapping and checksumming the file just written.
fn write_index(dir: &Path, parent: &str) {
    let loaded = auditlog::index::checkpoint::load(&auditlog::vfs::OsVfs, dir)
        .unwrap()
        .expect("a checkpoint");
    let scratch = tempfile::tempdir_in(parent).unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        let bytes = auditlog::index::checkpoint::write(
            &auditlog::vfs::OsVfs,
            scratch.path(),
            &loaded.index,
            loaded.coverage,
        )
        .unwrap();
        println!(
            "checkpoint written: {bytes} bytes in {:.1?}",
            started.elapsed()
        );
    }
    for _ in 0..3 {
        checksum_floor(&scratch.path().join("index.ckpt"));
    }
}

/// Times copies of the index loaded from the checkpoint: what a periodic checkpoint
/// holds the log's lock for (besides syncing the journal), and the copy's drop.
fn copy_index(dir: &Path) {
    let loaded = auditlog::index::checkpoint::load(&auditlog::vfs::OsVfs, dir)
        .unwrap()
        .expect("a checkpoint");
    println!(
        "read in place from the checkpoint: event lists and their places {} bytes, run table {} bytes, name tables {} bytes, per-id tables and run lists {} bytes",
        loaded.index.loaded_event_bytes(),
        loaded.index.loaded_run_bytes(),
        loaded.index.loaded_name_bytes(),
        loaded.index.loaded_run_list_bytes()
    );
    for _ in 0..5 {
        let started = Instant::now();
        let copy = loaded.index.clone();
        let copied = started.elapsed();
        let started = Instant::now();
        drop(copy);
        println!(
            "copy of the index: {copied:.1?}, its drop {:.1?}",
            started.elapsed()
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: open_time <dir> [n_runs]");
    let dir = Path::new(&dir);
    let n_runs: u64 = args.next().map_or(100_000, |a| a.parse().expect("n_runs"));
    if !dir.exists() {
        let started = Instant::now();
        build(dir, n_runs);
        println!("built {n_runs} runs in {:.1?}", started.elapsed());
    }
    let log_bytes = segment_bytes(dir);
    let ckpt = dir.join("index.ckpt");
    match args.next().as_deref() {
        Some("rebuild") => {
            let _ = std::fs::remove_file(&ckpt);
            open_once(dir, "open without checkpoint", log_bytes);
            return;
        }
        Some("checkpoint") => {
            for _ in 0..5 {
                open_once(dir, "open with checkpoint", log_bytes);
            }
            return;
        }
        Some("copy") => {
            copy_index(dir);
            return;
        }
        Some("write") => {
            write_index(dir, args.next().as_deref().unwrap_or("/dev/shm"));
            return;
        }
        Some("floor") => {
            for _ in 0..5 {
                checksum_floor(&ckpt);
            }
            return;
        }
        Some("first_write") => {
            let log = AuditLog::open(config(dir)).unwrap();
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let start = |i: u32| {
                let run = Run::new(format!("first-write-{nanos}-{i}"), "skill-0");
                log.start_run(&run).unwrap();
            };
            for i in 0..5 {
                let started = Instant::now();
                start(i);
                println!("start_run {i} after open: {:.1?}", started.elapsed());
            }
            let started = Instant::now();
            (5..10_005).for_each(start);
            println!("the next 10 000: {:.2?} each", started.elapsed() / 10_000);
            return;
        }
        Some("warm") => {
            let opened = Instant::now();
            let log = AuditLog::open(config(dir)).unwrap();
            let open = opened.elapsed();
            while log.is_warming() {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            println!("open {open:.1?}; warm {:.1?} after open", opened.elapsed());
            return;
        }
        Some("get_run") => {
            let opened = Instant::now();
            let log = AuditLog::open(config(dir)).unwrap();
            get_run_percentiles(&log, n_runs, " (opened with the checkpoint, cold maps)");
            println!("still warming: {}", log.is_warming());
            get_run_percentiles(&log, n_runs, " (the same again)");
            while log.is_warming() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            println!("warm {:.0?} after open", opened.elapsed());
            return;
        }
        _ => {}
    }
    println!(
        "segments: {log_bytes} bytes; checkpoint: {} bytes",
        std::fs::metadata(&ckpt).map_or(0, |m| m.len())
    );
    let cpu = cpu_ns();
    let started = Instant::now();
    let report = AuditLog::verify(&config(dir)).unwrap();
    let elapsed = started.elapsed();
    println!(
        "verify (every frame's checksum, no decoding): {elapsed:.1?} wall, {:.1}ms cpu = {:.2} s/GB wall ({} frames)",
        (cpu_ns() - cpu) as f64 / 1e6,
        elapsed.as_secs_f64() / (log_bytes as f64 / 1e9),
        report.n_frames
    );
    let cpu = cpu_ns();
    let started = Instant::now();
    let loaded = auditlog::index::checkpoint::load(&auditlog::vfs::OsVfs, dir);
    println!(
        "checkpoint load alone: {:.1?} wall, {:.1}ms cpu (usable: {})",
        started.elapsed(),
        (cpu_ns() - cpu) as f64 / 1e6,
        matches!(loaded, Ok(Some(_)))
    );
    drop(loaded);
    for _ in 0..3 {
        open_once(dir, "open with checkpoint", log_bytes);
    }
    for _ in 0..3 {
        // Close writes the checkpoint again, so the store can be reused.
        std::fs::remove_file(&ckpt).unwrap();
        open_once(dir, "open without checkpoint", log_bytes);
    }
}
