//! `auditlog tail -f` end to end: the real binary follows a store that a handle in this
//! process holds open (and locked) and prints each new record as one JSON line as it is
//! written, filtered with `--run`; on a store nobody has open it prints the newest
//! records, then what a writer that opens the store later appends.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use auditlog::model::{Run, RunEvent, Timestamp};
use auditlog::{AuditLog, Config, Storage};

const WAIT: Duration = Duration::from_secs(20);

/// `auditlog tail -f --json ...` on `dir`, with its stdout lines sent to a channel.
struct Tail {
    child: Child,
    lines: Receiver<serde_json::Value>,
}

impl Tail {
    fn start(dir: &Path, extra: &[&str]) -> Tail {
        let mut child = Command::new(env!("CARGO_BIN_EXE_auditlog"))
            .args(["tail", "-f", "--json", "--poll-ms", "5", "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the auditlog binary runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).expect("one JSON object per line");
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Tail { child, lines }
    }

    /// The next `n` lines, each within a bounded wait.
    fn next(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + WAIT;
        (0..n)
            .map(|i| {
                let left = deadline.saturating_duration_since(Instant::now());
                self.lines
                    .recv_timeout(left)
                    .unwrap_or_else(|e| panic!("line {i} of {n} did not come: {e}"))
            })
            .collect()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(run_id: &str, sequence: u64) -> RunEvent {
    RunEvent {
        run_id: run_id.into(),
        sequence,
        event_type: "step".into(),
        created_at: Timestamp::now(),
        ..RunEvent::default()
    }
}

#[test]
fn tail_follow_prints_records_a_locked_store_is_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = AuditLog::open(Config::new(&store)).unwrap();
    log.start_run(&Run::new("before", "s")).unwrap();
    log.flush().unwrap();

    // The newest record first: once it is printed, the tail has had its first look.
    let all = Tail::start(&store, &["-n", "1"]);
    assert_eq!(all.next(1)[0]["id"], "before");
    // However far the writes below are when it first looks, the run's newest ten and
    // then every new one make the same four lines.
    let one_run = Tail::start(&store, &["-n", "10", "--run", "r1"]);

    log.start_run(&Run::new("r1", "s")).unwrap();
    log.start_run(&Run::new("r2", "s")).unwrap();
    for sequence in 1..=3 {
        log.append_log(&event("r1", sequence)).unwrap();
        log.append_log(&event("r2", sequence)).unwrap();
    }
    log.flush().unwrap();

    let lines = all.next(8);
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r1", "r2", "r1", "r2", "r1", "r2", "r1", "r2"]);
    assert_eq!(lines[0]["kind"], "run_started");
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["lsn"].as_u64() < w[1]["lsn"].as_u64())
    );

    let lines = one_run.next(4);
    assert!(lines.iter().all(|l| l["id"] == "r1"), "{lines:?}");
    assert_eq!(
        lines[3]["what"].as_str().unwrap().split(' ').next(),
        Some("#3")
    );
    log.close().unwrap();
}

#[test]
fn tail_follow_works_without_a_writer_and_picks_up_a_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = AuditLog::open(Config::new(&store)).unwrap();
    log.start_run(&Run::new("r1", "s")).unwrap();
    for sequence in 1..=5 {
        log.append_log(&event("r1", sequence)).unwrap();
    }
    log.close().unwrap();

    let tail = Tail::start(&store, &["-n", "2"]);
    let newest = tail.next(2);
    assert_eq!(
        newest[0]["what"].as_str().unwrap().split(' ').next(),
        Some("#4")
    );
    assert_eq!(
        newest[1]["what"].as_str().unwrap().split(' ').next(),
        Some("#5")
    );

    let log = AuditLog::open(Config::new(&store)).unwrap();
    log.append_log(&event("r1", 6)).unwrap();
    log.flush().unwrap();
    let later = tail.next(1);
    assert_eq!(
        later[0]["what"].as_str().unwrap().split(' ').next(),
        Some("#6")
    );
    log.close().unwrap();
    assert!(cli_support::auditlog(&["tail", "--help"]).status.success());
}
