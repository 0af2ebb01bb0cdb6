//! Slot to payload: the committer writes an event's or a call's msgpack payload straight
//! from its inline slot, without building the owned record first.
//!
//! Where it sits: in the committer, between popping a slot (`slot.rs`) and appending
//! the payload (`AuditLog::append_encoded`). Building a `Record` from a slot costs an
//! allocation per string and a B-tree for the payload map, and encoding it walks it again
//! through serde; writing the msgpack from the slot's bytes does neither. Run starts and
//! finishes (two per run) keep the general path: decode to a `Record`, then encode.
//!
//! # Invariants
//! - The bytes written are exactly those `Record::encode_payload` writes for the record
//!   [`super::slot::decode`] reads from the same slot (the tests compare them byte for
//!   byte), so the log, recovery and every reader see no difference. In particular a
//!   payload map comes out sorted by key with the last of repeated keys kept, as the
//!   `Payload` map does.
//! - A slot that does not decode is an error and leaves `out` as it was; a slot with no
//!   transcoder (a run start or finish, or an event of more than `FIELDS_MAX` fields)
//!   returns `None` and leaves `out` as it was.
//! - Strings are copied as bytes, not checked again as UTF-8 (debug builds do check):
//!   the encoder wrote each from a `&str` into memory only this process writes. The
//!   strings read as text (an event's run id, its key in the log; a call's tier) are
//!   checked, as `slot::decode` checks every string.
//! - The msgpack is written by hand (`Out`), the same bytes as `rmp::encode` (tested).
//! - Nothing allocates here except `out` growing.
//! - What the index takes of the record (an event's run id and sequence; a call's time,
//!   ids and outcome kind) is handed on with the bytes, equal to what `index::keys`
//!   reads from them (tested; debug builds also check it at every append), so the log
//!   checks and indexes the record without reading its payload back.

use crate::codec::RecordKind;
use crate::model::OutcomeKind;

use super::shape::{ShapeCache, ShapeDef};
use super::slot::{
    CallHead, KIND_CALL, KIND_EVENT, KIND_SHAPED_EVENT, Reader, ShapedHead, SlotError, SlotValue,
};

/// The most payload fields an event may have and still be transcoded.
const FIELDS_MAX: usize = crate::limits::INGEST_TRANSCODE_FIELDS_MAX;

/// What the committer needs to know of a transcoded record besides its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transcoded<'a> {
    pub kind: RecordKind,
    /// For an event: its run id (in the slot) and its sequence.
    pub event: Option<(&'a str, u64)>,
    /// For a call: what the index takes of it, as bytes of the slot.
    pub call: Option<CallKey<'a>>,
}

/// What the index takes of a call, read from its slot: the fields `index::keys::call`
/// reads from the payload written for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallKey<'a> {
    pub ts: i64,
    pub call_id: &'a [u8],
    pub tool_id: &'a [u8],
    pub caller_id: Option<&'a [u8]>,
    pub kind: OutcomeKind,
}

/// A payload buffer written in place: the payload is its first `len` bytes, and the
/// bytes after them are room kept from earlier payloads, never zeroed again. A payload
/// is written into that room as a slice, with no growth check per byte.
#[derive(Debug, Default)]
pub(crate) struct PayloadBuf {
    bytes: Vec<u8>,
    len: usize,
}

impl PayloadBuf {
    /// The payload.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Bytes held, room included.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Makes the payload what `write` writes, given `room` bytes (zeroed only when it
    /// grows); on `None` or an error there is no payload.
    #[inline(always)]
    fn write<'a>(
        &mut self,
        room: usize,
        write: impl FnOnce(&mut Out<'_>) -> Result<Option<Transcoded<'a>>, SlotError>,
    ) -> Result<Option<Transcoded<'a>>, SlotError> {
        if self.bytes.len() < room {
            self.bytes.resize(room, 0);
        }
        let mut w = Out {
            buf: &mut self.bytes,
            pos: 0,
        };
        let result = write(&mut w);
        if matches!(result, Ok(Some(_))) {
            self.len = w.pos;
        }
        result
    }

    /// Makes the payload what `encode` appends to an empty `Vec`.
    pub fn encode_with<E>(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.bytes.clear();
        self.len = 0;
        encode(&mut self.bytes)?;
        self.len = self.bytes.len();
        Ok(())
    }
}

/// Makes `out`'s payload the msgpack payload of the record in `slot`; `None` when this
/// kind has no transcoder. An event of a shape finds its shape in `shapes`. On `None`
/// or an error `out` holds no payload.
pub(crate) fn transcode<'a>(
    slot: &'a [u8],
    out: &mut PayloadBuf,
    shapes: &mut ShapeCache,
) -> Result<Option<Transcoded<'a>>, SlotError> {
    out.len = 0;
    let mut r = Reader::new(slot);
    let kind = r.u8()?;
    match kind {
        KIND_EVENT => out.write(payload_bound(slot.len()), |w| event(slot, &mut r, w)),
        KIND_CALL => out.write(payload_bound(slot.len()), |w| call(&mut r, w)),
        KIND_SHAPED_EVENT => shaped_event(slot, r, out, shapes),
        _ => Ok(None),
    }
}

/// The most payload bytes a slot of `slot_len` bytes transcodes to, besides an event
/// shape's strings (`ShapeDef::payload_bytes`). Every item of a slot takes at least one
/// byte and its msgpack at most twice its slot bytes (an empty string: a 4-byte length,
/// a 1-byte header); the map keys and headers the payload adds are under 256 bytes for
/// any kind.
fn payload_bound(slot_len: usize) -> usize {
    2 * slot_len + 256
}

/// Writes msgpack into a slice with room for it, by hand: the same bytes as
/// `rmp::encode` (the smallest form of every length and integer, big-endian), without
/// its `Write` plumbing and error results, which cost more than the bytes for the short
/// values of a record. Writing past the slice is a bug in [`payload_bound`] and panics.
struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Out<'_> {
    #[inline]
    fn byte(&mut self, b: u8) {
        self.buf[self.pos] = b;
        self.pos += 1;
    }
    #[inline(always)]
    fn bytes(&mut self, v: &[u8]) {
        let end = self.pos + v.len();
        super::copy::copy_short(&mut self.buf[self.pos..end], v);
        self.pos = end;
    }
    /// A marker byte, then a number's big-endian bytes.
    #[inline]
    fn marked<const N: usize>(&mut self, marker: u8, be_bytes: [u8; N]) {
        self.byte(marker);
        self.bytes(&be_bytes);
    }
    /// A map or array length: `fix` holds lengths below 16, then 16 and 32 bits.
    #[inline]
    fn container_len(&mut self, len: usize, fix: u8, marker16: u8) {
        let len = u32::try_from(len).expect("slot counts fit u32");
        if len < 16 {
            self.byte(fix | len as u8);
        } else if let Ok(len) = u16::try_from(len) {
            self.marked(marker16, len.to_be_bytes());
        } else {
            self.marked(marker16 + 1, len.to_be_bytes());
        }
    }
    #[inline]
    fn map_len(&mut self, len: usize) {
        self.container_len(len, 0x80, 0xde);
    }
    #[inline]
    fn array_len(&mut self, len: usize) {
        self.container_len(len, 0x90, 0xdc);
    }
    /// A string given as its bytes, which are UTF-8: they were written into the slot
    /// from a `&str` and copied since (debug builds check).
    #[inline(always)]
    fn str(&mut self, v: &[u8]) {
        debug_assert!(std::str::from_utf8(v).is_ok(), "a slot string is UTF-8");
        match u8::try_from(v.len()) {
            Ok(len) if len < 32 => self.byte(0xa0 | len),
            _ => self.str_len(v.len()),
        }
        self.bytes(v);
    }
    /// The header of a string of 32 bytes or more.
    #[cold]
    fn str_len(&mut self, len: usize) {
        let len = u32::try_from(len).expect("slot strings fit u32");
        if let Ok(len) = u8::try_from(len) {
            self.marked(0xd9, [len]);
        } else if let Ok(len) = u16::try_from(len) {
            self.marked(0xda, len.to_be_bytes());
        } else {
            self.marked(0xdb, len.to_be_bytes());
        }
    }
    #[inline]
    fn uint(&mut self, v: u64) {
        if v < 128 {
            self.byte(v as u8);
        } else if let Ok(v) = u8::try_from(v) {
            self.marked(0xcc, [v]);
        } else if let Ok(v) = u16::try_from(v) {
            self.marked(0xcd, v.to_be_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            self.marked(0xce, v.to_be_bytes());
        } else {
            self.marked(0xcf, v.to_be_bytes());
        }
    }
    /// A signed integer: a non-negative one as unsigned, as `rmp::encode::write_sint`.
    #[inline]
    fn sint(&mut self, v: i64) {
        if let Ok(v) = u64::try_from(v) {
            self.uint(v);
        } else if v >= -32 {
            self.byte(v as u8);
        } else if let Ok(v) = i8::try_from(v) {
            self.marked(0xd0, v.to_be_bytes());
        } else if let Ok(v) = i16::try_from(v) {
            self.marked(0xd1, v.to_be_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.marked(0xd2, v.to_be_bytes());
        } else {
            self.marked(0xd3, v.to_be_bytes());
        }
    }
    #[inline]
    fn bool(&mut self, v: bool) {
        self.byte(if v { 0xc3 } else { 0xc2 });
    }
    #[inline]
    fn nil(&mut self) {
        self.byte(0xc0);
    }
    /// A field value as its JSON value serializes: a non-negative integer is unsigned,
    /// a NaN or infinity (no JSON form) is null.
    #[inline(always)]
    fn value(&mut self, value: SlotValue<'_>) {
        match value {
            SlotValue::Null => self.nil(),
            SlotValue::Bool(v) => self.bool(v),
            SlotValue::I64(v) => self.sint(v),
            SlotValue::U64(v) => self.uint(v),
            SlotValue::F64(v) if v.is_finite() => {
                self.marked(0xcb, v.to_bits().to_be_bytes());
            }
            SlotValue::F64(_) => self.nil(),
            SlotValue::Str(v) => self.str(v),
        }
    }
    /// A string list from a reader at its count.
    fn strs(&mut self, r: &mut Reader<'_>) -> Result<(), SlotError> {
        let n = r.u16()?;
        self.array_len(usize::from(n));
        for _ in 0..n {
            self.str(r.str_bytes()?);
        }
        Ok(())
    }
}

/// Where one payload field lies in the slot: its key's bytes (its value follows them),
/// with the key's first bytes as a number that orders keys as their bytes do, so
/// sorting the few keys of an event rarely compares the bytes themselves.
#[derive(Copy, Clone, Debug, Default)]
struct Entry {
    key_prefix: u64,
    key_start: u32,
    key_end: u32,
}

impl Entry {
    fn key(self, slot: &[u8]) -> &[u8] {
        &slot[self.key_start as usize..self.key_end as usize]
    }

    /// The order of the entries' keys (byte order, as `str` orders).
    #[inline]
    fn cmp_key(self, other: Entry, slot: &[u8]) -> std::cmp::Ordering {
        self.key_prefix
            .cmp(&other.key_prefix)
            .then_with(|| self.key(slot).cmp(other.key(slot)))
    }
}

/// The first 8 bytes of the key at `slot[start..end]`, big-endian, zero-padded: a
/// shorter key orders first among keys it is a prefix of, and ties (equal first bytes)
/// compare the bytes.
#[inline(always)]
fn key_prefix(slot: &[u8], start: usize, end: usize) -> u64 {
    // One load of the 8 bytes from the key's start, where the slot has them (a key is
    // followed by its value), with the bytes past the key masked off; built in a
    // register either way (copying bytes into an array and loading it as a word
    // stalls on store forwarding).
    let len = end - start;
    match slot.get(start..).and_then(<[u8]>::first_chunk::<8>) {
        Some(first) if len >= 8 => u64::from_be_bytes(*first),
        Some(first) => u64::from_be_bytes(*first) & !(u64::MAX >> (8 * len)),
        None => (0..8).fold(0, |prefix, i| {
            let byte = if i < len { slot[start + i] } else { 0 };
            prefix << 8 | u64::from(byte)
        }),
    }
}

/// Fields an event may have for [`event`]'s notes to live in a small array; more (up
/// to `FIELDS_MAX`) take one of that size.
const FIELDS_FEW: usize = 8;

/// `RunEvent { run_id, sequence, event_type, payload, created_at }`.
fn event<'a>(
    slot: &'a [u8],
    r: &mut Reader<'a>,
    w: &mut Out<'_>,
) -> Result<Option<Transcoded<'a>>, SlotError> {
    let sequence = r.u64()?;
    let created_at = r.i64()?;
    let n_fields = usize::from(r.u16()?);
    // The run id is the one string used as text (the event's key): checked as UTF-8.
    let run_id = r.str_ref()?;
    let event_type = r.str_bytes()?;
    let head = EventHead {
        run_id,
        sequence,
        event_type,
        created_at,
    };
    // The notes are an array on the stack, zeroed whole: one sized for a few fields
    // costs little to zero, and most events have few.
    match n_fields {
        0..=FIELDS_FEW => event_fields::<FIELDS_FEW>(slot, r, w, &head, n_fields),
        _ if n_fields <= FIELDS_MAX => event_fields::<FIELDS_MAX>(slot, r, w, &head, n_fields),
        _ => Ok(None),
    }
}

/// An event's fields besides its payload: the run id from the slot, the event type
/// from the slot or a shape.
struct EventHead<'a, 't> {
    run_id: &'a str,
    sequence: u64,
    event_type: &'t [u8],
    created_at: i64,
}

impl<'a> EventHead<'a, '_> {
    /// Writes `RunEvent { run_id, sequence, event_type, payload, created_at }` up to
    /// the payload's entries, a map of `n_fields`.
    #[inline(always)]
    fn write_start(&self, w: &mut Out<'_>, n_fields: usize) {
        w.map_len(5);
        w.str(b"run_id");
        w.str(self.run_id.as_bytes());
        w.str(b"sequence");
        w.uint(self.sequence);
        w.str(b"event_type");
        w.str(self.event_type);
        w.str(b"payload");
        w.map_len(n_fields);
    }

    /// Writes what follows the payload's entries.
    #[inline(always)]
    fn write_end(&self, w: &mut Out<'_>) -> Transcoded<'a> {
        w.str(b"created_at");
        w.sint(self.created_at);
        Transcoded {
            kind: RecordKind::EventAppended,
            event: Some((self.run_id, self.sequence)),
            call: None,
        }
    }
}

/// The rest of [`event`], for at most `N` fields.
///
/// Two passes over the payload's fields: the first checks them and notes where each
/// key lies, the second, after sorting those notes by key, writes the fields in key
/// order, the last of each key only, as inserting them one by one into the payload
/// map does.
#[inline(always)]
fn event_fields<'a, const N: usize>(
    slot: &'a [u8],
    r: &mut Reader<'a>,
    w: &mut Out<'_>,
    head: &EventHead<'a, 'a>,
    n_fields: usize,
) -> Result<Option<Transcoded<'a>>, SlotError> {
    let at = |pos: usize| u32::try_from(pos).expect("slots under 4 GiB");
    let mut entries = [Entry::default(); N];
    let entries = &mut entries[..n_fields];
    for entry in entries.iter_mut() {
        let key = r.str_bytes()?;
        let key_end = r.pos();
        r.field_bytes()?;
        let key_start = key_end - key.len();
        *entry = Entry {
            key_prefix: key_prefix(slot, key_start, key_end),
            key_start: at(key_start),
            key_end: at(key_end),
        };
    }
    if !r.is_at_end() {
        return r.fail("bytes left after the record");
    }
    // Insertion sort is stable, fast for a few fields, and one pass when in order. The
    // entry being placed stays in registers while greater ones move up (a swap went
    // through the stack and stalled on store forwarding). It stops at the greatest
    // entry not above the one placed, so a repeated key shows as an equal one there.
    let mut repeated = false;
    for i in 1..entries.len() {
        let entry = entries[i];
        let mut j = i;
        loop {
            let order = entries[j - 1].cmp_key(entry, slot);
            if order.is_gt() {
                entries[j] = entries[j - 1];
                j -= 1;
                if j > 0 {
                    continue;
                }
            } else {
                repeated |= order.is_eq();
            }
            break;
        }
        entries[j] = entry;
    }
    // Keep the last entry of each key, in place.
    let mut n_unique = entries.len();
    if repeated {
        n_unique = 0;
        for entry_idx in 0..entries.len() {
            let entry = entries[entry_idx];
            let last_of_key =
                (entries.get(entry_idx + 1)).is_none_or(|next| next.cmp_key(entry, slot).is_ne());
            if last_of_key {
                entries[n_unique] = entry;
                n_unique += 1;
            }
        }
    }
    head.write_start(w, n_unique);
    for entry in &entries[..n_unique] {
        w.str(entry.key(slot));
        w.value(Reader::new(&slot[entry.key_end as usize..]).field_bytes()?);
    }
    Ok(Some(head.write_end(w)))
}

/// An event of a shape: the record [`event`] writes for the same event, its type and
/// keys the shape's. The values are read once in slot order, noting where each starts,
/// and written in the shape's key order; a shape's keys are distinct.
fn shaped_event<'a>(
    slot: &'a [u8],
    mut r: Reader<'a>,
    out: &mut PayloadBuf,
    shapes: &mut ShapeCache,
) -> Result<Option<Transcoded<'a>>, SlotError> {
    let head = r.shaped_head()?;
    let Some(shape) = shapes.get(head.shape) else {
        return r.fail("unknown event shape");
    };
    let room = payload_bound(slot.len()) + shape.payload_bytes;
    out.write(room, |w| shaped_fields(slot, &mut r, w, &head, shape))
}

/// The rest of [`shaped_event`].
fn shaped_fields<'a>(
    slot: &'a [u8],
    r: &mut Reader<'a>,
    w: &mut Out<'_>,
    head: &ShapedHead,
    shape: &ShapeDef,
) -> Result<Option<Transcoded<'a>>, SlotError> {
    let n_values = usize::from(head.n_values);
    if n_values != shape.keys.len() || n_values > FIELDS_MAX {
        return r.fail("value count is not the shape's");
    }
    // The run id is the one string used as text (the event's key): checked as UTF-8.
    let run_id = r.str_ref()?;
    let mut starts = [0u32; FIELDS_MAX];
    for start in &mut starts[..n_values] {
        *start = u32::try_from(r.pos()).expect("slots under 4 GiB");
        r.field_bytes()?;
    }
    if !r.is_at_end() {
        return r.fail("bytes left after the record");
    }
    let head = EventHead {
        run_id,
        sequence: head.sequence,
        event_type: shape.event_type.as_bytes(),
        created_at: head.created_at,
    };
    head.write_start(w, n_values);
    for &i in &shape.order {
        let i = usize::from(i);
        w.str(shape.keys[i].as_bytes());
        w.value(Reader::new(&slot[starts[i] as usize..]).field_bytes()?);
    }
    Ok(Some(head.write_end(w)))
}

/// `CallEvent`, with `caller_id` and `cursor_page` left out when absent.
fn call<'a>(r: &mut Reader<'a>, w: &mut Out<'_>) -> Result<Option<Transcoded<'a>>, SlotError> {
    // Everything is read before anything is written: the map's fields come in another
    // order than the slot's. The two string lists are read again from where they start.
    let head = r.call_head()?;
    let call_id = r.str_bytes()?;
    let tool_id = r.str_bytes()?;
    let caller_id = if head.has_caller {
        Some(r.str_bytes()?)
    } else {
        None
    };
    let capabilities = r.clone();
    skip_strs(r)?;
    let outcome_at = r.clone();
    match head.outcome_tag {
        1 => {
            r.str_bytes()?;
            r.bool()?;
        }
        2 => {
            r.str_bytes()?;
        }
        3 => skip_strs(r)?,
        4 => {
            r.opt_u64()?;
        }
        _ => {}
    }
    let tier = r.str_ref()?;
    if !r.is_at_end() {
        return r.fail("bytes left after the record");
    }
    let CallHead {
        ts,
        duration_ms,
        schema_version,
        dry_run,
        secrets_resolved,
        outcome_tag,
        cursor_page,
        ..
    } = head;

    w.map_len(10 + usize::from(caller_id.is_some()) + usize::from(cursor_page.is_some()));
    w.str(b"ts");
    w.sint(ts);
    w.str(b"call_id");
    w.str(call_id);
    w.str(b"tool_id");
    w.str(tool_id);
    if let Some(caller_id) = caller_id {
        w.str(b"caller_id");
        w.str(caller_id);
    }
    w.str(b"granted_capabilities");
    w.strs(&mut capabilities.clone())?;
    w.str(b"duration_ms");
    w.uint(duration_ms);
    w.str(b"outcome");
    outcome(w, outcome_tag, &mut outcome_at.clone())?;
    w.str(b"tier");
    w.str(tier.as_bytes());
    w.str(b"dry_run");
    w.bool(dry_run);
    w.str(b"schema_version");
    w.uint(u64::from(schema_version));
    w.str(b"secrets_resolved");
    w.bool(secrets_resolved);
    if let Some(page) = cursor_page {
        w.str(b"cursor_page");
        w.uint(u64::from(page));
    }
    Ok(Some(Transcoded {
        kind: RecordKind::CallRecorded,
        event: None,
        call: Some(CallKey {
            ts,
            call_id,
            tool_id,
            caller_id,
            kind: OutcomeKind::ALL[usize::from(outcome_tag)],
        }),
    }))
}

/// Passes over a string list.
fn skip_strs(r: &mut Reader<'_>) -> Result<(), SlotError> {
    for _ in 0..r.u16()? {
        r.str_bytes()?;
    }
    Ok(())
}

/// The outcome of tag `tag`, its fields read from `r`, internally tagged: `kind` first,
/// then the variant's fields.
fn outcome(w: &mut Out<'_>, tag: u8, r: &mut Reader<'_>) -> Result<(), SlotError> {
    let Some(kind) = OutcomeKind::ALL.get(usize::from(tag)) else {
        return r.fail("unknown outcome");
    };
    let n_fields = match kind {
        OutcomeKind::Success | OutcomeKind::ToolNotFound => 0,
        OutcomeKind::ExecutionFailed => 2,
        OutcomeKind::InvalidArgs | OutcomeKind::CapabilityDenied | OutcomeKind::RateLimited => 1,
    };
    w.map_len(1 + n_fields);
    w.str(b"kind");
    w.str(kind.as_str().as_bytes());
    match kind {
        OutcomeKind::Success | OutcomeKind::ToolNotFound => {}
        OutcomeKind::ExecutionFailed => {
            w.str(b"code");
            w.str(r.str_bytes()?);
            w.str(b"retryable");
            w.bool(r.bool()?);
        }
        OutcomeKind::InvalidArgs => {
            w.str(b"message");
            w.str(r.str_bytes()?);
        }
        OutcomeKind::CapabilityDenied => {
            w.str(b"missing");
            w.strs(r)?;
        }
        OutcomeKind::RateLimited => {
            w.str(b"retry_after_ms");
            match r.opt_u64()? {
                Some(ms) => w.uint(ms),
                None => w.nil(),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Record;
    use crate::ingest::shape::ShapeTable;
    use crate::ingest::slot::{self, Inline, encode_to_vec};
    use crate::ingest::{EventRef, FieldValue, ShapedEventRef};
    use crate::model::{CallEvent, Outcome, Timestamp};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// Transcodes `slot` and checks the bytes against decode-then-encode.
    fn check_same_bytes(slot: &[u8]) -> Transcoded<'_> {
        check_same_bytes_with(slot, &mut no_shapes())
    }

    /// An empty shape table's cache.
    fn no_shapes() -> ShapeCache {
        ShapeCache::new(Arc::default())
    }

    /// [`check_same_bytes`] with `shapes`.
    fn check_same_bytes_with<'a>(slot: &'a [u8], shapes: &mut ShapeCache) -> Transcoded<'a> {
        // Room left by a longer payload before: none of it may show in this one.
        let mut out = PayloadBuf {
            bytes: vec![0xee; 4096],
            len: 4096,
        };
        let transcoded = transcode(slot, &mut out, shapes)
            .expect("decodes")
            .expect("has a transcoder");
        let mut expected = Vec::new();
        slot::decode(slot, shapes)
            .expect("decodes")
            .encode_payload(&mut expected)
            .expect("encodes");
        assert_eq!(
            out.as_slice(),
            expected,
            "transcoded bytes differ from the encoded record"
        );
        transcoded
    }

    fn field_value() -> impl Strategy<Value = FieldValueOwned> {
        prop_oneof![
            Just(FieldValueOwned::Null),
            any::<bool>().prop_map(FieldValueOwned::Bool),
            any::<i64>().prop_map(FieldValueOwned::I64),
            any::<u64>().prop_map(FieldValueOwned::U64),
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0)
            ]
            .prop_map(FieldValueOwned::F64),
            ".{0,12}".prop_map(FieldValueOwned::Str),
        ]
    }

    #[derive(Clone, Debug)]
    enum FieldValueOwned {
        Null,
        Bool(bool),
        I64(i64),
        U64(u64),
        F64(f64),
        Str(String),
    }

    impl FieldValueOwned {
        fn as_ref(&self) -> FieldValue<'_> {
            match self {
                FieldValueOwned::Null => FieldValue::Null,
                FieldValueOwned::Bool(v) => FieldValue::Bool(*v),
                FieldValueOwned::I64(v) => FieldValue::I64(*v),
                FieldValueOwned::U64(v) => FieldValue::U64(*v),
                FieldValueOwned::F64(v) => FieldValue::F64(*v),
                FieldValueOwned::Str(v) => FieldValue::Str(v),
            }
        }
    }

    proptest! {
        #[test]
        fn an_event_transcodes_to_the_bytes_of_its_encoded_record(
            run_id in ".{0,24}",
            sequence in any::<u64>(),
            event_type in ".{0,12}",
            created_at in any::<i64>(),
            // Few distinct keys, so repeated keys are common; some share their first
            // 8 bytes, or differ from another by a trailing NUL.
            fields in prop::collection::vec(("(abcdefgh)?[a-d\\x00]{0,2}", field_value()), 0..40),
        ) {
            let refs: Vec<(&str, FieldValue<'_>)> =
                fields.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect();
            let event = EventRef {
                run_id: &run_id,
                sequence,
                event_type: &event_type,
                fields: &refs,
                created_at: Timestamp::from_unix_nanos(created_at),
            };
            let slot = encode_to_vec(Inline::Event(&event));
            let len = slot.len();
            let slot = &slot[..len];
            if fields.len() > FIELDS_MAX {
                let mut out = PayloadBuf::default();
                prop_assert_eq!(transcode(slot, &mut out, &mut no_shapes()), Ok(None));
                prop_assert!(out.as_slice().is_empty());
            } else {
                let transcoded = check_same_bytes(slot);
                prop_assert_eq!(transcoded.event, Some((run_id.as_str(), sequence)));
            }
        }

        #[test]
        fn a_call_transcodes_to_the_bytes_of_its_encoded_record(
            ts in any::<i64>(),
            caller in prop::option::of(".{0,8}"),
            capabilities in prop::collection::vec(".{0,6}", 0..4),
            duration_ms in any::<u64>(),
            outcome_idx in 0usize..8,
            flag in any::<bool>(),
            text in ".{0,10}",
            retry in prop::option::of(any::<u64>()),
            schema_version in any::<u32>(),
            cursor_page in prop::option::of(any::<u32>()),
        ) {
            let outcome = match outcome_idx {
                0 => Outcome::Success,
                1 => Outcome::ExecutionFailed { code: text.clone(), retryable: flag },
                2 => Outcome::InvalidArgs { message: text.clone() },
                3 => Outcome::CapabilityDenied { missing: capabilities.clone() },
                4 => Outcome::RateLimited { retry_after_ms: retry },
                5 => Outcome::ToolNotFound,
                6 => Outcome::CapabilityDenied { missing: Vec::new() },
                _ => Outcome::RateLimited { retry_after_ms: None },
            };
            let call = CallEvent {
                ts: Timestamp::from_unix_nanos(ts),
                call_id: format!("call-{ts}"),
                tool_id: text.clone(),
                caller_id: caller,
                granted_capabilities: capabilities,
                duration_ms,
                outcome,
                tier: "standard".into(),
                dry_run: flag,
                schema_version,
                secrets_resolved: !flag,
                cursor_page,
            };
            let slot = encode_to_vec(Inline::Call(&call));
            let len = slot.len();
            let transcoded = check_same_bytes(&slot[..len]);
            let key = CallKey {
                ts: call.ts.unix_nanos(),
                call_id: call.call_id.as_bytes(),
                tool_id: call.tool_id.as_bytes(),
                caller_id: call.caller_id.as_deref().map(str::as_bytes),
                kind: call.outcome.kind(),
            };
            prop_assert_eq!(
                transcoded,
                Transcoded { kind: RecordKind::CallRecorded, event: None, call: Some(key) }
            );
        }

        /// An event of a shape is written as the event it stands for: the bytes of its
        /// decoded record, and the bytes the same event written with its keys gets.
        #[test]
        fn a_shaped_event_transcodes_to_the_bytes_of_the_same_event(
            run_id in ".{0,24}",
            sequence in any::<u64>(),
            event_type in ".{0,12}",
            created_at in any::<i64>(),
            // Distinct keys (a shape's are), some sharing their first 8 bytes.
            keys in prop::collection::hash_set("(abcdefgh)?[a-d\\x00]{0,2}", 0..=FIELDS_MAX),
            values in prop::collection::vec(field_value(), FIELDS_MAX),
            n_before in 0usize..3,
        ) {
            let table = Arc::new(ShapeTable::default());
            for i in 0..n_before {
                table.register(&format!("before {i}"), &[]).unwrap();
            }
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let shape = table.register(&event_type, &keys).unwrap();
            let values: Vec<FieldValue<'_>> =
                values[..keys.len()].iter().map(FieldValueOwned::as_ref).collect();
            let event = ShapedEventRef {
                run_id: &run_id,
                sequence,
                values: &values,
                created_at: Timestamp::from_unix_nanos(created_at),
            };
            let slot = encode_to_vec(Inline::Shaped { shape: shape.id(), event: &event });
            let mut shapes = ShapeCache::new(Arc::clone(&table));
            let transcoded = check_same_bytes_with(&slot, &mut shapes);
            prop_assert_eq!(transcoded.event, Some((run_id.as_str(), sequence)));
            prop_assert_eq!(transcoded.kind, RecordKind::EventAppended);
            let mut shaped = PayloadBuf::default();
            transcode(&slot, &mut shaped, &mut shapes).unwrap().unwrap();
            let fields: Vec<(&str, FieldValue<'_>)> =
                keys.iter().copied().zip(values.iter().copied()).collect();
            let plain = EventRef {
                run_id: &run_id,
                sequence,
                event_type: &event_type,
                fields: &fields,
                created_at: Timestamp::from_unix_nanos(created_at),
            };
            let plain = encode_to_vec(Inline::Event(&plain));
            let mut out = PayloadBuf::default();
            transcode(&plain, &mut out, &mut no_shapes()).unwrap().unwrap();
            prop_assert_eq!(shaped.as_slice(), out.as_slice());
        }
    }

    #[test]
    fn a_shaped_event_without_its_shape_is_an_error_and_leaves_no_payload() {
        let table = Arc::new(ShapeTable::default());
        let shape = table.register("t", &["a", "b"]).unwrap();
        let values = [FieldValue::U64(1), FieldValue::Str("x")];
        let event = ShapedEventRef {
            run_id: "r",
            sequence: 1,
            values: &values,
            created_at: Timestamp::from_unix_nanos(0),
        };
        let slot = encode_to_vec(Inline::Shaped {
            shape: shape.id(),
            event: &event,
        });
        let mut out = PayloadBuf::default();
        let mut shapes = ShapeCache::new(Arc::clone(&table));
        assert!(transcode(&slot, &mut out, &mut shapes).unwrap().is_some());
        assert!(transcode(&slot, &mut out, &mut no_shapes()).is_err());
        assert!(out.as_slice().is_empty());
        // A value count not the shape's.
        let mut other = slot.clone();
        other[21] = 1;
        assert!(transcode(&other, &mut out, &mut shapes).is_err());
        assert!(out.as_slice().is_empty());
        // Every strict prefix is an error.
        for cut in 1..slot.len() {
            assert!(transcode(&slot[..cut], &mut out, &mut shapes).is_err());
        }
    }

    /// The bytes `write` writes.
    fn written(write: impl FnOnce(&mut Out<'_>)) -> Vec<u8> {
        let mut buf = vec![0; 200_000];
        let mut w = Out {
            buf: &mut buf,
            pos: 0,
        };
        write(&mut w);
        let len = w.pos;
        buf.truncate(len);
        buf
    }

    #[test]
    fn the_msgpack_writer_writes_what_rmp_writes() {
        let mut edges: Vec<u64> = vec![0, u64::MAX, i64::MAX as u64];
        for bits in [5u32, 7, 8, 15, 16, 31, 32] {
            let edge = 1u64 << bits;
            edges.extend([edge - 1, edge, edge + 1]);
        }
        for &v in &edges {
            let mut theirs = Vec::new();
            rmp::encode::write_uint(&mut theirs, v).unwrap();
            assert_eq!(written(|w| w.uint(v)), theirs, "uint {v}");
            for signed in [v as i64, (v as i64).wrapping_neg(), -(v as i64) - 1] {
                let mut theirs = Vec::new();
                rmp::encode::write_sint(&mut theirs, signed).unwrap();
                assert_eq!(written(|w| w.sint(signed)), theirs, "sint {signed}");
            }
            let Ok(len) = u32::try_from(v) else { continue };
            if len > 70_000 {
                continue;
            }
            let len_usize = len as usize;
            let text = "x".repeat(len_usize);
            let ours = written(|w| {
                w.map_len(len_usize);
                w.array_len(len_usize);
                w.str(text.as_bytes());
            });
            let mut theirs = Vec::new();
            rmp::encode::write_map_len(&mut theirs, len).unwrap();
            rmp::encode::write_array_len(&mut theirs, len).unwrap();
            rmp::encode::write_str(&mut theirs, &text).unwrap();
            assert_eq!(ours, theirs, "lengths {len}");
        }
    }

    #[test]
    fn the_decoded_payload_is_the_record() {
        let fields = [
            ("b", FieldValue::U64(2)),
            ("a", FieldValue::Str("first")),
            ("a", FieldValue::Str("last")),
        ];
        let event = EventRef {
            run_id: "run-1",
            sequence: 3,
            event_type: "step",
            fields: &fields,
            created_at: Timestamp::from_unix_nanos(5),
        };
        let slot = encode_to_vec(Inline::Event(&event));
        let len = slot.len();
        let mut out = PayloadBuf::default();
        transcode(&slot[..len], &mut out, &mut no_shapes())
            .unwrap()
            .unwrap();
        let record = Record::decode_payload(RecordKind::EventAppended, out.as_slice()).unwrap();
        let Record::EventAppended(decoded) = record else {
            panic!("an event")
        };
        assert_eq!(decoded.payload["a"], "last");
        assert_eq!(decoded.payload.len(), 2);
        assert_eq!(decoded.payload["b"], 2);
    }

    #[test]
    fn a_bad_slot_is_an_error_and_leaves_no_payload() {
        let fields = [("k", FieldValue::Str("v"))];
        let event = EventRef {
            run_id: "run-1",
            sequence: 1,
            event_type: "step",
            fields: &fields,
            created_at: Timestamp::EPOCH,
        };
        let slot = encode_to_vec(Inline::Event(&event));
        let len = slot.len();
        let mut out = PayloadBuf::default();
        for cut in 1..len {
            transcode(&slot[..len], &mut out, &mut no_shapes())
                .unwrap()
                .unwrap();
            assert!(
                transcode(&slot[..cut], &mut out, &mut no_shapes()).is_err(),
                "prefix {cut} transcoded"
            );
            assert_eq!(out.as_slice(), [0u8; 0], "prefix {cut} left a payload");
        }
        let mut longer = slot[..len].to_vec();
        longer.push(0);
        assert!(transcode(&longer, &mut out, &mut no_shapes()).is_err());
    }
}
