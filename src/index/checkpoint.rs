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
//!     48     n  body: the index as little-endian arrays (below)
//! ```
//!
//! The body mirrors the index's flat layout, so loading is a bounds-checked copy of
//! arrays rather than a decode; the event lists and (on a little-endian machine) the
//! table of their places, the name tables, the run table, the per-id tables and the
//! run lists are not even copied, but read where the file's view has them
//! (`events.rs`, `names.rs`, `chunked.rs`, `flat.rs`). Every array is a `u64` element
//! count followed by its elements. An array a load reads in place has zero bytes
//! between its count and its elements, up to a file offset that is a multiple of 64
//! ("aligned" below). A `Names` is `seed u64, bytes [u8], ends [u32] aligned, slots
//! [u64] aligned` (each slot a name's number below the high half of its hash, all ones
//! where free: `names.rs`).
//!
//! ```text
//! names   ids, skills, callers, channels, call callers, call tools
//! runs    aligned [started_lsn u64, finished_lsn u64, started_at i64, finished_at i64,
//!          id u32, parent u32, next_sibling u32, skill u32, caller u32, channel u32,
//!          events u32, status u8, flags u8, zero u8 u8]          (64 bytes each:
//!                                                        `RunEntry` as laid out)
//! [u32]   aligned: id_run, id_first_child, by_time, by_finish, by_dry
//! lists   by_skill, by_caller, by_channel: a count, then that many aligned [u32]
//! events  event_lists: a count, then that many event lists
//! orphans a count, then that many (id u32, event list)
//! calls   [ts i64, LSN u64, caller u32, tool u32, kind u8]        (25 bytes each)
//! places  zero bytes to an aligned offset, then per event list its file offset
//!         (u64), the count the event lists': last, so a load finds it from the end
//!         of the file and checks each list is where it says as it walks them
//! ```
//! An event list is its count of events, then either `[(sequence u64, LSN u64)]`, or,
//! when the count's top bit is set, a dense list: the first sequence (u64) and an LSN
//! base (u64), then per event `LSN - base` as a u32, the sequences rising by one from
//! the first. A list is written dense whenever it can be: a run's sequences are
//! usually consecutive and its events near each other in the log, and a dense list
//! takes a quarter of the bytes, to write, to checksum at open and to keep in the
//! page cache.
//! The live-run and event counts are recomputed on load, not stored.
//! The last covered frame is the checkpoint's fingerprint of the log it was taken
//! from: open accepts the checkpoint only if a frame that verifies against its
//! segment's salt sits at that LSN, ends exactly at the covered LSN and has the same
//! content. A checkpoint from another store, from before a torn tail was cut, or from
//! a log that was restored from an older copy fails this and is ignored.
//!
//! # Invariants
//! - The file is written as `index.ckpt.tmp`, synced, renamed over `index.ckpt`, and
//!   the directory synced: a crash leaves the old checkpoint or the new one, never half.
//! - The body is encoded and written a chunk at a time and the header last, so writing
//!   needs memory for one chunk, not for the whole file.
//! - A checkpoint is taken only after the frames it covers are durable.
//! - Loading never trusts a length from the file: the body length must equal the file
//!   length minus the header before the checksum is computed, the file is read through
//!   a read-only map, every array's count is checked against the bytes left before
//!   anything is allocated for it, the body must end exactly where the file does, and
//!   the decoded index is checked for internal consistency before it is used.
//! - A damaged, truncated, foreign or stale checkpoint is reported as ignored and the
//!   index is rebuilt from the log; it never fails an open.
//! - A loaded index reads its event lists in place, from the view of the file it was
//!   loaded from: a published checkpoint is never written again (the next replaces it
//!   by rename), so the view stays what was checked, and the replaced file's space is
//!   given back once no index holds its lists.

use std::collections::HashMap;
use std::mem::size_of;
use std::path::Path;
use std::sync::Arc;

use crate::codec::{Frame, Lsn};
use crate::error::{Error, Result};
use crate::index::chunked::{Chunked, InPlace};
use crate::index::events::{DENSE_COUNT, EventVec, OFFSET_BYTES, PAIR_BYTES, Stored};
use crate::index::flat::Flat;
use crate::index::names::{Arena, NamesCheck};
use crate::index::ordered::OrderedMap;
use crate::index::{
    CallEntry, Calls, EventLists, EventsRef, ID_OUT_OF_RANGE, Index, NameHashState, Names,
    PARALLEL_CHECK_RUNS_MIN, RUN_OUT_OF_RANGE, RunEntry,
};
use crate::vfs::{ReadView, Vfs, publish_file};

/// The file name of the checkpoint inside a store directory.
pub const CHECKPOINT_FILE_NAME: &str = "index.ckpt";
/// The temporary name a checkpoint is written under.
pub const CHECKPOINT_TMP_FILE_NAME: &str = "index.ckpt.tmp";

const MAGIC: [u8; 8] = *b"ALIDXCK\0";
const VERSION: u32 = 11;
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
    /// The size of the checkpoint file.
    pub bytes: u64,
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

/// The body is handed on in chunks of at most this many bytes, so writing a checkpoint
/// needs no buffer the size of the index (hundreds of MB at a million runs, which
/// fresh pages made slow to fill) and writes from memory the cache still holds. Each
/// chunk ends at a file offset that is a multiple of it: the size of a huge page, so a
/// page cache filled by these writes can hold the file in 2 MiB pages, which the next
/// load maps in fewer faults (mapping and checksumming a just-written 241 MB
/// checkpoint took 21 ms with 1 MiB chunks from offset 48, 18.5 ms so).
const CHUNK_BYTES: usize = 2 << 20;

/// An encoded body on its way out: gathered in `buf`, checksummed and handed to `sink`
/// a chunk at a time. The first error of `sink` is kept and the rest only counted.
struct Out<'a> {
    buf: Vec<u8>,
    sink: &'a mut dyn FnMut(&[u8]) -> Result<()>,
    crc: crc32fast::Hasher,
    len: u64,
    error: Option<Error>,
}

impl<'a> Out<'a> {
    fn new(sink: &'a mut dyn FnMut(&[u8]) -> Result<()>) -> Out<'a> {
        Out {
            buf: Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
            sink,
            crc: crc32fast::Hasher::new(),
            len: 0,
            error: None,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// Zero bytes up to the next file offset that is a multiple of `align` (the body
    /// starts at `HEADER_BYTES`).
    fn align(&mut self, align: usize) {
        let at = self.file_offset();
        self.buf
            .resize(self.buf.len() + at.next_multiple_of(align) - at, 0);
    }

    /// Hands on what is gathered a chunk at a time, each chunk ending at a file offset
    /// that is a multiple of `CHUNK_BYTES`; keeps the rest.
    fn spill_if_full(&mut self) {
        let mut handed = 0;
        loop {
            let at = HEADER_BYTES + self.len as usize;
            let n = (at + 1).next_multiple_of(CHUNK_BYTES) - at;
            if self.buf.len() - handed < n {
                break;
            }
            self.hand_on(handed..handed + n);
            handed += n;
        }
        self.buf.drain(..handed);
    }

    fn spill(&mut self) {
        self.hand_on(0..self.buf.len());
        self.buf.clear();
    }

    /// Checksums and hands on the bytes gathered in `range`, the next of the file.
    fn hand_on(&mut self, range: std::ops::Range<usize>) {
        let bytes = &self.buf[range];
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
        if self.error.is_none() {
            self.error = (self.sink)(bytes).err();
        }
    }

    /// The items of an array whose count is already written.
    fn items<T>(&mut self, items: &[T], item_bytes: usize, put: &impl Fn(&mut [u8], &T)) {
        for chunk in items.chunks(CHUNK_BYTES / item_bytes) {
            let start = self.buf.len();
            self.buf.resize(start + chunk.len() * item_bytes, 0);
            let room = &mut self.buf[start..];
            for (bytes, item) in room.chunks_exact_mut(item_bytes).zip(chunk) {
                put(bytes, item);
            }
            self.spill_if_full();
        }
    }

    /// A run list, which a load reads in place (see [`Out::chunked`]).
    fn u32s(&mut self, values: &Flat<u32>) {
        let parts = values.parts();
        self.aligned(parts.len(), parts.slices().into_iter(), 4, put_u32);
    }

    /// An event list, dense when it can be (see [`EventsRef::dense_form`]).
    fn events(&mut self, events: EventsRef<'_>) {
        fn put_pair(bytes: &mut [u8], &(seq, lsn): &(u64, u64)) {
            bytes[..8].copy_from_slice(&seq.to_le_bytes());
            bytes[8..].copy_from_slice(&lsn.to_le_bytes());
        }
        if let Some((first, base)) = events.dense_form() {
            self.u64(events.len() as u64 | DENSE_COUNT);
            self.u64(first);
            self.u64(base);
            let put_offset = |bytes: &mut [u8], &(_, lsn): &(u64, u64)| {
                bytes.copy_from_slice(&((lsn - base) as u32).to_le_bytes())
            };
            match events.0 {
                Stored::Own(pairs) => self.items(pairs, OFFSET_BYTES, &put_offset),
                Stored::Chunked(chunked) => {
                    for part in chunked.parts() {
                        self.items(part, OFFSET_BYTES, &put_offset);
                    }
                }
                // Stored as pairs because it had no dense form when it was written.
                Stored::Loaded(_) => self.items(&events.to_vec(), OFFSET_BYTES, &put_offset),
                Stored::Dense { offsets, .. } => self.raw(offsets),
            }
            return;
        }
        self.u64(events.len() as u64);
        match events.0 {
            Stored::Own(pairs) => self.items(pairs, PAIR_BYTES, &put_pair),
            Stored::Chunked(chunked) => {
                for part in chunked.parts() {
                    self.items(part, PAIR_BYTES, &put_pair);
                }
            }
            Stored::Loaded(stored) => self.raw(stored),
            Stored::Dense { .. } => unreachable!("a dense list has a dense form"),
        }
    }

    /// Bytes already as the file stores them, a chunk at a time.
    fn raw(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(CHUNK_BYTES) {
            self.bytes(chunk);
            self.spill_if_full();
        }
    }

    fn names(&mut self, names: &Names) {
        self.u64(names.seed);
        self.u64(names.bytes.len() as u64);
        for part in names.bytes.parts().slices() {
            self.raw(part);
        }
        self.chunked(&names.ends, 4, put_u32);
        self.chunked(&names.slots, 8, put_u64);
    }

    /// An array that a load reads in place: its count, zero bytes up to a file offset
    /// that is a multiple of `ARRAYS_ALIGN`, then its items, `item_bytes` each.
    fn chunked<T: Clone + InPlace>(
        &mut self,
        items: &Chunked<T>,
        item_bytes: usize,
        put: impl Fn(&mut [u8], &T),
    ) {
        self.aligned(items.len(), items.parts(), item_bytes, put);
    }

    /// [`Out::chunked`] of the `n` items in `parts`.
    fn aligned<'i, T: 'i>(
        &mut self,
        n: usize,
        parts: impl Iterator<Item = &'i [T]>,
        item_bytes: usize,
        put: impl Fn(&mut [u8], &T),
    ) {
        self.u64(n as u64);
        self.align(ARRAYS_ALIGN);
        for part in parts {
            self.items(part, item_bytes, &put);
        }
    }

    /// The file offset of the next byte.
    fn file_offset(&self) -> usize {
        HEADER_BYTES + self.len as usize + self.buf.len()
    }

    /// Hands on the rest; returns the body's length and checksum, or the first error.
    fn finish(mut self) -> Result<(u64, crc32fast::Hasher)> {
        self.spill();
        match self.error {
            Some(error) => Err(error),
            None => Ok((self.len, self.crc)),
        }
    }
}

/// Writes `v` into its room in an array, little-endian.
fn put_u32(bytes: &mut [u8], v: &u32) {
    bytes.copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` into its room in an array, little-endian.
fn put_u64(bytes: &mut [u8], v: &u64) {
    bytes.copy_from_slice(&v.to_le_bytes());
}

/// A run entry: its fields, then two zero bytes.
const RUN_BYTES: usize = 4 * 8 + 7 * 4 + 2 + 2;
const _: () = assert!(RUN_BYTES == size_of::<RunEntry>());
/// The arrays a load reads in place (the run entries, the names' ends and slots)
/// start at a file offset that is a multiple of this: a cache line, so that a run
/// entry read in place from the map spans one.
const ARRAYS_ALIGN: usize = 64;
const CALL_BYTES: usize = 8 + 8 + 4 + 4 + 1;

fn encode_body(out: &mut Out<'_>, index: &Index) {
    for names in index.name_tables() {
        out.names(names);
    }
    let put_run = |bytes: &mut [u8], run: &RunEntry| {
        let (lsns, rest) = bytes.split_at_mut(16);
        lsns[..8].copy_from_slice(&run.started_lsn.to_le_bytes());
        lsns[8..].copy_from_slice(&run.finished_lsn.to_le_bytes());
        let (times, rest) = rest.split_at_mut(16);
        times[..8].copy_from_slice(&run.started_at.to_le_bytes());
        times[8..].copy_from_slice(&run.finished_at.to_le_bytes());
        let numbers = [
            run.id,
            run.parent,
            run.next_sibling,
            run.skill,
            run.caller,
            run.channel,
            run.events,
        ];
        let (number_bytes, flags) = rest.split_at_mut(7 * 4);
        for (bytes, v) in number_bytes.chunks_exact_mut(4).zip(numbers) {
            bytes.copy_from_slice(&v.to_le_bytes());
        }
        flags.copy_from_slice(&[run.status, run.flags, 0, 0]);
    };
    out.chunked(&index.runs, RUN_BYTES, put_run);
    out.chunked(&index.id_run, 4, put_u32);
    out.chunked(&index.id_first_child, 4, put_u32);
    for list in [&index.by_time, &index.by_finish, &index.by_dry] {
        out.u32s(list);
    }
    for lists in [&index.by_skill, &index.by_caller, &index.by_channel] {
        out.u64(lists.len() as u64);
        for list in lists {
            out.u32s(list);
        }
    }
    let lists = &index.event_lists;
    out.u64(lists.len() as u64);
    let mut places = Vec::with_capacity(lists.len());
    for events in lists.iter() {
        places.push(out.file_offset() as u64);
        out.events(events);
    }
    // Sorted, so equal indexes give equal files.
    let mut orphans: Vec<_> = index.orphans.iter().collect();
    orphans.sort_unstable_by_key(|(id, _)| **id);
    out.u64(orphans.len() as u64);
    for (id, events) in orphans {
        out.bytes(&id.to_le_bytes());
        out.events(events.as_ref());
    }
    let calls = &index.calls.by_time;
    out.u64(calls.len() as u64);
    for (&(ts, lsn), call) in calls.iter() {
        out.bytes(&ts.to_le_bytes());
        out.bytes(&lsn.to_le_bytes());
        out.bytes(&call.caller.to_le_bytes());
        out.bytes(&call.tool.to_le_bytes());
        out.bytes(&[call.kind]);
        out.spill_if_full();
    }
    // Last, where a load finds it from the end of the file before it walks the lists:
    // where each event list is, aligned, its count the lists'.
    out.align(ARRAYS_ALIGN);
    out.items(&places, 8, &put_u64);
}

/// Reads a body front to back, refusing any count larger than the bytes left.
///
/// A reader that checksums also checksums every byte it passes, a block at a time just
/// before the block is decoded: the bytes are then read from memory once, where a
/// checksum of the whole file beside the decoding read them twice (at a million runs,
/// 446 MB twice, a third of the load).
struct Reader<'a> {
    bytes: &'a [u8],
    /// The checksum of the bytes passed, up to `unhashed`; `None` when not wanted.
    crc: Option<crc32fast::Hasher>,
    /// Bytes passed but not yet in `crc`: the last `unhashed` before `bytes`.
    unhashed: usize,
    /// What was left at the start, so that `bytes` can be stepped back over.
    start: &'a [u8],
    /// The file offset of `start`.
    file_at: usize,
}

type Decoded<T> = std::result::Result<T, String>;

/// Bytes a checksumming reader passes before it checksums them: small enough to be
/// decoded from the cache after the checksum loaded them, large enough that the
/// checksum runs at its full speed.
const HASH_BLOCK_BYTES: usize = 64 << 10;

impl<'a> Reader<'a> {
    /// A reader of `bytes`, the body from its start, that checksums them as it goes.
    fn hashing(bytes: &'a [u8]) -> Reader<'a> {
        Reader::hashing_at(bytes, HEADER_BYTES)
    }

    /// A reader of `bytes`, from file offset `file_at`, that checksums them as it goes.
    fn hashing_at(bytes: &'a [u8], file_at: usize) -> Reader<'a> {
        Reader {
            bytes,
            crc: Some(crc32fast::Hasher::new()),
            unhashed: 0,
            start: bytes,
            file_at,
        }
    }

    /// A reader of `bytes` that does not checksum them.
    fn plain(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            crc: None,
            ..Reader::hashing(bytes)
        }
    }

    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(format!(
                "the body ends early: {n} bytes wanted, {} left",
                self.bytes.len()
            ));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        self.unhashed += n;
        if self.unhashed >= HASH_BLOCK_BYTES {
            self.hash_passed();
        }
        Ok(head)
    }

    /// Takes `n` items of `item_bytes` each, the count already checked against the
    /// bytes left, a block at a time as the iterator is advanced: each block is
    /// checksummed just before it is handed on.
    fn blocks(&mut self, n: usize, item_bytes: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        let per_block = (HASH_BLOCK_BYTES / item_bytes).max(1);
        let mut left = n;
        std::iter::from_fn(move || {
            (left > 0).then(|| {
                let k = left.min(per_block);
                left -= k;
                self.take(k * item_bytes).expect("the count was checked")
            })
        })
    }

    /// The file offset of the next byte.
    fn file_offset(&self) -> usize {
        self.file_at + self.start.len() - self.bytes.len()
    }

    /// Passes the zero bytes up to the next file offset that is a multiple of `align`
    /// (see [`Reader::file_offset`]).
    fn align(&mut self, align: usize) -> Decoded<()> {
        let at = self.file_offset();
        let pad = self.take(at.next_multiple_of(align) - at)?;
        if pad.iter().any(|&b| b != 0) {
            return Err("padding that is not zero".into());
        }
        Ok(())
    }

    /// Adds the bytes passed to the checksum.
    fn hash_passed(&mut self) {
        let passed = self.start.len() - self.bytes.len();
        if let Some(crc) = &mut self.crc {
            crc.update(&self.start[passed - self.unhashed..passed]);
        }
        self.unhashed = 0;
    }

    /// The checksum of every byte passed; only a reader made by [`Reader::hashing`]
    /// has one.
    fn checksum(mut self) -> crc32fast::Hasher {
        self.hash_passed();
        self.crc.expect("a checksumming reader")
    }

    fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A count of elements of `elem_bytes` each, checked against the bytes left.
    fn count(&mut self, elem_bytes: usize) -> Decoded<usize> {
        let n = self.u64()?;
        self.fits(n, elem_bytes)
    }

    /// `n` as a count of elements of `elem_bytes` each, if that many are left.
    fn fits(&self, n: u64, elem_bytes: usize) -> Decoded<usize> {
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(elem_bytes))
            .is_some_and(|len| len <= self.bytes.len());
        if !fits {
            return Err(format!("a count of {n} is more than the body holds"));
        }
        Ok(n as usize)
    }

    /// `n` items of `item_bytes` each, the count already checked against the bytes
    /// left, each decoded by `get` from a slice of exactly that many.
    fn items<T, C: FromIterator<T>>(
        &mut self,
        n: usize,
        item_bytes: usize,
        mut get: impl FnMut(&[u8]) -> T,
    ) -> C {
        let mut blocks = self.blocks(n, item_bytes);
        let mut block: &[u8] = &[];
        // Item by item over a range, so that collecting knows the count up front.
        (0..n)
            .map(|_| {
                if block.is_empty() {
                    block = blocks.next().expect("the blocks hold n items");
                }
                let (item, rest) = block.split_at(item_bytes);
                block = rest;
                get(item)
            })
            .collect()
    }

    /// Passes over an array of `item_bytes` items.
    fn skip_array(&mut self, item_bytes: usize) -> Decoded<()> {
        let n = self.count(item_bytes)?;
        self.take(n * item_bytes).map(drop)
    }

    /// Passes over an array written by `Out::chunked`.
    fn skip_chunked(&mut self, item_bytes: usize) -> Decoded<()> {
        let n = self.count(item_bytes)?;
        self.align(ARRAYS_ALIGN)?;
        self.take(n * item_bytes).map(drop)
    }

    /// The `n` items of an array written by `Out::chunked`, its count already read:
    /// each handed to `each` a block at a time, as the block is checksummed; read in
    /// place from `view` where one is given and the machine and the alignment allow,
    /// else decoded by `decode` and copied.
    fn chunked<T: Clone + InPlace>(
        &mut self,
        view: Option<&Arc<ReadView>>,
        n: usize,
        decode: impl Fn(&[u8]) -> T,
        mut each: impl FnMut(&T),
    ) -> Decoded<Chunked<T>> {
        let item_bytes = size_of::<T>();
        let at = self.aligned_items_at(n, item_bytes)?;
        // Whether the machine and the alignment at `at` allow a cast, asked of no bytes.
        let in_place = view.filter(|view| view.get(at..at).and_then(T::slice_in).is_some());
        Ok(match in_place {
            Some(view) => {
                for block in self.blocks(n, item_bytes) {
                    let items = T::slice_in(block).expect("aligned like the first");
                    items.iter().for_each(&mut each);
                }
                Chunked::in_place(view, at, n).expect("the items cast")
            }
            None => self.items(n, item_bytes, |b| {
                let item = decode(b);
                each(&item);
                item
            }),
        })
    }

    /// Passes over what [`decode_head`] decodes, reading only the counts.
    fn skip_head(&mut self) -> Decoded<()> {
        for _names in 0..6 {
            self.u64()?;
            self.skip_array(1)?;
            self.skip_chunked(4)?;
            self.skip_chunked(8)?;
        }
        self.skip_chunked(RUN_BYTES)?;
        for _u32s in 0..5 {
            self.skip_chunked(4)?;
        }
        for _lists in 0..3 {
            for _ in 0..self.count(8)? {
                self.skip_chunked(4)?;
            }
        }
        Ok(())
    }

    /// An array of `u32`s written by `Out::u32s`: each handed to `each` a block at a
    /// time, as the block is checksummed; read in place from `view` where one is given
    /// and the machine and the alignment allow, else copied.
    fn u32s(
        &mut self,
        view: Option<&Arc<ReadView>>,
        mut each: impl FnMut(u32),
    ) -> Decoded<Flat<u32>> {
        let n = self.count(4)?;
        let at = self.aligned_items_at(n, 4)?;
        let mut decode = |b: &[u8]| {
            let v = u32_at(b, 0);
            each(v);
            v
        };
        Ok(match view.and_then(|view| Flat::in_place(view, at, n)) {
            Some(flat) => {
                for block in self.blocks(n, 4) {
                    for b in block.chunks_exact(4) {
                        decode(b);
                    }
                }
                flat
            }
            None => Flat::Own(self.items(n, 4, decode)),
        })
    }

    /// Passes the padding before the `n` items of `item_bytes` each of an array written
    /// by `Out::aligned`, its count already read: checked again here, since it was
    /// checked before the padding. Returns the file offset of the first item.
    fn aligned_items_at(&mut self, n: usize, item_bytes: usize) -> Decoded<usize> {
        self.align(ARRAYS_ALIGN)?;
        self.fits(n as u64, item_bytes)?;
        Ok(self.file_offset())
    }

    /// An event list as stored. Stored pairs are refused unless their sequences
    /// strictly increase (checked here, while the list is in cache, rather than in a
    /// second pass over every list); a dense list's sequences rise by construction,
    /// and its LSNs must not overflow.
    fn events_stored(&mut self) -> Decoded<EventsRef<'a>> {
        let word = self.u64()?;
        if word & DENSE_COUNT != 0 {
            let (first, base) = (self.u64()?, self.u64()?);
            let n = self.fits(word & !DENSE_COUNT, OFFSET_BYTES)?;
            let in_range = n > 0
                && first.checked_add(n as u64 - 1).is_some()
                && base.checked_add(u64::from(u32::MAX)).is_some();
            if !in_range {
                return Err("a dense event list out of range".into());
            }
            let offsets = &self.bytes[..n * OFFSET_BYTES];
            self.blocks(n, OFFSET_BYTES).for_each(drop);
            let stored = Stored::Dense {
                first,
                base,
                offsets,
            };
            return Ok(EventsRef(stored));
        }
        let n = self.fits(word, PAIR_BYTES)?;
        let stored = &self.bytes[..n * PAIR_BYTES];
        let mut last = None;
        for block in self.blocks(n, PAIR_BYTES) {
            let sequences = block.chunks_exact(PAIR_BYTES).map(|b| u64_at(b, 0));
            for sequence in sequences {
                if last.is_some_and(|last| last >= sequence) {
                    return Err("events out of sequence order".into());
                }
                last = Some(sequence);
            }
        }
        Ok(EventsRef(Stored::Loaded(stored)))
    }

    fn events(&mut self) -> Decoded<Vec<(u64, u64)>> {
        Ok(self.events_stored()?.to_vec())
    }

    /// A name table, and the verdict of [`Names::check_consistent`] on it, taken as
    /// each of its arrays is decoded rather than in passes of its own.
    /// With `view`, the table is read in place from it where it can be.
    fn names(&mut self, view: Option<&Arc<ReadView>>) -> Decoded<(Names, Decoded<()>)> {
        let seed = self.u64()?;
        let n = self.count(1)?;
        let at = self.file_offset();
        let mut check = NamesCheck::default();
        let mut own = Vec::new();
        for block in self.blocks(n, 1) {
            check.bytes(block);
            if view.is_none() {
                own.extend_from_slice(block);
            }
        }
        let bytes = match view {
            Some(view) => Arena::in_place(view, at, n).expect("the bytes were taken"),
            None => Arena::Own(own),
        };
        let n_ends = self.count(4)?;
        let end_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
        let ends = self.chunked(view, n_ends, end_of, |&end| check.end(end))?;
        check.start_slots();
        let n_slots = self.count(8)?;
        let slot_of = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let slots = self.chunked(view, n_slots, slot_of, |&s| check.slot(s))?;
        let names = Names {
            seed,
            bytes,
            ends,
            slots,
        };
        let verdict = check.finish(&names);
        Ok((names, verdict))
    }

    /// A name table; the first inconsistency found in it or in the tables before it is
    /// kept in `verdict`.
    fn names_checked(
        &mut self,
        view: Option<&Arc<ReadView>>,
        verdict: &mut Decoded<()>,
    ) -> Decoded<Names> {
        let (names, check) = self.names(view)?;
        if verdict.is_ok() {
            *verdict = check;
        }
        Ok(names)
    }

    /// A count of lists, each of which takes at least 8 bytes.
    fn lists(&mut self, view: Option<&Arc<ReadView>>) -> Decoded<Vec<Flat<u32>>> {
        let n = self.count(8)?;
        (0..n).map(|_| self.u32s(view, drop)).collect()
    }
}

/// A decoded body: the index, the body's checksum, and the verdict of the part of the
/// consistency check that was run beside the decoding (to be reported only if the
/// checksum matches).
type Body = (Index, crc32fast::Hasher, Decoded<()>);

/// Decodes the body of the checkpoint file `view` and checksums it as it goes; with
/// `parallel`, its event lists, orphans and calls on a second thread while this one
/// decodes the rest and checks it. The event lists stay in `view`, and with
/// `in_place` so do the name tables and the run table, where the machine and the
/// view's alignment allow (else they are copied out).
fn decode_body(view: &Arc<ReadView>, parallel: bool, in_place: bool) -> Decoded<Body> {
    let bytes = &view[HEADER_BYTES..];
    // The event lists start where the arrays before them end: found by their counts.
    let mut skip = Reader::plain(bytes);
    skip.skip_head()?;
    let n_event_lists = skip.u64()?;
    let (head, tail) = bytes.split_at(bytes.len() - skip.bytes.len() - size_of::<u64>());
    // The names, runs and run lists are checked as soon as they are decoded, while
    // the event lists may still be decoding: the check needs only their number.
    let n_event_lists = usize::try_from(n_event_lists).unwrap_or(usize::MAX);
    let head_checked = || {
        decode_head(view, head, n_event_lists, in_place).map(|(index, crc, entries)| {
            let check = entries.and_then(|()| index.check_runs_consistent(PARALLEL_CHECK_RUNS_MIN));
            (index, crc, check)
        })
    };
    // Each part is checksummed by the thread that decodes it, a block at a time.
    let (head, tail) = if parallel {
        std::thread::scope(|scope| {
            let tail = scope.spawn(|| decode_tail(tail, view, in_place));
            let head = head_checked();
            let tail = tail
                .join()
                .unwrap_or_else(|_| Err("the decoding thread panicked".into()));
            (head, tail)
        })
    } else {
        (head_checked(), decode_tail(tail, view, in_place))
    };
    let (mut index, mut crc, check) = head?;
    let (tail, tail_crc) = tail?;
    crc.combine(&tail_crc);
    index.event_lists = tail.lists;
    index.orphans = tail.orphans;
    let callers = std::mem::take(&mut index.calls.callers);
    let tools = std::mem::take(&mut index.calls.tools);
    let (calls, calls_check) = Calls::from_loaded(tail.calls, callers, tools);
    index.calls = calls;
    let check = check.and(calls_check);
    index.n_events = (index.orphans.values().map(EventVec::len))
        .chain([tail.n_loaded])
        .map(|n| n as u64)
        .sum();
    Ok((index, crc, check))
}

/// A run entry from the bytes a checkpoint stores it as.
fn run_from_le(b: &[u8; RUN_BYTES]) -> RunEntry {
    let number = |i: usize| u32_at(b, 32 + 4 * i);
    RunEntry {
        started_lsn: u64_at(b, 0),
        finished_lsn: u64_at(b, 8),
        started_at: u64_at(b, 16) as i64,
        finished_at: u64_at(b, 24) as i64,
        id: number(0),
        parent: number(1),
        next_sibling: number(2),
        skill: number(3),
        caller: number(4),
        channel: number(5),
        events: number(6),
        status: b[60],
        flags: b[61],
        pad: [b[62], b[63]],
    }
}

/// The names, the run table and the run lists: the body up to the event lists; their
/// checksum; and whether the name tables are consistent and every number in the run
/// entries and the per-id tables points into its table, with `n_event_lists` event
/// lists to follow (checked as each is decoded, or just after, while it is in cache,
/// not in passes of their own).
fn decode_head(
    view: &Arc<ReadView>,
    bytes: &[u8],
    n_event_lists: usize,
    in_place: bool,
) -> Decoded<(Index, crc32fast::Hasher, Decoded<()>)> {
    let mut r = Reader::hashing(bytes);
    let mut index = Index::new();
    let view = in_place.then_some(view);
    let mut names_checked = Ok(());
    index.ids = r.names_checked(view, &mut names_checked)?;
    index.skills = r.names_checked(view, &mut names_checked)?;
    index.callers = r.names_checked(view, &mut names_checked)?;
    index.channels = r.names_checked(view, &mut names_checked)?;
    index.calls.callers = r.names_checked(view, &mut names_checked)?;
    index.calls.tools = r.names_checked(view, &mut names_checked)?;
    let n_runs = r.count(RUN_BYTES)?;
    let bounds = index.run_bounds(n_runs, n_event_lists);
    let mut in_range = true;
    let mut n_live = 0u32;
    let run_of = |b: &[u8]| run_from_le(b.try_into().expect("a run's bytes"));
    index.runs = r.chunked(view, n_runs, run_of, |entry: &RunEntry| {
        in_range &= bounds.hold(entry) && entry.pad == [0; 2];
        n_live += u32::from(entry.is_alive());
    })?;
    index.n_live = n_live;
    let mut ids_in_range = true;
    let mut run_or_none = |j: u32| ids_in_range &= bounds.run_or_none(j);
    let u32_of = |b: &[u8]| u32_at(b, 0);
    let n_ids = r.count(4)?;
    index.id_run = r.chunked(view, n_ids, u32_of, |&j| run_or_none(j))?;
    let n_ids = r.count(4)?;
    index.id_first_child = r.chunked(view, n_ids, u32_of, |&j| run_or_none(j))?;
    index.by_time = r.u32s(view, drop)?;
    index.by_finish = r.u32s(view, drop)?;
    index.by_dry = r.u32s(view, drop)?;
    index.by_skill = r.lists(view)?;
    index.by_caller = r.lists(view)?;
    index.by_channel = r.lists(view)?;
    debug_assert!(r.bytes.is_empty(), "the head ends where skipping it did");
    let entries = if let Err(why) = names_checked {
        Err(why)
    } else if !in_range {
        Err(RUN_OUT_OF_RANGE.into())
    } else if !ids_in_range {
        Err(ID_OUT_OF_RANGE.into())
    } else {
        Ok(())
    };
    Ok((index, r.checksum(), entries))
}

/// The body from the event lists on, made into what the index holds of it (on the
/// thread that decodes it, while the other checks the runs).
struct Tail {
    /// The event lists, in place in the view.
    lists: EventLists,
    /// The events they hold, counted from their spans rather than list by list.
    n_loaded: usize,
    orphans: HashMap<u32, EventVec, NameHashState>,
    /// The call entries by time, without the names (which are in the head).
    calls: OrderedMap<(i64, u64), CallEntry>,
}

/// Decodes `bytes`, the tail of the body of the checkpoint file `view`, and checksums
/// it. With `in_place`, the table of where each event list is stays in the view too,
/// where the machine and the alignment allow.
fn decode_tail(
    bytes: &[u8],
    view: &Arc<ReadView>,
    in_place: bool,
) -> Decoded<(Tail, crc32fast::Hasher)> {
    let mut r = Reader::hashing_at(bytes, bytes.as_ptr() as usize - view.as_ptr() as usize);
    // Each list takes 8 bytes or more, and its place 8.
    let n_lists = r.count(16)?;
    let places = places_at_end(view, n_lists, in_place)?;
    // Each list must be where the table says, whole and in order.
    let mut n_loaded = 0;
    for &place in places.iter() {
        if place != r.file_offset() as u64 {
            return Err("an event list not where the table of lists has it".into());
        }
        n_loaded += r.events_stored()?.len();
    }
    let n_orphans = r.count(4 + 8)?;
    let mut orphans = HashMap::default();
    for _ in 0..n_orphans {
        let id = r.u32()?;
        if orphans.insert(id, EventVec::from(r.events()?)).is_some() {
            return Err("an orphan id listed twice".into());
        }
    }
    // Calls are written in key order, each key once: refused otherwise, before one
    // could be inserted twice.
    let n_calls = r.count(CALL_BYTES)?;
    let mut calls = OrderedMap::default();
    let mut last = None;
    for block in r.blocks(n_calls, CALL_BYTES) {
        for b in block.chunks_exact(CALL_BYTES) {
            let key = (u64_at(b, 0) as i64, u64_at(b, 8));
            if last >= Some(key) {
                return Err("calls out of order".into());
            }
            last = Some(key);
            let entry = CallEntry {
                caller: u32_at(b, 16),
                tool: u32_at(b, 20),
                kind: b[24],
            };
            calls.insert(key, entry);
        }
    }
    // The table of places, read above, is checksummed as it is passed.
    r.align(ARRAYS_ALIGN)?;
    if r.bytes.len() != n_lists * 8 {
        return Err(format!("{} bytes after the body", r.bytes.len()));
    }
    r.blocks(n_lists, 8).for_each(drop);
    let tail = Tail {
        n_loaded,
        lists: EventLists::from_loaded(Arc::clone(view), places),
        orphans,
        calls,
    };
    Ok((tail, r.checksum()))
}

/// The table of where each of `n_lists` event lists is: the last `8 * n_lists` bytes
/// of `view`, which must start at an aligned offset. Read in place with `in_place`
/// where the machine allows, else copied; not checksummed here (the body's reader
/// passes over it last).
fn places_at_end(view: &Arc<ReadView>, n_lists: usize, in_place: bool) -> Decoded<Chunked<u64>> {
    let at = view.len() - n_lists * 8;
    if at % ARRAYS_ALIGN != 0 {
        return Err("the table of event lists out of place".into());
    }
    let places = in_place
        .then(|| Chunked::in_place(view, at, n_lists))
        .flatten();
    Ok(places.unwrap_or_else(|| view[at..].chunks_exact(8).map(|b| u64_at(b, 0)).collect()))
}

/// Encodes the checkpoint of `index`, handing its bytes to `write` with their offset
/// in the file: the body in chunks, then the header, which holds the body's length and
/// the checksum; returns the file's length.
fn encode_to(
    index: &Index,
    coverage: Coverage,
    write: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<u64> {
    let mut at = HEADER_BYTES as u64;
    let mut body_sink = |chunk: &[u8]| {
        write(at, chunk)?;
        at += chunk.len() as u64;
        Ok(())
    };
    let mut out = Out::new(&mut body_sink);
    encode_body(&mut out, index);
    let (body_len, body_crc) = out.finish()?;
    let mut header = [0u8; HEADER_BYTES];
    header[MAGIC_AT..VERSION_AT].copy_from_slice(&MAGIC);
    header[VERSION_AT..CRC_AT].copy_from_slice(&VERSION.to_le_bytes());
    header[COVERED_AT..LAST_LSN_AT].copy_from_slice(&coverage.covered.0.to_le_bytes());
    header[LAST_LSN_AT..LAST_CRC_AT].copy_from_slice(&coverage.last_frame.0.to_le_bytes());
    header[LAST_CRC_AT..PAD_AT].copy_from_slice(&coverage.last_frame_crc.to_le_bytes());
    header[BODY_LEN_AT..HEADER_BYTES].copy_from_slice(&body_len.to_le_bytes());
    // The checksum runs over the header's tail and then the body.
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[COVERED_AT..]);
    crc.combine(&body_crc);
    header[CRC_AT..COVERED_AT].copy_from_slice(&crc.finalize().to_le_bytes());
    write(0, &header)?;
    Ok(HEADER_BYTES as u64 + body_len)
}

/// Encodes a checkpoint file.
pub fn encode(index: &Index, coverage: Coverage) -> Result<Vec<u8>> {
    let mut file = vec![0u8; HEADER_BYTES];
    encode_to(index, coverage, &mut |at, bytes| {
        let at = at as usize;
        if at == 0 {
            file[..bytes.len()].copy_from_slice(bytes);
        } else {
            debug_assert_eq!(at, file.len(), "the body comes in order");
            file.extend_from_slice(bytes);
        }
        Ok(())
    })?;
    Ok(file)
}

/// Checkpoints of at least this many bytes have their event lists, orphans and calls
/// decoded (and checksummed) on a second thread.
const PARALLEL_DECODE_BYTES_MIN: usize = 8 << 20;

/// Decodes a checkpoint file; `Err` says why it cannot be used.
pub fn decode(bytes: &[u8]) -> std::result::Result<Loaded, String> {
    decode_view(Arc::new(ReadView::Owned(bytes.to_vec())))
}

/// Decodes the checkpoint file `view`, whose pages then hold the index's event lists;
/// `Err` says why it cannot be used.
pub fn decode_view(view: Arc<ReadView>) -> std::result::Result<Loaded, String> {
    let bytes: &[u8] = &view;
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
    // The body is checksummed as it is decoded; decoding trusts nothing it reads, and
    // its result is dropped unless the checksum matches. A body that stops decoding
    // part way is checksummed whole, to tell damage from a bad encoding.
    let body = decode_body(&view, bytes.len() >= PARALLEL_DECODE_BYTES_MIN, true);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[COVERED_AT..HEADER_BYTES]);
    match &body {
        Ok((_, body_crc, _)) => crc.combine(body_crc),
        Err(_) => crc.update(&bytes[HEADER_BYTES..]),
    }
    let checksum_ok = crc.finalize() == u32_at(bytes, CRC_AT);
    if !checksum_ok {
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
    let (index, _, check) = body.map_err(|why| format!("the body does not decode: {why}"))?;
    check
        .and_then(|()| index.check_orphans_and_calls_consistent())
        .map_err(|why| format!("the index is inconsistent: {why}"))?;
    Ok(Loaded {
        coverage,
        index,
        bytes: bytes.len() as u64,
    })
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
    decode_view(Arc::new(view)).map(Some)
}

/// Writes `index` as the checkpoint of `dir`, atomically (tmp, sync, rename, sync dir),
/// a chunk at a time; returns the file's size.
pub fn write(vfs: &dyn Vfs, dir: &Path, index: &Index, coverage: Coverage) -> Result<u64> {
    let tmp = dir.join(CHECKPOINT_TMP_FILE_NAME);
    let path = dir.join(CHECKPOINT_FILE_NAME);
    let mut len = 0;
    publish_file(vfs, dir, &tmp, &path, |file| {
        len = encode_to(index, coverage, &mut |at, bytes| {
            file.write_all_at(bytes, at)
                .map_err(|e| Error::io("write checkpoint", &tmp, e))
        })?;
        Ok(())
    })?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Record;
    use crate::model::Run;

    /// The coverage of a log whose last frame is at `last_frame` and which ends at
    /// `covered`.
    fn covering(last_frame: u64, covered: u64) -> Coverage {
        Coverage {
            covered: Lsn(covered),
            last_frame: Lsn(last_frame),
            last_frame_crc: 7,
        }
    }

    fn sample() -> (Index, Coverage) {
        let mut index = Index::new();
        index.apply(Lsn(0), &Record::RunStarted(Run::new("r", "s")));
        let coverage = covering(0, 100);
        (index, coverage)
    }

    #[test]
    fn a_checkpoint_with_an_event_list_out_of_sequence_order_is_refused() {
        let (mut index, coverage) = sample();
        let id = index.ids.intern("run-x");
        index.orphans.insert(id, vec![(2, 20), (1, 10)].into());
        index.id_run.push(crate::index::NONE);
        index.id_first_child.push(crate::index::NONE);
        let why = decode(&encode(&index, coverage).unwrap()).err().unwrap();
        assert!(why.contains("sequence order"), "{why}");
        // The same list in order loads.
        index.orphans.insert(id, vec![(1, 10), (2, 20)].into());
        assert!(decode(&encode(&index, coverage).unwrap()).is_ok());
    }

    #[test]
    fn a_checkpoint_whose_numbers_point_past_their_tables_is_refused() {
        let (index, coverage) = sample();
        // A run naming an event list the checkpoint does not hold: found by the check
        // that runs beside the decoding of the event lists, on one thread or two.
        let mut past_lists = index.clone();
        past_lists.runs[0].events = 5;
        let bytes = encode(&past_lists, coverage).unwrap();
        // An id naming a run past the run table.
        let mut past_runs = index.clone();
        past_runs.id_first_child[0] = 1;
        for (bad, why) in [
            (&bytes, RUN_OUT_OF_RANGE),
            (&encode(&past_runs, coverage).unwrap(), ID_OUT_OF_RANGE),
        ] {
            let view = Arc::new(ReadView::Owned(bad.clone()));
            for (parallel, in_place) in [(true, true), (false, true), (true, false)] {
                let (_, _, check) = decode_body(&view, parallel, in_place).unwrap();
                assert_eq!(check, Err(why.to_owned()), "{parallel} {in_place}");
            }
        }
        // An orphan of an id never interned: found once the event lists are decoded.
        let mut orphan = index.clone();
        orphan.orphans.insert(99, vec![(1, 10)].into());
        for bad in [bytes, encode(&orphan, coverage).unwrap()] {
            let why = decode(&bad).err().unwrap();
            assert!(why.starts_with("the index is inconsistent"), "{why}");
        }
        assert!(decode(&encode(&index, coverage).unwrap()).is_ok());
    }

    #[test]
    fn a_checkpoint_with_a_name_table_out_of_shape_is_refused_as_the_table_check_says() {
        let (mut index, coverage) = sample();
        for name in ["a", "bb", "ccc"] {
            index.calls.tools.intern(name);
        }
        assert!(decode(&encode(&index, coverage).unwrap()).is_ok());
        fn used(names: &Names) -> usize {
            names.slots.iter().position(|&s| s != u64::MAX).unwrap()
        }
        fn free(names: &Names) -> usize {
            names.slots.iter().position(|&s| s == u64::MAX).unwrap()
        }
        type Damage = fn(&mut Names);
        let damages: [(&str, Damage); 6] = [
            ("ends out of order", |t| {
                let (first, third) = (t.ends[0], t.ends[2]);
                (t.ends[0], t.ends[2]) = (third, first);
            }),
            ("a slot repeated", |t| {
                let (at, copy) = (free(t), t.slots[used(t)]);
                t.slots[at] = copy;
            }),
            ("a slot out of range", |t| {
                let at = free(t);
                t.slots[at] = 3;
            }),
            ("a name missing", |t| {
                let at = used(t);
                t.slots[at] = u64::MAX;
            }),
            ("a name not UTF-8", |t| t.bytes.to_mut()[1] = 0xff),
            ("a bad size", |t| {
                let n = t.slots.len() - 1;
                t.slots = t.slots.iter().copied().take(n).collect();
            }),
        ];
        for (what, damage) in damages {
            let mut bad = index.clone();
            damage(&mut bad.calls.tools);
            // The load's check, fed as the table is decoded, says what the check of
            // the whole table says.
            let expected = bad.calls.tools.check_consistent().expect_err(what);
            let why = decode(&encode(&bad, coverage).unwrap()).expect_err(what);
            assert_eq!(
                why,
                format!("the index is inconsistent: {expected}"),
                "{what}"
            );
        }
    }

    #[test]
    fn a_run_table_read_in_place_is_copied_where_it_is_written_and_answers_as_before() {
        use crate::codec::RunFinished;
        use crate::index::chunked::CHUNK;
        use crate::model::{RunStats, Status, Timestamp};
        let mut built = Index::new();
        let n = 2 * CHUNK + 100;
        for i in 0..n {
            let run = Run::new(format!("run-{i}"), "s");
            built.apply(Lsn(i as u64 * 100), &Record::RunStarted(run));
        }
        let lsn = n as u64 * 100;
        let coverage = covering(lsn - 100, lsn);
        let bytes = encode(&built, coverage).unwrap();
        let mut loaded = decode(&bytes).unwrap().index;
        assert_eq!(loaded.loaded_run_bytes(), 2 * CHUNK * RUN_BYTES);
        assert_eq!(loaded.by_time.in_place_bytes(), n * 4);
        assert_eq!(loaded.id_run.in_place_bytes(), 2 * CHUNK * 4);
        // A run of the first chunk finished, a new one started: in both indexes.
        let finish = Record::RunFinished(RunFinished {
            run_id: "run-5".into(),
            stats: RunStats {
                status: Status::Ok,
                ..RunStats::default()
            },
            finished_at: Timestamp::from_unix_nanos(9),
        });
        let start = Record::RunStarted(Run::new("run-new", "s"));
        for index in [&mut built, &mut loaded] {
            index.apply(Lsn(lsn), &finish);
            index.apply(Lsn(lsn + 100), &start);
        }
        assert_eq!(
            loaded.loaded_run_bytes(),
            CHUNK * RUN_BYTES,
            "one chunk copied"
        );
        // The new id's bytes and end are the table's own; one chunk of slots copied.
        let ids = &loaded.ids;
        assert_eq!(
            ids.bytes.in_place_bytes() + "run-new".len(),
            ids.bytes.len()
        );
        assert_eq!(ids.ends.in_place_bytes(), 2 * CHUNK * 4);
        assert_eq!(ids.slots.in_place_bytes(), (ids.slots.len() - CHUNK) * 8);
        // The new run went after the start order's loaded part, its id to the per-id
        // tables' own tails: neither was copied.
        assert_eq!(loaded.by_time.in_place_bytes(), n * 4);
        assert_eq!(loaded.by_time.heap_bytes(), 4 * 4, "room for four runs");
        assert_eq!(loaded.id_run.in_place_bytes(), 2 * CHUNK * 4);
        assert!(loaded.runs[5].is_finished());
        assert_eq!(loaded.runs, built.runs);
        assert_eq!(loaded.check_consistent(), Ok(()));
        assert_eq!(
            encode(&loaded, coverage).unwrap(),
            encode(&built, coverage).unwrap()
        );
    }

    /// A run started at each of `lsns`, with `n_events` events from sequence 1.
    fn runs_with_events(lsns: std::ops::Range<u64>, n_events: u64) -> Vec<(Lsn, Record)> {
        use crate::model::RunEvent;
        let mut records = Vec::new();
        for i in lsns {
            let id = format!("run-{i}");
            records.push((Lsn(i * 100), Record::RunStarted(Run::new(&*id, "s"))));
            for sequence in 1..=n_events {
                let event = RunEvent {
                    run_id: id.clone(),
                    sequence,
                    ..RunEvent::default()
                };
                records.push((Lsn(i * 100 + sequence), Record::EventAppended(event)));
            }
        }
        records
    }

    #[test]
    fn loaded_event_lists_are_copied_where_they_change_and_answer_as_before() {
        use crate::codec::Purge;
        use crate::index::chunked::CHUNK;
        use crate::model::{RunEvent, Timestamp};
        let mut built = Index::new();
        let n = 2 * CHUNK as u64 + 100;
        for (lsn, record) in runs_with_events(0..n, 3) {
            built.apply(lsn, &record);
        }
        let lsn = n * 100;
        let coverage = covering(lsn - 97, lsn);
        let bytes = encode(&built, coverage).unwrap();
        let mut loaded = decode(&bytes).unwrap().index;
        let places = |index: &Index| index.event_lists.places().in_place_bytes();
        assert_eq!(
            places(&loaded),
            2 * CHUNK * 8,
            "full chunks of places in place"
        );
        let list_bytes = n as usize * (8 + 16 + 3 * 4);
        assert_eq!(loaded.loaded_event_bytes(), places(&loaded) + list_bytes);
        assert_eq!(loaded.event_lists.heap_bytes().1, 0, "no list of its own");
        // An event for an old run and for a new one; then the first run purged.
        let event = |run_id: &str, sequence| {
            Record::EventAppended(RunEvent {
                run_id: run_id.into(),
                sequence,
                ..RunEvent::default()
            })
        };
        let mut later = vec![(Lsn(lsn), event("run-5", 9))];
        later.extend(runs_with_events(n..n + 1, 2));
        later.push((Lsn(lsn + 200), event("run-5", 4)));
        later.push((
            Lsn(lsn + 300),
            Record::Purge(Purge {
                before: Timestamp::from_unix_nanos(i64::MAX),
                purged_at: Timestamp::from_unix_nanos(i64::MAX),
            }),
        ));
        let (purge, later) = later.split_last().unwrap();
        for (lsn, record) in later {
            assert!(built.apply(*lsn, record));
            assert!(loaded.apply(*lsn, record));
        }
        assert_eq!(
            loaded.events_of("run-5").to_vec(),
            built.events_of("run-5").to_vec()
        );
        assert_eq!(loaded.events_of("run-5").len(), 5);
        assert_eq!(places(&loaded), CHUNK * 8, "one chunk of places copied");
        let loaded_lists = loaded.loaded_event_bytes() - places(&loaded);
        assert_eq!(
            loaded_lists,
            list_bytes - (8 + 16 + 3 * 4),
            "run-5's list copied"
        );
        assert_eq!(loaded.n_events(), built.n_events());
        assert_eq!(loaded.check_consistent(), Ok(()));
        assert_eq!(
            encode(&loaded, coverage).unwrap(),
            encode(&built, coverage).unwrap()
        );
        // Every run purged: each loaded list emptied by its place, none copied.
        for index in [&mut built, &mut loaded] {
            assert!(index.apply(purge.0, &purge.1));
            assert_eq!(index.n_events(), 0);
        }
        assert_eq!(loaded.loaded_event_bytes(), 0);
        assert_eq!(loaded.event_lists.heap_bytes().1, 0);
        assert_eq!(
            encode(&loaded, coverage).unwrap(),
            encode(&built, coverage).unwrap()
        );
    }

    #[test]
    fn a_checkpoint_whose_table_of_lists_misplaces_a_list_is_refused() {
        let mut index = Index::new();
        for (lsn, record) in runs_with_events(0..3, 2) {
            index.apply(lsn, &record);
        }
        let coverage = covering(202, 300);
        let bytes = encode(&index, coverage).unwrap();
        let places = decode(&bytes).unwrap().index.event_lists.places().clone();
        let at = |i: usize| places[i] as usize;
        // The table ends the file.
        let table = bytes.len() - 3 * 8;
        type Damage = fn(&mut [u64]);
        let damages: [(&str, Damage); 3] = [
            ("one byte on", |p| p[1] += 1),
            ("two swapped", |p| p.swap(0, 1)),
            ("marked copied", |p| p[2] |= 1 << 63),
        ];
        for (what, damage) in damages {
            let mut words = [at(0), at(1), at(2)].map(|at| at as u64);
            damage(&mut words);
            let mut bad = bytes.clone();
            for (i, word) in words.iter().enumerate() {
                bad[table + 8 * i..table + 8 * i + 8].copy_from_slice(&word.to_le_bytes());
            }
            let crc = crc32fast::hash(&bad[COVERED_AT..]);
            bad[CRC_AT..COVERED_AT].copy_from_slice(&crc.to_le_bytes());
            let why = decode(&bad).expect_err(what);
            assert!(
                why.contains("not where the table of lists has it"),
                "{what}: {why}"
            );
        }
    }

    #[test]
    fn an_aligned_array_whose_count_fits_only_with_its_padding_is_refused() {
        // A count, then 24 zero bytes up to file offset 64, then 40 bytes: 16 items of
        // 4 bytes would fit in what follows the count, but only 10 after the padding.
        let bytes = [&16u64.to_le_bytes()[..], &[0; 64]].concat();
        let fits_after = |n: u64| {
            let mut bytes = bytes.clone();
            bytes[..8].copy_from_slice(&n.to_le_bytes());
            let mut r = Reader::hashing_at(&bytes, 32);
            let flat = r.u32s(None, drop).map(|items| items.len());
            let mut r = Reader::hashing_at(&bytes, 32);
            let n = r.count(4).unwrap();
            let chunked = r.chunked(None, n, |b| u32_at(b, 0), |_| ());
            let chunked = chunked.map(|items: Chunked<u32>| items.len());
            assert_eq!(flat, chunked);
            flat
        };
        assert_eq!(fits_after(10), Ok(10));
        assert!(fits_after(11).is_err());
        assert!(fits_after(16).is_err(), "refused, not a panic");
    }

    #[test]
    fn loaded_run_lists_take_new_runs_after_them_and_are_copied_on_other_changes() {
        use crate::codec::{Purge, RunFinished};
        use crate::index::RunSelect;
        use crate::model::{RunStats, Status, Timestamp};
        let at = |nanos: i64| Timestamp::from_unix_nanos(nanos);
        let start = |id: &str, started_at: i64| {
            let mut run = Run::new(id, format!("skill-{}", started_at % 3));
            run.started_at = at(started_at);
            Record::RunStarted(run)
        };
        let mut built = Index::new();
        for i in 0..300 {
            built.apply(
                Lsn(i * 100),
                &start(&format!("run-{i}"), 1000 + i as i64 * 10),
            );
        }
        let coverage = covering(29_900, 30_000);
        let mut loaded = decode(&encode(&built, coverage).unwrap()).unwrap().index;
        let in_place = |index: &Index| index.by_time.in_place_bytes();
        assert_eq!(in_place(&loaded), 300 * 4);
        let finish = Record::RunFinished(RunFinished {
            run_id: "run-7".into(),
            stats: RunStats {
                status: Status::Ok,
                ..RunStats::default()
            },
            finished_at: at(9999),
        });
        let purge = Record::Purge(Purge {
            before: at(1500),
            purged_at: at(10_000),
        });
        // The newest run, a finish, a run older than the newest, a purge; after each,
        // whether the start order is still read in place.
        let steps = [
            (start("new", 5000), true),
            (finish, true),
            (start("late", 1005), false),
            (purge, false),
        ];
        for (i, (record, still_in_place)) in steps.iter().enumerate() {
            let lsn = Lsn(30_000 + i as u64 * 100);
            assert!(built.apply(lsn, record));
            assert!(loaded.apply(lsn, record));
            assert_eq!(in_place(&loaded) > 0, *still_in_place, "step {i}");
            assert_eq!(loaded.check_consistent(), Ok(()), "step {i}");
            assert_eq!(
                encode(&loaded, coverage).unwrap(),
                encode(&built, coverage).unwrap(),
                "step {i}"
            );
        }
        let select = RunSelect {
            skill_id: Some("skill-1"),
            ..RunSelect::default()
        };
        let (built_select, loaded_select) = (built.resolve(&select), loaded.resolve(&select));
        let newest = |index: &Index, select| {
            (index.runs_newest_first(select))
                .map(|entry| entry.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            newest(&loaded, loaded_select.as_ref().unwrap()),
            newest(&built, built_select.as_ref().unwrap())
        );
    }

    #[test]
    fn a_checkpoint_with_calls_out_of_order_or_twice_is_refused() {
        let mut index = Index::new();
        for (i, record) in rich_records().iter().enumerate() {
            index.apply(Lsn(i as u64 * 40), record);
        }
        let coverage = sample().1;
        let bytes = encode(&index, coverage).unwrap();
        assert!(decode(&bytes).is_ok());
        // The body holds the two calls just before the table of event lists; swap
        // them, then copy the first over the second, each time with the checksum made
        // to match.
        let (&(ts, lsn), _) = index.calls.by_time.iter().next().unwrap();
        let key = [ts.to_le_bytes(), lsn.to_le_bytes()].concat();
        let first = (bytes.windows(16).rposition(|w| w == key)).unwrap();
        let second = first + CALL_BYTES;
        let mut swapped = bytes.clone();
        swapped[first..second + CALL_BYTES].rotate_left(CALL_BYTES);
        let mut twice = bytes.clone();
        twice.copy_within(first..second, second);
        for mut bad in [swapped, twice] {
            let crc = crc32fast::hash(&bad[COVERED_AT..]);
            bad[CRC_AT..COVERED_AT].copy_from_slice(&crc.to_le_bytes());
            let why = decode(&bad).err().unwrap();
            assert!(why.ends_with("calls out of order"), "{why}");
        }
    }

    #[test]
    fn a_checkpoint_round_trips() {
        let (index, coverage) = sample();
        let bytes = encode(&index, coverage).unwrap();
        let loaded = decode(&bytes).unwrap();
        assert_eq!(loaded.coverage, coverage);
        assert_eq!(loaded.index.n_runs(), 1);
    }

    /// Runs with parents (one out of time order), events (one orphan set), calls with
    /// and without a caller, finishes and a purge.
    fn rich_records() -> Vec<Record> {
        use crate::codec::{Purge, RunFinished};
        use crate::model::{CallEvent, Outcome, RunEvent, RunStats, Status, Timestamp};
        let at = Timestamp::from_unix_nanos;
        let mut records = Vec::new();
        for (i, (id, parent, t)) in [
            ("a", "", 10),
            ("b", "a", 20),
            ("c", "a", 15),
            ("d", "zz", 30),
            ("e", "a", 40),
        ]
        .into_iter()
        .enumerate()
        {
            records.push(Record::RunStarted(Run {
                id: id.into(),
                skill_id: format!("s{}", i % 2),
                caller_id: "k".into(),
                channel_id: "ch".into(),
                parent_run_id: parent.into(),
                started_at: at(t),
                ..Run::default()
            }));
            for seq in [3, 1, 2] {
                records.push(Record::EventAppended(RunEvent {
                    run_id: id.into(),
                    sequence: seq,
                    ..RunEvent::default()
                }));
            }
        }
        records.push(Record::EventAppended(RunEvent {
            run_id: "later".into(),
            sequence: 9,
            ..RunEvent::default()
        }));
        records.push(Record::RunFinished(RunFinished {
            run_id: "b".into(),
            stats: RunStats {
                status: Status::Error,
                ..RunStats::default()
            },
            finished_at: at(50),
        }));
        for (i, caller) in [None, Some("me")].into_iter().enumerate() {
            records.push(Record::CallRecorded(CallEvent {
                ts: at(60 + i as i64),
                call_id: "c".into(),
                tool_id: "t".into(),
                caller_id: caller.map(Into::into),
                granted_capabilities: Vec::new(),
                duration_ms: 0,
                outcome: Outcome::ToolNotFound,
                tier: String::new(),
                dry_run: false,
                schema_version: 2,
                secrets_resolved: false,
                cursor_page: None,
            }));
        }
        records.push(Record::Purge(Purge {
            before: at(12),
            purged_at: at(70),
        }));
        records
    }

    #[test]
    fn replaying_frames_builds_the_index_applying_records_does_and_it_round_trips() {
        let base = Index::new(); // clones share the name seeds, so files compare equal
        let (mut applied, mut replayed) = (base.clone(), base);
        for (i, record) in rich_records().iter().enumerate() {
            let mut payload = Vec::new();
            record.encode_payload(&mut payload).unwrap();
            let lsn = Lsn(i as u64 * 10);
            assert_eq!(
                applied.apply(lsn, record),
                replayed.apply_frame(lsn, record.kind(), &payload)
            );
        }
        let coverage = sample().1;
        let bytes = encode(&applied, coverage).unwrap();
        assert_eq!(bytes, encode(&replayed, coverage).unwrap());
        let loaded = decode(&bytes).unwrap().index;
        assert_eq!(encode(&loaded, coverage).unwrap(), bytes);
        assert_eq!(loaded.n_runs(), 4);
        assert_eq!(loaded.n_events(), 13);
        let children: Vec<u64> = loaded
            .children_oldest_first("a")
            .map(|e| e.started_lsn)
            .collect();
        assert_eq!(children, vec![80, 40, 160]);
        assert_eq!(loaded.events_of("later").to_vec(), [(9, 200)]);
        assert_eq!(loaded.events_of("c").len(), 3);
        assert!(loaded.lookup("a").is_err());
    }

    #[test]
    fn a_checkpoint_of_many_chunks_is_written_as_encoded_and_round_trips() {
        use crate::model::RunEvent;
        use crate::vfs::OsVfs;
        // Runs and events enough for several chunks: 3000 runs of 40 events (stored
        // dense), and one event list of three chunks on its own (every other
        // sequence, so stored as pairs).
        let mut index = Index::new();
        let mut lsn = 0;
        let mut apply = |index: &mut Index, record: &Record| {
            index.apply(Lsn(lsn), record);
            lsn += 100;
        };
        for i in 0..3000 {
            let id = format!("run-{i:05}");
            apply(&mut index, &Record::RunStarted(Run::new(&*id, "s")));
            for sequence in 1..=40 {
                let event = RunEvent {
                    run_id: id.clone(),
                    sequence,
                    ..RunEvent::default()
                };
                apply(&mut index, &Record::EventAppended(event));
            }
        }
        for sequence in 1..=(3 * CHUNK_BYTES as u64 / 16) {
            let event = RunEvent {
                run_id: "long".into(),
                sequence: 2 * sequence,
                ..RunEvent::default()
            };
            apply(&mut index, &Record::EventAppended(event));
        }
        let coverage = covering(lsn - 100, lsn);
        let bytes = encode(&index, coverage).unwrap();
        assert!(bytes.len() > 3 * CHUNK_BYTES, "{} bytes", bytes.len());
        let loaded = decode(&bytes).unwrap();
        assert_eq!(loaded.index.n_events(), index.n_events());
        assert_eq!(encode(&loaded.index, coverage).unwrap(), bytes);

        let dir = tempfile::tempdir().unwrap();
        let len = write(&OsVfs, dir.path(), &index, coverage).unwrap();
        let written = std::fs::read(dir.path().join(CHECKPOINT_FILE_NAME)).unwrap();
        assert_eq!(len, written.len() as u64);
        assert!(
            written == bytes,
            "the written file differs from the encoded bytes"
        );
        // Each chunk of the body but the last ends at a multiple of `CHUNK_BYTES` in
        // the file, and none is longer: a page cache filled by such writes holds the
        // file in large pages, which a load maps in fewer faults.
        let mut ends = Vec::new();
        encode_to(&index, coverage, &mut |at, chunk| {
            ends.push((at, at + chunk.len() as u64));
            Ok(())
        })
        .unwrap();
        let (header, body) = ends.split_last().unwrap();
        assert_eq!(header.0, 0, "the header last");
        let (last, whole) = body.split_last().unwrap();
        assert!(whole.len() >= 3, "{} chunks", body.len());
        for &(start, end) in whole {
            assert_eq!(end % CHUNK_BYTES as u64, 0, "a chunk ending at {end}");
            assert!(end - start <= CHUNK_BYTES as u64);
        }
        assert_eq!(last.1, bytes.len() as u64);
    }

    #[test]
    fn a_large_checkpoint_decodes_the_same_on_two_threads_as_on_one_and_in_place_as_copied() {
        use crate::model::RunEvent;
        // Enough runs and events for a body of over 8 MiB, decoded in two halves.
        let mut index = Index::new();
        let mut lsn = 0;
        // Three runs in four with gaps in their sequences (stored as pairs), the
        // fourth without (stored dense).
        for i in 0..30_000 {
            let id = format!("run-{i:05}");
            let mut run = Run::new(&*id, format!("skill-{}", i % 7));
            run.started_at = crate::model::Timestamp::from_unix_nanos(i % 5000);
            index.apply(Lsn(lsn), &Record::RunStarted(run));
            lsn += 100;
            for sequence in (1..=30).rev() {
                let event = RunEvent {
                    run_id: id.clone(),
                    sequence: sequence * (1 + u64::from(i % 4 != 0)),
                    ..RunEvent::default()
                };
                index.apply(Lsn(lsn), &Record::EventAppended(event));
                lsn += 100;
            }
        }
        let coverage = covering(lsn - 100, lsn);
        let bytes = encode(&index, coverage).unwrap();
        assert!(bytes.len() >= PARALLEL_DECODE_BYTES_MIN);
        let view = Arc::new(ReadView::Owned(bytes.clone()));
        for (parallel, in_place) in [(true, true), (false, true), (true, false)] {
            let (decoded, crc, check) = decode_body(&view, parallel, in_place).unwrap();
            let case = format!("parallel: {parallel}, run table in place: {in_place}");
            assert_eq!(check, Ok(()), "{case}");
            assert_eq!(
                crc.finalize(),
                crc32fast::hash(&bytes[HEADER_BYTES..]),
                "every byte checksummed once, in order; {case}"
            );
            assert_eq!(decoded.n_events(), 900_000);
            // Every full chunk of 4096 runs in place, the last 1304 copied out.
            let in_place_bytes = if in_place { 28_672 * RUN_BYTES } else { 0 };
            assert_eq!(decoded.loaded_run_bytes(), in_place_bytes, "{case}");
            assert_eq!(decoded.runs, index.runs, "{case}");
            // So are the run lists, and every full chunk of the per-id tables.
            let lists = [&index.by_skill, &index.by_caller, &index.by_channel];
            let n_listed = (lists.into_iter().flatten().map(|list| list.len()))
                .chain([&index.by_time, &index.by_finish, &index.by_dry].map(|l| l.len()))
                .sum::<usize>();
            let run_lists = if in_place {
                2 * 28_672 * 4 + n_listed * 4
            } else {
                0
            };
            assert_eq!(decoded.loaded_run_list_bytes(), run_lists, "{case}");
            // So is every full chunk of the event lists' places: 7 of 30 000.
            let places = decoded.event_lists.places().in_place_bytes();
            assert_eq!(places, if in_place { 28_672 * 8 } else { 0 }, "{case}");
            assert_eq!(encode(&decoded, coverage).unwrap(), bytes, "{case}");
        }
        assert_eq!(
            encode(&decode(&bytes).unwrap().index, coverage).unwrap(),
            bytes
        );
    }

    #[test]
    fn a_large_checkpoint_checksummed_as_it_is_decoded_is_refused_when_damaged() {
        use crate::model::RunEvent;
        let mut index = Index::new();
        // Every other sequence, so the list is stored as pairs.
        let n_events = PARALLEL_DECODE_BYTES_MIN as u64 / 16 + 1000;
        for sequence in 1..=n_events {
            let event = RunEvent {
                run_id: "long".into(),
                sequence: 2 * sequence,
                ..RunEvent::default()
            };
            index.apply(Lsn(sequence * 100), &Record::EventAppended(event));
        }
        let coverage = covering(n_events * 100, (n_events + 1) * 100);
        let bytes = encode(&index, coverage).unwrap();
        assert!(bytes.len() >= PARALLEL_DECODE_BYTES_MIN);
        assert_eq!(decode(&bytes).unwrap().index.n_events(), n_events);
        // A flip the body still decodes around (a sequence number), and one in a count.
        for at in [
            bytes.len() / 2 / 16 * 16 + 4,
            bytes.len() - 1,
            HEADER_BYTES + 200,
        ] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            assert_eq!(
                decode(&damaged).err().as_deref(),
                Some("checksum mismatch"),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        use crate::model::RunEvent;
        let (index, coverage) = sample();
        // Runs, event lists in both forms, an orphan and calls.
        let mut rich = Index::new();
        for (i, record) in rich_records().iter().enumerate() {
            rich.apply(Lsn(i as u64 * 40), record);
        }
        let event = RunEvent {
            run_id: "d".into(),
            sequence: 7,
            ..RunEvent::default()
        };
        rich.apply(Lsn(5000), &Record::EventAppended(event));
        let loaded = decode(&encode(&rich, coverage).unwrap()).unwrap().index;
        assert!(matches!(loaded.events_of("d").0, Stored::Loaded(_)));
        assert!(matches!(loaded.events_of("e").0, Stored::Dense { .. }));
        for index in [index, rich] {
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
}
