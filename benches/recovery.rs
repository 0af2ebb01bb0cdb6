//! Recovery benchmark: how fast `AuditLog::open` scans and verifies a store.
//!
//! A store of about 256 MiB of 200-byte run events is built once, outside the
//! measurement, and closed cleanly. Each iteration then opens it (every frame of every
//! segment is checksummed and its position checked, the last segment is sealed and a
//! fresh preallocated segment is created) and closes it (which removes that empty
//! segment again, so every iteration sees the same store). It runs twice: with the
//! segments in the page cache, and with them evicted from it before each open.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use auditlog::{AuditLog, Config, Durability};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

use common::{BATCH_RECORDS, bench_dir, event_record, payload_bytes, segment_bytes};

/// How much record data the store holds.
const STORE_BYTES: u64 = 256 << 20;
/// Opens timed for the one-line summary.
const SUMMARY_OPENS: usize = 5;

/// Appends batches of run events until `STORE_BYTES` of frames are written, then
/// closes the store. Returns the number of records.
fn build_store(dir: &Path) -> u64 {
    let log =
        AuditLog::open(Config::new(dir).durability(Durability::None)).expect("open a fresh store");
    let mut n_records = 0u64;
    while log.journal_stats().expect("journal stats").bytes_appended < STORE_BYTES {
        let batch: Vec<_> = (n_records + 1..=n_records + BATCH_RECORDS as u64)
            .map(event_record)
            .collect();
        log.append_batch(&batch).expect("append a batch");
        n_records += BATCH_RECORDS as u64;
    }
    log.flush().expect("flush the store");
    log.close().expect("close the store");
    n_records
}

/// The config of every timed open: verify every frame, even below the coverage of the
/// index checkpoint the clean close wrote (which a default open trusts).
fn verifying(dir: &Path) -> Config {
    Config::new(dir).verify_all_at_open(true)
}

fn open_close(dir: &Path) {
    let log = AuditLog::open(verifying(dir)).expect("open the store");
    log.close().expect("close the store");
}

/// Drops the clean pages of every segment file from the page cache, so the next open
/// reads them from the disk.
#[cfg(target_os = "linux")]
fn evict_from_page_cache(dir: &Path) {
    use std::ffi::c_int;
    use std::os::fd::AsRawFd;

    // `off_t` is 64 bits wide on every 64-bit Linux target.
    const _: () = assert!(size_of::<usize>() == 8);
    const POSIX_FADV_DONTNEED: c_int = 4;
    unsafe extern "C" {
        fn posix_fadvise(fd: c_int, offset: i64, len: i64, advice: c_int) -> c_int;
    }

    for entry in std::fs::read_dir(dir).expect("list the store directory") {
        let path = entry.expect("read a directory entry").path();
        if path.extension().is_none_or(|e| e != "seg") {
            continue;
        }
        let file = std::fs::File::open(&path).expect("open a segment");
        let fd = file.as_raw_fd();
        debug_assert!(fd >= 0);
        // SAFETY: `fd` belongs to `file`, which is open for the whole call;
        // posix_fadvise only reads its arguments and gives advice about the file's
        // cached pages, it touches no memory of this process.
        let rc = unsafe { posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise({}) failed with {rc}", path.display());
    }
}

fn recovery(c: &mut Criterion) {
    let dir = bench_dir("recovery");
    let n_records = build_store(dir.path());
    let (n_segments, store_bytes) = segment_bytes(dir.path());

    // Check once that the store opens clean, with every record, before timing it.
    let log = AuditLog::open(verifying(dir.path())).expect("open the store");
    let report = log.recovery_report().clone();
    log.close().expect("close the store");
    assert!(
        report.is_clean(),
        "damage in a cleanly closed store: {report:?}"
    );
    assert_eq!(
        report.torn_tail, None,
        "a torn tail in a cleanly closed store"
    );
    assert_eq!(report.n_frames, n_records);
    assert_eq!(segment_bytes(dir.path()), (n_segments, store_bytes));
    // Payloads grow by a few bytes as the sequence numbers in them do.
    println!(
        "recovery: store of {n_records} records (payload {} bytes for the first, {:.2} \
         bytes per frame on average), {} frame bytes verified, {n_segments} segment \
         files, {store_bytes} segment bytes",
        payload_bytes(&event_record(1)),
        report.bytes_verified as f64 / n_records as f64,
        report.bytes_verified
    );

    let mut opens: Vec<Duration> = (0..SUMMARY_OPENS)
        .map(|_| {
            let started = Instant::now();
            let log = AuditLog::open(verifying(dir.path())).expect("open the store");
            let elapsed = started.elapsed();
            log.close().expect("close the store");
            elapsed
        })
        .collect();
    println!("recovery: {SUMMARY_OPENS} timed opens (warm page cache): {opens:?}");
    opens.sort();
    let median = opens[SUMMARY_OPENS / 2];
    println!("recovery: median of {SUMMARY_OPENS} opens: {median:?}");
    println!(
        "recovery: {:.3} GB/s ({} frames, {store_bytes} bytes)",
        store_bytes as f64 / median.as_secs_f64() / 1e9,
        report.n_frames,
    );

    let mut group = c.benchmark_group("recovery");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(store_bytes));
    group.bench_function("open_close_warm_cache", |b| {
        b.iter(|| open_close(dir.path()));
    });
    #[cfg(target_os = "linux")]
    group.bench_function("open_close_cold_cache", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                evict_from_page_cache(dir.path());
                let started = Instant::now();
                open_close(dir.path());
                elapsed += started.elapsed();
            }
            elapsed
        });
    });
    group.finish();
    assert_eq!(
        segment_bytes(dir.path()),
        (n_segments, store_bytes),
        "opening and closing changed the store"
    );
}

criterion_group!(benches, recovery);
criterion_main!(benches);
