//! Real `kill -9`: a child process records with `Durability::EveryBatch` and reports
//! every acknowledged batch over a pipe; the parent kills it at random moments (during
//! open and recovery too), reopens the store and checks that every acknowledged record
//! is there (I1), that records come back in order with no hole (I3), and that anything
//! lost is a suffix of unacknowledged records (I4).
//!
//! `AUDITLOG_KILL9_CYCLES` sets the number of cycles (default 200).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auditlog::{AuditLog, Config, Durability, Lsn, Record};

const CHILD_DIR_ENV: &str = "AUDITLOG_KILL9_CHILD_DIR";

fn config(dir: &Path) -> Config {
    Config::new(dir)
        .segment_bytes(64 << 10)
        .record_bytes_max(4 << 10)
        .durability(Durability::EveryBatch)
}

/// The sequence numbers in the store, in log order.
fn sequences(log: &AuditLog) -> Vec<u64> {
    log.records_from(Lsn(0))
        .unwrap()
        .into_iter()
        .map(|(_, record)| match record {
            Record::EventAppended(event) => event.sequence,
            other => panic!("unexpected record {other:?}"),
        })
        .collect()
}

/// The child: appends batches forever (well, ten seconds at most), printing the last
/// sequence number of every batch once `append_batch` returned.
#[test]
fn kill9_child_process() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return; // Only does something when spawned by the parent test.
    };
    let log = AuditLog::open(config(Path::new(&dir))).expect("child open");
    let mut next = sequences(&log).last().copied().unwrap_or(0) + 1;
    let stdout = std::io::stdout();
    let stop = Instant::now() + Duration::from_secs(10);
    while Instant::now() < stop {
        let n = 1 + next % 5;
        let batch: Vec<Record> = (next..next + n)
            .map(|seq| common::event("kill9", seq, &"k".repeat((seq % 50) as usize)))
            .collect();
        log.append_batch(&batch).expect("child append");
        next += n;
        let mut out = stdout.lock();
        writeln!(out, "ack {}", next - 1).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let cycles: u64 = std::env::var("AUDITLOG_KILL9_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut max_acked = 0u64;
    let mut n_cycles_with_acks = 0;
    for cycle in 0..cycles {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill9_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let acked_before = max_acked;
        let note_ack = |line: &str, max_acked: &mut u64| {
            if let Some(seq) = line.trim_end().strip_prefix("ack ") {
                *max_acked = (*max_acked).max(seq.parse().unwrap());
            }
        };
        if cycle % 2 == 0 {
            // Anywhere from before the child opened the store to into its writing.
            std::thread::sleep(Duration::from_micros(rng % 40_000));
        } else {
            // Mid-write: after its first acknowledgement.
            let mut line = String::new();
            while stdout.read_line(&mut line).unwrap_or(0) > 0 && !line.starts_with("ack ") {
                line.clear();
            }
            note_ack(&line, &mut max_acked);
            std::thread::sleep(Duration::from_micros(rng % 10_000));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Every line the child printed before it died was an acknowledgement.
        for line in stdout.lines().map_while(Result::ok) {
            note_ack(&line, &mut max_acked);
        }
        if max_acked > acked_before {
            n_cycles_with_acks += 1;
        }

        let log = AuditLog::open(config(dir.path()))
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        let got = sequences(&log);
        let expected: Vec<u64> = (1..=got.len() as u64).collect();
        assert_eq!(
            got, expected,
            "cycle {cycle}: records in order with no hole"
        );
        assert!(
            got.len() as u64 >= max_acked,
            "cycle {cycle}: {max_acked} acknowledged but only {} back",
            got.len()
        );
        max_acked = got.len() as u64;
    }
    assert!(
        n_cycles_with_acks >= cycles / 2,
        "the child wrote in only {n_cycles_with_acks} of {cycles} cycles"
    );
    eprintln!(
        "kill -9: {cycles} cycles, {n_cycles_with_acks} with acknowledged writes, {max_acked} records, 0 violations"
    );
}
