//! The sparse segment: what compaction writes when it rewrites a sealed segment.
//!
//! ```text
//! offset            size   field
//!      0             128   segment header: version 2, flag SPARSE, fresh salt and id,
//!                          the SAME base LSN (and file name) as the segment it replaces
//!    128               f   the kept frames, each at its ORIGINAL LSN: increasing, not dense
//!  128+f           8 × n   offset table, one entry per frame, in LSN order:
//!                            0  4  LSN − base LSN (u32 LE)
//!                            4  4  file offset of the frame (u32 LE)
//!  end−32             32   trailer:
//!                            0  8  magic "ALSPARSE"
//!                            8  4  n, the number of frames (u32 LE)
//!                           12  4  frames end: the file offset where the table starts (u32 LE)
//!                           16  8  end LSN: just past the replaced segment's last frame (u64 LE)
//!                           24  4  zero
//!                           28  4  crc32 of salt ‖ segment id ‖ table ‖ trailer bytes 0..28
//! ```
//!
//! Where it sits: below the journal. Compaction writes one of these per rewritten
//! segment (see `compaction`); open and `verify` read them back.
//!
//! # Invariants
//! - Every LSN a frame had before the rewrite is the LSN it has after, so nothing that
//!   refers to a record by LSN (the index, a checkpoint) needs to change.
//! - A u32 is enough for a delta and an offset: a segment is at most 1 GiB
//!   (`limits::SEGMENT_BYTES_MAX`), and a rewrite is never larger than the original.
//! - The trailer's checksum covers the file's salt and id, so a table from another file
//!   never verifies here. Nothing read from the table is trusted before it is bounds-
//!   checked; when the table does not verify, the frames are found by scanning, with
//!   LSNs that must increase and stay below the next segment's base LSN.
//! - The end LSN is the replaced segment's, not derived from the file length, so the
//!   log's next LSN never goes back after a rewrite.

use std::mem::size_of;
use std::path::{Path, PathBuf};

use crate::codec::{Frame, FrameContext, Lsn, SegmentId, decode_frame, frame_payload};
use crate::error::{CorruptionKind, Error, Result};
use crate::limits::{FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use crate::segment::header::{FLAG_SPARSE, SegmentHeader};
use crate::segment::recovery::Damage;
use crate::vfs::{ReadView, Vfs, VfsFile, create_temporary};

const MAGIC: [u8; 8] = *b"ALSPARSE";
const ENTRY_BYTES: usize = 2 * size_of::<u32>();
const MAGIC_AT: usize = 0;
const N_AT: usize = MAGIC_AT + MAGIC.len();
const FRAMES_END_AT: usize = N_AT + size_of::<u32>();
const END_LSN_AT: usize = FRAMES_END_AT + size_of::<u32>();
const PAD_AT: usize = END_LSN_AT + size_of::<u64>();
const CRC_AT: usize = PAD_AT + size_of::<u32>();
/// Bytes of the trailer at the very end of a sparse segment.
pub const TRAILER_BYTES: usize = CRC_AT + size_of::<u32>();
const _: () = assert!(TRAILER_BYTES == 32);
const _: () = assert!(crate::limits::SEGMENT_BYTES_MAX <= u32::MAX as u64);

/// Where the frames of a sparse segment are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparseTable {
    /// `(LSN − base, file offset)` of every verified frame, in LSN order.
    pub entries: Vec<(u32, u32)>,
    /// The LSN just past the replaced segment's last frame.
    pub end_lsn: Lsn,
}

impl SparseTable {
    /// The file offset of the frame with this LSN, if the segment holds it.
    pub fn offset_of(&self, base: Lsn, lsn: Lsn) -> Option<u64> {
        let delta = u32::try_from(lsn.0.checked_sub(base.0)?).ok()?;
        let at = self
            .entries
            .binary_search_by_key(&delta, |&(d, _)| d)
            .ok()?;
        Some(u64::from(self.entries[at].1))
    }
}

fn crc(ctx: &FrameContext, table: &[u8], trailer: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&ctx.salt.to_le_bytes());
    hasher.update(&ctx.segment_id.0.to_le_bytes());
    hasher.update(table);
    hasher.update(trailer);
    hasher.finalize()
}

/// Appends the offset table and trailer for frames ending at `frames_end`.
pub fn encode_footer(
    out: &mut Vec<u8>,
    ctx: &FrameContext,
    entries: &[(u32, u32)],
    frames_end: u32,
    end_lsn: Lsn,
) {
    let table_at = out.len();
    for &(delta, offset) in entries {
        out.extend_from_slice(&delta.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
    }
    let mut trailer = [0u8; TRAILER_BYTES];
    trailer[MAGIC_AT..N_AT].copy_from_slice(&MAGIC);
    let n = u32::try_from(entries.len()).expect("a segment holds fewer than 2^32 frames");
    trailer[N_AT..FRAMES_END_AT].copy_from_slice(&n.to_le_bytes());
    trailer[FRAMES_END_AT..END_LSN_AT].copy_from_slice(&frames_end.to_le_bytes());
    trailer[END_LSN_AT..PAD_AT].copy_from_slice(&end_lsn.0.to_le_bytes());
    let sum = crc(ctx, &out[table_at..], &trailer[..CRC_AT]);
    trailer[CRC_AT..].copy_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(&trailer);
}

/// Reads and verifies the footer of a sparse segment's bytes; returns the table (not
/// yet checked against the frames) and the offset where the frames end.
pub fn decode_footer(bytes: &[u8], header: &SegmentHeader) -> Result<(SparseTable, u64), String> {
    let len = bytes.len();
    let head = SEGMENT_HEADER_BYTES as usize;
    if len < head + TRAILER_BYTES {
        return Err(format!("file is {len} bytes, too short for a footer"));
    }
    let trailer = &bytes[len - TRAILER_BYTES..];
    let u32_at = |at: usize| u32::from_le_bytes(trailer[at..at + 4].try_into().expect("4 bytes"));
    if trailer[MAGIC_AT..N_AT] != MAGIC {
        return Err("no footer magic".into());
    }
    let n = u32_at(N_AT) as usize;
    let frames_end = u32_at(FRAMES_END_AT) as usize;
    let table_len = n.checked_mul(ENTRY_BYTES).ok_or("table length overflows")?;
    if frames_end < head || frames_end.checked_add(table_len) != Some(len - TRAILER_BYTES) {
        return Err(format!(
            "footer says {n} frames ending at {frames_end}, which does not fit a {len}-byte file"
        ));
    }
    let table = &bytes[frames_end..len - TRAILER_BYTES];
    if crc(&header.frame_context(), table, &trailer[..CRC_AT]) != u32_at(CRC_AT) {
        return Err("footer checksum mismatch".into());
    }
    let end_lsn = Lsn(u64::from_le_bytes(
        trailer[END_LSN_AT..PAD_AT].try_into().expect("8 bytes"),
    ));
    let entries: Vec<(u32, u32)> = table
        .chunks_exact(ENTRY_BYTES)
        .map(|e| {
            (
                u32::from_le_bytes(e[..4].try_into().expect("4 bytes")),
                u32::from_le_bytes(e[4..].try_into().expect("4 bytes")),
            )
        })
        .collect();
    let increasing = entries
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
    let in_bounds = entries
        .iter()
        .all(|&(_, off)| (off as usize) >= head && (off as usize) < frames_end);
    let below_end = entries
        .last()
        .is_none_or(|&(d, _)| header.base_lsn.0 + u64::from(d) < end_lsn.0);
    if !increasing || !in_bounds || !below_end || end_lsn < header.base_lsn {
        return Err("footer table out of order or out of bounds".into());
    }
    Ok((SparseTable { entries, end_lsn }, frames_end as u64))
}

/// What a scan of a sparse segment found.
#[derive(Clone, Debug, Default)]
pub struct SparseScan {
    /// The verified frames.
    pub table: SparseTable,
    pub damage: Vec<Damage>,
    pub n_frames: u64,
    pub bytes_verified: u64,
}

/// Verifies every frame of a sparse segment, through its footer or, when the footer
/// does not verify, by scanning (reported as damage). `next_base` bounds the LSNs a
/// scan accepts. `visit` sees each verified frame and its file offset, in order.
pub fn scan_sparse<'a>(
    bytes: &'a [u8],
    header: &SegmentHeader,
    next_base: Option<Lsn>,
    payload_max: usize,
    mut visit: impl FnMut(Frame<'a>, u64),
) -> SparseScan {
    let ctx = header.frame_context();
    let base = header.base_lsn;
    let mut scan = SparseScan::default();
    let mut keep = |scan: &mut SparseScan, frame: Frame<'a>, offset: u64| {
        visit(frame, offset);
        scan.n_frames += 1;
        scan.bytes_verified += frame.len_bytes();
        let delta = u32::try_from(frame.lsn.0 - base.0).expect("checked below the end LSN");
        scan.table.entries.push((delta, offset as u32));
    };
    match decode_footer(bytes, header) {
        Ok((table, frames_end)) => {
            let frames = &bytes[..frames_end as usize];
            for (i, &(delta, offset)) in table.entries.iter().enumerate() {
                let next = table
                    .entries
                    .get(i + 1)
                    .map_or(frames_end, |&(_, o)| u64::from(o));
                let lsn = Lsn(base.0 + u64::from(delta));
                match decode_frame(&frames[offset as usize..], &ctx, lsn, payload_max) {
                    Ok(frame) if u64::from(offset) + frame.len_bytes() <= next => {
                        keep(&mut scan, frame, u64::from(offset));
                    }
                    other => scan.damage.push(Damage {
                        offset: u64::from(offset),
                        len_bytes: next - u64::from(offset),
                        kind: match other {
                            Ok(_) => CorruptionKind::BadLength(next - u64::from(offset)),
                            Err(e) => super::frame_error_kind(e),
                        },
                    }),
                }
            }
            scan.table.end_lsn = table.end_lsn;
        }
        Err(why) => {
            let bound = next_base.map_or(u64::MAX, |b| b.0);
            let mut at = SEGMENT_HEADER_BYTES as usize;
            let mut prev: Option<u64> = None;
            let mut damage_from: Option<usize> = None;
            let mut last_end = base.0;
            while at + FRAME_HEADER_BYTES as usize <= bytes.len() {
                let lsn = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8 bytes"));
                let plausible = lsn >= base.0 && prev.is_none_or(|p| lsn > p) && lsn < bound;
                let frame = plausible
                    .then(|| decode_frame(&bytes[at..], &ctx, Lsn(lsn), payload_max).ok())
                    .flatten();
                match frame {
                    Some(frame) if lsn - base.0 <= u64::from(u32::MAX) => {
                        if let Some(from) = damage_from.take() {
                            scan.damage.push(Damage {
                                offset: from as u64,
                                len_bytes: (at - from) as u64,
                                kind: CorruptionKind::BadChecksum,
                            });
                        }
                        keep(&mut scan, frame, at as u64);
                        prev = Some(lsn);
                        last_end = lsn + frame.len_bytes();
                        at += frame.len_bytes() as usize;
                    }
                    _ => {
                        damage_from.get_or_insert(at);
                        at += 1;
                    }
                }
            }
            // What follows the last frame found is the unreadable footer itself.
            scan.damage.push(Damage {
                offset: damage_from.unwrap_or(at) as u64,
                len_bytes: (bytes.len() - damage_from.unwrap_or(at)) as u64,
                kind: CorruptionKind::BadFooter(why),
            });
            scan.table.end_lsn = next_base.unwrap_or(Lsn(last_end)).max(Lsn(last_end));
        }
    }
    scan
}

/// A rewritten segment written under its temporary name, not yet visible.
#[derive(Debug)]
pub struct Rewritten {
    /// The temporary file, `<name>.compact`.
    pub tmp: PathBuf,
    file: Box<dyn VfsFile>,
    /// Whether [`Rewritten::sync`] made it durable; only then may it be renamed in.
    synced: bool,
    pub header: SegmentHeader,
    pub view: ReadView,
    pub table: SparseTable,
    /// Bytes of the new file.
    pub len_bytes: u64,
}

impl Rewritten {
    /// Makes the file's bytes durable. Rewrites are synced one after another once all
    /// of a batch are written, so the writes of one overlap the sync of another.
    pub fn sync(&mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io("sync compacted segment", &self.tmp, e))?;
        self.synced = true;
        Ok(())
    }

    /// Whether the file is durable.
    pub fn is_synced(&self) -> bool {
        self.synced
    }
}

/// The temporary name a rewrite of the segment at `path` is written under.
pub fn compact_tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(super::COMPACT_SUFFIX);
    PathBuf::from(name)
}

/// Writes the frames of `frames` (in LSN order, each `(LSN, kind, payload)`) as a sparse
/// segment replacing the one at `path` (base `base`, end `end_lsn`), under the temporary
/// name. The caller syncs it ([`Rewritten::sync`]), then makes it visible with a rename.
pub fn write_sparse<'a>(
    vfs: &dyn Vfs,
    path: &Path,
    id: SegmentId,
    base: Lsn,
    end_lsn: Lsn,
    frames: impl Iterator<Item = Frame<'a>>,
) -> Result<Rewritten> {
    const CHUNK_BYTES: usize = 1 << 20;
    let tmp = compact_tmp_path(path);
    let mut header =
        SegmentHeader::new(id, base).map_err(|e| Error::io("draw segment salt", &tmp, e))?;
    header.flags = FLAG_SPARSE;
    let ctx = header.frame_context();
    let file = create_temporary(vfs, &tmp)?;
    let written = (|| {
        let mut buf = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
        buf.extend_from_slice(&header.encode());
        let mut written = 0u64;
        let mut entries = Vec::new();
        let mut last: Option<Lsn> = None;
        for frame in frames {
            assert!(
                last.is_none_or(|l| frame.lsn > l) && frame.lsn >= base && frame.lsn < end_lsn,
                "a rewrite keeps LSNs increasing and inside the segment"
            );
            last = Some(frame.lsn);
            let offset = written + buf.len() as u64;
            entries.push(((frame.lsn.0 - base.0) as u32, offset as u32));
            frame_payload(&mut buf, &ctx, frame.lsn, frame.kind, frame.payload);
            if buf.len() >= CHUNK_BYTES {
                file.write_all_at(&buf, written)
                    .map_err(|e| Error::io("write compacted segment", &tmp, e))?;
                written += buf.len() as u64;
                buf.clear();
            }
        }
        let frames_end = written + buf.len() as u64;
        encode_footer(&mut buf, &ctx, &entries, frames_end as u32, end_lsn);
        file.write_all_at(&buf, written)
            .map_err(|e| Error::io("write compacted segment", &tmp, e))?;
        written += buf.len() as u64;
        let view = file
            .map_readonly()
            .map_err(|e| Error::io("map compacted segment", &tmp, e))?;
        Ok((view, entries, written))
    })();
    match written {
        Ok((view, entries, len_bytes)) => Ok(Rewritten {
            tmp,
            file,
            synced: false,
            header,
            view,
            table: SparseTable { entries, end_lsn },
            len_bytes,
        }),
        Err(error) => {
            // Best effort: a leftover temporary is also removed at the next open.
            let _ = vfs.remove_file(&tmp);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Record, encode_frame};
    use crate::model::{RunEvent, Timestamp};

    const MAX: usize = 1 << 16;

    /// A sparse segment at base 1000 holding frames at the given LSN deltas.
    fn sparse(deltas: &[u64]) -> (SegmentHeader, Vec<u8>) {
        let mut header = SegmentHeader::new(SegmentId(9), Lsn(1000)).unwrap();
        header.flags = FLAG_SPARSE;
        let ctx = header.frame_context();
        let mut bytes = header.encode().to_vec();
        let mut entries = Vec::new();
        for (i, d) in deltas.iter().enumerate() {
            entries.push((*d as u32, bytes.len() as u32));
            let record = Record::EventAppended(RunEvent {
                run_id: "r".into(),
                sequence: i as u64,
                created_at: Timestamp::from_unix_millis(1),
                ..RunEvent::default()
            });
            encode_frame(&mut bytes, &ctx, Lsn(1000 + d), &record, MAX).unwrap();
        }
        let frames_end = bytes.len() as u32;
        encode_footer(&mut bytes, &ctx, &entries, frames_end, Lsn(5000));
        (header, bytes)
    }

    #[test]
    fn a_sparse_segment_reads_through_its_footer() {
        let (header, bytes) = sparse(&[0, 300, 301 + 100, 2000]);
        let mut seen = Vec::new();
        let scan = scan_sparse(&bytes, &header, Some(Lsn(5000)), MAX, |f, _| {
            seen.push(f.lsn.0)
        });
        assert!(scan.damage.is_empty());
        assert_eq!(seen, vec![1000, 1300, 1401, 3000]);
        assert_eq!(scan.table.end_lsn, Lsn(5000));
        assert_eq!(
            scan.table.offset_of(Lsn(1000), Lsn(1300)),
            Some(u64::from(scan.table.entries[1].1))
        );
        assert_eq!(scan.table.offset_of(Lsn(1000), Lsn(1301)), None);
    }

    #[test]
    fn every_bit_flip_in_the_footer_falls_back_to_a_scan_that_finds_every_frame() {
        let (header, bytes) = sparse(&[0, 300, 2000]);
        let (table, frames_end) = decode_footer(&bytes, &header).unwrap();
        for bit in frames_end as usize * 8..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let mut seen = Vec::new();
            let scan = scan_sparse(&bad, &header, Some(Lsn(5000)), MAX, |f, _| {
                seen.push(f.lsn.0)
            });
            assert_eq!(seen, vec![1000, 1300, 3000], "flip of bit {bit}");
            assert_eq!(scan.table.entries, table.entries, "flip of bit {bit}");
            assert!(
                matches!(
                    scan.damage.last().unwrap().kind,
                    CorruptionKind::BadFooter(_)
                ),
                "flip of bit {bit} not reported"
            );
        }
    }

    #[test]
    fn a_damaged_frame_is_skipped_and_reported() {
        let (header, mut bytes) = sparse(&[0, 300, 2000]);
        let (table, _) = decode_footer(&bytes, &header).unwrap();
        bytes[table.entries[1].1 as usize + 22] ^= 4;
        let mut seen = Vec::new();
        let scan = scan_sparse(&bytes, &header, None, MAX, |f, _| seen.push(f.lsn.0));
        assert_eq!(seen, vec![1000, 3000]);
        assert_eq!(scan.damage.len(), 1);
        assert_eq!(scan.damage[0].offset, u64::from(table.entries[1].1));
    }

    #[test]
    fn a_scan_refuses_lsns_at_or_past_the_next_segment() {
        let (header, mut bytes) = sparse(&[0, 300, 2000]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let mut seen = Vec::new();
        scan_sparse(&bytes, &header, Some(Lsn(3000)), MAX, |f, _| {
            seen.push(f.lsn.0)
        });
        assert_eq!(seen, vec![1000, 1300]);
    }
}
