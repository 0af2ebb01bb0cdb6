//! The sealed-segment hook: a callback told about every segment the journal seals, so
//! a shipper can copy sealed segments off the machine.
//!
//! Where it sits: beside the journal. [`Journal`](super::Journal) calls the hook right
//! after a segment is sealed (truncated to its frames and synced) by a roll or by
//! close; the callback gets the file's path, size and SHA-256 digest.
//!
//! # Invariants
//! - The hook sees a segment only once it is sealed and synced: the file never changes
//!   again until it is removed, so the digest stays true for as long as the file exists.
//! - The digest is computed only when a hook is registered (it reads the whole file).
//! - The hook runs on the appending thread while the log's lock is held: it must be
//!   quick (hand the info to a channel or a thread) and must not call back into the log.
//!
//! Deliberately absent: segments sealed by an open that cut a torn tail, and segments
//! sealed before the hook was registered, are not announced. A shipper lists the store
//! directory at startup (every `.seg` file but the newest is sealed) and ships what it
//! has not shipped yet.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::codec::{Lsn, SegmentId};

/// What a shipper needs to know about a sealed segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSegmentInfo {
    pub path: PathBuf,
    pub segment_id: SegmentId,
    /// The LSN of the segment's first frame (also its file name).
    pub base_lsn: Lsn,
    /// The LSN just past its last frame.
    pub end_lsn: Lsn,
    /// The file's size in bytes.
    pub len_bytes: u64,
    /// SHA-256 of the whole file, as object stores accept it for upload checks.
    pub sha256: [u8; 32],
}

impl SealedSegmentInfo {
    /// Describes a sealed segment from its bytes.
    pub(crate) fn of(
        path: PathBuf,
        segment_id: SegmentId,
        base_lsn: Lsn,
        end_lsn: Lsn,
        bytes: &[u8],
    ) -> SealedSegmentInfo {
        SealedSegmentInfo {
            path,
            segment_id,
            base_lsn,
            end_lsn,
            len_bytes: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }

    /// The digest as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A callback run for every segment sealed by a roll or by close.
#[derive(Clone)]
pub struct SealHook(pub Arc<dyn Fn(&SealedSegmentInfo) + Send + Sync>);

impl fmt::Debug for SealHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealHook(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_of_the_bytes() {
        let info = SealedSegmentInfo::of(PathBuf::from("x"), SegmentId(1), Lsn(0), Lsn(3), b"abc");
        assert_eq!(info.len_bytes, 3);
        assert_eq!(
            info.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
