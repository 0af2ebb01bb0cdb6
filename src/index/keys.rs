//! What the index reads of each record kind: borrowed, partial decodes of the msgpack
//! payloads, so replaying a log allocates no strings and builds no JSON maps.
//!
//! Where it sits: between a verified frame and [`Index::apply_frame`](super::Index).
//! Payloads are msgpack maps with field names (see `codec::record`). Each kind is read
//! first by the codec's walker for it (`codec::view`, which the query path's full
//! decoder `codec::decode` shares), and the key takes its fields from the borrowed
//! view; the view keeps the strings the index does not take unchecked and the maps and
//! lists as raw bytes, so nothing is decoded that the index drops. Anything the walker
//! does not expect (a positional array, a repeated or missing field, a value of
//! another type) sends the payload to the serde structs below, which name only some
//! fields and let serde skip the rest, with `&str` fields borrowing from the frame.
//! The serde path is the reference; the walker is only faster.
//!
//! # Invariants
//! - Each key struct requires exactly the fields its full record type requires and
//!   defaults the ones it defaults, so a payload the full decode refuses for a missing
//!   field is refused here too.
//! - Whatever the walker accepts, the serde path reads the same way (tested below),
//!   except that the strings the index does not take are not checked as UTF-8. The
//!   walker checks the types of the fields the index does not take, so it leaves a
//!   little more to serde than a walker of the key fields alone would; serde reads
//!   those payloads to the same keys.
//! - The walker never reads past the payload and never recurses: skipping a nested
//!   value counts the items still to step over, so any depth costs constant stack.
//!   Bytes after the top-level map are not looked at, as serde does not.
//! - Deliberately absent: inputs, outputs, payloads and every other field the index
//!   does not hold.

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::codec::view::{self, CallView, EventView, FinishView, RunView};
use crate::model::{OutcomeKind, Status, Timestamp};

/// What the index takes of a `RunStarted` record (a [`Run`](crate::model::Run)).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StartKey<'a> {
    #[serde(borrow)]
    pub id: &'a str,
    #[serde(borrow)]
    pub skill_id: &'a str,
    #[serde(borrow)]
    pub caller_id: &'a str,
    #[serde(borrow)]
    pub channel_id: &'a str,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub status: Status,
    #[serde(borrow)]
    pub parent_run_id: &'a str,
}

/// The status of a [`RunStats`](crate::model::RunStats).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StatsKey {
    pub status: Status,
}

/// What the index takes of a `RunFinished` record.
#[derive(Debug, Deserialize)]
pub(crate) struct FinishKey<'a> {
    #[serde(borrow)]
    pub run_id: &'a str,
    pub stats: StatsKey,
    pub finished_at: Timestamp,
}

/// What the index takes of an `EventAppended` record (a [`RunEvent`](crate::model::RunEvent)).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventKey<'a> {
    #[serde(borrow)]
    pub run_id: &'a str,
    pub sequence: u64,
}

/// The tag of an [`Outcome`](crate::model::Outcome).
#[derive(Debug, Deserialize)]
pub(crate) struct OutcomeKey {
    pub kind: OutcomeKind,
}

/// What the index takes of a `CallRecorded` record (a [`CallEvent`](crate::model::CallEvent)).
#[derive(Debug, Deserialize)]
pub(crate) struct CallKey<'a> {
    pub ts: Timestamp,
    #[serde(borrow)]
    pub call_id: &'a str,
    #[serde(borrow)]
    pub tool_id: &'a str,
    #[serde(default, borrow)]
    pub caller_id: Option<&'a str>,
    pub outcome: OutcomeKey,
}

/// What the index takes of a `Purge` record.
#[derive(Debug, Deserialize)]
pub(crate) struct PurgeKey {
    pub before: Timestamp,
    #[allow(dead_code)] // required by the full record; read only to refuse its absence
    pub purged_at: IgnoredAny,
}

/// The walker's read of a `RunStarted` payload; `None` sends it to serde.
fn walk_start(payload: &[u8]) -> Option<StartKey<'_>> {
    let view = view::walk(payload, RunView::read)?;
    Some(StartKey {
        id: view::text(view.id)?,
        skill_id: view::text(view.skill_id)?,
        caller_id: view::text(view.caller_id)?,
        channel_id: view::text(view.channel_id)?,
        started_at: view.started_at.unwrap_or_default(),
        finished_at: view.finished_at.flatten(),
        status: view.status.unwrap_or_default(),
        parent_run_id: view::text(view.parent_run_id)?,
    })
}

/// The walker's read of a `RunFinished` payload.
fn walk_finish(payload: &[u8]) -> Option<FinishKey<'_>> {
    let view = view::walk(payload, FinishView::read)?;
    Some(FinishKey {
        run_id: view.run_id?.to_str()?,
        stats: StatsKey {
            status: view.stats?.status.unwrap_or_default(),
        },
        finished_at: view.finished_at?,
    })
}

/// The walker's read of an `EventAppended` payload.
fn walk_event(payload: &[u8]) -> Option<EventKey<'_>> {
    let view = view::walk(payload, EventView::read)?;
    Some(EventKey {
        run_id: view::text(view.run_id)?,
        sequence: view.sequence.unwrap_or_default(),
    })
}

/// The walker's read of a `CallRecorded` payload.
fn walk_call(payload: &[u8]) -> Option<CallKey<'_>> {
    let view = view::walk(payload, CallView::read)?;
    Some(CallKey {
        ts: view.ts?,
        call_id: view.call_id?.to_str()?,
        tool_id: view.tool_id?.to_str()?,
        caller_id: match view.caller_id.flatten() {
            Some(caller_id) => Some(caller_id.to_str()?),
            None => None,
        },
        outcome: OutcomeKey {
            kind: view.outcome?.kind?,
        },
    })
}

/// Reads a `RunStarted` payload.
pub(crate) fn start(payload: &[u8]) -> Option<StartKey<'_>> {
    walk_start(payload).or_else(|| rmp_serde::from_slice(payload).ok())
}

/// Reads a `RunFinished` payload.
pub(crate) fn finish(payload: &[u8]) -> Option<FinishKey<'_>> {
    walk_finish(payload).or_else(|| rmp_serde::from_slice(payload).ok())
}

/// Reads an `EventAppended` payload.
pub(crate) fn event(payload: &[u8]) -> Option<EventKey<'_>> {
    walk_event(payload).or_else(|| rmp_serde::from_slice(payload).ok())
}

/// Reads a `CallRecorded` payload.
pub(crate) fn call(payload: &[u8]) -> Option<CallKey<'_>> {
    walk_call(payload).or_else(|| rmp_serde::from_slice(payload).ok())
}

/// Reads a `Purge` payload.
pub(crate) fn purge(payload: &[u8]) -> Option<PurgeKey> {
    rmp_serde::from_slice(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::arbitrary::{damaged_payload, payload, record};
    use crate::codec::{Purge, Record, RecordKind, RunFinished};
    use crate::model::{CallEvent, Outcome, Run, RunEvent, RunStats};
    use proptest::prelude::*;
    use std::fmt::Debug;

    /// The walker's key and serde's for a payload of `kind`, as text; each `None` when
    /// that reader does not answer.
    fn keys_of(kind: RecordKind, bytes: &[u8]) -> (Option<String>, Option<String>) {
        fn both<'a, T: Debug + Deserialize<'a>>(
            walked: Option<T>,
            bytes: &'a [u8],
        ) -> (Option<String>, Option<String>) {
            let decoded = rmp_serde::from_slice::<T>(bytes).ok();
            (
                walked.map(|key| format!("{key:?}")),
                decoded.map(|key| format!("{key:?}")),
            )
        }
        match kind {
            RecordKind::RunStarted => both(walk_start(bytes), bytes),
            RecordKind::RunFinished => both(walk_finish(bytes), bytes),
            RecordKind::EventAppended => both(walk_event(bytes), bytes),
            RecordKind::CallRecorded => both(walk_call(bytes), bytes),
            RecordKind::Purge | RecordKind::DropReport => (None, None),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn every_record_written_is_walked_to_the_keys_serde_reads(record in record()) {
            let (walked, decoded) = keys_of(record.kind(), &payload(&record));
            prop_assert!(walked.is_some(), "the walker left {record:?} to serde");
            prop_assert_eq!(walked, decoded);
        }

        #[test]
        fn damaged_payloads_are_walked_to_the_keys_serde_reads_or_refused(
            (record, bytes) in damaged_payload(),
        ) {
            let (walked, decoded) = keys_of(record.kind(), &bytes);
            if walked.is_some() {
                prop_assert_eq!(walked, decoded);
            }
        }
    }

    #[test]
    fn the_walker_reads_what_serde_reads_and_refuses_what_it_does_not_expect() {
        let mut run = Run::new("r1", "s");
        run.parent_run_id = "p".into();
        run.finished_at = Some(Timestamp::from_unix_nanos(-3));
        run.status = Status::DryRun;
        run.inputs.insert(
            "deep".into(),
            serde_json::json!([[{"a": [1.5, null, "x"]}], -7]),
        );
        let bytes = payload(&Record::RunStarted(run));
        let walked = walk_start(&bytes).unwrap();
        let decoded: StartKey<'_> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(format!("{walked:?}"), format!("{decoded:?}"));

        let finish = RunFinished {
            run_id: "r1".into(),
            stats: RunStats {
                status: Status::Timeout,
                output: "o".repeat(300),
                ..RunStats::default()
            },
            finished_at: Timestamp::from_unix_nanos(1 << 40),
        };
        let bytes = payload(&Record::RunFinished(finish));
        let walked = walk_finish(&bytes).unwrap();
        let decoded: FinishKey<'_> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(format!("{walked:?}"), format!("{decoded:?}"));

        let mut event = RunEvent {
            run_id: "r1".into(),
            sequence: u64::MAX,
            ..RunEvent::default()
        };
        event.payload.insert("t".into(), "x".repeat(70_000).into());
        let bytes = payload(&Record::EventAppended(event));
        let walked = walk_event(&bytes).unwrap();
        let decoded: EventKey<'_> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(format!("{walked:?}"), format!("{decoded:?}"));

        for (caller_id, outcome) in [
            (None, Outcome::Success),
            (
                Some("me".to_owned()),
                Outcome::CapabilityDenied {
                    missing: vec!["a".into(), "b".into()],
                },
            ),
            (
                Some(String::new()),
                Outcome::RateLimited {
                    retry_after_ms: None,
                },
            ),
        ] {
            let call = CallEvent {
                ts: Timestamp::from_unix_nanos(-9),
                call_id: "c".into(),
                tool_id: "t".into(),
                caller_id,
                granted_capabilities: vec!["x".into()],
                duration_ms: 1,
                outcome,
                tier: "gold".into(),
                dry_run: true,
                schema_version: 2,
                secrets_resolved: false,
                cursor_page: Some(3),
            };
            let bytes = payload(&Record::CallRecorded(call));
            let walked = walk_call(&bytes).unwrap();
            let decoded: CallKey<'_> = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(format!("{walked:?}"), format!("{decoded:?}"));
            for len in 0..bytes.len() {
                assert!(walk_call(&bytes[..len]).is_none(), "prefix {len} walked");
            }
        }
        // A repeated outcome kind is refused, as serde refuses it.
        let repeated = [
            0x84, 0xa2, b't', b's', 0x01, 0xa7, b'c', b'a', b'l', b'l', b'_', b'i', b'd', 0xa1,
            b'c', 0xa7, b't', b'o', b'o', b'l', b'_', b'i', b'd', 0xa1, b't', 0xa7, b'o', b'u',
            b't', b'c', b'o', b'm', b'e', 0x82, 0xa4, b'k', b'i', b'n', b'd', 0xa7, b's', b'u',
            b'c', b'c', b'e', b's', b's', 0xa4, b'k', b'i', b'n', b'd', 0xa7, b's', b'u', b'c',
            b'c', b'e', b's', b's',
        ];
        assert!(walk_call(&repeated).is_none());
        assert!(rmp_serde::from_slice::<CallKey<'_>>(&repeated).is_err());

        // Positional arrays, truncations and a count past the end go to serde.
        let positional = rmp_serde::to_vec(&Run::new("r", "s")).unwrap();
        assert!(walk_start(&positional).is_none());
        for len in 0..bytes.len().min(64) {
            assert!(walk_event(&bytes[..len]).is_none());
        }
        assert!(walk_event(&[0x81, 0xa1, b'x', 0xdd, 0xff, 0xff, 0xff, 0xff]).is_none());
    }

    #[test]
    fn each_key_reads_its_fields_of_a_full_record() {
        let mut run = Run::new("r1", "s");
        run.parent_run_id = "p".into();
        run.inputs.insert("k".into(), "v".into());
        let bytes = payload(&Record::RunStarted(run.clone()));
        let key: StartKey<'_> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!((key.id, key.skill_id, key.parent_run_id), ("r1", "s", "p"));
        assert_eq!(key.started_at, run.started_at);

        let finish = RunFinished {
            run_id: "r1".into(),
            stats: RunStats {
                status: Status::Error,
                ..RunStats::default()
            },
            finished_at: Timestamp::from_unix_nanos(9),
        };
        let bytes = payload(&Record::RunFinished(finish));
        let key: FinishKey<'_> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!((key.run_id, key.stats.status), ("r1", Status::Error));

        let event = RunEvent {
            run_id: "r1".into(),
            sequence: 42,
            ..RunEvent::default()
        };
        let bytes = payload(&Record::EventAppended(event));
        let key: EventKey<'_> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!((key.run_id, key.sequence), ("r1", 42));

        let call = CallEvent {
            ts: Timestamp::from_unix_nanos(5),
            call_id: "c".into(),
            tool_id: "t".into(),
            caller_id: Some("me".into()),
            granted_capabilities: vec!["x".into()],
            duration_ms: 1,
            outcome: Outcome::InvalidArgs {
                message: "m".into(),
            },
            tier: String::new(),
            dry_run: false,
            schema_version: 2,
            secrets_resolved: false,
            cursor_page: None,
        };
        let bytes = payload(&Record::CallRecorded(call));
        let key: CallKey<'_> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!((key.tool_id, key.caller_id), ("t", Some("me")));
        assert_eq!(key.outcome.kind, OutcomeKind::InvalidArgs);

        let purge = Purge {
            before: Timestamp::from_unix_nanos(3),
            purged_at: Timestamp::from_unix_nanos(4),
        };
        let key: PurgeKey = rmp_serde::from_slice(&payload(&Record::Purge(purge))).unwrap();
        assert_eq!(key.before, Timestamp::from_unix_nanos(3));
    }
}
