//! Events of one run recorded from four threads at once are stored in sequence order:
//! the threads share the run's sequence counter, so they enqueue out of order, and the
//! committer's hold-back restores the order. Read back in log order, each run's events
//! are exactly 1, 2, 3, … with none missing. A run started on one thread and finished
//! on another is finished, whichever shard the committer reads first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auditlog::ingest::{Backpressure, EventRef, FieldValue, RunRef};
use auditlog::model::{RunStats, Status, Timestamp};
use auditlog::{
    AuditLog, Config, Durability, IngestConfig, Lsn, Record, Recorded, Recorder, Storage,
};

#[test]
fn one_runs_events_from_four_producers_are_stored_in_sequence_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    // Blocking, so nothing is dropped; a window long enough that no preemption of a
    // producer between taking a sequence and recording it can outlast it.
    let config = IngestConfig::default()
        .queue_bytes(64 << 10)
        .backpressure(Backpressure::Block)
        .reorder_window(Duration::from_secs(60));
    let recorder = Recorder::start(Arc::clone(&log), config).unwrap();
    const RUNS: [&str; 2] = ["run-a", "run-b"];
    const N_PER_RUN: u64 = 20_000;
    let next_seq: [AtomicU64; 2] = [AtomicU64::new(1), AtomicU64::new(1)];
    std::thread::scope(|scope| {
        for thread_idx in 0..4 {
            let recorder = recorder.clone();
            let next_seq = &next_seq;
            scope.spawn(move || {
                loop {
                    let run_idx = thread_idx % 2;
                    let seq = next_seq[run_idx].fetch_add(1, Ordering::Relaxed);
                    if seq > N_PER_RUN {
                        break;
                    }
                    let fields = [("thread", FieldValue::U64(thread_idx as u64))];
                    let event = EventRef {
                        run_id: RUNS[run_idx],
                        sequence: seq,
                        event_type: "step",
                        fields: &fields,
                        created_at: Timestamp::from_unix_millis(seq as i64),
                    };
                    assert_eq!(recorder.record_event(&event), Recorded::Accepted);
                }
            });
        }
    });
    let report = recorder.close(Duration::from_secs(60));
    assert!(report.completed);
    assert_eq!(report.written, 2 * N_PER_RUN);
    for run_id in RUNS {
        let sequences: Vec<u64> = log
            .records_from(Lsn(0))
            .unwrap()
            .into_iter()
            .filter_map(|(_, record)| match record {
                Record::EventAppended(event) if event.run_id == run_id => Some(event.sequence),
                _ => None,
            })
            .collect();
        let expected: Vec<u64> = (1..=N_PER_RUN).collect();
        assert!(
            sequences == expected,
            "{run_id} is out of order or incomplete"
        );
    }
}

fn open_log(dir: &std::path::Path) -> Arc<AuditLog> {
    Arc::new(AuditLog::open(Config::new(dir).durability(Durability::None)).unwrap())
}

/// A recorder with two shards that blocks rather than drops, and a window no stall of
/// the test machine outlasts.
fn two_shard_recorder(log: &Arc<AuditLog>) -> Recorder {
    let config = IngestConfig::default()
        .shards(2)
        .backpressure(Backpressure::Block)
        .reorder_window(Duration::from_secs(60));
    Recorder::start(Arc::clone(log), config).unwrap()
}

fn run_ref(id: &str) -> RunRef<'_> {
    RunRef {
        id,
        skill_id: "s",
        caller_id: "c",
        channel_id: "web",
        parent_run_id: "",
        inputs: &[],
        started_at: Timestamp::from_unix_millis(1),
    }
}

fn done() -> RunStats {
    RunStats {
        status: Status::Ok,
        ..RunStats::default()
    }
}

#[test]
fn a_finish_recorded_on_another_thread_right_after_its_start_is_written() {
    // One thread starts runs and hands each to one of eight finishing threads, which
    // finish it at once. Threads are dealt to the two shards in turn, so most finishes
    // sit in another shard than their start, and the committer, taking the shards in
    // turn, often reads a finish before its start. It must hold it, not refuse it.
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let recorder = two_shard_recorder(&log);
    const RUNS: usize = 4000;
    const FINISHERS: usize = 8;
    std::thread::scope(|scope| {
        let mut hand_to = Vec::new();
        for _ in 0..FINISHERS {
            let (tx, rx) = std::sync::mpsc::channel::<String>();
            hand_to.push(tx);
            let recorder = recorder.clone();
            scope.spawn(move || {
                for id in rx {
                    let at = Timestamp::from_unix_millis(2);
                    assert_eq!(
                        recorder.record_run_finished(&id, &done(), at),
                        Recorded::Accepted
                    );
                }
            });
        }
        let recorder = recorder.clone();
        scope.spawn(move || {
            for i in 0..RUNS {
                let id = format!("run-{i}");
                assert_eq!(
                    recorder.record_run_started(&run_ref(&id)),
                    Recorded::Accepted
                );
                hand_to[i % FINISHERS].send(id).unwrap();
            }
        });
    });
    let report = recorder.close(Duration::from_secs(60));
    assert!(report.completed);
    assert_eq!(report.dropped.rejected, 0, "{:?}", report.error);
    assert_eq!(report.written, 2 * RUNS as u64);
    for i in 0..RUNS {
        let run = log.get_run(&format!("run-{i}")).unwrap();
        assert_eq!(run.status, Status::Ok);
    }
}

#[test]
fn a_finish_for_a_run_that_never_starts_is_refused_by_the_next_flush() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let recorder = two_shard_recorder(&log);
    let at = Timestamp::from_unix_millis(2);
    assert_eq!(
        recorder.record_run_finished("never-started", &done(), at),
        Recorded::Accepted
    );
    // The window is a minute: the flush, not the window, settles it.
    recorder.flush().unwrap();
    assert_eq!(recorder.metrics().dropped.rejected, 1);
    assert!(log.get_run("never-started").is_err());
    let report = recorder.close(Duration::from_secs(60));
    assert_eq!((report.written, report.unflushed), (0, 0));
}
