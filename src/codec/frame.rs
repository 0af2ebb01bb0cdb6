//! The frame: one record, checksummed and positioned.
//!
//! ```text
//! offset  size  field
//!      0     4  crc32 (little endian) of: salt ‖ segment id ‖ bytes 4.. of the frame
//!      4     4  payload length in bytes (u32 LE), never 0
//!      8     8  LSN of this frame (u64 LE)
//!     16     1  record kind
//!     17     3  zero
//!     20     n  payload (msgpack)
//! ```
//! The salt and the segment id come from the segment header and are not stored in the
//! frame: a frame copied to another segment, left over from an earlier file, or read at
//! the wrong position fails its checksum or its LSN check.

use std::mem::size_of;

use crate::codec::decode::{self, Decode};
use crate::codec::{Lsn, Record, RecordKind, SegmentId};
use crate::error::CorruptionKind;
use crate::limits::FRAME_HEADER_BYTES;
use crate::model::Run;

const CRC_AT: usize = 0;
const LEN_AT: usize = CRC_AT + size_of::<u32>();
const LSN_AT: usize = LEN_AT + size_of::<u32>();
const KIND_AT: usize = LSN_AT + size_of::<u64>();
const PAD_AT: usize = KIND_AT + size_of::<u8>();
const HEADER: usize = PAD_AT + 3;
const _: () = assert!(HEADER as u64 == FRAME_HEADER_BYTES);

/// What every frame of one segment is bound to.
#[derive(Clone, Debug)]
pub struct FrameContext {
    pub segment_id: SegmentId,
    /// Random per segment file, so bytes of any other file never verify here.
    pub salt: u64,
    /// A hasher that has taken the salt and the segment id, which every frame's
    /// checksum continues from: taken once per segment rather than once per frame. A
    /// frame's checksum starts from a copy of it, which also skips the CPU feature
    /// check a new hasher makes (a sixth of a small frame's checksum).
    seeded: crc32fast::Hasher,
}

impl FrameContext {
    /// The context of the segment with this id and salt.
    pub fn new(segment_id: SegmentId, salt: u64) -> FrameContext {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&salt.to_le_bytes());
        hasher.update(&segment_id.0.to_le_bytes());
        let seeded = crc32fast::Hasher::new_with_initial(hasher.finalize());
        FrameContext {
            segment_id,
            salt,
            seeded,
        }
    }
}

/// Equal when bound to the same segment and salt (the seed follows from them).
impl PartialEq for FrameContext {
    fn eq(&self, other: &FrameContext) -> bool {
        (self.segment_id, self.salt) == (other.segment_id, other.salt)
    }
}

impl Eq for FrameContext {}

/// A verified frame borrowed from segment bytes.
#[derive(Copy, Clone, Debug)]
pub struct Frame<'a> {
    pub lsn: Lsn,
    pub kind: RecordKind,
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Bytes the frame occupies, header included.
    pub fn len_bytes(&self) -> u64 {
        FRAME_HEADER_BYTES + self.payload.len() as u64
    }

    /// Decodes the payload into a record.
    pub fn record(&self) -> Result<Record, CorruptionKind> {
        Record::decode_payload(self.kind, self.payload)
            .map_err(|e| CorruptionKind::BadPayload(e.to_string()))
    }

    /// Decodes the payload of a frame that must hold a `T` (a run, a finish, an event
    /// or a call event), without going through [`Record`].
    pub(crate) fn decode_as<T: Decode>(&self) -> Result<T, CorruptionKind> {
        self.expect_kind(T::KIND)?;
        decode::decode(self.payload).map_err(bad_payload)
    }

    /// Decodes the payload of a frame that must hold a `T` into `out` (see
    /// [`Decode::read_into`]).
    pub(crate) fn decode_into<T: Decode>(&self, out: &mut T) -> Result<(), CorruptionKind> {
        self.expect_kind(T::KIND)?;
        decode::decode_into(self.payload, out).map_err(bad_payload)
    }

    /// Applies the finish this frame holds to `run`, as decoding it and calling
    /// [`Run::apply_finish`] would (see [`decode::finish_into`]).
    pub(crate) fn finish_into(&self, run: &mut Run) -> Result<(), CorruptionKind> {
        self.expect_kind(RecordKind::RunFinished)?;
        decode::finish_into(self.payload, run).map_err(bad_payload)
    }

    fn expect_kind(&self, kind: RecordKind) -> Result<(), CorruptionKind> {
        if self.kind == kind {
            return Ok(());
        }
        Err(CorruptionKind::BadPayload(format!(
            "expected a {kind:?} record but found a {:?} record",
            self.kind
        )))
    }
}

fn bad_payload(e: rmp_serde::decode::Error) -> CorruptionKind {
    CorruptionKind::BadPayload(e.to_string())
}

/// Why no verified frame could be read at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The header is all zeros: nothing was ever written here.
    Empty,
    /// The bytes end before the frame does.
    Truncated,
    /// The bytes are there but do not verify.
    Corrupt(CorruptionKind),
}

/// crc32 of the salt, the segment id and `covered`, in that order.
fn checksum(ctx: &FrameContext, covered: &[u8]) -> u32 {
    let mut hasher = ctx.seeded.clone();
    hasher.update(covered);
    hasher.finalize()
}

/// Appends one frame holding `record` to `out` and returns its length in bytes.
///
/// A payload larger than `payload_bytes_max` is refused and `out` is left as it was.
pub fn encode_frame(
    out: &mut Vec<u8>,
    ctx: &FrameContext,
    lsn: Lsn,
    record: &Record,
    payload_bytes_max: usize,
) -> Result<u64, crate::Error> {
    let start = out.len();
    out.resize(start + HEADER, 0);
    if let Err(e) = record.encode_payload(out) {
        out.truncate(start);
        return Err(crate::Error::Encode(e.to_string()));
    }
    let payload_len = out.len() - start - HEADER;
    if payload_len > payload_bytes_max {
        out.truncate(start);
        return Err(crate::Error::RecordTooLarge {
            bytes: payload_len,
            max: payload_bytes_max,
        });
    }
    seal_frame(&mut out[start..], ctx, lsn, record.kind());
    Ok((HEADER + payload_len) as u64)
}

/// Appends one frame around an already encoded `payload` and returns its length.
///
/// The caller has checked the payload against the record limit.
pub fn frame_payload(
    out: &mut Vec<u8>,
    ctx: &FrameContext,
    lsn: Lsn,
    kind: RecordKind,
    payload: &[u8],
) -> u64 {
    let start = out.len();
    out.resize(start + HEADER, 0);
    out.extend_from_slice(payload);
    seal_frame(&mut out[start..], ctx, lsn, kind);
    (HEADER + payload.len()) as u64
}

/// Fills in the header of a frame whose payload is in place: length, LSN, kind, crc.
fn seal_frame(frame: &mut [u8], ctx: &FrameContext, lsn: Lsn, kind: RecordKind) {
    let payload_len = frame.len() - HEADER;
    debug_assert!(
        payload_len > 0,
        "msgpack never encodes a value in zero bytes"
    );
    debug_assert!(payload_len < u32::MAX as usize);
    frame[LEN_AT..LSN_AT].copy_from_slice(&(payload_len as u32).to_le_bytes());
    frame[LSN_AT..KIND_AT].copy_from_slice(&lsn.0.to_le_bytes());
    frame[KIND_AT] = kind as u8;
    frame[PAD_AT..HEADER].fill(0);
    let crc = checksum(ctx, &frame[LEN_AT..]);
    frame[CRC_AT..LEN_AT].copy_from_slice(&crc.to_le_bytes());
}

/// Reads and verifies the frame at the start of `bytes`, which must sit at `expected`.
pub fn decode_frame<'a>(
    bytes: &'a [u8],
    ctx: &FrameContext,
    expected: Lsn,
    payload_bytes_max: usize,
) -> Result<Frame<'a>, FrameError> {
    let Some(header) = bytes.get(..HEADER) else {
        return if bytes.iter().all(|&b| b == 0) {
            Err(FrameError::Empty)
        } else {
            Err(FrameError::Truncated)
        };
    };
    if header.iter().all(|&b| b == 0) {
        return Err(FrameError::Empty);
    }
    let crc = u32::from_le_bytes(header[CRC_AT..LEN_AT].try_into().expect("4 bytes"));
    let payload_len =
        u32::from_le_bytes(header[LEN_AT..LSN_AT].try_into().expect("4 bytes")) as usize;
    let lsn = u64::from_le_bytes(header[LSN_AT..KIND_AT].try_into().expect("8 bytes"));
    if payload_len == 0 || payload_len > payload_bytes_max {
        return Err(FrameError::Corrupt(CorruptionKind::BadLength(
            payload_len as u64,
        )));
    }
    let Some(frame) = bytes.get(..HEADER + payload_len) else {
        return Err(FrameError::Truncated);
    };
    if checksum(ctx, &frame[LEN_AT..]) != crc {
        return Err(FrameError::Corrupt(CorruptionKind::BadChecksum));
    }
    if lsn != expected.0 {
        return Err(FrameError::Corrupt(CorruptionKind::MisplacedFrame {
            expected: expected.0,
            found: lsn,
        }));
    }
    let Some(kind) = RecordKind::from_byte(frame[KIND_AT]) else {
        return Err(FrameError::Corrupt(CorruptionKind::UnknownKind(
            frame[KIND_AT],
        )));
    };
    Ok(Frame {
        lsn: Lsn(lsn),
        kind,
        payload: &frame[HEADER..],
    })
}

/// The length in bytes, header included, that the frame header at the start of
/// `bytes` claims, unchecked; `None` if `bytes` is shorter than a header. It says how
/// much to read before [`decode_frame`] can check the frame.
pub fn claimed_frame_bytes(bytes: &[u8]) -> Option<u64> {
    let len = bytes.get(LEN_AT..LSN_AT)?;
    Some(FRAME_HEADER_BYTES + u64::from(u32::from_le_bytes(len.try_into().expect("4 bytes"))))
}

/// The frame at the start of `bytes` that [`decode_frame`] verified at `lsn` before:
/// its length and kind are read again, not checked again.
///
/// # Panics
/// If the bytes do not start with a frame of a known kind and length, which a frame
/// that verified always is.
pub fn reread_verified(bytes: &[u8], lsn: Lsn) -> Frame<'_> {
    let payload_len =
        u32::from_le_bytes(bytes[LEN_AT..LSN_AT].try_into().expect("4 bytes")) as usize;
    debug_assert_eq!(
        u64::from_le_bytes(bytes[LSN_AT..KIND_AT].try_into().expect("8 bytes")),
        lsn.0,
        "a verified frame sits at its own LSN"
    );
    Frame {
        lsn,
        kind: RecordKind::from_byte(bytes[KIND_AT]).expect("a verified frame's kind is known"),
        payload: &bytes[HEADER..HEADER + payload_len],
    }
}

/// Whether a verified frame with this LSN could start at the start of `bytes`: a cheap
/// filter used when searching for the next good frame after damage.
pub(crate) fn may_start_frame(bytes: &[u8], expected: Lsn) -> bool {
    bytes
        .get(LSN_AT..KIND_AT)
        .is_some_and(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) == expected.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RunEvent, Timestamp};

    const MAX: usize = 1 << 20;

    fn ctx() -> FrameContext {
        FrameContext::new(SegmentId(7), 0x5eed)
    }

    #[test]
    fn the_checksum_covers_salt_segment_id_and_bytes_in_order() {
        let bytes = b"some frame bytes, longer than one 16-byte block of the hasher";
        let whole = [&0x5eed_u64.to_le_bytes()[..], &7_u64.to_le_bytes(), bytes].concat();
        assert_eq!(checksum(&ctx(), bytes), crc32fast::hash(&whole));
        assert_eq!(checksum(&ctx(), b""), crc32fast::hash(&whole[..16]));
    }

    fn event(seq: u64) -> Record {
        Record::EventAppended(RunEvent {
            run_id: "run-1".into(),
            sequence: seq,
            event_type: "step".into(),
            payload: serde_json::json!({"iter": seq, "text": "héllo"})
                .as_object()
                .unwrap()
                .clone(),
            created_at: Timestamp::from_unix_millis(1_000),
        })
    }

    #[test]
    fn a_frame_round_trips() {
        let mut buf = Vec::new();
        let len = encode_frame(&mut buf, &ctx(), Lsn(4096), &event(3), MAX).unwrap();
        assert_eq!(len as usize, buf.len());
        let frame = decode_frame(&buf, &ctx(), Lsn(4096), MAX).unwrap();
        assert_eq!(frame.len_bytes(), len);
        assert_eq!(frame.record().unwrap(), event(3));
    }

    #[test]
    fn a_verified_frame_reads_again_the_same() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, &ctx(), Lsn(4096), &event(3), MAX).unwrap();
        encode_frame(&mut buf, &ctx(), Lsn(4096), &event(4), MAX).unwrap();
        let verified = decode_frame(&buf, &ctx(), Lsn(4096), MAX).unwrap();
        let again = reread_verified(&buf, Lsn(4096));
        assert_eq!(again.lsn, verified.lsn);
        assert_eq!(again.kind, verified.kind);
        assert_eq!(again.payload, verified.payload);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, &ctx(), Lsn(0), &event(1), MAX).unwrap();
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_frame(&bad, &ctx(), Lsn(0), MAX).is_err(),
                "flip of bit {bit} verified"
            );
        }
    }

    #[test]
    fn a_frame_does_not_verify_in_another_segment_or_position() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, &ctx(), Lsn(100), &event(1), MAX).unwrap();
        let other_salt = FrameContext::new(SegmentId(7), 1);
        let other_id = FrameContext::new(SegmentId(8), 0x5eed);
        assert!(matches!(
            decode_frame(&buf, &other_salt, Lsn(100), MAX),
            Err(FrameError::Corrupt(_))
        ));
        assert!(matches!(
            decode_frame(&buf, &other_id, Lsn(100), MAX),
            Err(FrameError::Corrupt(_))
        ));
        assert!(matches!(
            decode_frame(&buf, &ctx(), Lsn(200), MAX),
            Err(FrameError::Corrupt(CorruptionKind::MisplacedFrame { .. }))
        ));
    }

    #[test]
    fn every_prefix_is_truncated_or_empty_never_a_frame() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, &ctx(), Lsn(0), &event(1), MAX).unwrap();
        for cut in 0..buf.len() {
            let got = decode_frame(&buf[..cut], &ctx(), Lsn(0), MAX);
            assert!(
                matches!(got, Err(FrameError::Truncated | FrameError::Empty)),
                "cut {cut}: {got:?}"
            );
        }
    }

    #[test]
    fn zeros_read_as_empty_and_oversized_lengths_are_refused() {
        assert_eq!(
            decode_frame(&[0; 64], &ctx(), Lsn(0), MAX).unwrap_err(),
            FrameError::Empty
        );
        let mut buf = Vec::new();
        encode_frame(&mut buf, &ctx(), Lsn(0), &event(1), MAX).unwrap();
        let small = buf.len() - HEADER - 1;
        assert!(matches!(
            decode_frame(&buf, &ctx(), Lsn(0), small),
            Err(FrameError::Corrupt(CorruptionKind::BadLength(_)))
        ));
    }

    #[test]
    fn an_oversized_record_is_refused_and_leaves_the_buffer_as_it_was() {
        let mut buf = vec![1, 2, 3];
        let err = encode_frame(&mut buf, &ctx(), Lsn(0), &event(1), 8).unwrap_err();
        assert!(matches!(err, crate::Error::RecordTooLarge { max: 8, .. }));
        assert_eq!(buf, vec![1, 2, 3]);
    }
}
