//! Helpers shared by the benchmarks: where their stores live and the record they append.
//!
//! Both benchmarks append the same run event, so the append and recovery numbers are
//! about the same bytes on disk.

mod dir;

use std::path::Path;

use auditlog::Record;
use auditlog::model::{Payload, RunEvent, Timestamp, Value};

pub use dir::bench_dir;

/// Records in one appended batch.
pub const BATCH_RECORDS: usize = 1000;

/// Characters of the free-text field of the benchmark event. Chosen so the msgpack
/// payload of the whole event is about 200 bytes.
const TEXT_CHARS: usize = 106;

/// A `step` event of run `run-0000000042` whose payload encodes to about 200 bytes.
pub fn event_record(sequence: u64) -> Record {
    let text: String = "the tool returned a page of results; the next step summarizes them. "
        .chars()
        .cycle()
        .take(TEXT_CHARS)
        .collect();
    let mut payload = Payload::new();
    payload.insert("iter".into(), Value::from(sequence));
    payload.insert("text".into(), Value::from(text));
    Record::EventAppended(RunEvent {
        run_id: "run-0000000042".into(),
        sequence,
        event_type: "step".into(),
        payload,
        created_at: Timestamp::from_unix_millis(1_763_719_200_000 + sequence as i64),
    })
}

/// Bytes of the msgpack payload of `record`, as the engine encodes it (named fields).
pub fn payload_bytes(record: &Record) -> usize {
    let Record::EventAppended(event) = record else {
        unreachable!("the benchmarks only append run events");
    };
    rmp_serde::to_vec_named(event)
        .expect("a run event always encodes")
        .len()
}

/// Bytes of the segment files in a store directory.
pub fn segment_bytes(dir: &Path) -> (usize, u64) {
    let mut n_segments = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).expect("list the store directory") {
        let entry = entry.expect("read a directory entry");
        if entry.path().extension().is_some_and(|e| e == "seg") {
            n_segments += 1;
            bytes += entry.metadata().expect("stat a segment").len();
        }
    }
    (n_segments, bytes)
}
