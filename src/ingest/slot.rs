//! The inline slot encoding: how a producer copies a borrowed event into a preallocated
//! byte buffer without allocating, and how the committer turns it back into a `Record`.
//!
//! Where it sits: between the `record_*` calls of [`super::Recorder`] (which encode) and
//! the committer (which decodes). It is private to `ingest` and never reaches the disk:
//! the on-disk format is the msgpack payload of `codec`, made by the committer.
//!
//! # Layout
//! Little-endian, no padding. A slot starts with one kind byte, then the fields of that
//! kind in the order of the `encode_*` functions below:
//!
//! ```text
//! u8 kind (1 run started, 2 run finished, 3 event, 4 call, 5 event of a shape)
//! str   = u32 length, then that many UTF-8 bytes
//! ts    = i64 unix nanoseconds
//! field = str key, u8 tag (0 null, 1 bool, 2 i64, 3 u64, 4 f64, 5 str), then the value
//!         (bool: u8; i64/u64/f64: 8 bytes; str: str)
//! fields = u16 count, then that many fields
//! ```
//!
//! An event puts its fixed-size fields first, so that they are one write: kind,
//! `u64` sequence, `ts` created_at, `u16` field count, then the run id, the event type
//! and the fields (without their count). A call does the same: kind, `ts`, `u64`
//! duration, `u32` schema version, then one byte each for dry run, secrets resolved,
//! has a caller, the outcome's tag and has a cursor page, then the `u32` cursor page (0
//! without one); then the call id, the tool id, the caller id (if any), the granted
//! capabilities (`u16` count, strings), the outcome's fields and the tier. An event of
//! a registered shape (`shape.rs`) has the event's fixed part with the shape's `u32`
//! number before the field count, then the run id and each value (tag, then value) in
//! the shape's key order: no event type, no keys.
//!
//! # Invariants
//! - Encoding never allocates and never writes past the slot; a value that does not fit
//!   (or nested JSON, which has no inline form) is refused with [`Refused`], and the
//!   caller takes the slow path.
//! - [`SliceSink`] stores some short strings a few bytes past their end, inside its
//!   buffer, and what follows writes over them: a whole encoding is exactly its bytes,
//!   and the buffer's bytes past it (where it is longer) are unspecified.
//! - Decoding trusts nothing: every read is bounds-checked, every string is checked to
//!   be UTF-8 and every tag to be known, so a bug shows up as a [`SlotError`], never as a
//!   panic or a wrong record. The transcoder's readers ([`Reader::str_bytes`],
//!   [`Reader::field_bytes`]) are bounds- and tag-checked the same way, but hand strings
//!   on as bytes it only copies (see `transcode.rs`).

use std::fmt;

use crate::codec::{Record, RunFinished};
use crate::model::{
    CallEvent, Outcome, OutcomeKind, Payload, Run, RunEvent, RunStats, Status, Timestamp, Value,
};

use super::shape::ShapeCache;
use super::{EventRef, FieldValue, RunRef, ShapedEventRef};

pub(super) const KIND_RUN_STARTED: u8 = 1;
pub(super) const KIND_RUN_FINISHED: u8 = 2;
pub(super) const KIND_EVENT: u8 = 3;
pub(super) const KIND_CALL: u8 = 4;
pub(super) const KIND_SHAPED_EVENT: u8 = 5;

/// An event's fixed part: kind, sequence, created_at, field count.
const EVENT_HEAD_BYTES: usize = 1 + 8 + 8 + 2;
/// A shaped event's fixed part: kind, sequence, created_at, shape, value count.
const SHAPED_HEAD_BYTES: usize = 1 + 8 + 8 + 4 + 2;
/// A call's fixed part (see the layout above).
const CALL_HEAD_BYTES: usize = 1 + 8 + 8 + 4 + 5 + 4;

const TAG_NULL: u8 = 0;
const TAG_BOOL: u8 = 1;
const TAG_I64: u8 = 2;
const TAG_U64: u8 = 3;
const TAG_F64: u8 = 4;
const TAG_STR: u8 = 5;

/// The event does not fit the slot, or has a value with no inline form.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused;

/// A slot's bytes do not decode: a bug in the encoder or the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlotError {
    pub what: &'static str,
    pub offset: usize,
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inline slot does not decode: {} at byte {}",
            self.what, self.offset
        )
    }
}

/// Where an encoder writes: it takes bytes in order, and refuses what does not fit.
///
/// Two sinks exist: [`SliceSink`] (a record's claimed bytes in the ring, or any byte
/// buffer) and [`Measure`] (counts, for the kinds whose length is not summed).
pub(crate) trait Sink {
    /// Appends `bytes`, or refuses them all.
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Refused>;

    /// Appends the `N` bytes `fill` sets, or refuses them all. A sink that writes into
    /// memory gives `fill` its bytes in place after one bounds check.
    #[inline(always)]
    fn fixed<const N: usize>(&mut self, fill: impl FnOnce(&mut [u8; N])) -> Result<(), Refused> {
        let mut bytes = [0; N];
        fill(&mut bytes);
        self.bytes(&bytes)
    }

    #[inline]
    fn u8(&mut self, v: u8) -> Result<(), Refused> {
        self.bytes(&[v])
    }
    #[inline]
    fn bool(&mut self, v: bool) -> Result<(), Refused> {
        self.u8(u8::from(v))
    }
    #[inline]
    fn u16(&mut self, v: u16) -> Result<(), Refused> {
        self.bytes(&v.to_le_bytes())
    }
    #[inline]
    fn u32(&mut self, v: u32) -> Result<(), Refused> {
        self.bytes(&v.to_le_bytes())
    }
    #[inline]
    fn u64(&mut self, v: u64) -> Result<(), Refused> {
        self.bytes(&v.to_le_bytes())
    }
    #[inline]
    fn i64(&mut self, v: i64) -> Result<(), Refused> {
        self.bytes(&v.to_le_bytes())
    }
    #[inline]
    fn f64(&mut self, v: f64) -> Result<(), Refused> {
        self.bytes(&v.to_le_bytes())
    }
    #[inline]
    fn ts(&mut self, v: Timestamp) -> Result<(), Refused> {
        self.i64(v.unix_nanos())
    }
    #[inline]
    fn str(&mut self, v: &str) -> Result<(), Refused> {
        self.u32(u32::try_from(v.len()).map_err(|_| Refused)?)?;
        self.bytes(v.as_bytes())
    }
    #[inline]
    fn opt_u64(&mut self, v: Option<u64>) -> Result<(), Refused> {
        match v {
            Some(v) => {
                self.u8(1)?;
                self.u64(v)
            }
            None => self.u8(0),
        }
    }
    #[inline]
    fn strs<'s>(&mut self, items: impl ExactSizeIterator<Item = &'s str>) -> Result<(), Refused> {
        self.u16(u16::try_from(items.len()).map_err(|_| Refused)?)?;
        items.into_iter().try_for_each(|s| self.str(s))
    }
    #[inline(always)]
    fn value(&mut self, value: FieldValue<'_>) -> Result<(), Refused> {
        // A JSON scalar is written as the field value it equals; one match, no
        // recursion, so the encoder inlines into the record call.
        let value = match value {
            FieldValue::Json(json) => json_scalar(json)?,
            other => other,
        };
        match value {
            FieldValue::Null => self.u8(TAG_NULL),
            FieldValue::Bool(v) => self.bytes(&[TAG_BOOL, u8::from(v)]),
            FieldValue::I64(v) => self.tagged_word(TAG_I64, v.to_le_bytes()),
            FieldValue::U64(v) => self.tagged_word(TAG_U64, v.to_le_bytes()),
            FieldValue::F64(v) => self.tagged_word(TAG_F64, v.to_le_bytes()),
            FieldValue::Str(v) => {
                self.u8(TAG_STR)?;
                self.str(v)
            }
            FieldValue::Json(_) => Err(Refused),
        }
    }
    /// A value's tag and its 8 bytes, as one write.
    #[inline(always)]
    fn tagged_word(&mut self, tag: u8, word: [u8; 8]) -> Result<(), Refused> {
        self.fixed::<9>(|b| {
            b[0] = tag;
            b[1..].copy_from_slice(&word);
        })
    }
    #[inline]
    fn fields<'f>(
        &mut self,
        fields: impl ExactSizeIterator<Item = (&'f str, FieldValue<'f>)>,
    ) -> Result<(), Refused> {
        self.u16(u16::try_from(fields.len()).map_err(|_| Refused)?)?;
        self.fields_uncounted(fields)
    }
    /// Fields without their count (an event writes it in its fixed part).
    #[inline]
    fn fields_uncounted<'f>(
        &mut self,
        fields: impl Iterator<Item = (&'f str, FieldValue<'f>)>,
    ) -> Result<(), Refused> {
        for (key, value) in fields {
            self.str(key)?;
            self.value(value)?;
        }
        Ok(())
    }
}

/// The scalar field value a JSON value equals; nested JSON has no inline form (the
/// slow path clones it).
#[inline]
fn json_scalar(json: &Value) -> Result<FieldValue<'_>, Refused> {
    Ok(match json {
        Value::Null => FieldValue::Null,
        Value::Bool(v) => FieldValue::Bool(*v),
        Value::String(v) => FieldValue::Str(v),
        Value::Number(n) => {
            if let Some(v) = n.as_u64() {
                FieldValue::U64(v)
            } else if let Some(v) = n.as_i64() {
                FieldValue::I64(v)
            } else {
                FieldValue::F64(n.as_f64().ok_or(Refused)?)
            }
        }
        Value::Array(_) | Value::Object(_) => return Err(Refused),
    })
}

/// Counts the bytes an encoding takes, refusing past `max`.
#[derive(Debug)]
pub(crate) struct Measure {
    pub len: usize,
    max: usize,
}

impl Measure {
    pub fn new(max: usize) -> Measure {
        Measure { len: 0, max }
    }
}

impl Sink for Measure {
    #[inline]
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        let len = self.len + bytes.len();
        if len > self.max {
            return Err(Refused);
        }
        self.len = len;
        Ok(())
    }
}

/// Writes into a byte slice.
#[derive(Debug)]
pub(crate) struct SliceSink<'a> {
    pub buf: &'a mut [u8],
    pub pos: usize,
}

impl Sink for SliceSink<'_> {
    #[inline(always)]
    fn fixed<const N: usize>(&mut self, fill: impl FnOnce(&mut [u8; N])) -> Result<(), Refused> {
        let dest = (self.buf.get_mut(self.pos..))
            .and_then(<[u8]>::first_chunk_mut::<N>)
            .ok_or(Refused)?;
        fill(dest);
        self.pos += N;
        Ok(())
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        let end = self.pos.checked_add(bytes.len()).ok_or(Refused)?;
        let dest = self.buf.get_mut(self.pos..end).ok_or(Refused)?;
        super::copy::copy_short(dest, bytes);
        self.pos = end;
        Ok(())
    }

    /// A string with its length in at most two stores, where it is short and the
    /// buffer has 24 bytes of room: the length with the string's first four bytes as
    /// one 8-byte store, then the string's last 4, 8 or 16 bytes in place, over the
    /// first ones where they overlap. The bytes stored past the string are written
    /// over by what follows.
    ///
    /// A record of a few short fields takes about a third fewer stores this way. That
    /// matters because the record is written straight into ring lines, which are often
    /// not in the producer's cache: with 34 stores a record call was slow three to four
    /// times as often as with 23, most likely because its stores filled the store
    /// buffer while they waited for those lines (docs/benchmarks.md).
    #[inline(always)]
    fn str(&mut self, v: &str) -> Result<(), Refused> {
        let s = v.as_bytes();
        let n = s.len();
        let at = self.pos;
        match self.buf.get_mut(at..at + 24) {
            Some(dest) if n <= 12 || (16..=20).contains(&n) => {
                let head = n as u64 | u64::from(first_four(s)) << 32;
                dest[..8].copy_from_slice(&head.to_le_bytes());
                match n {
                    16.. => dest[n - 12..n + 4].copy_from_slice(&s[n - 16..]),
                    8.. => dest[n - 4..n + 4].copy_from_slice(&s[n - 8..]),
                    5.. => dest[n..n + 4].copy_from_slice(&s[n - 4..]),
                    _ => {}
                }
                self.pos = at + 4 + n;
                Ok(())
            }
            _ => {
                self.u32(u32::try_from(n).map_err(|_| Refused)?)?;
                self.bytes(s)
            }
        }
    }
}

/// The first four bytes of `s` (fewer if it is shorter) as a little-endian number.
#[inline(always)]
fn first_four(s: &[u8]) -> u32 {
    match *s {
        [] => 0,
        [a] => u32::from(a),
        [a, b] => u32::from(u16::from_le_bytes([a, b])),
        [a, b, c] => u32::from(u16::from_le_bytes([a, b])) | u32::from(c) << 16,
        [a, b, c, d, ..] => u32::from_le_bytes([a, b, c, d]),
    }
}

/// One record in a form a producer can encode inline: the views of the `record_*`
/// calls, and the owned records that have an inline form.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Inline<'a> {
    Event(&'a EventRef<'a>),
    RunEvent(&'a RunEvent),
    RunStarted(&'a RunRef<'a>),
    Run(&'a Run),
    RunFinished {
        run_id: &'a str,
        stats: &'a RunStats,
        finished_at: Timestamp,
    },
    Call(&'a CallEvent),
    /// An event of the shape numbered `shape`, its values in the shape's key order.
    Shaped {
        shape: u32,
        event: &'a ShapedEventRef<'a>,
    },
}

impl<'a> Inline<'a> {
    /// The inline view of an owned record, for the kinds that have one.
    #[cfg(test)]
    pub fn of(record: &'a Record) -> Option<Inline<'a>> {
        Some(match record {
            Record::CallRecorded(call) => Inline::Call(call),
            Record::RunStarted(run) => Inline::Run(run),
            Record::EventAppended(event) => Inline::RunEvent(event),
            Record::RunFinished(finish) => Inline::RunFinished {
                run_id: &finish.run_id,
                stats: &finish.stats,
                finished_at: finish.finished_at,
            },
            Record::Purge(_) | Record::DropReport(_) => return None,
        })
    }

    /// The length of the record's encoding, if it has an inline form of at most `max`
    /// bytes: what [`Inline::encode`] would write, or `None` where it would refuse.
    ///
    /// An event's or a call's length (the kinds of the record calls) is summed from its
    /// strings' lengths; the other kinds are encoded into a counting sink. Proptests
    /// hold both ways to the encoder's.
    #[inline]
    pub fn encoded_len(&self, max: usize) -> Option<usize> {
        let summed = match *self {
            Inline::Event(event) => Some(event_len(event)?),
            Inline::Call(call) => Some(call_len(call)),
            _ => None,
        };
        // Under 64 KiB every length field fits: a string's `u32`, and a count's `u16`
        // (an event's field takes 5 bytes or more, a call's string 4).
        let len = match summed {
            Some(len) if len < 1 << 16 => len,
            _ => self.measured_len(max)?,
        };
        (len <= max).then_some(len)
    }

    /// The length of the encoding into a counting sink, if at most `max`.
    fn measured_len(&self, max: usize) -> Option<usize> {
        let mut measure = Measure::new(max);
        self.encode(&mut measure).ok()?;
        Some(measure.len)
    }

    /// Encodes the record into `w`.
    #[inline]
    pub fn encode(&self, w: &mut impl Sink) -> Result<(), Refused> {
        match *self {
            Inline::Event(event) => encode_event(w, event),
            Inline::RunEvent(event) => encode_run_event(w, event),
            Inline::RunStarted(run) => encode_run_started(w, run),
            Inline::Run(run) => encode_run(w, run),
            Inline::RunFinished {
                run_id,
                stats,
                finished_at,
            } => encode_run_finished(w, run_id, stats, finished_at),
            Inline::Call(call) => encode_call(w, call),
            Inline::Shaped { shape, event } => encode_shaped(w, shape, event),
        }
    }
}

/// The length of an event's encoding (see [`encode_event`]) as if every length fit
/// its field, or `None` for a value with no inline form.
#[inline]
fn event_len(event: &EventRef<'_>) -> Option<usize> {
    // Kind, run id, sequence, event type, created_at, field count.
    let mut len = 1 + str_len(event.run_id) + 8 + str_len(event.event_type) + 8 + 2;
    for (key, value) in event.fields {
        len += str_len(key) + 1 + value_len(*value)?;
    }
    Some(len)
}

/// The length of a shaped event's encoding (see [`encode_shaped`]), if it has an inline
/// form of at most `max` bytes: what [`Inline::encoded_len`] gives for it, summed.
///
/// Not an arm of `encoded_len`: there it changed how the compiler laid out the
/// event's arm, which then took 23 instructions more.
#[inline]
pub(crate) fn shaped_len(event: &ShapedEventRef<'_>, max: usize) -> Option<usize> {
    let mut len = SHAPED_HEAD_BYTES + str_len(event.run_id);
    for value in event.values {
        len += 1 + value_len(*value)?;
    }
    // Under 64 KiB the run id's `u32` length and the value count's `u16` fit (a value
    // takes a byte or more); past it, counted (the shape's number takes 4 bytes
    // whatever it is).
    if len < 1 << 16 {
        (len <= max).then_some(len)
    } else {
        Inline::Shaped { shape: 0, event }.measured_len(max)
    }
}

/// The length of a call's encoding (see [`encode_call`]) as if every length fit its
/// field.
#[inline]
fn call_len(call: &CallEvent) -> usize {
    let strs = |items: &[String]| 2 + items.iter().map(|s| str_len(s)).sum::<usize>();
    let opt_u64 = |v: Option<u64>| if v.is_some() { 9 } else { 1 };
    let outcome = match &call.outcome {
        Outcome::Success | Outcome::ToolNotFound => 0,
        Outcome::ExecutionFailed { code, .. } => str_len(code) + 1,
        Outcome::InvalidArgs { message } => str_len(message),
        Outcome::CapabilityDenied { missing } => strs(missing),
        Outcome::RateLimited { retry_after_ms } => opt_u64(*retry_after_ms),
    };
    CALL_HEAD_BYTES
        + str_len(&call.call_id)
        + str_len(&call.tool_id)
        + call.caller_id.as_deref().map_or(0, str_len)
        + strs(&call.granted_capabilities)
        + outcome
        + str_len(&call.tier)
}

/// A string's encoded length: its `u32` length, then its bytes.
#[inline(always)]
fn str_len(v: &str) -> usize {
    4 + v.len()
}

/// A field value's encoded length after its tag byte.
#[inline(always)]
fn value_len(value: FieldValue<'_>) -> Option<usize> {
    Some(match value {
        FieldValue::Null => 0,
        FieldValue::Bool(_) => 1,
        FieldValue::I64(_) | FieldValue::U64(_) | FieldValue::F64(_) => 8,
        FieldValue::Str(v) => str_len(v),
        FieldValue::Json(json) => json_len(json)?,
    })
}

/// A JSON value's encoded length after its tag byte: that of the scalar it equals.
/// Out of line, so the common kinds' loop stays small.
#[inline(never)]
fn json_len(json: &Value) -> Option<usize> {
    match json_scalar(json).ok()? {
        FieldValue::Json(_) => None,
        scalar => value_len(scalar),
    }
}

/// An event's fixed part: kind, sequence, created_at and field count, as one write.
#[inline(always)]
fn event_head(
    w: &mut impl Sink,
    sequence: u64,
    created_at: Timestamp,
    n_fields: usize,
) -> Result<(), Refused> {
    let n_fields = u16::try_from(n_fields).map_err(|_| Refused)?;
    w.fixed::<EVENT_HEAD_BYTES>(|b| {
        event_kind_time(b, KIND_EVENT, sequence, created_at);
        b[17..].copy_from_slice(&n_fields.to_le_bytes());
    })
}

/// The first 17 bytes of either event's fixed part: kind, sequence, created_at.
#[inline(always)]
fn event_kind_time(b: &mut [u8], kind: u8, sequence: u64, created_at: Timestamp) {
    b[0] = kind;
    b[1..9].copy_from_slice(&sequence.to_le_bytes());
    b[9..17].copy_from_slice(&created_at.unix_nanos().to_le_bytes());
}

/// Encodes an event.
#[inline]
pub(crate) fn encode_event(w: &mut impl Sink, event: &EventRef<'_>) -> Result<(), Refused> {
    event_head(w, event.sequence, event.created_at, event.fields.len())?;
    w.str(event.run_id)?;
    w.str(event.event_type)?;
    w.fields_uncounted(event.fields.iter().map(|(k, v)| (*k, *v)))?;
    Ok(())
}

/// Encodes an event of the shape numbered `shape`.
#[inline(always)]
pub(crate) fn encode_shaped(
    w: &mut impl Sink,
    shape: u32,
    event: &ShapedEventRef<'_>,
) -> Result<(), Refused> {
    let n_values = u16::try_from(event.values.len()).map_err(|_| Refused)?;
    w.fixed::<SHAPED_HEAD_BYTES>(|b| {
        event_kind_time(b, KIND_SHAPED_EVENT, event.sequence, event.created_at);
        b[17..21].copy_from_slice(&shape.to_le_bytes());
        b[21..].copy_from_slice(&n_values.to_le_bytes());
    })?;
    w.str(event.run_id)?;
    for value in event.values {
        w.value(*value)?;
    }
    Ok(())
}

/// Encodes an owned event (its payload a JSON map).
pub(crate) fn encode_run_event(w: &mut impl Sink, event: &RunEvent) -> Result<(), Refused> {
    event_head(w, event.sequence, event.created_at, event.payload.len())?;
    w.str(&event.run_id)?;
    w.str(&event.event_type)?;
    w.fields_uncounted(
        event
            .payload
            .iter()
            .map(|(k, v)| (k.as_str(), FieldValue::Json(v))),
    )?;
    Ok(())
}

/// Encodes a run start.
pub(crate) fn encode_run_started(w: &mut impl Sink, run: &RunRef<'_>) -> Result<(), Refused> {
    w.u8(KIND_RUN_STARTED)?;
    for s in [
        run.id,
        run.skill_id,
        run.caller_id,
        run.channel_id,
        run.parent_run_id,
    ] {
        w.str(s)?;
    }
    w.ts(run.started_at)?;
    w.fields(run.inputs.iter().map(|(k, v)| (*k, *v)))?;
    Ok(())
}

/// Encodes an owned run start (its inputs a JSON map).
pub(crate) fn encode_run(w: &mut impl Sink, run: &Run) -> Result<(), Refused> {
    // Only a running run has the shape of a start; anything else is recorded whole.
    if run.status != Status::Running || run.finished_at.is_some() || !is_start_shaped(run) {
        return Err(Refused);
    }
    w.u8(KIND_RUN_STARTED)?;
    for s in [
        &run.id,
        &run.skill_id,
        &run.caller_id,
        &run.channel_id,
        &run.parent_run_id,
    ] {
        w.str(s)?;
    }
    w.ts(run.started_at)?;
    w.fields(
        run.inputs
            .iter()
            .map(|(k, v)| (k.as_str(), FieldValue::Json(v))),
    )?;
    Ok(())
}

/// Whether every field the inline form does not carry has its default.
fn is_start_shaped(run: &Run) -> bool {
    run.output.is_empty()
        && run.error.is_empty()
        && run.tool_calls_count == 0
        && run.runtime_seconds == 0.0
        && run.total_input_tokens == 0
        && run.total_output_tokens == 0
        && run.total_thinking_tokens == 0
}

/// Encodes a run's terminal state.
pub(crate) fn encode_run_finished(
    w: &mut impl Sink,
    run_id: &str,
    stats: &RunStats,
    finished_at: Timestamp,
) -> Result<(), Refused> {
    w.u8(KIND_RUN_FINISHED)?;
    w.str(run_id)?;
    w.ts(finished_at)?;
    let status_idx = Status::ALL
        .iter()
        .position(|s| *s == stats.status)
        .ok_or(Refused)?;
    w.u8(u8::try_from(status_idx).map_err(|_| Refused)?)?;
    w.str(&stats.output)?;
    w.str(&stats.error)?;
    w.u64(stats.tool_calls)?;
    w.f64(stats.runtime_seconds)?;
    w.u64(stats.input_tokens)?;
    w.u64(stats.output_tokens)?;
    w.u64(stats.thinking_tokens)?;
    Ok(())
}

/// Encodes a dispatch call event.
pub(crate) fn encode_call(w: &mut impl Sink, call: &CallEvent) -> Result<(), Refused> {
    let tag = call.outcome.kind().index();
    w.fixed::<CALL_HEAD_BYTES>(|b| {
        b[0] = KIND_CALL;
        b[1..9].copy_from_slice(&call.ts.unix_nanos().to_le_bytes());
        b[9..17].copy_from_slice(&call.duration_ms.to_le_bytes());
        b[17..21].copy_from_slice(&call.schema_version.to_le_bytes());
        b[21] = u8::from(call.dry_run);
        b[22] = u8::from(call.secrets_resolved);
        b[23] = u8::from(call.caller_id.is_some());
        b[24] = tag;
        b[25] = u8::from(call.cursor_page.is_some());
        b[26..30].copy_from_slice(&call.cursor_page.unwrap_or(0).to_le_bytes());
    })?;
    w.str(&call.call_id)?;
    w.str(&call.tool_id)?;
    if let Some(caller) = &call.caller_id {
        w.str(caller)?;
    }
    w.strs(call.granted_capabilities.iter().map(String::as_str))?;
    match &call.outcome {
        Outcome::Success | Outcome::ToolNotFound => {}
        Outcome::ExecutionFailed { code, retryable } => {
            w.str(code)?;
            w.bool(*retryable)?;
        }
        Outcome::InvalidArgs { message } => w.str(message)?,
        Outcome::CapabilityDenied { missing } => {
            w.strs(missing.iter().map(String::as_str))?;
        }
        Outcome::RateLimited { retry_after_ms } => w.opt_u64(*retry_after_ms)?,
    }
    w.str(&call.tier)?;
    Ok(())
}

/// A shaped event slot's fixed part.
pub(super) struct ShapedHead {
    pub sequence: u64,
    pub created_at: i64,
    pub shape: u32,
    pub n_values: u16,
}

/// A call slot's fixed part.
pub(super) struct CallHead {
    pub ts: i64,
    pub duration_ms: u64,
    pub schema_version: u32,
    pub dry_run: bool,
    pub secrets_resolved: bool,
    pub has_caller: bool,
    pub outcome_tag: u8,
    pub cursor_page: Option<u32>,
}

/// A field value as a slot holds it, a string as its bytes.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) enum SlotValue<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'a [u8]),
}

/// Reads a slot, checking every bound.
#[derive(Clone, Debug)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    /// Bytes read so far.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }
    pub(super) fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }
    pub(super) fn fail<T>(&self, what: &'static str) -> Result<T, SlotError> {
        Err(SlotError {
            what,
            offset: self.pos,
        })
    }
    #[inline(always)]
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], SlotError> {
        match self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end))
        {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => self.fail("read past the end"),
        }
    }
    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SlotError> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
    #[inline(always)]
    pub(super) fn u8(&mut self) -> Result<u8, SlotError> {
        Ok(self.array::<1>()?[0])
    }
    #[inline(always)]
    pub(super) fn bool(&mut self) -> Result<bool, SlotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => self.fail("bool is neither 0 nor 1"),
        }
    }
    #[inline(always)]
    pub(super) fn u16(&mut self) -> Result<u16, SlotError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    #[inline(always)]
    pub(super) fn u32(&mut self) -> Result<u32, SlotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    #[inline(always)]
    pub(super) fn u64(&mut self) -> Result<u64, SlotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    #[inline(always)]
    pub(super) fn i64(&mut self) -> Result<i64, SlotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    #[inline(always)]
    pub(super) fn f64(&mut self) -> Result<f64, SlotError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    pub(super) fn ts(&mut self) -> Result<Timestamp, SlotError> {
        Ok(Timestamp::from_unix_nanos(self.i64()?))
    }
    pub(super) fn str_ref(&mut self) -> Result<&'a str, SlotError> {
        let at = self.pos + 4;
        let bytes = self.str_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| SlotError {
            what: "string is not UTF-8",
            offset: at,
        })
    }
    /// A string's bytes, not checked as UTF-8: for the transcoder, which only copies
    /// them into a msgpack string. The encoder wrote every one from a `&str`.
    #[inline(always)]
    pub(super) fn str_bytes(&mut self) -> Result<&'a [u8], SlotError> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn str(&mut self) -> Result<String, SlotError> {
        self.str_ref().map(str::to_owned)
    }
    pub(super) fn opt_u64(&mut self) -> Result<Option<u64>, SlotError> {
        Ok(if self.bool()? {
            Some(self.u64()?)
        } else {
            None
        })
    }
    fn strs(&mut self) -> Result<Vec<String>, SlotError> {
        let n = self.u16()?;
        (0..n).map(|_| self.str()).collect()
    }
    /// A shaped event's fixed part, after its kind byte.
    #[inline(always)]
    pub(super) fn shaped_head(&mut self) -> Result<ShapedHead, SlotError> {
        Ok(ShapedHead {
            sequence: self.u64()?,
            created_at: self.i64()?,
            shape: self.u32()?,
            n_values: self.u16()?,
        })
    }
    /// A call's fixed part, after its kind byte.
    pub(super) fn call_head(&mut self) -> Result<CallHead, SlotError> {
        let ts = self.i64()?;
        let duration_ms = self.u64()?;
        let schema_version = self.u32()?;
        let dry_run = self.bool()?;
        let secrets_resolved = self.bool()?;
        let has_caller = self.bool()?;
        let outcome_tag = self.u8()?;
        let has_cursor = self.bool()?;
        let page = self.u32()?;
        if usize::from(outcome_tag) >= OutcomeKind::ALL.len() {
            return self.fail("unknown outcome");
        }
        Ok(CallHead {
            ts,
            duration_ms,
            schema_version,
            dry_run,
            secrets_resolved,
            has_caller,
            outcome_tag,
            cursor_page: has_cursor.then_some(page),
        })
    }
    /// One field value, borrowing its string from the slot.
    pub(super) fn field_value(&mut self) -> Result<FieldValue<'a>, SlotError> {
        Ok(match self.field_bytes()? {
            SlotValue::Null => FieldValue::Null,
            SlotValue::Bool(v) => FieldValue::Bool(v),
            SlotValue::I64(v) => FieldValue::I64(v),
            SlotValue::U64(v) => FieldValue::U64(v),
            SlotValue::F64(v) => FieldValue::F64(v),
            SlotValue::Str(bytes) => match std::str::from_utf8(bytes) {
                Ok(v) => FieldValue::Str(v),
                Err(_) => return self.fail("string is not UTF-8"),
            },
        })
    }
    /// One field value, a string as its unchecked bytes (see [`Reader::str_bytes`]).
    ///
    /// Always inlined, like the readers under it: called, its result came back through
    /// memory stored in parts and loaded whole, a store-forwarding stall per field.
    #[inline(always)]
    pub(super) fn field_bytes(&mut self) -> Result<SlotValue<'a>, SlotError> {
        Ok(match self.u8()? {
            TAG_NULL => SlotValue::Null,
            TAG_BOOL => SlotValue::Bool(self.bool()?),
            TAG_I64 => SlotValue::I64(self.i64()?),
            TAG_U64 => SlotValue::U64(self.u64()?),
            TAG_F64 => SlotValue::F64(self.f64()?),
            TAG_STR => SlotValue::Str(self.str_bytes()?),
            _ => return self.fail("unknown field tag"),
        })
    }
    /// One field value as JSON (a NaN or infinity, which has no JSON form, is null).
    fn value(&mut self) -> Result<Value, SlotError> {
        self.field_value().map(FieldValue::to_value)
    }
    fn fields(&mut self) -> Result<Payload, SlotError> {
        let n = self.u16()?;
        self.fields_n(n)
    }
    fn fields_n(&mut self, n: u16) -> Result<Payload, SlotError> {
        let mut out = Payload::new();
        for _ in 0..n {
            let key = self.str()?;
            let value = self.value()?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

/// Decodes a slot written by one of the `encode_*` functions; an event of a shape
/// finds its shape in `shapes`.
pub(crate) fn decode(slot: &[u8], shapes: &mut ShapeCache) -> Result<Record, SlotError> {
    let mut r = Reader { buf: slot, pos: 0 };
    let record = match r.u8()? {
        KIND_EVENT => {
            let sequence = r.u64()?;
            let created_at = r.ts()?;
            let n_fields = r.u16()?;
            Record::EventAppended(RunEvent {
                run_id: r.str()?,
                sequence,
                event_type: r.str()?,
                created_at,
                payload: r.fields_n(n_fields)?,
            })
        }
        KIND_SHAPED_EVENT => {
            let head = r.shaped_head()?;
            let run_id = r.str()?;
            let Some(shape) = shapes.get(head.shape) else {
                return r.fail("unknown event shape");
            };
            if shape.keys.len() != usize::from(head.n_values) {
                return r.fail("value count is not the shape's");
            }
            let mut payload = Payload::new();
            for key in &shape.keys {
                payload.insert(key.clone(), r.value()?);
            }
            Record::EventAppended(RunEvent {
                run_id,
                sequence: head.sequence,
                event_type: shape.event_type.clone(),
                created_at: Timestamp::from_unix_nanos(head.created_at),
                payload,
            })
        }
        KIND_RUN_STARTED => Record::RunStarted(Run {
            id: r.str()?,
            skill_id: r.str()?,
            caller_id: r.str()?,
            channel_id: r.str()?,
            parent_run_id: r.str()?,
            started_at: r.ts()?,
            inputs: r.fields()?,
            ..Run::default()
        }),
        KIND_RUN_FINISHED => {
            let run_id = r.str()?;
            let finished_at = r.ts()?;
            let status_idx = r.u8()? as usize;
            let Some(&status) = Status::ALL.get(status_idx) else {
                return r.fail("unknown status");
            };
            Record::RunFinished(RunFinished {
                run_id,
                finished_at,
                stats: RunStats {
                    status,
                    output: r.str()?,
                    error: r.str()?,
                    tool_calls: r.u64()?,
                    runtime_seconds: r.f64()?,
                    input_tokens: r.u64()?,
                    output_tokens: r.u64()?,
                    thinking_tokens: r.u64()?,
                },
            })
        }
        KIND_CALL => {
            let head = r.call_head()?;
            let call_id = r.str()?;
            let tool_id = r.str()?;
            let caller_id = if head.has_caller {
                Some(r.str()?)
            } else {
                None
            };
            let granted_capabilities = r.strs()?;
            let outcome = match head.outcome_tag {
                0 => Outcome::Success,
                1 => Outcome::ExecutionFailed {
                    code: r.str()?,
                    retryable: r.bool()?,
                },
                2 => Outcome::InvalidArgs { message: r.str()? },
                3 => Outcome::CapabilityDenied { missing: r.strs()? },
                4 => Outcome::RateLimited {
                    retry_after_ms: r.opt_u64()?,
                },
                5 => Outcome::ToolNotFound,
                _ => return r.fail("unknown outcome"),
            };
            Record::CallRecorded(CallEvent {
                ts: Timestamp::from_unix_nanos(head.ts),
                call_id,
                tool_id,
                caller_id,
                granted_capabilities,
                duration_ms: head.duration_ms,
                outcome,
                tier: r.str()?,
                dry_run: head.dry_run,
                schema_version: head.schema_version,
                secrets_resolved: head.secrets_resolved,
                cursor_page: head.cursor_page,
            })
        }
        _ => return r.fail("unknown slot kind"),
    };
    if r.pos != slot.len() {
        return r.fail("bytes left after the record");
    }
    Ok(record)
}

/// Encodes `view` into a new vector (tests).
#[cfg(test)]
pub(crate) fn encode_to_vec(view: Inline<'_>) -> Vec<u8> {
    let mut measure = Measure::new(usize::MAX);
    view.encode(&mut measure).expect("has an inline form");
    let mut buf = vec![0u8; measure.len];
    view.encode(&mut SliceSink {
        buf: &mut buf,
        pos: 0,
    })
    .expect("fits what was measured");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::shape::ShapeTable;
    use crate::model::CALL_EVENT_SCHEMA_VERSION;
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::Arc;

    /// A field value as a strategy makes it: owned, borrowed for each case.
    #[derive(Clone, Debug)]
    enum Owned {
        Plain(u8, i64, String),
        Json(Value),
    }

    impl Owned {
        fn as_ref(&self) -> FieldValue<'_> {
            match self {
                Owned::Plain(0, _, _) => FieldValue::Null,
                Owned::Plain(1, n, _) => FieldValue::Bool(*n % 2 == 0),
                Owned::Plain(2, n, _) => FieldValue::I64(*n),
                Owned::Plain(3, n, _) => FieldValue::U64(n.unsigned_abs()),
                Owned::Plain(4, n, _) => FieldValue::F64(*n as f64),
                Owned::Plain(_, _, text) => FieldValue::Str(text),
                Owned::Json(json) => FieldValue::Json(json),
            }
        }
    }

    fn owned_value() -> impl Strategy<Value = Owned> {
        let json = prop_oneof![
            Just(json!(null)),
            any::<bool>().prop_map(|b| json!(b)),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("JSON numbers are finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,40}".prop_map(|s| json!(s)),
            Just(json!([1])),
            Just(json!({"a": {}})),
        ];
        prop_oneof![
            (0u8..6, any::<i64>(), ".{0,70}")
                .prop_map(|(kind, n, text)| Owned::Plain(kind, n, text)),
            json.prop_map(Owned::Json),
        ]
    }

    proptest! {
        /// A shaped event's length, summed, is what the encoder writes (and `None`
        /// exactly where it refuses), under any limit.
        #[test]
        fn a_shaped_events_length_is_its_encodings(
            run_id in ".{0,40}",
            values in prop::collection::vec(owned_value(), 0..40),
            shape in any::<u32>(),
            max in prop_oneof![Just(usize::MAX), 0usize..700],
        ) {
            let refs: Vec<FieldValue<'_>> = values.iter().map(Owned::as_ref).collect();
            let event = ShapedEventRef {
                run_id: &run_id,
                sequence: 1,
                values: &refs,
                created_at: Timestamp::from_unix_nanos(0),
            };
            let view = Inline::Shaped { shape, event: &event };
            let measured = view.encoded_len(max);
            prop_assert_eq!(shaped_len(&event, max), measured);
            check_length_and_stores(view, max)?;
        }

        /// An event's length, summed without encoding, is what the encoder writes
        /// (and `None` exactly where it refuses), under any limit.
        #[test]
        fn an_events_length_is_its_encodings(
            run_id in ".{0,40}",
            event_type in ".{0,20}",
            fields in prop::collection::vec((".{0,20}", owned_value()), 0..40),
            max in prop_oneof![Just(usize::MAX), 0usize..700],
        ) {
            let refs: Vec<(&str, FieldValue<'_>)> =
                fields.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect();
            let event = EventRef {
                run_id: &run_id,
                sequence: 7,
                event_type: &event_type,
                fields: &refs,
                created_at: Timestamp::from_unix_nanos(9),
            };
            check_length_and_stores(Inline::Event(&event), max)?;
        }

        /// The same for every record kind the recorder can take inline, from the
        /// codec's arbitrary records: a call's length is summed too, the others'
        /// counted.
        #[test]
        fn every_kinds_length_is_its_encodings(
            record in crate::codec::arbitrary::record(),
            max in prop_oneof![Just(usize::MAX), 0usize..400],
        ) {
            if let Some(view) = Inline::of(&record) {
                check_length_and_stores(view, max)?;
            }
        }

        /// A string written at any place in a buffer with any room after it: the
        /// bytes it owes are the length and the string, those before it are kept, and
        /// it refuses exactly when they do not fit.
        #[test]
        fn a_short_string_is_stored_as_its_bytes(
            text in prop_oneof![".{0,24}", "[a-z]{0,40}"],
            before in 0usize..12,
            room in 0usize..48,
        ) {
            let owed = 4 + text.len();
            let mut buf = vec![0xEE; before + room];
            let mut sink = SliceSink { buf: &mut buf, pos: before };
            let written = sink.str(&text);
            if room < owed {
                prop_assert_eq!(written, Err(Refused));
                return Ok(());
            }
            prop_assert_eq!(written, Ok(()));
            prop_assert_eq!(sink.pos, before + owed);
            prop_assert!(buf[..before].iter().all(|&b| b == 0xEE));
            let mut expected = (text.len() as u32).to_le_bytes().to_vec();
            expected.extend_from_slice(text.as_bytes());
            prop_assert_eq!(&buf[before..before + owed], &expected[..]);
        }
    }

    /// `view`'s length under `max` is what the encoder writes (and `None` exactly where
    /// it refuses), and the slice sink's short-string stores write what the
    /// byte-by-byte encoding does.
    fn check_length_and_stores(view: Inline<'_>, max: usize) -> Result<(), TestCaseError> {
        let mut measure = Measure::new(max);
        let measured = view.encode(&mut measure).ok().map(|()| measure.len);
        prop_assert_eq!(view.encoded_len(max), measured);
        if let Some(len) = measured {
            let mut buf = vec![0u8; len];
            let mut sink = slice(&mut buf);
            prop_assert!(view.encode(&mut sink).is_ok());
            prop_assert_eq!(sink.pos, len);
            let mut reference = Bytes(Vec::new());
            prop_assert!(view.encode(&mut reference).is_ok());
            prop_assert_eq!(&buf, &reference.0);
        }
        Ok(())
    }

    /// Encodes byte by byte through the trait's own methods: the reference the slice
    /// sink's faster stores are held to.
    struct Bytes(Vec<u8>);

    impl Sink for Bytes {
        fn bytes(&mut self, bytes: &[u8]) -> Result<(), Refused> {
            self.0.extend_from_slice(bytes);
            Ok(())
        }
    }

    fn round_trip(view: Inline<'_>) -> Record {
        round_trip_with(view, &mut no_shapes())
    }

    /// An empty shape table's cache.
    fn no_shapes() -> ShapeCache {
        ShapeCache::new(Arc::default())
    }

    fn round_trip_with(view: Inline<'_>, shapes: &mut ShapeCache) -> Record {
        let mut slot = vec![0u8; 4096];
        let mut sink = slice(&mut slot);
        view.encode(&mut sink).expect("fits");
        let len = sink.pos;
        // Measuring gives the length writing takes, and refuses one byte less.
        let mut measure = Measure::new(len);
        view.encode(&mut measure).expect("measures");
        assert_eq!(measure.len, len);
        assert_eq!(view.encode(&mut Measure::new(len - 1)), Err(Refused));
        let record = decode(&slot[..len], shapes).expect("decodes");
        // Every strict prefix is refused, never misread.
        for cut in 0..len {
            assert!(
                decode(&slot[..cut], shapes).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        record
    }

    fn slice(buf: &mut [u8]) -> SliceSink<'_> {
        SliceSink { buf, pos: 0 }
    }

    #[test]
    fn an_event_with_every_field_type_round_trips() {
        let json = json!("from json");
        let fields = [
            ("null", FieldValue::Null),
            ("bool", FieldValue::Bool(true)),
            ("neg", FieldValue::I64(-5)),
            ("big", FieldValue::U64(u64::MAX)),
            ("pi", FieldValue::F64(3.25)),
            ("text", FieldValue::Str("héllo")),
            ("json", FieldValue::Json(&json)),
        ];
        let event = EventRef {
            run_id: "run-1",
            sequence: 7,
            event_type: "step",
            fields: &fields,
            created_at: Timestamp::from_unix_nanos(1_700_000_000_123_456_789),
        };
        let Record::EventAppended(decoded) = round_trip(Inline::Event(&event)) else {
            panic!("wrong kind");
        };
        assert_eq!(decoded, event.to_owned_event());
        let owned = Record::EventAppended(decoded.clone());
        assert_eq!(round_trip(Inline::RunEvent(&decoded)), owned);
        assert_eq!(decoded.payload["big"], json!(u64::MAX));
        assert_eq!(decoded.payload["json"], json!("from json"));
    }

    #[test]
    fn a_run_start_round_trips_from_a_view_and_from_an_owned_run() {
        let inputs = [("prompt", FieldValue::Str("hi")), ("n", FieldValue::U64(3))];
        let view = RunRef {
            id: "run-1",
            skill_id: "summarize",
            caller_id: "alice",
            channel_id: "web",
            parent_run_id: "run-0",
            inputs: &inputs,
            started_at: Timestamp::from_unix_millis(5),
        };
        let expected = Record::RunStarted(view.to_owned_run());
        assert_eq!(round_trip(Inline::RunStarted(&view)), expected);
        let Record::RunStarted(run) = &expected else {
            unreachable!()
        };
        assert_eq!(round_trip(Inline::Run(run)), expected);
    }

    #[test]
    fn a_run_finish_round_trips_with_every_status() {
        for status in Status::ALL {
            let stats = RunStats {
                status,
                output: "out".into(),
                error: "err".into(),
                tool_calls: 4,
                runtime_seconds: 1.5,
                input_tokens: 1,
                output_tokens: 2,
                thinking_tokens: 3,
            };
            let at = Timestamp::from_unix_millis(9);
            let decoded = round_trip(Inline::RunFinished {
                run_id: "run-1",
                stats: &stats,
                finished_at: at,
            });
            assert_eq!(
                decoded,
                Record::RunFinished(RunFinished {
                    run_id: "run-1".into(),
                    stats: stats.clone(),
                    finished_at: at,
                })
            );
        }
    }

    #[test]
    fn a_call_round_trips_with_every_outcome() {
        let outcomes = [
            Outcome::Success,
            Outcome::ExecutionFailed {
                code: "E1".into(),
                retryable: true,
            },
            Outcome::InvalidArgs {
                message: "bad".into(),
            },
            Outcome::CapabilityDenied {
                missing: vec!["net".into(), "fs".into()],
            },
            Outcome::RateLimited {
                retry_after_ms: Some(250),
            },
            Outcome::RateLimited {
                retry_after_ms: None,
            },
            Outcome::ToolNotFound,
        ];
        for (idx, outcome) in outcomes.into_iter().enumerate() {
            let call = CallEvent {
                ts: Timestamp::from_unix_millis(1),
                call_id: format!("call-{idx}"),
                tool_id: "ref:echo".into(),
                caller_id: (idx % 2 == 0).then(|| "bob".to_string()),
                granted_capabilities: vec!["read".into()],
                duration_ms: 17,
                outcome,
                tier: "warm".into(),
                dry_run: idx % 3 == 0,
                schema_version: CALL_EVENT_SCHEMA_VERSION,
                secrets_resolved: true,
                cursor_page: (idx % 2 == 1).then_some(2),
            };
            assert_eq!(
                round_trip(Inline::Call(&call)),
                Record::CallRecorded(call.clone())
            );
        }
    }

    #[test]
    fn what_does_not_fit_or_has_no_inline_form_is_refused() {
        let mut slot = [0u8; 64];
        let long = "x".repeat(100);
        let fields = [("text", FieldValue::Str(&long))];
        let event = EventRef {
            run_id: "r",
            sequence: 1,
            event_type: "step",
            fields: &fields,
            created_at: Timestamp::EPOCH,
        };
        assert_eq!(encode_event(&mut slice(&mut slot), &event), Err(Refused));
        let nested = json!({"a": [1, 2]});
        let fields = [("obj", FieldValue::Json(&nested))];
        let event = EventRef {
            fields: &fields,
            ..event
        };
        assert_eq!(
            encode_event(&mut slice(&mut [0u8; 4096]), &event),
            Err(Refused)
        );
        assert_eq!(
            Inline::Event(&event).encode(&mut Measure::new(usize::MAX)),
            Err(Refused)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let shapes = &mut no_shapes();
        assert!(decode(&[], shapes).is_err());
        assert!(decode(&[99], shapes).is_err());
        // A string length far past the end.
        assert!(decode(&[KIND_EVENT, 0xff, 0xff, 0xff, 0xff], shapes).is_err());
        // Invalid UTF-8 in the run id.
        assert!(decode(&[KIND_EVENT, 1, 0, 0, 0, 0xff], shapes).is_err());
    }

    #[test]
    fn a_shaped_event_decodes_to_the_event_it_stands_for() {
        let table = Arc::new(ShapeTable::default());
        let mut shapes = ShapeCache::new(Arc::clone(&table));
        table.register("other", &["x"]).unwrap();
        let shape = table.register("tool_call", &["tool", "ok", "n"]).unwrap();
        let json = json!("from json");
        let values = [
            FieldValue::Str("echo"),
            FieldValue::Bool(true),
            FieldValue::Json(&json),
        ];
        let event = ShapedEventRef {
            run_id: "run-1",
            sequence: 7,
            values: &values,
            created_at: Timestamp::from_unix_nanos(1_700_000_000),
        };
        let view = Inline::Shaped {
            shape: shape.id(),
            event: &event,
        };
        assert_eq!(
            round_trip_with(view, &mut shapes),
            Record::EventAppended(event.to_owned_event(&shape))
        );
        // A shape the table does not have, or a value count not the shape's, is an
        // error (a slot is only ever written with its shape's count).
        let slot = encode_to_vec(view);
        assert!(decode(&slot, &mut no_shapes()).is_err());
        let mut short = slot.clone();
        short[21] = 2;
        assert!(decode(&short, &mut shapes).is_err());
    }
}
