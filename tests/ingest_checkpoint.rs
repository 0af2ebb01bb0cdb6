//! While a recorder runs, its committer writes the log's periodic index checkpoint and
//! keeps taking records off the queue between the checkpoint's chunks: producers find
//! room while it is written (it can take longer than the ring holds), and nothing they
//! record meanwhile is dropped, lost or reordered.

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use auditlog::index::checkpoint::CHECKPOINT_TMP_FILE_NAME;
use auditlog::ingest::EventRef;
use auditlog::model::{Run, Timestamp};
use auditlog::vfs::{FaultPlan, FaultyVfs, OsVfs, WriteHook};
use auditlog::{AuditLog, Config, Durability, IngestConfig, Record, Recorder, Storage};

/// Records appended before the recorder starts: one short of a periodic checkpoint, and
/// runs enough for a checkpoint of several 1 MiB chunks.
const CHECKPOINT_EVERY: u64 = 40_000;
/// Events recorded while the committer is held before each chunk.
const PER_CHUNK: u64 = 50;

fn event(sequence: u64) -> EventRef<'static> {
    EventRef {
        run_id: "run-0",
        sequence,
        event_type: "step",
        fields: &[],
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
    }
}

#[test]
fn producers_find_room_while_the_committer_writes_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let config = Config::new(dir.path())
        .durability(Durability::None)
        .vfs(Arc::new(FaultyVfs::new(OsVfs, Arc::clone(&plan))))
        .checkpoint_every_records(CHECKPOINT_EVERY);
    let log = Arc::new(AuditLog::open(config).unwrap());
    let runs: Vec<Record> = (0..CHECKPOINT_EVERY - 1)
        .map(|i| Record::RunStarted(Run::new(format!("run-{i}"), format!("skill-{}", i % 7))))
        .collect();
    for batch in runs.chunks(1000) {
        log.append_batch(batch).unwrap();
    }
    assert!(!dir.path().join("index.ckpt").exists(), "no checkpoint yet");

    // Started before the channels below, so that a failed assertion drops them first
    // and a held committer is let go before the recorder waits for it.
    let recorder = Recorder::start(Arc::clone(&log), IngestConfig::default()).unwrap();
    // Each write of the checkpoint's body is announced and held until the test lets it
    // go; the header, written last at offset 0, is only announced.
    let (write_tx, write_rx) = mpsc::channel::<u64>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let hook = move |path: &Path, offset: u64| {
        if path.file_name() == Some(CHECKPOINT_TMP_FILE_NAME.as_ref()) {
            // Once the test has failed (and dropped its ends), let the writer go on.
            let _ = write_tx.send(offset);
            if offset != 0 {
                let _ = go_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
            }
        }
    };
    *plan.before_write.lock().unwrap() = Some(WriteHook(Arc::new(hook)));

    // The record that makes the checkpoint due.
    assert!(recorder.record_event(&event(1)).is_accepted());
    let mut next_sequence = 2;
    let mut n_chunks = 0;
    loop {
        let offset = write_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the committer writes a checkpoint");
        if offset == 0 {
            break;
        }
        // The committer is held before this chunk (with the log's lock): what was
        // recorded while it was held before the last one has been taken off since.
        assert_eq!(
            recorder.queue_len(),
            0,
            "chunk {n_chunks}: the queue was not drained between chunks"
        );
        for _ in 0..PER_CHUNK {
            assert!(recorder.record_event(&event(next_sequence)).is_accepted());
            next_sequence += 1;
        }
        n_chunks += 1;
        go_tx.send(()).unwrap();
    }
    assert!(n_chunks >= 3, "a checkpoint of {n_chunks} chunks");
    *plan.before_write.lock().unwrap() = None;

    recorder.flush().unwrap();
    let metrics = recorder.metrics();
    assert_eq!(metrics.dropped.total(), 0);
    assert_eq!(metrics.written, next_sequence - 1);
    assert_eq!(log.checkpoint_error(), None);
    assert!(dir.path().join("index.ckpt").exists());
    let sequences: Vec<u64> = (log.list_logs_by_run("run-0").unwrap().iter())
        .map(|e| e.sequence)
        .collect();
    assert_eq!(sequences, (1..next_sequence).collect::<Vec<_>>());
    recorder.close(Duration::from_secs(10));
}
