//! Verifying the frames of one segment's bytes: the scan behind recovery and `verify`.
//!
//! A pure function over bytes, so it can be fuzzed and tested without files.
//!
//! # Invariants
//! - Only frames that verify (checksum, position, kind) are visited or counted as good.
//! - In a sealed segment, damage is skipped by searching for the next frame that
//!   verifies at its own position; the damaged range is reported.
//! - In the last segment, the first frame that does not verify ends the log (a torn
//!   tail): later frames are never used, because keeping them would make the loss of an
//!   unsynced record something other than a suffix. If any later frame verifies, that
//!   is reported as damage, since it may have been acknowledged.

use std::ops::Range;

use crate::codec::frame_probe::may_start_frame;
use crate::codec::{Frame, FrameError, Lsn, decode_frame};
use crate::error::CorruptionKind;
use crate::limits::{FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use crate::segment::header::SegmentHeader;

/// A stretch of a segment file that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// File offset of the first bad byte.
    pub offset: u64,
    /// Bytes skipped until the next verified frame or the end of the file.
    pub len_bytes: u64,
    pub kind: CorruptionKind,
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentScan {
    /// File offset ranges made only of verified frames, in order.
    pub extents: Vec<Range<u64>>,
    pub n_frames: u64,
    pub damage: Vec<Damage>,
    /// File offset just past the last verified frame.
    pub end_offset: u64,
    /// In the last segment: where a torn record was cut, and what was wrong with it.
    pub torn_tail: Option<(u64, CorruptionKind)>,
}

/// Which role the segment plays, which decides what a bad frame means.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Fully written and closed: every byte up to the end must be a frame.
    Sealed,
    /// The last segment of the log: frames end at the first one that does not verify.
    Last,
}

fn lsn_at(header: &SegmentHeader, offset: u64) -> Lsn {
    debug_assert!(offset >= SEGMENT_HEADER_BYTES);
    Lsn(header.base_lsn.0 + (offset - SEGMENT_HEADER_BYTES))
}

fn corruption(error: FrameError) -> CorruptionKind {
    match error {
        FrameError::Corrupt(kind) => kind,
        FrameError::Truncated => CorruptionKind::Truncated,
        FrameError::Empty => CorruptionKind::BadLength(0),
    }
}

/// The offset of the next frame at or after `from` that verifies at its own position.
fn next_verified(
    bytes: &[u8],
    header: &SegmentHeader,
    from: u64,
    payload_max: usize,
) -> Option<u64> {
    let ctx = header.frame_context();
    let mut at = from as usize;
    while at + FRAME_HEADER_BYTES as usize <= bytes.len() {
        // A frame's length field (bytes 4..8) is never zero, so a frame starting at `s`
        // has a non-zero byte before `s + 8`: skip runs of zeros quickly.
        let nonzero = at + bytes[at..].iter().position(|&b| b != 0)?;
        at = at.max(nonzero.saturating_sub(7));
        let lsn = lsn_at(header, at as u64);
        if may_start_frame(&bytes[at..], lsn)
            && decode_frame(&bytes[at..], &ctx, lsn, payload_max).is_ok()
        {
            return Some(at as u64);
        }
        at += 1;
    }
    None
}

/// Verifies every frame of a segment whose header is already decoded, calling `visit`
/// for each frame that verifies, in order.
pub fn scan_segment<'a>(
    bytes: &'a [u8],
    header: &SegmentHeader,
    role: Role,
    payload_max: usize,
    visit: impl FnMut(Frame<'a>),
) -> SegmentScan {
    scan_segment_from(
        bytes,
        header,
        role,
        payload_max,
        SEGMENT_HEADER_BYTES,
        visit,
    )
}

/// [`scan_segment`] from file offset `start`, which the caller knows to be the end of
/// a verified frame (or the header): the bytes before it are neither verified nor
/// listed in the extents.
pub fn scan_segment_from<'a>(
    bytes: &'a [u8],
    header: &SegmentHeader,
    role: Role,
    payload_max: usize,
    start: u64,
    mut visit: impl FnMut(Frame<'a>),
) -> SegmentScan {
    assert!(
        (SEGMENT_HEADER_BYTES..=bytes.len() as u64).contains(&start),
        "a scan starts inside the segment"
    );
    let ctx = header.frame_context();
    let end = bytes.len() as u64;
    let mut scan = SegmentScan {
        end_offset: start,
        ..SegmentScan::default()
    };
    let mut at = start;
    let mut extent_start = at;
    while at < end {
        let lsn = lsn_at(header, at);
        match decode_frame(&bytes[at as usize..], &ctx, lsn, payload_max) {
            Ok(frame) => {
                visit(frame);
                scan.n_frames += 1;
                at += frame.len_bytes();
                scan.end_offset = at;
            }
            Err(error) => {
                if scan.end_offset > extent_start {
                    scan.extents.push(extent_start..scan.end_offset);
                }
                let found = next_verified(bytes, header, at + 1, payload_max);
                match role {
                    Role::Sealed => {
                        let resume = found.unwrap_or(end);
                        scan.damage.push(Damage {
                            offset: at,
                            len_bytes: resume - at,
                            kind: corruption(error),
                        });
                        at = resume;
                        extent_start = resume;
                        continue;
                    }
                    Role::Last => {
                        if error != FrameError::Empty {
                            scan.torn_tail = Some((at, corruption(error)));
                        }
                        if let Some(first) = found {
                            let mut n_frames = 0;
                            let mut last_end = first;
                            let mut probe = Some(first);
                            while let Some(s) = probe {
                                n_frames += 1;
                                let frame = decode_frame(
                                    &bytes[s as usize..],
                                    &ctx,
                                    lsn_at(header, s),
                                    payload_max,
                                )
                                .expect("next_verified returns verified frames");
                                last_end = s + frame.len_bytes();
                                probe = next_verified(bytes, header, last_end, payload_max);
                            }
                            scan.damage.push(Damage {
                                offset: at,
                                len_bytes: last_end - at,
                                kind: CorruptionKind::FramesAfterTornTail { n_frames },
                            });
                        }
                        return scan;
                    }
                }
            }
        }
    }
    if scan.end_offset > extent_start {
        scan.extents.push(extent_start..scan.end_offset);
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Record, SegmentId, encode_frame};
    use crate::model::{RunEvent, Timestamp};

    const MAX: usize = 1 << 16;

    fn segment(n_records: u64, preallocated: usize) -> (SegmentHeader, Vec<u8>, Vec<u64>) {
        let header = SegmentHeader::new(SegmentId(1), Lsn(1000)).unwrap();
        let mut bytes = header.encode().to_vec();
        let mut starts = Vec::new();
        for seq in 1..=n_records {
            let at = bytes.len() as u64;
            starts.push(at);
            let record = Record::EventAppended(RunEvent {
                run_id: "r".into(),
                sequence: seq,
                event_type: "step".into(),
                payload: Default::default(),
                created_at: Timestamp::from_unix_millis(seq as i64),
            });
            encode_frame(
                &mut bytes,
                &header.frame_context(),
                lsn_at(&header, at),
                &record,
                MAX,
            )
            .unwrap();
        }
        bytes.resize(bytes.len() + preallocated, 0);
        (header, bytes, starts)
    }

    #[test]
    fn a_clean_last_segment_ends_at_the_preallocated_zeros() {
        let (header, bytes, _) = segment(5, 4096);
        let scan = scan_segment(&bytes, &header, Role::Last, MAX, |_| {});
        assert_eq!(scan.n_frames, 5);
        assert_eq!(scan.torn_tail, None);
        assert!(scan.damage.is_empty());
        assert_eq!(scan.end_offset, (bytes.len() - 4096) as u64);
    }

    #[test]
    fn a_bit_flip_in_a_sealed_segment_skips_exactly_one_frame() {
        let (header, mut bytes, starts) = segment(5, 0);
        bytes[starts[2] as usize + 25] ^= 0x10;
        let mut seen = Vec::new();
        let scan = scan_segment(&bytes, &header, Role::Sealed, MAX, |f| seen.push(f.lsn));
        assert_eq!(scan.n_frames, 4);
        assert_eq!(scan.damage.len(), 1);
        assert_eq!(scan.damage[0].offset, starts[2]);
        assert_eq!(scan.damage[0].len_bytes, starts[3] - starts[2]);
        assert_eq!(scan.extents.len(), 2);
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn a_bit_flip_mid_last_segment_cuts_there_and_reports_the_frames_after() {
        let (header, mut bytes, starts) = segment(5, 512);
        bytes[starts[1] as usize + 21] ^= 1;
        let scan = scan_segment(&bytes, &header, Role::Last, MAX, |_| {});
        assert_eq!(scan.n_frames, 1);
        assert_eq!(scan.end_offset, starts[1]);
        assert!(scan.torn_tail.is_some());
        assert_eq!(
            scan.damage[0].kind,
            CorruptionKind::FramesAfterTornTail { n_frames: 3 }
        );
    }
}
