//! The record kinds a log holds and their msgpack payloads.
//!
//! Payloads are msgpack maps with field names (`rmp_serde::to_vec_named`): larger than
//! positional arrays, but self-describing, so fields can be added or become optional
//! without a format break, and any msgpack reader can inspect a record.

use serde::{Deserialize, Serialize};

use crate::model::{CallEvent, DropReason, OutcomeKind, Run, RunEvent, RunStats, Timestamp};

/// The kind byte of a frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    RunStarted = 1,
    RunFinished = 2,
    EventAppended = 3,
    CallRecorded = 4,
    Purge = 5,
    DropReport = 6,
}

impl RecordKind {
    /// The kind for a byte read from disk, if it is one this version knows.
    pub const fn from_byte(byte: u8) -> Option<RecordKind> {
        Some(match byte {
            1 => RecordKind::RunStarted,
            2 => RecordKind::RunFinished,
            3 => RecordKind::EventAppended,
            4 => RecordKind::CallRecorded,
            5 => RecordKind::Purge,
            6 => RecordKind::DropReport,
            _ => return None,
        })
    }
}

/// A run's terminal state, as recorded by `finish_run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    pub run_id: String,
    pub stats: RunStats,
    pub finished_at: Timestamp,
}

/// A purge tombstone: every run started before `before` is deleted, with its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Purge {
    pub before: Timestamp,
    pub purged_at: Timestamp,
}

/// An in-band note that events were not written, so a reader of the log sees the gap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DropReport {
    pub reason: DropReason,
    pub n_dropped: u64,
    /// When the first and the last of the dropped events were refused.
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

/// A record already encoded: its kind and its msgpack payload, exactly as
/// [`Record::encode_payload`] writes it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct EncodedRecord<'a> {
    pub kind: RecordKind,
    pub payload: &'a [u8],
    /// An event's run id and sequence, as the payload holds them, when the encoder
    /// knows them: the index then need not read them back.
    pub event: Option<(&'a str, u64)>,
    /// A call's index fields, as the payload holds them, when the encoder knows them.
    pub call: Option<CallRef<'a>>,
}

/// What the index takes of a call event, borrowed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallRef<'a> {
    pub ts: Timestamp,
    pub call_id: &'a str,
    pub tool_id: &'a str,
    pub caller_id: Option<&'a str>,
    pub kind: OutcomeKind,
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    RunStarted(Run),
    RunFinished(RunFinished),
    EventAppended(RunEvent),
    CallRecorded(CallEvent),
    Purge(Purge),
    DropReport(DropReport),
}

impl Record {
    /// The kind byte written in the frame header.
    pub const fn kind(&self) -> RecordKind {
        match self {
            Record::RunStarted(_) => RecordKind::RunStarted,
            Record::RunFinished(_) => RecordKind::RunFinished,
            Record::EventAppended(_) => RecordKind::EventAppended,
            Record::CallRecorded(_) => RecordKind::CallRecorded,
            Record::Purge(_) => RecordKind::Purge,
            Record::DropReport(_) => RecordKind::DropReport,
        }
    }

    /// Appends the msgpack payload to `out`.
    pub fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), rmp_serde::encode::Error> {
        match self {
            Record::RunStarted(run) => rmp_serde::encode::write_named(out, run),
            Record::RunFinished(finish) => rmp_serde::encode::write_named(out, finish),
            Record::EventAppended(event) => rmp_serde::encode::write_named(out, event),
            Record::CallRecorded(call) => rmp_serde::encode::write_named(out, call),
            Record::Purge(purge) => rmp_serde::encode::write_named(out, purge),
            Record::DropReport(report) => rmp_serde::encode::write_named(out, report),
        }
    }

    /// Decodes a payload of the given kind: by the hand-written reader when it can
    /// (`codec::decode`), otherwise by serde, which reports what is wrong.
    pub fn decode_payload(
        kind: RecordKind,
        payload: &[u8],
    ) -> Result<Record, rmp_serde::decode::Error> {
        super::decode::record(kind, payload)
    }

    /// Decodes a payload of the given kind through serde alone.
    pub(crate) fn decode_payload_serde(
        kind: RecordKind,
        payload: &[u8],
    ) -> Result<Record, rmp_serde::decode::Error> {
        Ok(match kind {
            RecordKind::RunStarted => Record::RunStarted(rmp_serde::from_slice(payload)?),
            RecordKind::RunFinished => Record::RunFinished(rmp_serde::from_slice(payload)?),
            RecordKind::EventAppended => Record::EventAppended(rmp_serde::from_slice(payload)?),
            RecordKind::CallRecorded => Record::CallRecorded(rmp_serde::from_slice(payload)?),
            RecordKind::Purge => Record::Purge(rmp_serde::from_slice(payload)?),
            RecordKind::DropReport => Record::DropReport(rmp_serde::from_slice(payload)?),
        })
    }
}
