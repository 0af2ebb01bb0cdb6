//! Frame decoding on arbitrary bytes: never panics, never allocates by an unchecked
//! length, and whatever verifies and decodes re-encodes to a frame that decodes to the
//! same record.
//!
//! Input: salt (8 bytes LE) ‖ segment id (8 bytes LE) ‖ frame bytes, so seeds can be
//! real frames taken from a segment together with its header's salt and id.
#![no_main]

#[path = "../common/bounded_alloc.rs"]
mod bounded_alloc;

use auditlog::codec::{FrameContext, RecordKind, decode_frame, encode_frame};
use auditlog::{Lsn, Record, SegmentId};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((context, frame_bytes)) = data.split_at_checked(16) else {
        return;
    };
    let ctx = FrameContext::new(
        SegmentId(u64::from_le_bytes(context[8..].try_into().unwrap())),
        u64::from_le_bytes(context[..8].try_into().unwrap()),
    );
    // Expect the frame where it says it is, so the fuzzer reaches payload decoding
    // without solving the position check; the position check has unit tests.
    let expected = frame_bytes
        .get(8..16)
        .map_or(Lsn(0), |b| Lsn(u64::from_le_bytes(b.try_into().unwrap())));
    if let Ok(frame) = decode_frame(frame_bytes, &ctx, expected, MAX) {
        assert!(frame.len_bytes() as usize <= frame_bytes.len());
        if let Ok(record) = frame.record() {
            let mut again = Vec::new();
            encode_frame(&mut again, &ctx, expected, &record, MAX)
                .expect("a decoded record re-encodes");
            let back =
                decode_frame(&again, &ctx, expected, MAX).expect("a re-encoded frame verifies");
            assert_eq!(back.record().expect("and decodes"), record);
        }
    }
    // Payload decoding on its own, for every kind, whatever the checksum says.
    if let Some((&kind, payload)) = frame_bytes.split_first() {
        if let Some(kind) = RecordKind::from_byte(kind % 8) {
            let _ = Record::decode_payload(kind, payload);
        }
    }
});
