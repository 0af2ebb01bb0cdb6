//! What the index reads of each record kind: borrowed, partial decodes of the msgpack
//! payloads, so replaying a log allocates no strings and builds no JSON maps.
//!
//! Where it sits: between a verified frame and [`Index::apply_frame`](super::Index).
//! Payloads are msgpack maps with field names (see `codec::record`), so a struct
//! naming only some fields decodes them and skips the rest (serde ignores unknown
//! fields), and `&str` fields borrow from the frame.
//!
//! # Invariants
//! - Each key struct requires exactly the fields its full record type requires and
//!   defaults the ones it defaults, so a payload the full decode refuses for a missing
//!   field is refused here too.
//! - Deliberately absent: inputs, outputs, payloads and every other field the index
//!   does not hold.

use serde::Deserialize;
use serde::de::IgnoredAny;

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
    #[allow(dead_code)] // required by the full record; read only to refuse its absence
    pub call_id: IgnoredAny,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Purge, Record, RunFinished};
    use crate::model::{CallEvent, Outcome, Run, RunEvent, RunStats};

    fn payload(record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        record.encode_payload(&mut out).unwrap();
        out
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
