//! Helpers shared by the integration tests: record builders and crash images.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use auditlog::model::{Payload, RunEvent, Timestamp};
use auditlog::{AuditLog, Config, Durability, Lsn, Record};

/// Small segments so tests roll often; records up to 4 KiB.
pub fn small_config(dir: &Path) -> Config {
    Config::new(dir)
        .segment_bytes(16 << 10)
        .record_bytes_max(4 << 10)
        .durability(Durability::None)
}

/// A closed store of 400 events over at least three segments of [`small_config`]:
/// the records, their LSNs and the segment files.
pub fn rolled_store(dir: &Path) -> (Vec<Record>, Vec<Lsn>, Vec<PathBuf>) {
    let records = events(400);
    let log = AuditLog::open(small_config(dir)).unwrap();
    let lsns = log.append_batch(&records).unwrap();
    log.close().unwrap();
    let segments = segment_files(dir);
    assert!(segments.len() >= 3, "the workload rolled segments");
    (records, lsns, segments)
}

/// An event record of run `run_id` whose payload carries `text`.
pub fn event(run_id: &str, sequence: u64, text: &str) -> Record {
    let mut payload = Payload::new();
    payload.insert("text".into(), text.into());
    Record::EventAppended(RunEvent {
        run_id: run_id.into(),
        sequence,
        event_type: "step".into(),
        payload,
        created_at: Timestamp::from_unix_millis(1_700_000_000_000 + sequence as i64),
    })
}

/// `n` distinct event records.
pub fn events(n: u64) -> Vec<Record> {
    (1..=n)
        .map(|seq| {
            event(
                "run-a",
                seq,
                &format!("step {seq} {}", "x".repeat((seq % 7) as usize * 10)),
            )
        })
        .collect()
}

/// Every record in the log with its LSN.
pub fn all_records(log: &AuditLog) -> Vec<(Lsn, Record)> {
    log.records_from(Lsn(0)).expect("records readable")
}

/// The segment files of a store, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Copies the segment files of a live store into `to`: what a crash would leave if
/// the page cache reached the disk as it is now.
pub fn crash_image(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for file in segment_files(from) {
        fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
    }
}

/// The file offset of the frame at `lsn` in the segment whose name is its base LSN.
pub fn frame_offset(segment: &Path, lsn: Lsn) -> u64 {
    let base: u64 = segment
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    auditlog::limits::SEGMENT_HEADER_BYTES + (lsn.0 - base)
}

/// A run started at `1_700_000_000_000 + i` ms, with id `run-{i}`.
pub fn numbered_run(i: u64) -> auditlog::model::Run {
    auditlog::model::Run {
        id: format!("run-{i}"),
        skill_id: format!("skill-{}", i % 3),
        caller_id: "caller".into(),
        started_at: Timestamp::from_unix_millis(1_700_000_000_000 + i as i64),
        ..auditlog::model::Run::default()
    }
}

/// The instant before which runs `0..n` of [`numbered_run`] started.
pub fn before_run(n: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + n as i64)
}

/// Starts runs `range` through the Storage API, each with `n_events` events of about
/// `text_len` bytes, and finishes every other one.
pub fn record_runs(log: &AuditLog, range: std::ops::Range<u64>, n_events: u64, text_len: usize) {
    use auditlog::Storage;
    use auditlog::model::{RunStats, Status};
    for i in range {
        let run = numbered_run(i);
        log.start_run(&run).unwrap();
        for seq in 1..=n_events {
            let Record::EventAppended(event) = event(&run.id, seq, &"e".repeat(text_len)) else {
                unreachable!()
            };
            log.append_log(&event).unwrap();
        }
        if i % 2 == 0 {
            let stats = RunStats {
                status: Status::Ok,
                ..RunStats::default()
            };
            log.finish_run_at(
                &run.id,
                &stats,
                Timestamp::from_unix_millis(1_800_000_000_000),
            )
            .unwrap();
        }
    }
}

/// The run id a record belongs to, if it belongs to a run.
pub fn run_id_of(record: &Record) -> Option<&str> {
    match record {
        Record::RunStarted(run) => Some(&run.id),
        Record::RunFinished(finish) => Some(&finish.run_id),
        Record::EventAppended(event) => Some(&event.run_id),
        _ => None,
    }
}

/// Bytes of every segment file in a store on the real file system.
pub fn segment_bytes_on_disk(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

/// Flips the bits of `mask` in the byte at `offset` of a file, in place.
pub fn flip_bits(path: &Path, offset: u64, mask: u8) {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ mask], offset).unwrap();
}
