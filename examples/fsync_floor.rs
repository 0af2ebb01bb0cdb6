//! Measures the floor under durable ingest on this machine: one `fdatasync` after
//! writing a durable batch's bytes into a preallocated file, as the journal does.
//!
//! Run: `cargo run --release --example fsync_floor -- [batch_bytes] [samples]`
//! (default 150 000 bytes, about 1000 call events framed, and 200 samples). The file is
//! created in `$AUDITLOG_BENCH_DIR` or the system temporary directory.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().map_or(150_000, |s| s.parse().expect("bytes"));
    let samples: usize = args.next().map_or(200, |s| s.parse().expect("samples"));
    let parent = std::env::var_os("AUDITLOG_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(parent).expect("temporary directory");
    let path = dir.path().join("segment");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create the file");
    let size = (batch * samples) as u64;
    fs4::FileExt::allocate(&file, size).expect("preallocate");
    file.sync_all().expect("sync the preallocation");
    let bytes: Vec<u8> = (0..batch).map(|i| (i * 31 + 7) as u8).collect();
    let mut took: Vec<Duration> = Vec::with_capacity(samples);
    for i in 0..samples {
        file.seek(SeekFrom::Start((i * batch) as u64))
            .expect("seek");
        file.write_all(&bytes).expect("write");
        let started = Instant::now();
        file.sync_data().expect("fdatasync");
        took.push(started.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((samples - 1) as f64 * q) as usize];
    println!(
        "fdatasync after writing {batch} bytes into a preallocated file ({samples} samples): \
         min {:?}, p50 {:?}, p90 {:?}, max {:?}",
        took[0],
        at(0.5),
        at(0.9),
        took[samples - 1]
    );
}
