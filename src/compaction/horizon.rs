//! The compaction horizon file: the log's end when the last compaction pass that removed
//! anything took its snapshot. An index checkpoint covering less is never used.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "ALHORIZN"
//!      8     8  horizon LSN (u64 LE)
//!     16     4  crc32 of bytes 0..16 (u32 LE)
//! ```
//!
//! # Invariants
//! - Written as `compaction.horizon.tmp`, synced, renamed, directory synced, before the
//!   first segment of a pass is swapped or removed: a crash leaves the old or new value,
//!   and a pass's removals are never durable without it.
//! - A missing file means 0 (no compaction ever removed anything); a damaged one means
//!   "trust no checkpoint" — a rebuild from the log is always correct.

use std::io;
use std::mem::size_of;
use std::path::Path;

use crate::codec::Lsn;
use crate::error::{Error, Result};
use crate::vfs::{Vfs, publish_file};

const FILE_NAME: &str = "compaction.horizon";
const TMP_FILE_NAME: &str = "compaction.horizon.tmp";
const MAGIC: [u8; 8] = *b"ALHORIZN";
const LSN_AT: usize = MAGIC.len();
const CRC_AT: usize = LSN_AT + size_of::<u64>();
const FILE_BYTES: usize = CRC_AT + size_of::<u32>();

fn encode(lsn: Lsn) -> [u8; FILE_BYTES] {
    let mut out = [0u8; FILE_BYTES];
    out[..LSN_AT].copy_from_slice(&MAGIC);
    out[LSN_AT..CRC_AT].copy_from_slice(&lsn.0.to_le_bytes());
    let crc = crc32fast::hash(&out[..CRC_AT]);
    out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<Lsn> {
    if bytes.len() != FILE_BYTES || bytes[..LSN_AT] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(bytes[CRC_AT..].try_into().expect("4 bytes"));
    (crc32fast::hash(&bytes[..CRC_AT]) == crc).then(|| {
        Lsn(u64::from_le_bytes(
            bytes[LSN_AT..CRC_AT].try_into().expect("8 bytes"),
        ))
    })
}

/// The horizon of the store in `dir`.
pub fn read_horizon(vfs: &dyn Vfs, dir: &Path) -> Lsn {
    let path = dir.join(FILE_NAME);
    match vfs.open_ro(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Lsn(0),
        Err(_) => Lsn(u64::MAX),
        Ok(file) => file
            .map_readonly()
            .ok()
            .and_then(|view| decode(&view))
            .unwrap_or(Lsn(u64::MAX)),
    }
}

/// Makes `lsn` the horizon, durably.
pub fn write_horizon(vfs: &dyn Vfs, dir: &Path, lsn: Lsn) -> Result<()> {
    let tmp = dir.join(TMP_FILE_NAME);
    let path = dir.join(FILE_NAME);
    publish_file(vfs, dir, &tmp, &path, |file| {
        file.write_all_at(&encode(lsn), 0)
            .map_err(|e| Error::io("write compaction horizon", &tmp, e))
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::SimVfs;

    #[test]
    fn the_horizon_round_trips_and_damage_trusts_no_checkpoint() {
        let vfs = SimVfs::new();
        let dir = Path::new("/s");
        vfs.create_dir_all(dir).unwrap();
        assert_eq!(read_horizon(&vfs, dir), Lsn(0));
        write_horizon(&vfs, dir, Lsn(77)).unwrap();
        assert_eq!(read_horizon(&vfs, dir), Lsn(77));
        for bit in 0..FILE_BYTES * 8 {
            let mut bad = encode(Lsn(77));
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode(&bad), None, "flip of bit {bit}");
        }
    }
}
