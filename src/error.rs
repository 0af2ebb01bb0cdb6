//! The error type of every public operation.
//!
//! # Invariants
//! - I/O errors say what was being done and to which path.
//! - Corruption is its own variant with the segment, the offset and what was wrong.
//! - Messages are written for a person who has to act on them.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with a stretch of bytes that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The segment header's magic, version or checksum is wrong.
    BadHeader(String),
    /// A frame's checksum does not match its bytes.
    BadChecksum,
    /// A frame's length field is zero or past the record limit or the file end.
    BadLength(u64),
    /// The bytes end in the middle of a frame.
    Truncated,
    /// A frame names a log position other than the one it is stored at.
    MisplacedFrame { expected: u64, found: u64 },
    /// A frame's record kind is not one this version knows.
    UnknownKind(u8),
    /// A frame verified but its payload does not decode as its kind.
    BadPayload(String),
    /// Verifiable frames were found past a torn tail and discarded with it.
    FramesAfterTornTail { n_frames: u64 },
    /// A sparse (compacted) segment's offset table does not verify; its frames were
    /// found by scanning instead.
    BadFooter(String),
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::BadHeader(why) => write!(f, "bad segment header: {why}"),
            CorruptionKind::BadChecksum => f.write_str("checksum mismatch"),
            CorruptionKind::Truncated => f.write_str("the file ends inside a frame"),
            CorruptionKind::BadLength(len) => write!(f, "implausible frame length {len}"),
            CorruptionKind::MisplacedFrame { expected, found } => {
                write!(f, "frame for position {found} found at position {expected}")
            }
            CorruptionKind::UnknownKind(kind) => write!(f, "unknown record kind {kind}"),
            CorruptionKind::BadPayload(why) => write!(f, "undecodable payload: {why}"),
            CorruptionKind::BadFooter(why) => write!(
                f,
                "bad offset table of a compacted segment ({why}); its frames were found by scanning"
            ),
            CorruptionKind::FramesAfterTornTail { n_frames } => write!(
                f,
                "{n_frames} verifiable frame(s) after a torn record were cut with the tail"
            ),
        }
    }
}

/// Every failure the engine reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Bytes on disk failed verification.
    Corrupt {
        segment: PathBuf,
        offset: u64,
        kind: CorruptionKind,
    },
    /// Another handle, in this process or another, owns the store directory.
    Locked { dir: PathBuf },
    /// An encoded record is larger than the configured limit; nothing was written.
    RecordTooLarge { bytes: usize, max: usize },
    /// An earlier write or sync failed; the log acknowledges nothing further.
    Poisoned { reason: String },
    /// The log was closed.
    Closed,
    /// A configuration value is out of range.
    InvalidConfig(String),
    /// A record could not be encoded.
    Encode(String),
    /// A file in the store directory is not one the engine wrote.
    ForeignFile { path: PathBuf },
    /// A query or update named something the store does not hold.
    NotFound { what: &'static str, id: String },
    /// An insert would replace something already stored; the original is kept and
    /// nothing was written.
    Duplicate { what: &'static str, id: String },
    /// An argument is unusable (an empty run id, ...); nothing was written.
    InvalidInput(String),
}

impl Error {
    /// An I/O error with what was being done and to which path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the error is the disk running out of space.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } if source.kind() == io::ErrorKind::StorageFull => {
                write!(
                    f,
                    "cannot {op} {}: the disk is full ({source})",
                    path.display()
                )
            }
            Error::Io { op, path, source } => write!(f, "cannot {op} {}: {source}", path.display()),
            Error::Corrupt {
                segment,
                offset,
                kind,
            } => write!(
                f,
                "corrupt data in segment {} at byte {offset}: {kind}",
                segment.display()
            ),
            Error::Locked { dir } => write!(
                f,
                "the store directory {} is already open by another handle or process",
                dir.display()
            ),
            Error::RecordTooLarge { bytes, max } => write!(
                f,
                "record of {bytes} bytes is larger than the limit of {max} bytes; nothing was written"
            ),
            Error::Poisoned { reason } => write!(
                f,
                "the log refuses writes after an earlier failure ({reason}); reopen it to recover"
            ),
            Error::Closed => f.write_str("the log is closed"),
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::Encode(why) => write!(f, "cannot encode record: {why}"),
            Error::ForeignFile { path } => write!(
                f,
                "{} is not an auditlog file; move it out of the store directory",
                path.display()
            ),
            Error::NotFound { what, id } => write!(f, "no {what} with id `{id}` is stored"),
            Error::Duplicate { what, id } => write!(
                f,
                "{what} `{id}` is already stored; the original is kept and nothing was written"
            ),
            Error::InvalidInput(why) => write!(f, "invalid input: {why}; nothing was written"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
