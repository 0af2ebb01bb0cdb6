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
//! - Nothing allocates here except `out` growing.

use crate::codec::RecordKind;
use crate::model::OutcomeKind;

use super::FieldValue;
use super::slot::{KIND_CALL, KIND_EVENT, Reader, SlotError};

/// The most payload fields an event may have and still be transcoded.
const FIELDS_MAX: usize = crate::limits::INGEST_TRANSCODE_FIELDS_MAX;

/// What the committer needs to know of a transcoded record besides its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transcoded<'a> {
    pub kind: RecordKind,
    /// For an event: its run id (in the slot) and its sequence.
    pub event: Option<(&'a str, u64)>,
}

/// Appends the msgpack payload of the record in `slot` to `out`; `None` when this kind
/// has no transcoder.
pub(crate) fn transcode<'a>(
    slot: &'a [u8],
    out: &mut Vec<u8>,
) -> Result<Option<Transcoded<'a>>, SlotError> {
    let mut r = Reader::new(slot);
    let start = out.len();
    let result = match r.u8()? {
        KIND_EVENT => event(&mut r, out),
        KIND_CALL => call(&mut r, out),
        _ => Ok(None),
    };
    if !matches!(result, Ok(Some(_))) {
        out.truncate(start);
    }
    result
}

/// Writes msgpack into a `Vec`, which cannot fail.
struct Out<'a>(&'a mut Vec<u8>);

const VEC_WRITE: &str = "writing msgpack to a Vec cannot fail";

impl Out<'_> {
    fn map_len(&mut self, len: usize) {
        let len = u32::try_from(len).expect("slot counts fit u32");
        rmp::encode::write_map_len(self.0, len).expect(VEC_WRITE);
    }
    fn array_len(&mut self, len: usize) {
        let len = u32::try_from(len).expect("slot counts fit u32");
        rmp::encode::write_array_len(self.0, len).expect(VEC_WRITE);
    }
    fn str(&mut self, v: &str) {
        rmp::encode::write_str(self.0, v).expect(VEC_WRITE);
    }
    fn uint(&mut self, v: u64) {
        rmp::encode::write_uint(self.0, v).expect(VEC_WRITE);
    }
    fn sint(&mut self, v: i64) {
        rmp::encode::write_sint(self.0, v).expect(VEC_WRITE);
    }
    fn bool(&mut self, v: bool) {
        rmp::encode::write_bool(self.0, v).expect(VEC_WRITE);
    }
    fn nil(&mut self) {
        rmp::encode::write_nil(self.0).expect(VEC_WRITE);
    }
    /// A field value as its JSON value serializes: a non-negative integer is unsigned,
    /// a NaN or infinity (no JSON form) is null.
    fn value(&mut self, value: FieldValue<'_>) {
        match value {
            FieldValue::Null => self.nil(),
            FieldValue::Bool(v) => self.bool(v),
            FieldValue::I64(v) => match u64::try_from(v) {
                Ok(v) => self.uint(v),
                Err(_) => self.sint(v),
            },
            FieldValue::U64(v) => self.uint(v),
            FieldValue::F64(v) if v.is_finite() => {
                rmp::encode::write_f64(self.0, v).expect(VEC_WRITE);
            }
            FieldValue::F64(_) => self.nil(),
            FieldValue::Str(v) => self.str(v),
            FieldValue::Json(_) => unreachable!("slots hold no JSON values"),
        }
    }
    /// A string list from a reader at its count.
    fn strs(&mut self, r: &mut Reader<'_>) -> Result<(), SlotError> {
        let n = r.u16()?;
        self.array_len(usize::from(n));
        for _ in 0..n {
            self.str(r.str_ref()?);
        }
        Ok(())
    }
}

/// `RunEvent { run_id, sequence, event_type, payload, created_at }`.
fn event<'a>(r: &mut Reader<'a>, out: &mut Vec<u8>) -> Result<Option<Transcoded<'a>>, SlotError> {
    let run_id = r.str_ref()?;
    let sequence = r.u64()?;
    let event_type = r.str_ref()?;
    let created_at = r.i64()?;
    let n_fields = usize::from(r.u16()?);
    if n_fields > FIELDS_MAX {
        return Ok(None);
    }
    let mut fields = [("", FieldValue::Null); FIELDS_MAX];
    for field in &mut fields[..n_fields] {
        *field = (r.str_ref()?, r.field_value()?);
    }
    if !r.is_at_end() {
        return r.fail("bytes left after the record");
    }
    let n_unique = sort_keep_last(&mut fields[..n_fields]);

    let mut w = Out(out);
    w.map_len(5);
    w.str("run_id");
    w.str(run_id);
    w.str("sequence");
    w.uint(sequence);
    w.str("event_type");
    w.str(event_type);
    w.str("payload");
    w.map_len(n_unique);
    for &(key, value) in &fields[..n_unique] {
        w.str(key);
        w.value(value);
    }
    w.str("created_at");
    w.sint(created_at);
    Ok(Some(Transcoded {
        kind: RecordKind::EventAppended,
        event: Some((run_id, sequence)),
    }))
}

/// Sorts fields by key, keeping only the last field of each key in place of the first,
/// as inserting them one by one into the payload map does; returns how many remain.
fn sort_keep_last(fields: &mut [(&str, FieldValue<'_>)]) -> usize {
    // Insertion sort is stable and fast for the few fields an event has.
    for i in 1..fields.len() {
        let mut j = i;
        while j > 0 && fields[j - 1].0 > fields[j].0 {
            fields.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut n_unique = 0;
    for i in 0..fields.len() {
        let last_of_key = fields.get(i + 1).is_none_or(|next| next.0 != fields[i].0);
        if last_of_key {
            fields[n_unique] = fields[i];
            n_unique += 1;
        }
    }
    n_unique
}

/// `CallEvent`, with `caller_id` and `cursor_page` left out when absent.
fn call<'a>(r: &mut Reader<'a>, out: &mut Vec<u8>) -> Result<Option<Transcoded<'a>>, SlotError> {
    // Everything is read before anything is written: the map's length depends on the
    // last field. The two string lists are read again from where they start.
    let ts = r.i64()?;
    let call_id = r.str_ref()?;
    let tool_id = r.str_ref()?;
    let caller_id = if r.bool()? { Some(r.str_ref()?) } else { None };
    let capabilities = r.clone();
    skip_strs(r)?;
    let duration_ms = r.u64()?;
    let outcome_at = r.clone();
    let outcome_tag = r.u8()?;
    match outcome_tag {
        0 | 5 => {}
        1 => {
            r.str_ref()?;
            r.bool()?;
        }
        2 => {
            r.str_ref()?;
        }
        3 => skip_strs(r)?,
        4 => {
            r.opt_u64()?;
        }
        _ => return r.fail("unknown outcome"),
    }
    let tail = r.call_tail()?;
    if !r.is_at_end() {
        return r.fail("bytes left after the record");
    }

    let mut w = Out(out);
    w.map_len(10 + usize::from(caller_id.is_some()) + usize::from(tail.cursor_page.is_some()));
    w.str("ts");
    w.sint(ts);
    w.str("call_id");
    w.str(call_id);
    w.str("tool_id");
    w.str(tool_id);
    if let Some(caller_id) = caller_id {
        w.str("caller_id");
        w.str(caller_id);
    }
    w.str("granted_capabilities");
    w.strs(&mut capabilities.clone())?;
    w.str("duration_ms");
    w.uint(duration_ms);
    w.str("outcome");
    outcome(&mut w, &mut outcome_at.clone())?;
    w.str("tier");
    w.str(tail.tier);
    w.str("dry_run");
    w.bool(tail.dry_run);
    w.str("schema_version");
    w.uint(u64::from(tail.schema_version));
    w.str("secrets_resolved");
    w.bool(tail.secrets_resolved);
    if let Some(page) = tail.cursor_page {
        w.str("cursor_page");
        w.uint(u64::from(page));
    }
    Ok(Some(Transcoded {
        kind: RecordKind::CallRecorded,
        event: None,
    }))
}

/// Passes over a string list.
fn skip_strs(r: &mut Reader<'_>) -> Result<(), SlotError> {
    for _ in 0..r.u16()? {
        r.str_ref()?;
    }
    Ok(())
}

/// The outcome, internally tagged: `kind` first, then the variant's fields.
fn outcome(w: &mut Out<'_>, r: &mut Reader<'_>) -> Result<(), SlotError> {
    let tag = r.u8()?;
    let Some(kind) = OutcomeKind::ALL.get(usize::from(tag)) else {
        return r.fail("unknown outcome");
    };
    let n_fields = match kind {
        OutcomeKind::Success | OutcomeKind::ToolNotFound => 0,
        OutcomeKind::ExecutionFailed => 2,
        OutcomeKind::InvalidArgs | OutcomeKind::CapabilityDenied | OutcomeKind::RateLimited => 1,
    };
    w.map_len(1 + n_fields);
    w.str("kind");
    w.str(kind.as_str());
    match kind {
        OutcomeKind::Success | OutcomeKind::ToolNotFound => {}
        OutcomeKind::ExecutionFailed => {
            w.str("code");
            w.str(r.str_ref()?);
            w.str("retryable");
            w.bool(r.bool()?);
        }
        OutcomeKind::InvalidArgs => {
            w.str("message");
            w.str(r.str_ref()?);
        }
        OutcomeKind::CapabilityDenied => {
            w.str("missing");
            w.strs(r)?;
        }
        OutcomeKind::RateLimited => {
            w.str("retry_after_ms");
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
    use crate::ingest::EventRef;
    use crate::ingest::slot::{self, Inline, encode_to_vec};
    use crate::model::{CallEvent, Outcome, Timestamp};
    use proptest::prelude::*;

    /// Transcodes `slot` and checks the bytes against decode-then-encode.
    fn check_same_bytes(slot: &[u8]) -> Transcoded<'_> {
        let mut out = vec![0xee]; // something before, which must stay
        let transcoded = transcode(slot, &mut out)
            .expect("decodes")
            .expect("has a transcoder");
        let mut expected = vec![0xee];
        slot::decode(slot)
            .expect("decodes")
            .encode_payload(&mut expected)
            .expect("encodes");
        assert_eq!(
            out, expected,
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
            // Few distinct keys, so repeated keys are common.
            fields in prop::collection::vec(("[a-d]{0,2}", field_value()), 0..40),
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
                let mut out = Vec::new();
                prop_assert_eq!(transcode(slot, &mut out), Ok(None));
                prop_assert!(out.is_empty());
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
            prop_assert_eq!(transcoded, Transcoded { kind: RecordKind::CallRecorded, event: None });
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
        let mut out = Vec::new();
        transcode(&slot[..len], &mut out).unwrap().unwrap();
        let record = Record::decode_payload(RecordKind::EventAppended, &out).unwrap();
        let Record::EventAppended(decoded) = record else {
            panic!("an event")
        };
        assert_eq!(decoded.payload["a"], "last");
        assert_eq!(decoded.payload.len(), 2);
        assert_eq!(decoded.payload["b"], 2);
    }

    #[test]
    fn a_bad_slot_is_an_error_and_writes_nothing() {
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
        for cut in 1..len {
            let mut out = vec![1, 2, 3];
            assert!(
                transcode(&slot[..cut], &mut out).is_err(),
                "prefix {cut} transcoded"
            );
            assert_eq!(out, [1, 2, 3]);
        }
        let mut longer = slot[..len].to_vec();
        longer.push(0);
        assert!(transcode(&longer, &mut Vec::new()).is_err());
    }
}
