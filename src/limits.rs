//! Every bound the engine enforces, in one place, with the relations between them
//! checked at compile time.
//!
//! A limit that is configurable has a default here and a hard ceiling here; the config
//! is validated against the ceilings when a log is opened.

/// Bytes of a segment header (see `segment::header`).
pub const SEGMENT_HEADER_BYTES: u64 = 128;

/// Bytes of a frame header: crc, payload length, LSN, record kind, padding.
pub const FRAME_HEADER_BYTES: u64 = 20;

/// Default largest encoded record payload: 1 MiB.
pub const RECORD_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// The largest record payload any config may allow: 16 MiB. Recovery never trusts a
/// length read from disk beyond it.
pub const RECORD_BYTES_MAX_CEILING: usize = 16 << 20;
/// The smallest record limit a config may set.
pub const RECORD_BYTES_MAX_FLOOR: usize = 256;

/// Default segment size: 64 MiB.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// The smallest segment a config may ask for (tests use small segments to roll often).
pub const SEGMENT_BYTES_MIN: u64 = 4 << 10;
/// The largest segment a config may ask for: 1 GiB, so frame offsets fit in `u32`.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;

/// Longest run, call or event id, in bytes.
pub const ID_BYTES_MAX: usize = 1024;

/// Deepest parent chain `walk_parent_chain` follows (SPEC §3.15).
pub const PARENT_CHAIN_DEPTH_MAX: usize = 32;

/// Largest page a filtered listing returns; larger or non-positive limits become
/// [`QUERY_PAGE_DEFAULT`] (SPEC §3.11).
pub const QUERY_PAGE_MAX: i64 = 500;
/// The page size used when a limit is out of range.
pub const QUERY_PAGE_DEFAULT: i64 = 50;

/// Default number of records appended between two index checkpoints. A checkpoint
/// rewrites the whole index, so this keeps its cost a small share of the appends.
pub const CHECKPOINT_EVERY_RECORDS_DEFAULT: u64 = 1_000_000;

/// Default interval of group commit, in milliseconds.
pub const GROUP_COMMIT_INTERVAL_MS_DEFAULT: u64 = 2;
/// Longest group-commit interval a config may set: a minute.
pub const GROUP_COMMIT_INTERVAL_MS_MAX: u64 = 60_000;

/// Compaction rewrites a sealed segment once this share of its bytes may be dropped.
pub const COMPACTION_REMOVABLE_SHARE_MIN_DEFAULT: f64 = 0.25;
/// Default period of the background compaction and retention worker.
pub const COMPACTION_INTERVAL_MS_DEFAULT: u64 = 30_000;
/// Shortest and longest period a config may set for it.
pub const COMPACTION_INTERVAL_MS_MIN: u64 = 10;
pub const COMPACTION_INTERVAL_MS_MAX: u64 = 24 * 3600 * 1000;
/// Most passes `AuditLog::compact` runs: a dead run start is dropped one pass after the
/// rest of its run (see `compaction`), so two passes reach the fixed point and a third
/// only confirms it.
pub const COMPACTION_PASSES_MAX: usize = 3;

const _: () = {
    assert!(COMPACTION_INTERVAL_MS_MIN <= COMPACTION_INTERVAL_MS_DEFAULT);
    assert!(COMPACTION_INTERVAL_MS_DEFAULT <= COMPACTION_INTERVAL_MS_MAX);
    assert!(COMPACTION_PASSES_MAX >= 2);
    assert!(FRAME_HEADER_BYTES == 4 + 4 + 8 + 1 + 3);
    assert!(RECORD_BYTES_MAX_FLOOR <= RECORD_BYTES_MAX_DEFAULT);
    assert!(RECORD_BYTES_MAX_DEFAULT <= RECORD_BYTES_MAX_CEILING);
    // A frame's length field is a u32.
    assert!((RECORD_BYTES_MAX_CEILING as u64) < u32::MAX as u64);
    // The default segment holds at least one largest default record.
    assert!(
        SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + RECORD_BYTES_MAX_DEFAULT as u64
            <= SEGMENT_BYTES_DEFAULT
    );
    // The smallest segment holds at least one smallest-limit record.
    assert!(
        SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + RECORD_BYTES_MAX_FLOOR as u64
            <= SEGMENT_BYTES_MIN
    );
    assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_DEFAULT);
    assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
    assert!(SEGMENT_BYTES_MAX <= u32::MAX as u64);
    assert!(QUERY_PAGE_DEFAULT > 0 && QUERY_PAGE_DEFAULT <= QUERY_PAGE_MAX);
    assert!(GROUP_COMMIT_INTERVAL_MS_DEFAULT <= GROUP_COMMIT_INTERVAL_MS_MAX);
};
