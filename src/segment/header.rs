//! The segment header: the first [`SEGMENT_HEADER_BYTES`] bytes of every segment file.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "AUDITLOG"
//!      8     4  format version (u32 LE): 1 or 2
//!     12     4  flags (u32 LE): 0 in version 1; in version 2 bit 0 is `SPARSE`
//!     16     8  segment id (u64 LE)
//!     24     8  base LSN: the LSN of the first frame (u64 LE)
//!     32     8  created at, nanoseconds since the Unix epoch (i64 LE)
//!     40     8  salt: random per file, mixed into every frame checksum (u64 LE)
//!     48    32  previous segment digest: reserved for a keyed digest chained across
//!               segments (tamper evidence); zero in version 1
//!     80    44  reserved, zero
//!    124     4  crc32 of bytes 0..124 (u32 LE)
//! ```

use std::mem::size_of;

use crate::codec::{FrameContext, Lsn, SegmentId};
use crate::limits::SEGMENT_HEADER_BYTES;
use crate::model::Timestamp;

/// The first bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"AUDITLOG";
/// The format version this build writes. Version 2 added the `SPARSE` flag and the
/// sparse segment footer (see `segment::sparse`); a version 1 file is read as is.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const FORMAT_VERSION_MIN: u32 = 1;

/// Header flag: the segment was rewritten by compaction. Its frames keep their original
/// LSNs, which increase but are not dense, and a checksummed offset table follows them
/// (see `segment::sparse`).
pub const FLAG_SPARSE: u32 = 1;
/// The flags a header of each version may carry.
const fn known_flags(version: u32) -> u32 {
    if version >= 2 { FLAG_SPARSE } else { 0 }
}

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + MAGIC.len();
const FLAGS_AT: usize = VERSION_AT + size_of::<u32>();
const ID_AT: usize = FLAGS_AT + size_of::<u32>();
const BASE_AT: usize = ID_AT + size_of::<u64>();
const CREATED_AT: usize = BASE_AT + size_of::<u64>();
const SALT_AT: usize = CREATED_AT + size_of::<i64>();
const DIGEST_AT: usize = SALT_AT + size_of::<u64>();
const RESERVED_AT: usize = DIGEST_AT + 32;
const CRC_AT: usize = SEGMENT_HEADER_BYTES as usize - size_of::<u32>();
const _: () = assert!(RESERVED_AT <= CRC_AT);

/// A decoded segment header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u32,
    /// [`FLAG_SPARSE`] or 0.
    pub flags: u32,
    pub segment_id: SegmentId,
    pub base_lsn: Lsn,
    pub created_at: Timestamp,
    pub salt: u64,
    pub prev_digest: [u8; 32],
}

impl SegmentHeader {
    /// A header for a new segment, with a fresh random salt.
    pub fn new(segment_id: SegmentId, base_lsn: Lsn) -> std::io::Result<SegmentHeader> {
        let salt = getrandom::u64().map_err(std::io::Error::other)?;
        Ok(SegmentHeader {
            version: FORMAT_VERSION,
            flags: 0,
            segment_id,
            base_lsn,
            created_at: Timestamp::now(),
            salt,
            prev_digest: [0; 32],
        })
    }

    /// Whether the segment was rewritten by compaction (LSNs not dense, footer table).
    pub fn is_sparse(&self) -> bool {
        self.flags & FLAG_SPARSE != 0
    }

    /// What the frames of this segment are bound to.
    pub fn frame_context(&self) -> FrameContext {
        FrameContext::new(self.segment_id, self.salt)
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES as usize] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES as usize];
        out[MAGIC_AT..VERSION_AT].copy_from_slice(&MAGIC);
        out[VERSION_AT..FLAGS_AT].copy_from_slice(&self.version.to_le_bytes());
        out[FLAGS_AT..ID_AT].copy_from_slice(&self.flags.to_le_bytes());
        out[ID_AT..BASE_AT].copy_from_slice(&self.segment_id.0.to_le_bytes());
        out[BASE_AT..CREATED_AT].copy_from_slice(&self.base_lsn.0.to_le_bytes());
        out[CREATED_AT..SALT_AT].copy_from_slice(&self.created_at.unix_nanos().to_le_bytes());
        out[SALT_AT..DIGEST_AT].copy_from_slice(&self.salt.to_le_bytes());
        out[DIGEST_AT..RESERVED_AT].copy_from_slice(&self.prev_digest);
        let crc = crc32fast::hash(&out[..CRC_AT]);
        out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and verifies a header; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, String> {
        let Some(bytes) = bytes.get(..SEGMENT_HEADER_BYTES as usize) else {
            return Err(format!(
                "file is {} bytes, shorter than a header",
                bytes.len()
            ));
        };
        if bytes[MAGIC_AT..VERSION_AT] != MAGIC {
            return Err("not an auditlog segment (bad magic)".into());
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        if crc32fast::hash(&bytes[..CRC_AT]) != u32_at(CRC_AT) {
            return Err("header checksum mismatch".into());
        }
        let version = u32_at(VERSION_AT);
        if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version) {
            return Err(format!(
                "format version {version}; this build reads {FORMAT_VERSION_MIN} to {FORMAT_VERSION}"
            ));
        }
        let flags = u32_at(FLAGS_AT);
        if flags & !known_flags(version) != 0 {
            return Err(format!(
                "unknown header flags {flags:#x} for format version {version}"
            ));
        }
        Ok(SegmentHeader {
            version,
            flags,
            segment_id: SegmentId(u64_at(ID_AT)),
            base_lsn: Lsn(u64_at(BASE_AT)),
            created_at: Timestamp::from_unix_nanos(u64_at(CREATED_AT) as i64),
            salt: u64_at(SALT_AT),
            prev_digest: bytes[DIGEST_AT..RESERVED_AT].try_into().expect("32 bytes"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_every_bit_flip_is_caught() {
        let header = SegmentHeader::new(SegmentId(3), Lsn(12_345)).unwrap();
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes).unwrap(), header);
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                SegmentHeader::decode(&bad).is_err(),
                "flip of bit {bit} accepted"
            );
        }
    }

    #[test]
    fn version_1_headers_still_read_and_unknown_flags_are_refused() {
        let mut header = SegmentHeader::new(SegmentId(3), Lsn(64)).unwrap();
        header.version = 1;
        assert_eq!(SegmentHeader::decode(&header.encode()).unwrap(), header);
        header.flags = FLAG_SPARSE;
        assert!(
            SegmentHeader::decode(&header.encode()).is_err(),
            "v1 has no flags"
        );
        header.version = 2;
        assert!(SegmentHeader::decode(&header.encode()).unwrap().is_sparse());
        header.flags = 2;
        assert!(SegmentHeader::decode(&header.encode()).is_err());
        header.version = 3;
        header.flags = 0;
        assert!(SegmentHeader::decode(&header.encode()).is_err());
    }

    #[test]
    fn two_headers_never_share_a_salt() {
        let a = SegmentHeader::new(SegmentId(1), Lsn(0)).unwrap();
        let b = SegmentHeader::new(SegmentId(1), Lsn(0)).unwrap();
        assert_ne!(a.salt, b.salt);
    }
}
