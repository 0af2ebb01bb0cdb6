//! The store the compaction benchmark and `examples/compaction_figures` measure: 8 MiB
//! segments, runs of 20 events of about 200 bytes recorded 10 at a time with their
//! events interleaved, a chosen share of the runs started long ago so that a purge
//! leaves every segment partly dead (compaction must rewrite, not just delete).
//! Included by both with `#[path]`.

use std::path::Path;

use auditlog::compaction::Policy;
use auditlog::model::{Payload, Run, RunEvent, Timestamp};
use auditlog::{AuditLog, Config, Durability, Record};

const SEGMENT_BYTES: u64 = 8 << 20;
const EVENTS_PER_RUN: u64 = 20;
const TEXT_BYTES: usize = 180;

/// The config both open the store with: compaction rewrites any segment with dead
/// frames.
pub fn config(dir: &Path) -> Config {
    Config::new(dir)
        .segment_bytes(SEGMENT_BYTES)
        .durability(Durability::None)
        .compaction_policy(Policy {
            removable_share_min: 0.0,
        })
}

/// Event `seq` of run `run_id`.
pub fn event(run_id: &str, seq: u64) -> Record {
    let mut payload = Payload::new();
    payload.insert("text".into(), "x".repeat(TEXT_BYTES).into());
    Record::EventAppended(RunEvent {
        run_id: run_id.into(),
        sequence: seq,
        event_type: "step".into(),
        payload,
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
    })
}

/// Fills a store with about `store_bytes` of runs, `purge_share` of them old; returns
/// the cutoff that purges exactly those.
pub fn fill(log: &AuditLog, store_bytes: u64, purge_share: f64) -> Timestamp {
    let old = Timestamp::from_unix_millis(1_600_000_000_000);
    let new = Timestamp::from_unix_millis(1_700_000_000_000);
    let mut i = 0u64;
    while log.journal_stats().unwrap().bytes_appended < store_bytes {
        // 10 runs at a time, their events interleaved.
        let ids: Vec<String> = (i..i + 10).map(|j| format!("run-{j}")).collect();
        for (k, id) in ids.iter().enumerate() {
            let purged = (k as f64) < purge_share * 10.0;
            let run = Run {
                id: id.clone(),
                skill_id: "s".into(),
                started_at: if purged { old } else { new },
                ..Run::default()
            };
            log.append(&Record::RunStarted(run)).unwrap();
        }
        for seq in 1..=EVENTS_PER_RUN {
            let batch: Vec<Record> = ids.iter().map(|id| event(id, seq)).collect();
            log.append_batch(&batch).unwrap();
        }
        i += 10;
    }
    Timestamp::from_unix_millis(1_650_000_000_000)
}
