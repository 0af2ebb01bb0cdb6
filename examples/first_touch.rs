//! What a query's first read of a sealed segment costs, without the engine: 100 000
//! reads of 300 bytes at random offsets of a store's segments, each timed, through
//! fresh read-only maps of the files (the first touch of a page takes a page fault) or
//! with a positioned read (`pread`, no map).
//!
//! `cargo run --release --example first_touch -- <store dir>
//! map|pread|mapped|populated` prints the p50, p99 and max; `mapped` reads the same
//! offsets through the maps twice and times the second pass, when every page read is
//! mapped; `populated` faults every page of the maps in first (`MADV_POPULATE_READ`,
//! as the engine's warmer does) and times one pass. Run each mode in its own
//! process, so the maps are fresh; read the files once first (`cat <dir>/*.seg >
//! /dev/null`) so every mode finds them in the page cache.

use std::os::unix::fs::FileExt;
use std::time::Instant;

const READS: usize = 100_000;
const READ_BYTES: usize = 300;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: first_touch <store dir> map|pread|mapped|populated");
        std::process::exit(2);
    };
    let mut files: Vec<(std::fs::File, u64)> = std::fs::read_dir(dir)
        .expect("read the store directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .map(|path| {
            let file = std::fs::File::open(&path).expect("open a segment");
            let len = file.metadata().expect("a segment's size").len();
            (file, len)
        })
        .filter(|&(_, len)| len > 2 * READ_BYTES as u64)
        .collect();
    files.sort_by_key(|&(_, len)| len);
    assert!(!files.is_empty(), "no segments in {dir}");
    let maps: Vec<memmap2::Mmap> = files
        .iter()
        // SAFETY: the store is not written while this runs, and the maps are only read.
        .map(|(file, _)| unsafe { memmap2::Mmap::map(file) }.expect("map a segment"))
        .collect();
    if mode == "populated" {
        for map in &maps {
            map.advise(memmap2::Advice::PopulateRead)
                .expect("MADV_POPULATE_READ");
        }
    }
    let passes = if mode == "mapped" { 2 } else { 1 };
    let mut buf = [0u8; READ_BYTES];
    let mut checksum = 0u64;
    let mut samples = Vec::with_capacity(READS);
    for _ in 0..passes {
        samples.clear();
        let mut x = 12345u64;
        for _ in 0..READS {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) as usize % files.len();
            let offset = (x >> 7) % (files[i].1 - READ_BYTES as u64);
            let started = Instant::now();
            match mode.as_str() {
                "pread" => {
                    files[i].0.read_exact_at(&mut buf, offset).expect("pread");
                    checksum += u64::from(buf[0]) + u64::from(buf[READ_BYTES - 1]);
                }
                "map" | "mapped" | "populated" => {
                    let bytes = &maps[i][offset as usize..offset as usize + READ_BYTES];
                    checksum += u64::from(bytes[0]) + u64::from(bytes[READ_BYTES - 1]);
                }
                other => {
                    eprintln!("unknown mode `{other}`: map, pread, mapped or populated");
                    std::process::exit(2);
                }
            }
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    println!(
        "{mode}: {READS} reads of {READ_BYTES} bytes over {} segments: p50 {:?}, p99 {:?}, max {:?} (checksum {checksum})",
        files.len(),
        samples[READS / 2],
        samples[READS * 99 / 100],
        samples[READS - 1]
    );
}
