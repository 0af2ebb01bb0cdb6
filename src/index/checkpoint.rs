//! The index checkpoint: the whole [`Index`] written to `index.ckpt`, so open replays
//! only the log after it.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "ALIDXCK\0"
//!      8     4  format version (u32 LE)
//!     12     4  crc32 (LE) of every byte from offset 16 to the end of the file
//!     16     8  covered LSN: the checkpoint holds every frame below it (u64 LE)
//!     24     8  LSN of the last covered frame (u64 LE)
//!     32     4  crc32 of that frame's kind byte and payload (u32 LE)
//!     36     4  zero
//!     40     8  body length in bytes (u64 LE)
//!     48     n  body: the index, msgpack (rmp-serde, positional)
//! ```
//! The last covered frame is the checkpoint's fingerprint of the log it was taken
//! from: open accepts the checkpoint only if a frame that verifies against its
//! segment's salt sits at that LSN, ends exactly at the covered LSN and has the same
//! content. A checkpoint from another store, from before a torn tail was cut, or from
//! a log that was restored from an older copy fails this and is ignored.
//!
//! # Invariants
//! - The file is written as `index.ckpt.tmp`, synced, renamed over `index.ckpt`, and
//!   the directory synced: a crash leaves the old checkpoint or the new one, never half.
//! - A checkpoint is taken only after the frames it covers are durable.
//! - Loading never trusts a length from the file: the body length must equal the file
//!   length minus the header before the checksum is computed, the file is read through
//!   a read-only map (no allocation sized by the file), and the decoded index is
//!   checked for internal consistency before it is used.
//! - A damaged, truncated, foreign or stale checkpoint is reported as ignored and the
//!   index is rebuilt from the log; it never fails an open.

use std::mem::size_of;
use std::path::Path;

use crate::codec::{Frame, Lsn};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::vfs::{Vfs, publish_file};

/// The file name of the checkpoint inside a store directory.
pub const CHECKPOINT_FILE_NAME: &str = "index.ckpt";
/// The temporary name a checkpoint is written under.
pub const CHECKPOINT_TMP_FILE_NAME: &str = "index.ckpt.tmp";

const MAGIC: [u8; 8] = *b"ALIDXCK\0";
const VERSION: u32 = 1;
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + MAGIC.len();
const CRC_AT: usize = VERSION_AT + size_of::<u32>();
const COVERED_AT: usize = CRC_AT + size_of::<u32>();
const LAST_LSN_AT: usize = COVERED_AT + size_of::<u64>();
const LAST_CRC_AT: usize = LAST_LSN_AT + size_of::<u64>();
const PAD_AT: usize = LAST_CRC_AT + size_of::<u32>();
const BODY_LEN_AT: usize = PAD_AT + size_of::<u32>();
/// Bytes of the checkpoint header.
pub const HEADER_BYTES: usize = BODY_LEN_AT + size_of::<u64>();
const _: () = assert!(HEADER_BYTES == 48);

/// Which log a checkpoint belongs to, and how far it covers it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Every frame below this LSN is in the checkpoint.
    pub covered: Lsn,
    /// The last covered frame.
    pub last_frame: Lsn,
    /// crc32 of the last covered frame's kind byte and payload.
    pub last_frame_crc: u32,
}

impl Coverage {
    /// The coverage whose last frame is `frame`.
    pub fn of_last_frame(frame: &Frame<'_>) -> Coverage {
        Coverage {
            covered: Lsn(frame.lsn.0 + frame.len_bytes()),
            last_frame: frame.lsn,
            last_frame_crc: frame_crc(frame),
        }
    }

    /// Whether `frame` is the last covered frame of the log this coverage was taken
    /// from.
    pub fn is_last_frame(&self, frame: &Frame<'_>) -> bool {
        frame.lsn == self.last_frame && Coverage::of_last_frame(frame) == *self
    }
}

fn frame_crc(frame: &Frame<'_>) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[frame.kind as u8]);
    hasher.update(frame.payload);
    hasher.finalize()
}

/// A checkpoint read back from disk, not yet matched against the log.
#[derive(Debug)]
pub struct Loaded {
    pub coverage: Coverage,
    pub index: Index,
}

/// Why no checkpoint was used at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointUse {
    /// There was none.
    Missing,
    /// One was loaded; only the log from `covered` on was replayed.
    Loaded { covered: Lsn },
    /// One was found and ignored for this reason; the index was rebuilt from the log.
    Ignored(String),
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Encodes a checkpoint file.
pub fn encode(index: &Index, coverage: Coverage) -> Result<Vec<u8>> {
    let mut out = vec![0u8; HEADER_BYTES];
    rmp_serde::encode::write(&mut out, index).map_err(|e| Error::Encode(e.to_string()))?;
    let body_len = (out.len() - HEADER_BYTES) as u64;
    out[MAGIC_AT..VERSION_AT].copy_from_slice(&MAGIC);
    out[VERSION_AT..CRC_AT].copy_from_slice(&VERSION.to_le_bytes());
    out[COVERED_AT..LAST_LSN_AT].copy_from_slice(&coverage.covered.0.to_le_bytes());
    out[LAST_LSN_AT..LAST_CRC_AT].copy_from_slice(&coverage.last_frame.0.to_le_bytes());
    out[LAST_CRC_AT..PAD_AT].copy_from_slice(&coverage.last_frame_crc.to_le_bytes());
    out[BODY_LEN_AT..HEADER_BYTES].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32fast::hash(&out[COVERED_AT..]);
    out[CRC_AT..COVERED_AT].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decodes a checkpoint file; `Err` says why it cannot be used.
pub fn decode(bytes: &[u8]) -> std::result::Result<Loaded, String> {
    if bytes.len() < HEADER_BYTES {
        return Err(format!(
            "the file is {} bytes, shorter than its {HEADER_BYTES}-byte header",
            bytes.len()
        ));
    }
    if bytes[MAGIC_AT..VERSION_AT] != MAGIC {
        return Err("the magic bytes are wrong".into());
    }
    let version = u32_at(bytes, VERSION_AT);
    if version != VERSION {
        return Err(format!("format version {version}, expected {VERSION}"));
    }
    let body_len = u64_at(bytes, BODY_LEN_AT);
    if body_len != (bytes.len() - HEADER_BYTES) as u64 {
        return Err(format!(
            "the header names a {body_len}-byte body but {} bytes follow it (truncated?)",
            bytes.len() - HEADER_BYTES
        ));
    }
    if crc32fast::hash(&bytes[COVERED_AT..]) != u32_at(bytes, CRC_AT) {
        return Err("checksum mismatch".into());
    }
    let coverage = Coverage {
        covered: Lsn(u64_at(bytes, COVERED_AT)),
        last_frame: Lsn(u64_at(bytes, LAST_LSN_AT)),
        last_frame_crc: u32_at(bytes, LAST_CRC_AT),
    };
    if coverage.last_frame >= coverage.covered {
        return Err("the last covered frame is not below the covered LSN".into());
    }
    let index: Index = rmp_serde::from_slice(&bytes[HEADER_BYTES..])
        .map_err(|e| format!("the body does not decode: {e}"))?;
    index
        .check_consistent()
        .map_err(|why| format!("the index is inconsistent: {why}"))?;
    Ok(Loaded { coverage, index })
}

/// Reads the checkpoint in `dir`: `Ok(None)` when there is none, `Err(reason)` when
/// there is one that cannot be used.
pub fn load(vfs: &dyn Vfs, dir: &Path) -> std::result::Result<Option<Loaded>, String> {
    let path = dir.join(CHECKPOINT_FILE_NAME);
    let file = match vfs.open_rw(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    };
    let view = file
        .map_readonly()
        .map_err(|e| format!("cannot map {}: {e}", path.display()))?;
    decode(&view).map(Some)
}

/// Writes `index` as the checkpoint of `dir`, atomically (tmp, sync, rename, sync dir).
pub fn write(vfs: &dyn Vfs, dir: &Path, index: &Index, coverage: Coverage) -> Result<()> {
    let bytes = encode(index, coverage)?;
    let tmp = dir.join(CHECKPOINT_TMP_FILE_NAME);
    let path = dir.join(CHECKPOINT_FILE_NAME);
    publish_file(vfs, dir, &tmp, &path, |file| {
        file.write_all_at(&bytes, 0)
            .map_err(|e| Error::io("write checkpoint", &tmp, e))
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Record;
    use crate::model::Run;

    fn sample() -> (Index, Coverage) {
        let mut index = Index::new();
        index.apply(Lsn(0), &Record::RunStarted(Run::new("r", "s")));
        let coverage = Coverage {
            covered: Lsn(100),
            last_frame: Lsn(0),
            last_frame_crc: 7,
        };
        (index, coverage)
    }

    #[test]
    fn a_checkpoint_round_trips() {
        let (index, coverage) = sample();
        let bytes = encode(&index, coverage).unwrap();
        let loaded = decode(&bytes).unwrap();
        assert_eq!(loaded.coverage, coverage);
        assert_eq!(loaded.index.n_runs(), 1);
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let (index, coverage) = sample();
        let bytes = encode(&index, coverage).unwrap();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(decode(&damaged).is_err(), "flip at {at} accepted");
        }
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "truncation to {len} accepted"
            );
        }
    }
}
