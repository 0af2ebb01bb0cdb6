//! Encoding of records into checksummed frames, and back (no I/O).
//!
//! Where it sits: the committer encodes records into frames in a batch buffer, the
//! segment writer appends the buffer, and recovery and queries decode frames read from
//! segment bytes.
//!
//! # Invariants
//! - A frame's checksum covers the segment's salt and id, the frame's LSN, its kind and
//!   its payload, so a stale, misplaced or torn frame never verifies.
//! - Decoding never trusts a length from disk: it is checked against the record limit
//!   and the bytes at hand before anything is sliced or allocated.
//! - serde is the reference decoding of every payload; the hand-written readers (the
//!   borrowed walkers of `view` over `msgpack`, under both `decode` for whole records
//!   and the index's key reads) only ever answer the same or hand the payload to serde.

#[cfg(test)]
pub(crate) mod arbitrary;
mod decode;
mod frame;
pub(crate) mod msgpack;
mod record;
pub(crate) mod view;

/// The cheap pre-check used when searching for the next good frame after damage.
pub(crate) mod frame_probe {
    pub(crate) use super::frame::may_start_frame;
}

pub(crate) use decode::Decode;
pub use frame::{
    Frame, FrameContext, FrameError, claimed_frame_bytes, decode_frame, encode_frame,
    frame_payload, reread_verified,
};
pub(crate) use record::{CallRef, EncodedRecord};
pub use record::{DropReport, Purge, Record, RecordKind, RunFinished};

use std::fmt;

/// A log sequence number: the logical byte position of a frame in the log.
///
/// LSNs only grow. A segment whose first frame has LSN `b` stores the frame with LSN
/// `l` at file offset `SEGMENT_HEADER_BYTES + (l - b)`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of a segment file: a counter that grows with every segment created.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
