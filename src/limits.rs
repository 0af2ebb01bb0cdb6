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

/// What the warmer faults in at a time, and what one bit of a segment's warmth
/// covers: 2 MiB, a few hundred µs of faulting.
pub const WARM_CHUNK_BYTES: u64 = 2 << 20;
/// The most segments found at open that are warmed (the newest), each keeping its
/// file open until it is warm: 256 descriptors. Older ones are read through their maps
/// from the first read, as without warming.
pub const WARM_SEGMENTS_MAX: usize = 256;
/// The most bytes of segments found at open that are warmed (the newest): 8 GiB, 128
/// default segments, all of them mapped into the process once warm.
pub const WARM_BYTES_MAX: u64 = 8 << 30;

/// Default segment size: 64 MiB.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// The smallest segment a config may ask for (tests use small segments to roll often).
pub const SEGMENT_BYTES_MIN: u64 = 4 << 10;
/// The largest segment a config may ask for: 1 GiB, so frame offsets fit in `u32`.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;

/// Longest run, call or event id, in bytes.
pub const ID_BYTES_MAX: usize = 1024;

/// Deepest nesting of a JSON-like value (run inputs, event payloads) the hand-written
/// record decoder reads itself; a deeper value is read by serde instead.
pub const VALUE_DEPTH_MAX: usize = 64;

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

/// A periodic index checkpoint also waits until the log has grown by this many times
/// the last checkpoint's size: checkpoints then write at most this fraction of what the
/// log writes, and the replay after a crash is at most this many checkpoints' size of
/// log (a clean close always writes one).
pub const CHECKPOINT_LOG_GROWTH: u64 = 4;

/// Default interval of group commit, in milliseconds.
pub const GROUP_COMMIT_INTERVAL_MS_DEFAULT: u64 = 2;
/// Longest group-commit interval a config may set: a minute.
pub const GROUP_COMMIT_INTERVAL_MS_MAX: u64 = 60_000;

/// Default bytes of the ingest buffer: 8 MiB, at least 20 ms of 500 k events/s in
/// inline slots of the default size (checked below).
pub const INGEST_QUEUE_BYTES_DEFAULT: usize = 8 << 20;
/// Most producer shards (rings of `queue_bytes` each) a recorder makes on its own: one
/// per CPU up to this many. A shard per producer core keeps their claims from pulling
/// each other's cache lines; beyond a few, more rings only cost memory.
pub const INGEST_SHARDS_AUTO_MAX: usize = 4;
/// Most producer shards a config may ask for.
pub const INGEST_SHARDS_MAX: usize = 64;
/// The smallest ingest buffer a config may ask for (tests use tiny ones to fill it).
pub const INGEST_QUEUE_BYTES_MIN: usize = 4 << 10;
/// The largest ingest buffer a config may ask for: 1 GiB.
pub const INGEST_QUEUE_BYTES_MAX: usize = 1 << 30;
/// Default bytes of fields an event may carry and still be recorded inline.
pub const INGEST_INLINE_BYTES_DEFAULT: usize = 512;
/// The largest inline size a config may set: 64 KiB.
pub const INGEST_INLINE_BYTES_MAX: usize = 64 << 10;
/// Room in every inline slot beyond the fields: ids, names, timestamps, lengths.
pub const INGEST_SLOT_OVERHEAD_BYTES: usize = 256;
/// Default bytes of records the slow (allocating) path may hold at once.
pub const INGEST_SLOW_PATH_BYTES_DEFAULT: usize = 4 << 20;
/// Most records the slow path may hold at once, whatever their size.
pub const INGEST_SLOW_PATH_RECORDS_MAX: usize = 4096;
/// Most records the committer takes from the queue for one append. A batch's record
/// buffers and framed bytes (for a typical event, a 256-byte payload buffer and a
/// frame of about 180 bytes) then stay within a core's L2 cache (512 KiB on the
/// development box): at 4096 they did not, and the committer spent about 8% more CPU
/// per record (docs/benchmarks.md).
pub const INGEST_BATCH_MAX: usize = 1024;
/// Events of one run waiting for an earlier sequence are held at most this long.
pub const INGEST_REORDER_WINDOW_MS_DEFAULT: u64 = 5;
/// The longest the committer parks when it finds little or nothing to take. Each wake
/// costs it some microseconds of CPU, so this sets what an idle recorder spends
/// (docs/benchmarks.md); it is also about the longest a record waits to be written.
pub const INGEST_IDLE_PARK_US_DEFAULT: u64 = 1000;
/// The longest idle park a recorder accepts: 1 s.
pub const INGEST_IDLE_PARK_US_MAX: u64 = 1_000_000;
/// Most events the committer holds back for sequence order, over all runs.
pub const INGEST_REORDER_HELD_MAX: usize = 65_536;
/// Most runs whose next sequence the committer remembers.
pub const INGEST_REORDER_RUNS_MAX: usize = 16_384;
/// Most payload fields an inline event may have and still be written straight from its
/// slot; more (rare) take the decode-then-encode path.
pub const INGEST_TRANSCODE_FIELDS_MAX: usize = 32;
/// Most keys an event shape may have: every event of a shape is written straight from
/// its slot.
pub const INGEST_SHAPE_FIELDS_MAX: usize = INGEST_TRANSCODE_FIELDS_MAX;
/// Most bytes an event shape's type and keys may take together.
pub const INGEST_SHAPE_BYTES_MAX: usize = 4 << 10;
/// Most event shapes one recorder may hold (a shape is one per kind of event, like a
/// log statement, not one per event).
pub const INGEST_SHAPES_MAX: usize = 16_384;
/// Written records whose buffers the committer keeps for reuse, and the largest payload
/// buffer it keeps.
pub const INGEST_SPARE_RECORDS_MAX: usize = 2 * INGEST_BATCH_MAX;
pub const INGEST_SPARE_PAYLOAD_BYTES_MAX: usize = 64 << 10;
/// Bytes written to the active segment after which their writeback is started early.
pub const SEGMENT_WRITEBACK_BYTES: u64 = 8 << 20;
/// Compaction rewrites a sealed segment once this share of its bytes may be dropped.
pub const COMPACTION_REMOVABLE_SHARE_MIN_DEFAULT: f64 = 0.25;
/// Default period of the background compaction and retention worker.
pub const COMPACTION_INTERVAL_MS_DEFAULT: u64 = 30_000;
/// Shortest and longest period a config may set for it.
pub const COMPACTION_INTERVAL_MS_MIN: u64 = 10;
pub const COMPACTION_INTERVAL_MS_MAX: u64 = 24 * 3600 * 1000;
/// Most passes `AuditLog::compact` runs: a dead run start whose run's other dead records
/// lie in other segments is dropped one pass after them (see `compaction`), so two
/// passes reach the fixed point and a third only confirms it.
pub const COMPACTION_PASSES_MAX: usize = 3;
/// A compaction pass writes its rewrites in batches, each made visible with one
/// directory sync; a batch holds at most this many segments, and at most this many
/// kept bytes unless one segment alone keeps more. It bounds the temporary files open
/// and the extra disk space a pass needs before its renames.
pub const COMPACTION_BATCH_SEGMENTS_MAX: usize = 64;
pub const COMPACTION_BATCH_BYTES_MAX: u64 = 256 << 20;
/// Most rewritten segments a compaction pass syncs at once, each on its own thread.
pub const COMPACTION_SYNC_THREADS_MAX: usize = 4;

/// Characters of step text a `step` event keeps (SPEC §4); the rest is replaced by a
/// `…[+N bytes]` marker.
pub const STEP_TEXT_CHARS_MAX: usize = 2000;
/// Characters of a tool result a `tool_result` event keeps (SPEC §4).
pub const TOOL_RESULT_CHARS_MAX: usize = 4000;
/// Characters of an error message or validation error a session event keeps (SPEC §5).
pub const SESSION_TEXT_CHARS_MAX: usize = 200;
/// Default longest time `RunWriter::close` waits for the run's finish to be durable.
pub const WRITER_CLOSE_WAIT_MS_DEFAULT: u64 = 10_000;
/// Default longest time dropping a `CallSink` waits for its events to be durable.
pub const CALL_SINK_DRAIN_WAIT_MS_DEFAULT: u64 = 5_000;
/// The longest close wait a writer may be given (and drain wait a call sink may be
/// given).
pub const WRITER_CLOSE_WAIT_MS_MAX: u64 = 60_000;

/// Most records one live subscription's queue may hold.
pub const FOLLOW_CAPACITY_MAX: usize = 1 << 20;
/// Most live subscriptions one log feeds at once: each costs the appending thread a
/// filter check per record.
pub const FOLLOW_SUBSCRIPTIONS_MAX: usize = 64;
/// Bytes a store follower reads from the active segment per read: enough for many
/// frames, and grown up to one largest frame when a frame does not fit.
pub const FOLLOW_READ_WINDOW_BYTES: usize = 1 << 20;
/// Default pause between two polls of a store follower.
pub const FOLLOW_POLL_INTERVAL_MS_DEFAULT: u64 = 100;

const _: () = {
    assert!(FOLLOW_CAPACITY_MAX > 0 && FOLLOW_SUBSCRIPTIONS_MAX > 0);
    assert!(FOLLOW_READ_WINDOW_BYTES as u64 >= FRAME_HEADER_BYTES + RECORD_BYTES_MAX_FLOOR as u64);
    assert!(COMPACTION_INTERVAL_MS_MIN <= COMPACTION_INTERVAL_MS_DEFAULT);
    assert!(COMPACTION_INTERVAL_MS_DEFAULT <= COMPACTION_INTERVAL_MS_MAX);
    assert!(COMPACTION_PASSES_MAX >= 2);
    assert!(COMPACTION_BATCH_SEGMENTS_MAX >= 1);
    assert!(COMPACTION_SYNC_THREADS_MAX >= 1);
    assert!(COMPACTION_BATCH_BYTES_MAX >= SEGMENT_BYTES_DEFAULT);
    assert!(SESSION_TEXT_CHARS_MAX < STEP_TEXT_CHARS_MAX);
    assert!(STEP_TEXT_CHARS_MAX < TOOL_RESULT_CHARS_MAX);
    assert!(WRITER_CLOSE_WAIT_MS_DEFAULT <= WRITER_CLOSE_WAIT_MS_MAX);
    assert!(CALL_SINK_DRAIN_WAIT_MS_DEFAULT <= WRITER_CLOSE_WAIT_MS_MAX);
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
    // A warm chunk is whole pages, and a segment's warmth is at most 512 bits.
    assert!(WARM_CHUNK_BYTES % 4096 == 0);
    assert!(SEGMENT_BYTES_MAX / WARM_CHUNK_BYTES <= 512);
    assert!(WARM_BYTES_MAX >= SEGMENT_BYTES_MAX && WARM_SEGMENTS_MAX >= 1);
    assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
    assert!(SEGMENT_BYTES_MAX <= u32::MAX as u64);
    assert!(QUERY_PAGE_DEFAULT > 0 && QUERY_PAGE_DEFAULT <= QUERY_PAGE_MAX);
    assert!(GROUP_COMMIT_INTERVAL_MS_DEFAULT <= GROUP_COMMIT_INTERVAL_MS_MAX);
    // The default ingest buffer holds 20 ms of 500 k events/s in default-size slots.
    assert!(
        INGEST_QUEUE_BYTES_DEFAULT / (INGEST_INLINE_BYTES_DEFAULT + INGEST_SLOT_OVERHEAD_BYTES)
            >= 500_000 / 1000 * 20
    );
    assert!(INGEST_QUEUE_BYTES_MIN <= INGEST_QUEUE_BYTES_DEFAULT);
    assert!(INGEST_QUEUE_BYTES_DEFAULT <= INGEST_QUEUE_BYTES_MAX);
    // The smallest buffer holds at least one largest slot... of the default size.
    assert!(INGEST_QUEUE_BYTES_MIN >= INGEST_INLINE_BYTES_DEFAULT + INGEST_SLOT_OVERHEAD_BYTES);
    assert!(INGEST_INLINE_BYTES_DEFAULT <= INGEST_INLINE_BYTES_MAX);
    // A slot length fits the u32 the queue carries.
    assert!(((INGEST_INLINE_BYTES_MAX + INGEST_SLOT_OVERHEAD_BYTES) as u64) < u32::MAX as u64);
    assert!(INGEST_BATCH_MAX > 0 && INGEST_SLOW_PATH_RECORDS_MAX > 0);
    // A shape's key order is a byte per key, and its number a u32.
    assert!(INGEST_SHAPE_FIELDS_MAX <= u8::MAX as usize + 1);
    assert!(INGEST_SHAPES_MAX as u64 <= u32::MAX as u64);
    assert!(0 < INGEST_SHARDS_AUTO_MAX && INGEST_SHARDS_AUTO_MAX <= INGEST_SHARDS_MAX);
    // The committer can keep a whole batch of buffers between two appends.
    assert!(INGEST_SPARE_RECORDS_MAX >= INGEST_BATCH_MAX);
    // A transcoded event's fields fit the slot's u16 count.
    assert!(INGEST_TRANSCODE_FIELDS_MAX <= u16::MAX as usize);
    assert!(INGEST_IDLE_PARK_US_DEFAULT <= INGEST_IDLE_PARK_US_MAX);
    // Early writeback starts well before a segment is full.
    assert!(SEGMENT_WRITEBACK_BYTES < SEGMENT_BYTES_DEFAULT);
};
