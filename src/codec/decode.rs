//! Hand-written decoding of the record kinds queries return: runs, finishes, run events
//! and call events, read straight from the msgpack payload into the owned model types.
//!
//! Where it sits: inside [`Record::decode_payload`], before serde. Every query that
//! returns records reads each one back from a segment and decodes it here; through
//! serde, most of that time went to visiting field names, checking them as UTF-8 and
//! (for call events) buffering the internally tagged outcome. The fields are read by
//! the walkers of `codec::view`, the ones the index replays the log with, which match
//! field names as bytes; this module turns each borrowed view into the owned type,
//! applying the model's defaults and decoding the maps and lists kept raw.
//!
//! Anything it does not expect (a positional array, a repeated field, a missing
//! required field, a value of another type, binary or extension values, nesting
//! deeper than [`VALUE_DEPTH_MAX`](crate::limits::VALUE_DEPTH_MAX), bytes after the
//! map) makes it return `None`, and the payload goes to serde, which is the reference:
//! it either reads it or reports the error.
//!
//! # Invariants
//! - Whatever this reader returns, serde returns the same record for the same bytes
//!   (proptested below over arbitrary records and damaged payloads).
//! - Fields are required and defaulted exactly as the model's serde attributes say;
//!   unknown fields are stepped over, as serde ignores them.
//! - It never panics and never reads past the payload (see `codec::msgpack`).
//!
//! [`Record::decode_payload`]: crate::codec::Record::decode_payload

use serde::de::DeserializeOwned;

use crate::codec::msgpack::{MsgpackMap, Raw, Str};
use crate::codec::view::{self, CallView, EventView, FinishView, OutcomeView, RunView};
use crate::codec::{Record, RecordKind, RunFinished};
use crate::model::{CallEvent, Outcome, OutcomeKind, Payload, Run, RunEvent, RunStats, Timestamp};

/// A record type the hand-written reader reads, with serde as its reference.
pub(crate) trait Decode: DeserializeOwned {
    /// The kind of frame that holds it.
    const KIND: RecordKind;

    /// Reads the fields of the top-level map; `None` when serde must read it.
    fn read(map: &mut MsgpackMap<'_>) -> Option<Self>;

    /// [`Decode::read`] into `out`. Runs and run events, which queries return by the
    /// page, implement it to build the record in its place rather than move it there.
    /// `out` is left as it was when the answer is `None`.
    #[inline]
    fn read_into(map: &mut MsgpackMap<'_>, out: &mut Self) -> Option<()> {
        *out = Self::read(map)?;
        Some(())
    }
}

impl Decode for Run {
    const KIND: RecordKind = RecordKind::RunStarted;
    fn read(map: &mut MsgpackMap<'_>) -> Option<Self> {
        let mut run = Run::default();
        Self::read_into(map, &mut run)?;
        Some(run)
    }

    #[inline]
    fn read_into(map: &mut MsgpackMap<'_>, out: &mut Self) -> Option<()> {
        let view = RunView::read(map)?;
        *out = Run {
            id: owned(view.id)?,
            skill_id: owned(view.skill_id)?,
            caller_id: owned(view.caller_id)?,
            channel_id: owned(view.channel_id)?,
            inputs: object(view.inputs)?,
            started_at: view.started_at.unwrap_or_default(),
            finished_at: view.finished_at.flatten(),
            status: view.status.unwrap_or_default(),
            output: owned(view.output)?,
            error: owned(view.error)?,
            tool_calls_count: view.tool_calls_count.unwrap_or_default(),
            runtime_seconds: view.runtime_seconds.unwrap_or_default(),
            parent_run_id: owned(view.parent_run_id)?,
            total_input_tokens: view.total_input_tokens.unwrap_or_default(),
            total_output_tokens: view.total_output_tokens.unwrap_or_default(),
            total_thinking_tokens: view.total_thinking_tokens.unwrap_or_default(),
        };
        Some(())
    }
}

impl Decode for RunFinished {
    const KIND: RecordKind = RecordKind::RunFinished;
    fn read(map: &mut MsgpackMap<'_>) -> Option<Self> {
        let (run_id, stats, finished_at) = finish_parts(map)?;
        Some(RunFinished {
            run_id: run_id.to_owned(),
            stats,
            finished_at,
        })
    }
}

/// A finish's run id (checked as UTF-8, not copied), its stats and its time.
fn finish_parts<'a>(map: &mut MsgpackMap<'a>) -> Option<(&'a str, RunStats, Timestamp)> {
    let view = FinishView::read(map)?;
    let stats = view.stats?;
    let stats = RunStats {
        status: stats.status.unwrap_or_default(),
        output: owned(stats.output)?,
        error: owned(stats.error)?,
        tool_calls: stats.tool_calls.unwrap_or_default(),
        runtime_seconds: stats.runtime_seconds.unwrap_or_default(),
        input_tokens: stats.input_tokens.unwrap_or_default(),
        output_tokens: stats.output_tokens.unwrap_or_default(),
        thinking_tokens: stats.thinking_tokens.unwrap_or_default(),
    };
    Some((view.run_id?.to_str()?, stats, view.finished_at?))
}

impl Decode for RunEvent {
    const KIND: RecordKind = RecordKind::EventAppended;
    fn read(map: &mut MsgpackMap<'_>) -> Option<Self> {
        let mut event = RunEvent::default();
        Self::read_into(map, &mut event)?;
        Some(event)
    }

    #[inline]
    fn read_into(map: &mut MsgpackMap<'_>, out: &mut Self) -> Option<()> {
        let view = EventView::read(map)?;
        *out = RunEvent {
            run_id: owned(view.run_id)?,
            sequence: view.sequence.unwrap_or_default(),
            event_type: owned(view.event_type)?,
            payload: object(view.payload)?,
            created_at: view.created_at.unwrap_or_default(),
        };
        Some(())
    }
}

impl Decode for CallEvent {
    const KIND: RecordKind = RecordKind::CallRecorded;
    fn read(map: &mut MsgpackMap<'_>) -> Option<Self> {
        let view = CallView::read(map)?;
        Some(CallEvent {
            ts: view.ts?,
            call_id: view.call_id?.to_str()?.to_owned(),
            tool_id: view.tool_id?.to_str()?.to_owned(),
            caller_id: match view.caller_id.flatten() {
                Some(caller_id) => Some(caller_id.to_str()?.to_owned()),
                None => None,
            },
            granted_capabilities: strings(view.granted_capabilities)?,
            duration_ms: view.duration_ms.unwrap_or_default(),
            outcome: outcome(view.outcome?)?,
            tier: owned(view.tier)?,
            dry_run: view.dry_run.unwrap_or_default(),
            schema_version: view.schema_version.unwrap_or_default(),
            secrets_resolved: view.secrets_resolved.unwrap_or_default(),
            cursor_page: view.cursor_page.flatten(),
        })
    }
}

/// The hand-written read of a whole payload; `None` when serde must read it.
pub(crate) fn read<T: Decode>(payload: &[u8]) -> Option<T> {
    read_whole(payload, T::read)
}

/// Decodes a payload holding a `T` into `out` (see [`Decode::read_into`]). On an
/// error, `out` holds what it held before or what the hand-written reader read before
/// serde refused the payload: callers drop it.
pub(crate) fn decode_into<T: Decode>(
    payload: &[u8],
    out: &mut T,
) -> Result<(), rmp_serde::decode::Error> {
    let read = MsgpackMap::new(payload).and_then(|mut map| {
        T::read_into(&mut map, out)?;
        map.is_done().then_some(())
    });
    if read.is_none() {
        *out = rmp_serde::from_slice(payload)?;
    }
    Ok(())
}

/// Reads the map a payload holds by `read`; `None` when it does not read or bytes
/// follow the map.
fn read_whole<'a, T>(
    payload: &'a [u8],
    read: impl FnOnce(&mut MsgpackMap<'a>) -> Option<T>,
) -> Option<T> {
    let mut map = MsgpackMap::new(payload)?;
    let value = read(&mut map)?;
    map.is_done().then_some(value)
}

/// Applies the finish a `RunFinished` payload holds to `run`, as decoding it and
/// calling [`Run::apply_finish`] would, without building the finish's own copy of the
/// run id or copying its strings a second time.
pub(crate) fn finish_into(payload: &[u8], run: &mut Run) -> Result<(), rmp_serde::decode::Error> {
    match read_whole(payload, finish_parts) {
        Some((_, stats, finished_at)) => run.take_finish(stats, finished_at),
        None => {
            let finish: RunFinished = rmp_serde::from_slice(payload)?;
            run.take_finish(finish.stats, finish.finished_at);
        }
    }
    Ok(())
}

/// Decodes a payload holding a `T`: by the hand-written reader when it can, otherwise
/// by serde, which reports what is wrong.
pub(crate) fn decode<T: Decode>(payload: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    match read(payload) {
        Some(value) => Ok(value),
        None => rmp_serde::from_slice(payload),
    }
}

/// Decodes a payload of the given kind.
pub(crate) fn record(kind: RecordKind, payload: &[u8]) -> Result<Record, rmp_serde::decode::Error> {
    Ok(match kind {
        RecordKind::RunStarted => Record::RunStarted(decode(payload)?),
        RecordKind::RunFinished => Record::RunFinished(decode(payload)?),
        RecordKind::EventAppended => Record::EventAppended(decode(payload)?),
        RecordKind::CallRecorded => Record::CallRecorded(decode(payload)?),
        RecordKind::Purge | RecordKind::DropReport => {
            return Record::decode_payload_serde(kind, payload);
        }
    })
}

/// A string field, empty when absent; `None` when its bytes are not UTF-8.
fn owned(field: Option<Str<'_>>) -> Option<String> {
    view::text(field).map(str::to_owned)
}

/// A JSON-like map field, empty when absent; `None` when it does not read.
fn object(field: Option<Raw<'_>>) -> Option<Payload> {
    field.map_or_else(|| Some(Payload::new()), Raw::object)
}

/// A list of strings, empty when absent; `None` when it does not read.
fn strings(field: Option<Raw<'_>>) -> Option<Vec<String>> {
    field.map_or_else(|| Some(Vec::new()), Raw::strings)
}

/// The outcome of a view: its `kind` with exactly that variant's fields (an absent
/// optional is allowed). Any other field, or one of another variant, sends the
/// payload to serde.
fn outcome(view: OutcomeView<'_>) -> Option<Outcome> {
    if view.has_other_field {
        return None;
    }
    // Which of the variants' fields are present: code, retryable, message, missing,
    // retry_after_ms.
    let fields = (
        view.code.is_some(),
        view.retryable.is_some(),
        view.message.is_some(),
        view.missing.is_some(),
        view.retry_after_ms.is_some(),
    );
    Some(match (view.kind?, fields) {
        (OutcomeKind::Success, (false, false, false, false, false)) => Outcome::Success,
        (OutcomeKind::ToolNotFound, (false, false, false, false, false)) => Outcome::ToolNotFound,
        (OutcomeKind::ExecutionFailed, (true, true, false, false, false)) => {
            Outcome::ExecutionFailed {
                code: view.code?.to_str()?.to_owned(),
                retryable: view.retryable?,
            }
        }
        (OutcomeKind::InvalidArgs, (false, false, true, false, false)) => Outcome::InvalidArgs {
            message: view.message?.to_str()?.to_owned(),
        },
        (OutcomeKind::CapabilityDenied, (false, false, false, true, false)) => {
            Outcome::CapabilityDenied {
                missing: view.missing?.strings()?,
            }
        }
        (OutcomeKind::RateLimited, (false, false, false, false, _)) => Outcome::RateLimited {
            retry_after_ms: view.retry_after_ms.flatten(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::arbitrary::{damaged_payload, payload, rearranged_payload, record};
    use crate::codec::{Purge, RecordKind};
    use crate::limits::VALUE_DEPTH_MAX;
    use crate::model::{Timestamp, Value};
    use proptest::prelude::*;

    /// Records compared by their encoding, so a NaN compares equal to itself.
    fn same(a: &Record, b: &Record) -> bool {
        a.kind() == b.kind() && payload(a) == payload(b)
    }

    /// The hand-written read of a payload of `kind` as a record.
    fn read_record(kind: RecordKind, bytes: &[u8]) -> Option<Record> {
        Some(match kind {
            RecordKind::RunStarted => Record::RunStarted(read(bytes)?),
            RecordKind::RunFinished => Record::RunFinished(read(bytes)?),
            RecordKind::EventAppended => Record::EventAppended(read(bytes)?),
            RecordKind::CallRecorded => Record::CallRecorded(read(bytes)?),
            RecordKind::Purge | RecordKind::DropReport => return None,
        })
    }

    /// What every test below demands of a payload: decoding never panics, and when
    /// the hand-written reader answers, serde gives the same record.
    fn agrees_with_serde(kind: RecordKind, bytes: &[u8]) -> Result<(), TestCaseError> {
        let decoded = Record::decode_payload(kind, bytes);
        let reference = Record::decode_payload_serde(kind, bytes);
        if let Some(hand) = read_record(kind, bytes) {
            let reference = reference.as_ref().map_err(|e| {
                TestCaseError::fail(format!("read by hand as {hand:?}, refused by serde: {e}"))
            })?;
            prop_assert!(same(&hand, reference), "{hand:?} != {reference:?}");
        }
        match (&decoded, &reference) {
            (Ok(a), Ok(b)) => prop_assert!(same(a, b)),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "{decoded:?} vs serde {reference:?}"),
        }
        in_place_agrees(kind, bytes, &reference)
    }

    /// `decode_into` and `finish_into` answer as serde does, whatever the value they
    /// read into held before: a finish is compared as the run it was applied to.
    fn in_place_agrees(
        kind: RecordKind,
        bytes: &[u8],
        reference: &Result<Record, rmp_serde::decode::Error>,
    ) -> Result<(), TestCaseError> {
        let mut stale = Run::new("stale", "stale-skill");
        stale.output = "left over".into();
        stale.inputs.insert("stale".into(), Value::Bool(true));
        let mut stale_event = RunEvent {
            run_id: "stale".into(),
            sequence: 9,
            ..RunEvent::default()
        };
        stale_event.payload.insert("stale".into(), Value::Null);
        let in_place = match kind {
            RecordKind::RunStarted => {
                let mut run = stale.clone();
                decode_into(bytes, &mut run).map(|()| Record::RunStarted(run))
            }
            RecordKind::EventAppended => {
                let mut event = stale_event;
                decode_into(bytes, &mut event).map(|()| Record::EventAppended(event))
            }
            RecordKind::RunFinished => {
                let mut run = stale.clone();
                finish_into(bytes, &mut run).map(|()| Record::RunStarted(run))
            }
            _ => return Ok(()),
        };
        let expected = match reference {
            Ok(Record::RunFinished(finish)) => {
                let mut run = stale;
                run.apply_finish(&finish.stats, finish.finished_at);
                Some(Record::RunStarted(run))
            }
            Ok(record) => Some(record.clone()),
            Err(_) => None,
        };
        match (&in_place, &expected) {
            (Ok(a), Some(b)) => prop_assert!(same(a, b), "{a:?} != {b:?}"),
            (Err(_), None) => {}
            _ => prop_assert!(false, "in place {in_place:?} vs serde {reference:?}"),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_record_written_is_read_by_hand_as_serde_reads_it(record in record()) {
            let bytes = payload(&record);
            let hand = read_record(record.kind(), &bytes);
            prop_assert!(hand.is_some(), "the hand-written reader left {record:?} to serde");
            prop_assert!(same(hand.as_ref().unwrap(), &record));
            agrees_with_serde(record.kind(), &bytes)?;
        }

        /// The hand-written readers walk a map in the encoder's order first and in
        /// any order after; both must read what serde reads.
        #[test]
        fn payloads_with_their_keys_rearranged_are_read_as_serde_reads_them(
            (record, how, bytes) in rearranged_payload(),
        ) {
            if how.keeps_the_entries() {
                let hand = read_record(record.kind(), &bytes);
                prop_assert!(hand.is_some(), "the hand-written reader left {record:?} to serde");
                prop_assert!(same(hand.as_ref().unwrap(), &record));
            }
            agrees_with_serde(record.kind(), &bytes)?;
        }

        #[test]
        fn damaged_payloads_are_read_as_serde_reads_them_or_refused(
            (record, bytes) in damaged_payload(),
        ) {
            agrees_with_serde(record.kind(), &bytes)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            kind in prop::sample::select(vec![
                RecordKind::RunStarted,
                RecordKind::RunFinished,
                RecordKind::EventAppended,
                RecordKind::CallRecorded,
            ]),
            bytes in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            agrees_with_serde(kind, &bytes)?;
        }
    }

    #[test]
    fn every_cut_of_a_payload_is_an_error() {
        let mut run = Run::new("r1", "s");
        run.inputs
            .insert("k".into(), serde_json::json!({"a": [1, 2.5, null]}));
        let mut call = crate::model::CallEvent {
            ts: Timestamp::from_unix_nanos(1),
            call_id: "c".into(),
            tool_id: "t".into(),
            caller_id: Some("me".into()),
            granted_capabilities: vec!["x".into()],
            duration_ms: 3,
            outcome: Outcome::ExecutionFailed {
                code: "E1".into(),
                retryable: true,
            },
            tier: "hot".into(),
            dry_run: false,
            schema_version: 2,
            secrets_resolved: true,
            cursor_page: Some(2),
        };
        call.granted_capabilities.push("y".into());
        for record in [Record::RunStarted(run), Record::CallRecorded(call)] {
            let bytes = payload(&record);
            for len in 0..bytes.len() {
                assert!(read_record(record.kind(), &bytes[..len]).is_none());
                assert!(
                    Record::decode_payload(record.kind(), &bytes[..len]).is_err(),
                    "a cut at {len} decoded"
                );
            }
        }
    }

    #[test]
    fn what_the_reader_does_not_expect_goes_to_serde() {
        // A positional array (serde reads structs from arrays too).
        let event = RunEvent {
            run_id: "r".into(),
            sequence: 4,
            ..RunEvent::default()
        };
        let positional = rmp_serde::to_vec(&event).unwrap();
        assert!(read::<RunEvent>(&positional).is_none());
        assert_eq!(
            Record::decode_payload(RecordKind::EventAppended, &positional).unwrap(),
            Record::EventAppended(event)
        );

        let run = Run::new("r", "s");
        // Inputs nested deeper than the reader goes.
        let mut deep = Value::Null;
        for _ in 0..VALUE_DEPTH_MAX + 1 {
            deep = Value::Array(vec![deep]);
        }
        let mut nested = run.clone();
        nested.inputs.insert("deep".into(), deep);
        let bytes = payload(&Record::RunStarted(nested.clone()));
        assert!(read::<Run>(&bytes).is_none());
        assert_eq!(
            Record::decode_payload(RecordKind::RunStarted, &bytes).unwrap(),
            Record::RunStarted(nested)
        );

        // A repeated field: serde refuses it, so must the reader.
        let repeated = [
            0x82, 0xa2, b'i', b'd', 0xa1, b'a', 0xa2, b'i', b'd', 0xa1, b'b',
        ];
        assert!(read::<Run>(&repeated).is_none());
        assert!(Record::decode_payload(RecordKind::RunStarted, &repeated).is_err());

        // An unknown field is stepped over, as serde ignores it.
        let unknown = [0x82, 0xa1, b'z', 0x91, 0xc0, 0xa2, b'i', b'd', 0xa1, b'a'];
        assert_eq!(read::<Run>(&unknown).unwrap().id, "a");
        agrees_with_serde(RecordKind::RunStarted, &unknown).unwrap();

        // Binary where a string is expected, an extension value, bytes after the map.
        for bytes in [
            &[0x81, 0xa2, b'i', b'd', 0xc4, 0x01, b'a'][..],
            &[
                0x81, 0xa6, b'i', b'n', b'p', b'u', b't', b's', 0x81, 0xa1, b'k', 0xd4, 0x01, 0x02,
            ],
            &[0x81, 0xa2, b'i', b'd', 0xa1, b'a', 0xc0],
        ] {
            assert!(read::<Run>(bytes).is_none());
            agrees_with_serde(RecordKind::RunStarted, bytes).unwrap();
        }

        // An outcome carrying a field of another variant.
        let mut bytes = payload(&Record::CallRecorded(CallEvent {
            ts: Timestamp::EPOCH,
            call_id: "c".into(),
            tool_id: "t".into(),
            caller_id: None,
            granted_capabilities: Vec::new(),
            duration_ms: 0,
            outcome: Outcome::InvalidArgs {
                message: "m".into(),
            },
            tier: String::new(),
            dry_run: false,
            schema_version: 0,
            secrets_resolved: false,
            cursor_page: None,
        }));
        let at = bytes.windows(7).position(|w| w == b"message").unwrap();
        bytes[at..at + 7].copy_from_slice(b"missage");
        assert!(read::<CallEvent>(&bytes).is_none());
        agrees_with_serde(RecordKind::CallRecorded, &bytes).unwrap();
    }

    #[test]
    fn purges_and_drop_reports_are_read_by_serde() {
        let purge = Record::Purge(Purge {
            before: Timestamp::from_unix_nanos(3),
            purged_at: Timestamp::from_unix_nanos(4),
        });
        let bytes = payload(&purge);
        assert_eq!(
            Record::decode_payload(RecordKind::Purge, &bytes).unwrap(),
            purge
        );
    }
}
