//! Append benchmarks.
//!
//! `append_mechanism` decides how the active segment is written: a positioned write
//! (`pwrite`) of an encoded batch, or a copy into a shared writable map of the
//! preallocated file, each with and without making the batch durable (`fdatasync` or
//! `msync` of the written range). Every file is a fresh preallocated 64 MiB segment, as
//! in the engine, so writes always land in allocated but never written space.
//!
//! `append_api` measures `AuditLog::append_batch` of 1000 run events of about 200 bytes
//! under each durability mode, as a program uses it: no extra flush, segment rolls
//! included. Outside criterion it prints, per mode, the quantiles of single-batch times,
//! the fsyncs and segments the journal counted, and the bytes left on disk.

mod common;

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditlog::limits::{SEGMENT_BYTES_DEFAULT, SEGMENT_HEADER_BYTES};
use auditlog::{AuditLog, Config, Durability};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memmap2::{MmapMut, MmapOptions};

use common::{BATCH_RECORDS, bench_dir, event_record, payload_bytes, segment_bytes};

/// Bytes of one encoded frame in the mechanism benchmark: a 200-byte payload and the
/// 20-byte frame header.
const FRAME_BYTES: usize = 220;
const BATCH_BYTES: usize = FRAME_BYTES * BATCH_RECORDS;
const FILE_BYTES: u64 = SEGMENT_BYTES_DEFAULT;

const _: () = assert!(SEGMENT_HEADER_BYTES + BATCH_BYTES as u64 <= FILE_BYTES);

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Mechanism {
    Pwrite,
    Mmap,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum SyncMode {
    /// Leave the batch in the page cache.
    No,
    /// `File::sync_data` for pwrite, `MmapMut::flush_range` (msync) for the map.
    AfterEachBatch,
}

/// One preallocated segment-sized file being filled batch after batch.
struct Target {
    dir: PathBuf,
    mechanism: Mechanism,
    n_files: u64,
    path: PathBuf,
    file: File,
    map: Option<MmapMut>,
    /// Where the next batch goes.
    offset: u64,
}

impl Target {
    fn new(dir: &Path, mechanism: Mechanism) -> Target {
        let (path, file, map) = Target::create(dir, mechanism, 0);
        Target {
            dir: dir.to_path_buf(),
            mechanism,
            n_files: 1,
            path,
            file,
            map,
            offset: SEGMENT_HEADER_BYTES,
        }
    }

    /// Creates, preallocates and syncs a file, so neither the allocation nor its
    /// metadata is paid for inside a measured batch.
    fn create(dir: &Path, mechanism: Mechanism, n: u64) -> (PathBuf, File, Option<MmapMut>) {
        let path = dir.join(format!("{n:020}.seg"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create the segment file");
        fs4::FileExt::allocate(&file, FILE_BYTES).expect("preallocate the segment file");
        file.sync_all().expect("sync the preallocated file");
        let map = match mechanism {
            Mechanism::Pwrite => None,
            Mechanism::Mmap => {
                debug_assert_eq!(file.metadata().expect("stat").len(), FILE_BYTES);
                // SAFETY: the file was just created with `create_new` in a directory
                // private to this benchmark and preallocated to FILE_BYTES; nothing
                // truncates it or writes it through another handle while the map
                // lives (the map is dropped before the file is removed).
                let map = unsafe {
                    MmapOptions::new()
                        .len(FILE_BYTES as usize)
                        .map_mut(&file)
                        .expect("map the segment file")
                };
                Some(map)
            }
        };
        (path, file, map)
    }

    /// The offset of the next batch, starting a new file (outside the measured time)
    /// when this one is full: a batch is never written over bytes written before.
    fn next_offset(&mut self) -> u64 {
        if self.offset + BATCH_BYTES as u64 > FILE_BYTES {
            let (path, file, map) = Target::create(&self.dir, self.mechanism, self.n_files);
            self.n_files += 1;
            drop(self.map.take());
            let old = std::mem::replace(&mut self.path, path);
            self.file = file;
            self.map = map;
            std::fs::remove_file(old).expect("remove a full segment file");
            self.offset = SEGMENT_HEADER_BYTES;
        }
        let offset = self.offset;
        self.offset += BATCH_BYTES as u64;
        offset
    }

    /// Writes `batch` at `offset` with the mechanism, then syncs as asked.
    fn write_batch(&mut self, batch: &[u8], offset: u64, sync: SyncMode) {
        debug_assert!(offset + batch.len() as u64 <= FILE_BYTES);
        match &mut self.map {
            None => {
                self.file
                    .write_all_at(batch, offset)
                    .expect("pwrite a batch");
                if sync == SyncMode::AfterEachBatch {
                    self.file.sync_data().expect("fdatasync a batch");
                }
            }
            Some(map) => {
                let at = offset as usize;
                map[at..at + batch.len()].copy_from_slice(batch);
                if sync == SyncMode::AfterEachBatch {
                    map.flush_range(at, batch.len()).expect("msync a batch");
                }
            }
        }
    }
}

/// 1000 encoded 220-byte frames. The bytes are not zero, like real frames, and differ
/// between frames so nothing along the way can deduplicate them.
fn encoded_batch() -> Vec<u8> {
    let mut batch = vec![0u8; BATCH_BYTES];
    for (frame_idx, frame) in batch.chunks_exact_mut(FRAME_BYTES).enumerate() {
        for (byte_idx, byte) in frame.iter_mut().enumerate() {
            *byte = (frame_idx.wrapping_mul(31) ^ byte_idx.wrapping_mul(7)) as u8 | 1;
        }
    }
    batch
}

fn append_mechanism(c: &mut Criterion) {
    let dir = bench_dir("append-mechanism");
    let batch = encoded_batch();
    let mut group = c.benchmark_group("append_mechanism");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(BATCH_BYTES as u64));
    let cases = [
        ("pwrite", Mechanism::Pwrite, SyncMode::No),
        ("mmap_memcpy", Mechanism::Mmap, SyncMode::No),
        (
            "pwrite_fdatasync",
            Mechanism::Pwrite,
            SyncMode::AfterEachBatch,
        ),
        (
            "mmap_memcpy_msync",
            Mechanism::Mmap,
            SyncMode::AfterEachBatch,
        ),
    ];
    for (name, mechanism, sync) in cases {
        let case_dir = dir.path().join(name);
        std::fs::create_dir(&case_dir).expect("create a case directory");
        let mut target = Target::new(&case_dir, mechanism);
        let mut n_batches = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let offset = target.next_offset();
                    let started = Instant::now();
                    target.write_batch(black_box(&batch), offset, sync);
                    elapsed += started.elapsed();
                }
                n_batches += iters;
                elapsed
            });
        });
        println!(
            "append_mechanism/{name}: {n_batches} batches of {BATCH_BYTES} bytes into {} files",
            target.n_files
        );
    }
    group.finish();
}

fn append_api(c: &mut Criterion) {
    let records: Vec<_> = (1..=BATCH_RECORDS as u64).map(event_record).collect();
    let payload_min = records.iter().map(payload_bytes).min().expect("a batch");
    let payload_max = records.iter().map(payload_bytes).max().expect("a batch");
    let mut group = c.benchmark_group("append_api");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(BATCH_RECORDS as u64));
    let cases = [
        ("none", Durability::None),
        (
            "group_commit_2ms",
            Durability::GroupCommit { interval_ms: 2 },
        ),
        ("every_batch", Durability::EveryBatch),
    ];
    for (name, durability) in cases {
        let dir = bench_dir(&format!("append-api-{name}"));
        let log = AuditLog::open(Config::new(dir.path()).durability(durability))
            .expect("open a fresh store");
        // Every batch's own time, warm-up included, to show the spread criterion's mean
        // hides: a segment roll syncs inside the append that triggers it.
        let mut latencies: Vec<Duration> = Vec::new();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let lsns = log
                        .append_batch(black_box(&records))
                        .expect("append a batch");
                    let took = started.elapsed();
                    black_box(lsns);
                    elapsed += took;
                    latencies.push(took);
                }
                elapsed
            });
        });
        let n_batches = latencies.len() as u64;
        latencies.sort();
        let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        let stats = log.journal_stats().expect("journal stats");
        println!(
            "append_api/{name}: {n_batches} batches of {BATCH_RECORDS} records, \
             payload {payload_min}..={payload_max} bytes, {} frame bytes per batch, \
             {} fsyncs, {} segments",
            stats.bytes_appended / n_batches,
            stats.n_fsyncs,
            stats.n_segments,
        );
        println!(
            "append_api/{name}: per batch p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
            quantile(0.5),
            quantile(0.99),
            quantile(0.999),
            latencies[latencies.len() - 1],
        );
        log.close().expect("close the store");
        let (n_segments, bytes) = segment_bytes(dir.path());
        println!("append_api/{name}: closed with {n_segments} segment files, {bytes} bytes");
    }
    group.finish();
}

criterion_group!(benches, append_mechanism, append_api);
criterion_main!(benches);
