//! The segmented log: segment files, the active segment's writer, sealing, recovery.
//!
//! Where it sits: the committer appends encoded frames here; queries read frames back
//! by LSN; recovery runs here when a store is opened.
//!
//! A store directory holds segment files named by the LSN of their first frame
//! (`00000000000000004096.seg`), a `LOCK` file, and later the index checkpoint. The
//! last segment is *active*: preallocated to the segment size, appended to with
//! positioned writes, and synced as the durability mode says. When the next frame does
//! not fit, the active segment is *sealed* (truncated to its frames and synced) and a
//! new one is created. Sealed segments are read through read-only memory maps; the
//! parts of the maps of segments found at open that this process has not faulted in
//! yet are read with positioned reads while a thread faults them in (`warm`).
//!
//! # Invariants
//! - LSNs only grow; a segment's base LSN is the end LSN of the segment before it.
//! - A segment file becomes visible under its final name only once its header is
//!   written and synced and its space allocated (create as `.tmp`, sync, rename, sync
//!   the directory).
//! - At open, the last segment is cut at its first frame that does not verify, sealed
//!   there, and a fresh active segment is created: bytes past a cut are never reused,
//!   so no stale frame can reappear behind new ones.
//! - Open may be told to scan only from an LSN ([`ScanFrom`], the coverage of an index
//!   checkpoint): sealed segments wholly below it have only their header verified at
//!   open and are marked unscanned; the segment holding it is scanned from it when
//!   the frame said to end there verifies and does end there (from its start
//!   otherwise), so a stale `ScanFrom` can never make open cut the log. No frame of theirs is ever returned unverified:
//!   every read ([`Journal::with_frame`], [`Journal::for_each_frame`]) checks each
//!   frame's checksum and position, and a frame that fails is an error naming its
//!   segment and offset, never data. [`Journal::verify_unscanned`] scans them fully.
//!   Strict mode and `verify` always scan every frame.
//! - After a failed write or sync the journal is poisoned: every later append or sync
//!   fails with [`Error::Poisoned`]; reads go on.

pub mod header;
pub mod hook;
pub mod recovery;
mod sealed_set;
pub mod sparse;
pub mod warm;

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::codec::{
    Decode, Frame, FrameContext, FrameError, Lsn, Record, RecordKind, SegmentId,
    claimed_frame_bytes, decode_frame, frame_payload, reread_verified,
};
use crate::error::{CorruptionKind, Error, Result};
use crate::limits::{FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES, WARM_BYTES_MAX, WARM_SEGMENTS_MAX};
use crate::model::Run;
use crate::vfs::{DirLock, ReadView, Vfs, VfsFile, publish_file};
use header::SegmentHeader;
use hook::{SealHook, SealedSegmentInfo};
use recovery::{Damage, Role, SegmentScan, scan_segment, scan_segment_from};
use sealed_set::SealedSegments;
use sparse::{Rewritten, SparseTable, scan_sparse};
use warm::Warmth;

/// Bytes a positioned read of a frame in a cold part of a sealed segment reads at
/// first: most frames fit, and the rest take a second read of their whole length.
const COLD_READ_BYTES: usize = 1024;

/// The name of the lock file inside a store directory.
pub const LOCK_FILE_NAME: &str = "LOCK";
/// The extension of segment files.
pub const SEGMENT_EXTENSION: &str = "seg";
const TMP_SUFFIX: &str = ".tmp";
/// The suffix of a segment being rewritten by compaction: `<name>.compact`.
pub(crate) const COMPACT_SUFFIX: &str = ".compact";
/// Pending frames are handed to the OS once they reach this many bytes.
const WRITE_CHUNK_BYTES: usize = 1 << 20;
/// Written bytes of the active segment after which writeback is started early.
const WRITEBACK_BYTES: u64 = crate::limits::SEGMENT_WRITEBACK_BYTES;

/// Names of files other modules keep in the store directory; anything else is foreign.
const KNOWN_FILE_NAMES: &[&str] = &[
    LOCK_FILE_NAME,
    "index.ckpt",
    "index.ckpt.tmp",
    "compaction.horizon",
    "compaction.horizon.tmp",
];

/// The file name of the segment whose first frame has LSN `base`.
pub fn segment_file_name(base: Lsn) -> String {
    format!("{:020}.{SEGMENT_EXTENSION}", base.0)
}

/// The base LSNs of a store's segment files, oldest first. Every other file is left
/// out (temporaries, the index checkpoint, ...): readers that follow a store in use
/// see those come and go.
pub(crate) fn list_segments(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<Lsn>> {
    let names = vfs
        .list_dir(dir)
        .map_err(|e| Error::io("list store directory", dir, e))?;
    let mut bases: Vec<Lsn> = names
        .iter()
        .filter_map(|name| parse_segment_file_name(name))
        .collect();
    bases.sort();
    Ok(bases)
}

fn parse_segment_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Lsn)
}

/// How far open may trust the log without verifying it: every frame below `lsn` is
/// vouched for by the caller (an index checkpoint taken after those frames were
/// durable), and `last_frame` is the LSN of the frame that ends exactly at `lsn`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ScanFrom {
    pub lsn: Lsn,
    pub last_frame: Lsn,
}

/// How the journal is laid out and bounded.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    pub segment_bytes: u64,
    pub record_bytes_max: usize,
    /// Refuse to open when any corruption is found, instead of reporting it.
    pub strict: bool,
    /// Told about every segment sealed by a roll or by close (see `hook`).
    pub on_sealed: Option<SealHook>,
    /// Keep the files of the segments found at open, so reads of the parts of their
    /// maps not faulted in yet can be positioned reads while a `warm::Warmer` faults
    /// them in (see `Config::warm_segments`).
    pub warm_at_open: bool,
}

/// A damaged range found at open, with the file it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedRange {
    pub segment: PathBuf,
    pub damage: Damage,
}

/// What recovery found and did when the store was opened.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub n_segments: usize,
    pub n_frames: u64,
    /// Bytes of frames verified.
    pub bytes_verified: u64,
    /// Ranges that failed verification and were skipped; never returned as data.
    pub damaged: Vec<DamagedRange>,
    /// Where the last segment was cut because its last record was written only in part.
    pub torn_tail: Option<(PathBuf, u64)>,
    /// Leftover files of an interrupted segment creation, removed.
    pub removed_temporaries: Vec<PathBuf>,
    pub elapsed: Duration,
}

impl RecoveryReport {
    /// Adds damage found in the segment at `segment`.
    fn note_damage<'a>(&mut self, segment: &Path, damage: impl IntoIterator<Item = &'a Damage>) {
        self.damaged
            .extend(damage.into_iter().map(|damage| DamagedRange {
                segment: segment.to_path_buf(),
                damage: damage.clone(),
            }));
    }

    /// Whether any verified-then-damaged data was found (a torn tail is not damage).
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// A sealed, immutable segment, read through a memory map.
///
/// Shared (`Arc`) so compaction can read one without holding the log's lock; a rewrite
/// replaces the journal's `Arc`, and a reader still holding the old one keeps reading
/// the old file (its inode lives on until the last map is dropped).
#[derive(Debug)]
pub struct SealedSegment {
    pub path: PathBuf,
    /// What every frame is checked against, from the header: taken once, not per read.
    ctx: FrameContext,
    pub header: SegmentHeader,
    view: ReadView,
    /// Dense segments: file offset ranges of verified frames; for an unscanned
    /// segment, the whole file after the header, each frame verified only when read.
    extents: Vec<Range<u64>>,
    /// Sparse (compacted) segments: where each verified frame is.
    sparse: Option<SparseTable>,
    /// Whether every frame was verified at open (false when some were below
    /// `scan_from`).
    scanned: bool,
    /// For a segment found at open: which parts of its map this process has faulted
    /// in, and its file to read the rest from meanwhile (see `warm`).
    warmth: Option<Warmth>,
}

impl SealedSegment {
    /// The base LSN: the LSN of the first frame it was written with.
    pub fn base_lsn(&self) -> Lsn {
        self.header.base_lsn
    }

    /// The LSN just past the segment's last frame. For a sparse segment it is the end
    /// of the segment it replaced (kept in its footer), not derived from its length.
    pub fn end_lsn(&self) -> Lsn {
        match &self.sparse {
            Some(table) => table.end_lsn,
            None => Lsn(self.header.base_lsn.0 + (self.view.len() as u64 - SEGMENT_HEADER_BYTES)),
        }
    }

    /// File size in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.view.len() as u64
    }

    /// Whether compaction rewrote it.
    pub fn is_sparse(&self) -> bool {
        self.sparse.is_some()
    }

    /// The file offset of the verified frame with this LSN, if the segment holds one.
    fn offset_of(&self, lsn: Lsn) -> Option<u64> {
        match &self.sparse {
            Some(table) => table.offset_of(self.header.base_lsn, lsn),
            None => {
                let offset = SEGMENT_HEADER_BYTES + lsn.0.checked_sub(self.header.base_lsn.0)?;
                self.extents
                    .iter()
                    .any(|r| r.contains(&offset))
                    .then_some(offset)
            }
        }
    }

    /// The frame with this LSN, verified, and its file offset; an error naming the
    /// segment and offset if the segment holds no such frame or it does not verify.
    pub fn read_frame(&self, lsn: Lsn, payload_max: usize) -> Result<(Frame<'_>, u64)> {
        let corrupt = |offset, kind| Error::Corrupt {
            segment: self.path.clone(),
            offset,
            kind,
        };
        let Some(offset) = self.offset_of(lsn) else {
            return Err(corrupt(
                lsn.0.saturating_sub(self.header.base_lsn.0) + SEGMENT_HEADER_BYTES,
                CorruptionKind::BadLength(0),
            ));
        };
        let frame = decode_frame(&self.view[offset as usize..], &self.ctx, lsn, payload_max)
            .map_err(|e| corrupt(offset, frame_error_kind(e)))?;
        Ok((frame, offset))
    }

    /// Calls `f` with the frame with this LSN, verified, and its file offset; an error
    /// as [`SealedSegment::read_frame`] gives one. A frame in a part of the map this
    /// process has not faulted in yet is read with a positioned read instead, while
    /// the warmer faults that part in (see `warm`).
    pub fn with_frame<T>(
        &self,
        lsn: Lsn,
        payload_max: usize,
        f: impl FnOnce(Frame<'_>, u64) -> Result<T>,
    ) -> Result<T> {
        if let Some(warmth) = self.warmth.as_ref().filter(|w| !w.is_all_warm()) {
            if let Some(offset) = self.offset_of(lsn).filter(|&at| self.is_cold(warmth, at)) {
                return self.with_cold_frame(warmth, lsn, offset, payload_max, f);
            }
        }
        let (frame, offset) = self.read_frame(lsn, payload_max)?;
        f(frame, offset)
    }

    /// [`SealedSegment::with_frame`] for a frame at `offset` in a cold part of the map:
    /// a positioned read. Kept out of line, so the reads of a warm map stay small.
    #[cold]
    #[inline(never)]
    fn with_cold_frame<T>(
        &self,
        warmth: &Warmth,
        lsn: Lsn,
        offset: u64,
        payload_max: usize,
        f: impl FnOnce(Frame<'_>, u64) -> Result<T>,
    ) -> Result<T> {
        let mut inline = [0u8; COLD_READ_BYTES];
        let mut heap = Vec::new();
        let cached = match warmth.file() {
            Some(file) => self.read_cached(&*file, offset, payload_max, &mut inline, &mut heap)?,
            // Warmed since the caller looked: the map holds the frame.
            None => None,
        };
        let Some(bytes) = cached else {
            let (frame, offset) = self.read_frame(lsn, payload_max)?;
            return f(frame, offset);
        };
        let frame =
            decode_frame(bytes, &self.ctx, lsn, payload_max).map_err(|e| Error::Corrupt {
                segment: self.path.clone(),
                offset,
                kind: frame_error_kind(e),
            })?;
        f(frame, offset)
    }

    /// The bytes of the frame at `offset`, read from `file` into `inline` (or `heap`,
    /// for a frame longer than `inline`), if they are all in the page cache; `None`
    /// if not. From disk, a positioned read would read just these bytes, where a fault
    /// on the map reads the pages around them too.
    fn read_cached<'b>(
        &self,
        file: &dyn VfsFile,
        offset: u64,
        payload_max: usize,
        inline: &'b mut [u8; COLD_READ_BYTES],
        heap: &'b mut Vec<u8>,
    ) -> Result<Option<&'b [u8]>> {
        let read = |buf: &mut [u8]| {
            file.read_exact_cached_at(buf, offset)
                .map_err(|e| Error::io("read segment", &self.path, e))
        };
        // Most frames fit `inline`; the length a header claims says whether to read
        // more. A claim `decode_frame` refuses anyway is left to it to report.
        let room = self.len_bytes().saturating_sub(offset);
        let n_inline = COLD_READ_BYTES.min(room as usize);
        if !read(&mut inline[..n_inline])? {
            return Ok(None);
        }
        match claimed_frame_bytes(&inline[..n_inline]) {
            Some(len)
                if len > n_inline as u64
                    && len <= room
                    && len <= FRAME_HEADER_BYTES + payload_max as u64 =>
            {
                heap.resize(len as usize, 0);
                Ok(read(heap)?.then_some(&heap[..]))
            }
            _ => Ok(Some(&inline[..n_inline])),
        }
    }

    /// Whether some of the frame at `offset` is in a chunk of the map not faulted in.
    #[inline(never)]
    fn is_cold(&self, warmth: &Warmth, offset: u64) -> bool {
        let header = offset..offset + FRAME_HEADER_BYTES;
        if !warmth.is_warm(header.clone()) {
            return true;
        }
        // The header is mapped: the length it claims says where the frame ends.
        let claimed = self
            .view
            .get(header.start as usize..header.end as usize)
            .and_then(claimed_frame_bytes);
        claimed.is_some_and(|len| !warmth.is_warm(offset..offset.saturating_add(len)))
    }

    /// Calls `visit` for every verified frame with LSN ≥ `from`, in LSN order.
    pub fn for_each_frame<'a>(
        &'a self,
        from: Lsn,
        payload_max: usize,
        mut visit: impl FnMut(Frame<'a>) -> Result<()>,
    ) -> Result<()> {
        let decode = |at: u64, lsn: Lsn| {
            decode_frame(&self.view[at as usize..], &self.ctx, lsn, payload_max).map_err(|e| {
                Error::Corrupt {
                    segment: self.path.clone(),
                    offset: at,
                    kind: frame_error_kind(e),
                }
            })
        };
        if let Some(table) = &self.sparse {
            let base = self.header.base_lsn.0;
            let first = table
                .entries
                .partition_point(|&(d, _)| base + u64::from(d) < from.0);
            for &(delta, at) in &table.entries[first..] {
                visit(decode(u64::from(at), Lsn(base + u64::from(delta)))?)?;
            }
            return Ok(());
        }
        for extent in &self.extents {
            let mut at = extent.start;
            while at < extent.end {
                let lsn = Lsn(self.header.base_lsn.0 + (at - SEGMENT_HEADER_BYTES));
                let frame = decode(at, lsn)?;
                at += frame.len_bytes();
                if lsn >= from {
                    visit(frame)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct ActiveSegment {
    path: PathBuf,
    header: SegmentHeader,
    ctx: FrameContext,
    file: Box<dyn VfsFile>,
    /// File offset up to which frames were handed to the OS.
    written_offset: u64,
    /// Where the written bytes not yet handed to early writeback start.
    writeback_offset: u64,
    /// Frames encoded but not yet written, starting at `written_offset`.
    pending: Vec<u8>,
    capacity: u64,
    /// A live map of the file (`VfsFile::map_live`) when the storage layer gives one:
    /// frames below `written_offset` are read through it instead of with two
    /// positioned reads each. Dropped before the file is cut at seal.
    view: Option<ReadView>,
}

impl ActiveSegment {
    fn end_offset(&self) -> u64 {
        self.written_offset + self.pending.len() as u64
    }

    fn lsn_at(&self, offset: u64) -> Lsn {
        Lsn(self.header.base_lsn.0 + (offset - SEGMENT_HEADER_BYTES))
    }

    /// The file offset a frame with LSN `lsn` (at or above the base) would start at.
    fn offset_of(&self, lsn: Lsn) -> u64 {
        (lsn.0 - self.header.base_lsn.0).saturating_add(SEGMENT_HEADER_BYTES)
    }
}

/// Counters of the journal's work, for metrics and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    pub n_segments: usize,
    pub n_fsyncs: u64,
    pub bytes_appended: u64,
    /// Bytes the segment files take on disk (the active one at its preallocated size).
    pub disk_bytes: u64,
}

/// The segmented log of one store directory, owned by one handle at a time.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    options: JournalOptions,
    sealed: SealedSegments,
    active: ActiveSegment,
    next_segment_id: SegmentId,
    durable_lsn: Lsn,
    poisoned: Option<String>,
    n_fsyncs: u64,
    bytes_appended: u64,
    /// Scratch space for the encoded payloads of a batch, reused across batches.
    payloads: Vec<u8>,
    _lock: Box<dyn DirLock>,
}

impl Journal {
    /// Opens (creating if missing) the journal in `dir`, recovering what is there.
    ///
    /// `visit` sees every verified frame in LSN order, so the caller can rebuild state
    /// in the same pass; a frame it cannot use it returns as an error, which is
    /// reported as damage at that frame. With `scan_from` (and not `options.strict`),
    /// dense frames below it are not verified at open, only segment headers, and
    /// `visit` does not see them (see the module invariants). `None` verifies
    /// everything.
    pub fn open(
        dir: &Path,
        vfs: Arc<dyn Vfs>,
        options: JournalOptions,
        scan_from: Option<ScanFrom>,
        mut visit: impl FnMut(Frame<'_>) -> Result<(), CorruptionKind>,
    ) -> Result<(Journal, RecoveryReport)> {
        let started = Instant::now();
        vfs.create_dir_all(dir)
            .map_err(|e| Error::io("create store directory", dir, e))?;
        let lock = vfs.lock_dir(dir).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => Error::Locked {
                dir: dir.to_path_buf(),
            },
            _ => Error::io("lock store directory", dir, e),
        })?;
        let mut report = RecoveryReport::default();
        let scanned = scan_store(
            dir,
            &*vfs,
            &options,
            Access::ReadWrite,
            scan_from,
            &mut report,
            &mut visit,
        )?;
        for path in &report.removed_temporaries {
            // A segment whose creation was interrupted before its rename: never
            // visible, never acknowledged, safe to remove.
            vfs.remove_file(path)
                .map_err(|e| Error::io("remove leftover temporary", path, e))?;
        }

        let mut sealed = SealedSegments::default();
        let mut max_segment_id = SegmentId(0);
        let mut next_base = Lsn(0);
        // The newest segments are warmed: they hold the runs most likely asked for.
        let warm_from = match options.warm_at_open {
            true => first_to_warm(scanned.iter().map(|s| s.view.len() as u64)),
            false => usize::MAX,
        };
        for (
            segment_idx,
            ScannedSegment {
                path,
                file,
                view,
                header,
                role,
                scan,
                sparse,
                scanned,
            },
        ) in scanned.into_iter().enumerate()
        {
            let warm = segment_idx >= warm_from;
            max_segment_id = max_segment_id.max(header.segment_id);
            if let Some(table) = sparse {
                // Written whole and synced before it became visible: never cut.
                let segment = SealedSegment {
                    path,
                    ctx: header.frame_context(),
                    header,
                    warmth: warmth_for(file, &view, warm),
                    view,
                    extents: Vec::new(),
                    sparse: Some(table),
                    scanned: true,
                };
                next_base = segment.end_lsn();
                sealed.insert(Arc::new(segment));
                continue;
            }
            let SegmentScan {
                extents,
                end_offset,
                ..
            } = scan;
            let len = view.len() as u64;
            let view = if role == Role::Last && end_offset != len {
                drop(view);
                // Seal the last segment at its last verified frame: nothing past the
                // cut is ever read or written again.
                file.set_len(end_offset)
                    .map_err(|e| Error::io("cut segment tail", &path, e))?;
                file.sync_all()
                    .map_err(|e| Error::io("sync segment", &path, e))?;
                file.map_readonly()
                    .map_err(|e| Error::io("map segment", &path, e))?
            } else {
                view
            };
            let segment = SealedSegment {
                path,
                ctx: header.frame_context(),
                header,
                warmth: warmth_for(file, &view, warm),
                view,
                extents,
                sparse: None,
                scanned,
            };
            next_base = segment.end_lsn();
            if segment.len_bytes() == SEGMENT_HEADER_BYTES && role == Role::Last {
                // An empty segment left by an earlier open: remove it rather than keep
                // a file with no frames.
                vfs.remove_file(&segment.path)
                    .map_err(|e| Error::io("remove empty segment", &segment.path, e))?;
                vfs.sync_dir(dir)
                    .map_err(|e| Error::io("sync store directory", dir, e))?;
                continue;
            }
            sealed.insert(Arc::new(segment));
        }

        let next_segment_id = SegmentId(max_segment_id.0 + 1);
        let active = create_segment(
            &*vfs,
            dir,
            next_segment_id,
            next_base,
            options.segment_bytes,
        )?;
        report.elapsed = started.elapsed();
        let journal = Journal {
            dir: dir.to_path_buf(),
            vfs,
            options,
            sealed,
            active,
            next_segment_id: SegmentId(next_segment_id.0 + 1),
            durable_lsn: next_base,
            poisoned: None,
            n_fsyncs: 0,
            bytes_appended: 0,
            payloads: Vec::new(),
            _lock: lock,
        };
        Ok((journal, report))
    }

    /// Verifies every frame of the segments open did not scan, as open would have,
    /// adding what it finds to `report`: afterwards every extent is verified and
    /// damage is skipped. Strict mode turns damage into an error.
    pub fn verify_unscanned(&mut self, report: &mut RecoveryReport) -> Result<()> {
        let max = self.options.record_bytes_max;
        for segment in self.sealed.values_mut().filter(|s| !s.scanned) {
            // Called from open, before any reader could have taken a share of it.
            let segment = Arc::get_mut(segment).expect("no reader holds a segment during open");
            let scan = scan_segment(&segment.view, &segment.header, Role::Sealed, max, |_| {});
            report.n_frames += scan.n_frames;
            report.bytes_verified += scan.extents.iter().map(|r| r.end - r.start).sum::<u64>();
            report.note_damage(&segment.path, &scan.damage);
            segment.extents = scan.extents;
            segment.scanned = true;
        }
        check_strict(&self.options, report)?;
        Ok(())
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The LSN the next appended record will get.
    pub fn next_lsn(&self) -> Lsn {
        self.active.lsn_at(self.active.end_offset())
    }

    /// Every record below this LSN is durable.
    pub fn durable_lsn(&self) -> Lsn {
        self.durable_lsn
    }

    /// Why the journal refuses writes, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records a failure and poisons the journal for writing.
    fn poison(&mut self, error: Error) -> Error {
        self.poisoned.get_or_insert_with(|| error.to_string());
        error
    }

    /// Appends `records` as one unit and pushes the LSN of each onto `lsns`.
    ///
    /// Every payload is encoded and checked against the record limit before any frame
    /// enters the log, so a refused batch (an oversized or unencodable record) changes
    /// nothing. Frames go to the active segment's pending bytes, rolling to a new
    /// segment when one does not fit; [`Journal::write`] or [`Journal::sync`] hands
    /// them to the OS.
    pub fn append_batch(&mut self, records: &[Record], lsns: &mut Vec<Lsn>) -> Result<()> {
        self.check_writable()?;
        let max = self.options.record_bytes_max;
        let mut payloads = std::mem::take(&mut self.payloads);
        payloads.clear();
        let mut ends = Vec::with_capacity(records.len());
        for record in records {
            let start = payloads.len();
            if let Err(e) = record.encode_payload(&mut payloads) {
                self.payloads = payloads;
                return Err(Error::Encode(e.to_string()));
            }
            if payloads.len() - start > max {
                let bytes = payloads.len() - start;
                self.payloads = payloads;
                return Err(Error::RecordTooLarge { bytes, max });
            }
            ends.push(payloads.len());
        }
        let mut start = 0;
        let mut result = Ok(());
        for (record, end) in records.iter().zip(ends) {
            match self.append_payload(record.kind(), &payloads[start..end]) {
                Ok(lsn) => lsns.push(lsn),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
            start = end;
        }
        self.payloads = payloads;
        result
    }

    /// Appends one record; see [`Journal::append_batch`].
    pub fn append(&mut self, record: &Record) -> Result<Lsn> {
        let mut lsns = Vec::with_capacity(1);
        self.append_batch(std::slice::from_ref(record), &mut lsns)?;
        Ok(lsns[0])
    }

    /// Appends one record given as its encoded payload (what
    /// [`Record::encode_payload`] writes for a record of `kind`), refusing it when it is
    /// over the record limit.
    pub(crate) fn append_encoded(&mut self, kind: RecordKind, payload: &[u8]) -> Result<Lsn> {
        self.check_writable()?;
        let max = self.options.record_bytes_max;
        if payload.len() > max {
            return Err(Error::RecordTooLarge {
                bytes: payload.len(),
                max,
            });
        }
        self.append_payload(kind, payload)
    }

    /// Frames one checked payload into the active segment, rolling first if it does
    /// not fit.
    fn append_payload(&mut self, kind: RecordKind, payload: &[u8]) -> Result<Lsn> {
        let frame_len = FRAME_HEADER_BYTES + payload.len() as u64;
        if self.active.end_offset() + frame_len > self.active.capacity {
            self.roll()?;
        }
        let lsn = self.next_lsn();
        frame_payload(
            &mut self.active.pending,
            &self.active.ctx,
            lsn,
            kind,
            payload,
        );
        debug_assert!(self.active.end_offset() <= self.active.capacity);
        self.bytes_appended += frame_len;
        if self.active.pending.len() >= WRITE_CHUNK_BYTES {
            self.write()?;
        }
        Ok(lsn)
    }

    /// Hands pending frames to the OS (not yet durable).
    pub fn write(&mut self) -> Result<()> {
        self.check_writable()?;
        let active = &mut self.active;
        if active.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = active
            .file
            .write_all_at(&active.pending, active.written_offset)
        {
            let error = Error::io("write segment", &active.path, e);
            return Err(self.poison(error));
        }
        active.written_offset += active.pending.len() as u64;
        active.pending.clear();
        // Start writing long runs of written bytes to disk now, so that the sync at the
        // next roll (or flush) waits for little: under `Durability::None` a whole
        // segment would otherwise be synced at once, stalling the appender. A failed
        // hint is not an error of its own: whatever failed shows at the next sync.
        let unstarted = active.written_offset - active.writeback_offset;
        if unstarted >= WRITEBACK_BYTES {
            let _hint = active
                .file
                .start_writeback(active.writeback_offset, unstarted);
            active.writeback_offset = active.written_offset;
        }
        Ok(())
    }

    /// Writes pending frames and makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.write()?;
        let target = self.next_lsn();
        if target == self.durable_lsn {
            return Ok(());
        }
        if let Err(e) = self.active.file.sync_data() {
            let error = Error::io("sync segment", &self.active.path, e);
            return Err(self.poison(error));
        }
        self.n_fsyncs += 1;
        assert!(target >= self.durable_lsn, "the durable LSN only grows");
        self.durable_lsn = target;
        Ok(())
    }

    /// Seals the active segment and starts a new one at the same LSN.
    fn roll(&mut self) -> Result<()> {
        self.sync()?;
        let base = self.next_lsn();
        let next = match create_segment(
            &*self.vfs,
            &self.dir,
            self.next_segment_id,
            base,
            self.options.segment_bytes,
        ) {
            Ok(next) => next,
            Err(error) => return Err(self.poison(error)),
        };
        self.next_segment_id = SegmentId(self.next_segment_id.0 + 1);
        let old = std::mem::replace(&mut self.active, next);
        match seal(old) {
            Ok(segment) => {
                announce_sealed(self.options.on_sealed.as_ref(), &segment);
                self.sealed.insert(Arc::new(segment));
                Ok(())
            }
            Err(error) => Err(self.poison(error)),
        }
    }

    /// Writes and syncs everything, then seals the active segment so the store is left
    /// with no preallocated space. The journal accepts no writes afterwards.
    pub fn close(mut self) -> Result<()> {
        self.sync()?;
        let active = self.active;
        let path = active.path.clone();
        let empty = active.written_offset == SEGMENT_HEADER_BYTES;
        let segment = seal(active)?;
        if !empty {
            announce_sealed(self.options.on_sealed.as_ref(), &segment);
        }
        drop(segment);
        if empty {
            self.vfs
                .remove_file(&path)
                .map_err(|e| Error::io("remove empty segment", &path, e))?;
            self.vfs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("sync store directory", &self.dir, e))?;
        }
        Ok(())
    }

    /// Reads and verifies the record at `lsn`.
    pub fn read(&self, lsn: Lsn) -> Result<Record> {
        self.decode_frame_with(lsn, |frame| frame.record())
    }

    /// Asks the CPU to start loading the first bytes of the frame at `lsn` from a
    /// mapped segment, so that reading it later, or several frames in turn, waits for
    /// memory once instead of once per frame. A hint: it reads nothing and fails for
    /// nothing (an LSN it cannot place, a frame not in a map, a page not present).
    pub(crate) fn prefetch_frame(&self, lsn: Lsn) {
        let active = &self.active;
        if lsn >= active.header.base_lsn {
            let offset = active.offset_of(lsn);
            if let Some(view) = active
                .view
                .as_ref()
                .filter(|_| offset < active.written_offset)
            {
                prefetch_at(view, offset);
            }
        } else if let Some(segment) = self.sealed.holding(lsn) {
            if let Some(offset) = segment.offset_of(lsn) {
                prefetch_at(&segment.view, offset);
            }
        }
    }

    /// Reads and verifies the record at `lsn`, which must be a `T`.
    pub(crate) fn read_as<T: Decode>(&self, lsn: Lsn) -> Result<T> {
        self.decode_frame_with(lsn, |frame| frame.decode_as())
    }

    /// Reads and verifies the record at `lsn`, which must be a `T`, into `out` (see
    /// [`Frame::decode_into`]).
    pub(crate) fn read_into<T: Decode>(&self, lsn: Lsn, out: &mut T) -> Result<()> {
        self.decode_frame_with(lsn, |frame| frame.decode_into(out))
    }

    /// Reads and verifies the finish at `lsn` and applies it to `run` (see
    /// [`Frame::finish_into`]).
    pub(crate) fn read_finish_into(&self, lsn: Lsn, run: &mut Run) -> Result<()> {
        self.decode_frame_with(lsn, |frame| frame.finish_into(run))
    }

    /// Decodes the verified frame at `lsn` by `decode`, whose refusal is reported as
    /// corruption at the frame's place.
    fn decode_frame_with<T>(
        &self,
        lsn: Lsn,
        decode: impl FnOnce(Frame<'_>) -> std::result::Result<T, CorruptionKind>,
    ) -> Result<T> {
        self.with_frame(lsn, |frame, path, offset| {
            decode(frame).map_err(|kind| Error::Corrupt {
                segment: path.to_path_buf(),
                offset,
                kind,
            })
        })
    }

    /// Calls `f` with the verified frame at `lsn`, its segment path and file offset.
    pub fn with_frame<T>(
        &self,
        lsn: Lsn,
        f: impl FnOnce(Frame<'_>, &Path, u64) -> Result<T>,
    ) -> Result<T> {
        let max = self.options.record_bytes_max;
        let not_a_frame = |path: &Path, offset: u64, kind| Error::Corrupt {
            segment: path.to_path_buf(),
            offset,
            kind,
        };
        if lsn >= self.active.header.base_lsn {
            let active = &self.active;
            let offset = active.offset_of(lsn);
            if offset >= active.end_offset() {
                return Err(not_a_frame(
                    &active.path,
                    offset,
                    CorruptionKind::BadLength(0),
                ));
            }
            if offset >= active.written_offset {
                let at = (offset - active.written_offset) as usize;
                let frame = decode_frame(&active.pending[at..], &active.ctx, lsn, max)
                    .map_err(|e| not_a_frame(&active.path, offset, frame_error_kind(e)))?;
                return f(frame, &active.path, offset);
            }
            let written = active
                .view
                .as_ref()
                .and_then(|view| view.get(offset as usize..active.written_offset as usize));
            if let Some(bytes) = written {
                let frame = decode_frame(bytes, &active.ctx, lsn, max)
                    .map_err(|e| not_a_frame(&active.path, offset, frame_error_kind(e)))?;
                return f(frame, &active.path, offset);
            }
            let mut header = [0u8; FRAME_HEADER_BYTES as usize];
            active
                .file
                .read_exact_at(&mut header, offset)
                .map_err(|e| Error::io("read segment", &active.path, e))?;
            let claimed = claimed_frame_bytes(&header).expect("a whole header");
            let payload_len = claimed - FRAME_HEADER_BYTES;
            if payload_len == 0
                || payload_len > max as u64
                || offset + claimed > active.written_offset
            {
                return Err(not_a_frame(
                    &active.path,
                    offset,
                    CorruptionKind::BadLength(payload_len),
                ));
            }
            let mut bytes = vec![0u8; claimed as usize];
            active
                .file
                .read_exact_at(&mut bytes, offset)
                .map_err(|e| Error::io("read segment", &active.path, e))?;
            let frame = decode_frame(&bytes, &active.ctx, lsn, max)
                .map_err(|e| not_a_frame(&active.path, offset, frame_error_kind(e)))?;
            return f(frame, &active.path, offset);
        }
        let Some(segment) = self.sealed.holding(lsn) else {
            return Err(Error::Corrupt {
                segment: self.dir.clone(),
                offset: lsn.0,
                kind: CorruptionKind::BadLength(0),
            });
        };
        segment.with_frame(lsn, max, |frame, offset| f(frame, &segment.path, offset))
    }

    /// Calls `visit` for every verified frame with LSN ≥ `from` that was handed to the
    /// OS, in LSN order. A frame that does not verify ends the walk with
    /// [`Error::Corrupt`] naming its segment and offset; only segments open did not
    /// scan (below a checkpoint's coverage) can hold one, since open skips damage it
    /// finds.
    pub fn for_each_frame(
        &self,
        from: Lsn,
        mut visit: impl FnMut(Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        let max = self.options.record_bytes_max;
        for segment in self.sealed.values() {
            if segment.end_lsn() <= from {
                continue;
            }
            segment.for_each_frame(from, max, &mut visit)?;
        }
        let active = &self.active;
        let written = active.written_offset;
        if written > SEGMENT_HEADER_BYTES {
            let mut bytes = vec![0u8; (written - SEGMENT_HEADER_BYTES) as usize];
            active
                .file
                .read_exact_at(&mut bytes, SEGMENT_HEADER_BYTES)
                .map_err(|e| Error::io("read segment", &active.path, e))?;
            let mut at = 0usize;
            while at < bytes.len() {
                let lsn = active.lsn_at(SEGMENT_HEADER_BYTES + at as u64);
                let frame = decode_frame(&bytes[at..], &active.ctx, lsn, max).map_err(|e| {
                    Error::Corrupt {
                        segment: active.path.clone(),
                        offset: SEGMENT_HEADER_BYTES + at as u64,
                        kind: frame_error_kind(e),
                    }
                })?;
                at += frame.len_bytes() as usize;
                if lsn >= from {
                    visit(frame)?;
                }
            }
        }
        Ok(())
    }

    /// Maps every page of the sealed segments into the process now, so that the first
    /// read of each costs no page fault (see `Config::prefault_segments`). A kernel that
    /// refuses the hint leaves the maps as they were: reads fault pages in as before.
    pub fn prefault_sealed(&self) {
        for segment in self.sealed.values() {
            if segment.view.prefault().is_err() {
                break;
            }
        }
    }

    /// The sealed segments open gave warmth to and not all warm yet, newest first: what
    /// a `warm::Warmer` is to fault in.
    pub fn to_warm(&self) -> Vec<Weak<SealedSegment>> {
        self.sealed
            .values()
            .rev()
            .filter(|s| s.warmth.as_ref().is_some_and(|w| !w.is_all_warm()))
            .map(Arc::downgrade)
            .collect()
    }

    /// Counters of the journal's work.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            n_segments: self.sealed.len() + 1,
            n_fsyncs: self.n_fsyncs,
            bytes_appended: self.bytes_appended,
            disk_bytes: self.sealed.values().map(|s| s.len_bytes()).sum::<u64>()
                + self.active.capacity,
        }
    }

    /// The sealed segments, oldest first.
    pub fn sealed_segments(&self) -> impl Iterator<Item = &Arc<SealedSegment>> {
        self.sealed.values()
    }

    // ----- what compaction needs -----

    /// The base LSN of the active segment: compaction never touches it or anything after.
    pub fn active_base(&self) -> Lsn {
        self.active.header.base_lsn
    }

    /// The storage layer and the journal's options, for writing rewritten segments.
    pub fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.vfs
    }

    /// The largest record payload.
    pub fn record_bytes_max(&self) -> usize {
        self.options.record_bytes_max
    }

    /// Takes the next segment id, for a file written outside the lock.
    pub fn reserve_segment_id(&mut self) -> SegmentId {
        let id = self.next_segment_id;
        self.next_segment_id = SegmentId(id.0 + 1);
        id
    }

    /// Whether `segment` is still the journal's segment at its base LSN.
    fn is_current(&self, segment: &Arc<SealedSegment>) -> bool {
        self.sealed
            .get(segment.header.base_lsn)
            .is_some_and(|s| Arc::ptr_eq(s, segment))
    }

    /// Makes a rewritten segment visible in place of `old`: renames `<name>.compact`
    /// over `<name>` (an atomic replace), and from then on reads go to the new file. The
    /// caller syncs the directory afterwards (once for a batch). A crash before the
    /// rename is durable leaves the old file (the temporary is removed at open); after
    /// it, the new one.
    pub fn install_rewrite(&mut self, old: &Arc<SealedSegment>, new: Rewritten) -> Result<()> {
        assert!(
            self.is_current(old),
            "one compaction at a time swaps a segment"
        );
        assert!(
            new.is_synced(),
            "a rewrite is durable before it is made visible"
        );
        assert_eq!(new.header.base_lsn, old.header.base_lsn);
        assert_eq!(
            new.table.end_lsn,
            old.end_lsn(),
            "a rewrite keeps the end LSN"
        );
        if let Err(e) = self.vfs.rename(&new.tmp, &old.path) {
            let _ = self.vfs.remove_file(&new.tmp);
            return Err(Error::io("publish compacted segment", &old.path, e));
        }
        // Renamed: the file under the name is the new one whatever a crash keeps of
        // the rename, so reads switch now. Both files hold every live record.
        let segment = SealedSegment {
            path: old.path.clone(),
            ctx: new.header.frame_context(),
            header: new.header,
            view: new.view,
            extents: Vec::new(),
            sparse: Some(new.table),
            scanned: true,
            warmth: None,
        };
        self.sealed.insert(Arc::new(segment));
        Ok(())
    }

    /// Removes a sealed segment that holds no live record; the caller syncs the
    /// directory afterwards (once for a batch). Never the newest sealed segment, whose
    /// end is the log's next LSN at open.
    pub fn remove_sealed(&mut self, old: &Arc<SealedSegment>) -> Result<()> {
        assert!(
            self.is_current(old),
            "one compaction at a time removes a segment"
        );
        assert!(
            self.sealed.last_base() != Some(old.header.base_lsn),
            "the newest sealed segment is rewritten, never removed"
        );
        self.vfs
            .remove_file(&old.path)
            .map_err(|e| Error::io("remove compacted segment", &old.path, e))?;
        self.sealed.remove(old.header.base_lsn);
        Ok(())
    }

    /// Seals the active segment now (if it holds a frame) and starts a new one, so
    /// everything appended so far can be compacted.
    pub fn seal_active(&mut self) -> Result<()> {
        self.check_writable()?;
        if self.next_lsn() == self.active.header.base_lsn {
            return Ok(());
        }
        self.roll()
    }
}

pub(crate) fn frame_error_kind(error: FrameError) -> CorruptionKind {
    match error {
        FrameError::Corrupt(kind) => kind,
        FrameError::Truncated => CorruptionKind::Truncated,
        FrameError::Empty => CorruptionKind::BadLength(0),
    }
}

/// Whether a scan may change the store.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

/// One segment as a scan of the store found it.
struct ScannedSegment {
    path: PathBuf,
    file: Box<dyn VfsFile>,
    view: ReadView,
    header: SegmentHeader,
    role: Role,
    scan: SegmentScan,
    /// The table of a sparse (compacted) segment; `scan` is then unused.
    sparse: Option<SparseTable>,
    /// Whether `scan` verified every frame (false when only the header was checked).
    scanned: bool,
}

/// Lists a store's files and verifies every frame of every segment, changing nothing,
/// except the frames below `scan_from`: of a segment wholly below it only the header
/// is verified, and the segment holding it is scanned from it (never in strict mode).
///
/// Leftover temporaries are listed in the report (open removes them); a foreign file
/// or a segment header that does not verify is an error; damage is listed in the
/// report, or is an error in strict mode.
fn scan_store(
    dir: &Path,
    vfs: &dyn Vfs,
    options: &JournalOptions,
    access: Access,
    scan_from: Option<ScanFrom>,
    report: &mut RecoveryReport,
    mut visit: impl FnMut(Frame<'_>) -> Result<(), CorruptionKind>,
) -> Result<Vec<ScannedSegment>> {
    let mut bases = Vec::new();
    let names = vfs
        .list_dir(dir)
        .map_err(|e| Error::io("list store directory", dir, e))?;
    for name in names {
        let path = dir.join(&name);
        if let Some(base) = parse_segment_file_name(&name) {
            bases.push(base);
        } else if [TMP_SUFFIX, COMPACT_SUFFIX].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|s| parse_segment_file_name(s).is_some())
        }) {
            // A creation or a compaction rewrite interrupted before its rename.
            report.removed_temporaries.push(path);
        } else if !KNOWN_FILE_NAMES.contains(&name.as_str()) {
            return Err(Error::ForeignFile { path });
        }
    }
    bases.sort();

    let scan_from = scan_from.filter(|_| !options.strict);
    let mut opened = Vec::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(segment_file_name(base));
        let role = if i + 1 == bases.len() {
            Role::Last
        } else {
            Role::Sealed
        };
        let file = match access {
            Access::ReadWrite => vfs.open_rw(&path),
            Access::ReadOnly => vfs.open_ro(&path),
        }
        .map_err(|e| Error::io("open segment", &path, e))?;
        let view = file
            .map_readonly()
            .map_err(|e| Error::io("map segment", &path, e))?;
        let header = match SegmentHeader::decode(&view) {
            Ok(header) if header.base_lsn == base => header,
            Ok(header) => {
                let why = format!(
                    "header names base LSN {} but the file name {}",
                    header.base_lsn, base
                );
                return Err(Error::Corrupt {
                    segment: path,
                    offset: 0,
                    kind: CorruptionKind::BadHeader(why),
                });
            }
            // A segment whose header cannot be read cannot be interpreted at all.
            Err(why) => {
                return Err(Error::Corrupt {
                    segment: path,
                    offset: 0,
                    kind: CorruptionKind::BadHeader(why),
                });
            }
        };
        let next_base = bases.get(i + 1).copied();
        let plan = if header.is_sparse() {
            Plan::Sparse { next_base }
        } else if scan_from.is_some_and(|from| next_base.is_some_and(|n| n <= from.lsn)) {
            // Wholly below `scan_from`: segments are contiguous, so its last frame
            // ends where the next one starts.
            debug_assert_eq!(role, Role::Sealed);
            Plan::Below
        } else {
            let start = scan_from
                .and_then(|from| scan_start(&view, &header, from, options.record_bytes_max));
            Plan::Dense { start }
        };
        opened.push(Opened {
            path,
            file,
            view,
            header,
            role,
            plan,
        });
    }

    let found = visit_verified(&opened, options, report, &mut visit)?;
    Ok(opened
        .into_iter()
        .zip(found)
        .map(|(segment, (scan, sparse))| ScannedSegment {
            scanned: match segment.plan {
                Plan::Below => false,
                Plan::Dense { start } => start.is_none(),
                Plan::Sparse { .. } => true,
            },
            path: segment.path,
            file: segment.file,
            view: segment.view,
            header: segment.header,
            role: segment.role,
            scan,
            sparse,
        })
        .collect())
}

/// A segment file opened and mapped by a scan, its header verified.
struct Opened {
    path: PathBuf,
    file: Box<dyn VfsFile>,
    view: ReadView,
    header: SegmentHeader,
    role: Role,
    plan: Plan,
}

/// What a scan does with a segment's frames.
#[derive(Copy, Clone, Debug)]
enum Plan {
    /// A compacted segment: verified and visited through its table.
    Sparse { next_base: Option<Lsn> },
    /// Wholly below `scan_from`: only the header is verified.
    Below,
    /// Dense frames, verified from `start` (the whole segment when `None`) and visited.
    Dense { start: Option<u64> },
}

impl Opened {
    /// Verifies the dense frames of the segment, calling `visit` with each one that
    /// verifies and its file offset.
    fn verify<'a>(
        &'a self,
        payload_max: usize,
        mut visit: impl FnMut(Frame<'a>, u64),
    ) -> SegmentScan {
        let Plan::Dense { start } = self.plan else {
            unreachable!("only dense segments are scanned frame by frame");
        };
        let base = self.header.base_lsn.0;
        scan_segment_from(
            &self.view,
            &self.header,
            self.role,
            payload_max,
            start.unwrap_or(SEGMENT_HEADER_BYTES),
            |frame| visit(frame, SEGMENT_HEADER_BYTES + (frame.lsn.0 - base)),
        )
    }
}

/// Frames verified by the second thread of [`visit_verified`], in order.
enum Verified {
    /// The file offsets of the next verified frames of the segment.
    Frames(Vec<u64>),
    /// The segment is done.
    Scanned(SegmentScan),
}

/// Verified frames are handed over in batches of this many.
const VERIFIED_BATCH: usize = 4096;

/// Verifies the frames of every segment in `opened` and visits the ones that verify in
/// LSN order; returns each segment's scan (or sparse table).
///
/// Checksums are most of the cost of a scan, and they depend on nothing but the
/// segment's bytes: with several dense segments, a second thread verifies them and
/// hands over the offsets of verified frames in batches, while this thread visits
/// those, re-reading only their headers.
fn visit_verified(
    opened: &[Opened],
    options: &JournalOptions,
    report: &mut RecoveryReport,
    visit: &mut impl FnMut(Frame<'_>) -> Result<(), CorruptionKind>,
) -> Result<Vec<(SegmentScan, Option<SparseTable>)>> {
    let max = options.record_bytes_max;
    let dense: Vec<&Opened> = (opened.iter())
        .filter(|s| matches!(s.plan, Plan::Dense { .. }))
        .collect();
    std::thread::scope(|scope| {
        let verified = if dense.len() >= 2 {
            let (sender, receiver) = std::sync::mpsc::sync_channel(4);
            scope.spawn(move || {
                for segment in dense {
                    let mut batch = Vec::with_capacity(VERIFIED_BATCH);
                    // A failed send means the visit stopped early (strict mode found
                    // damage): the rest is not wanted.
                    let mut wanted = true;
                    let scan = segment.verify(max, |_, offset| {
                        batch.push(offset);
                        if batch.len() == VERIFIED_BATCH {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(VERIFIED_BATCH));
                            wanted = wanted && sender.send(Verified::Frames(full)).is_ok();
                        }
                    });
                    let sent = |message| wanted && sender.send(message).is_ok();
                    if !sent(Verified::Frames(batch)) || !sent(Verified::Scanned(scan)) {
                        return;
                    }
                }
            });
            Some(receiver)
        } else {
            None
        };
        let mut found = Vec::with_capacity(opened.len());
        for segment in opened {
            let (path, view, header) = (&segment.path, &segment.view, &segment.header);
            let mut unusable = Vec::new();
            let mut checked = |frame: Frame<'_>, offset: u64| {
                if let Err(kind) = visit(frame) {
                    unusable.push(Damage {
                        offset,
                        len_bytes: frame.len_bytes(),
                        kind,
                    });
                }
            };
            match segment.plan {
                Plan::Sparse { next_base } => {
                    let sparse = scan_sparse(view, header, next_base, max, checked);
                    report.n_segments += 1;
                    report.n_frames += sparse.n_frames;
                    report.bytes_verified += sparse.bytes_verified;
                    report.note_damage(path, sparse.damage.iter().chain(&unusable));
                    found.push((SegmentScan::default(), Some(sparse.table)));
                }
                Plan::Below => {
                    let len = view.len() as u64;
                    #[allow(clippy::single_range_in_vec_init)] // one extent, not values
                    let extents = if len > SEGMENT_HEADER_BYTES {
                        vec![SEGMENT_HEADER_BYTES..len]
                    } else {
                        Vec::new()
                    };
                    report.n_segments += 1;
                    let scan = SegmentScan {
                        extents,
                        end_offset: len,
                        ..SegmentScan::default()
                    };
                    found.push((scan, None));
                }
                Plan::Dense { start } => {
                    let mut scan = match &verified {
                        Some(receiver) => loop {
                            let message = (receiver.recv())
                                .expect("the verifying thread hands over every dense segment");
                            match message {
                                Verified::Frames(offsets) => {
                                    for at in offsets {
                                        let lsn =
                                            Lsn(header.base_lsn.0 + (at - SEGMENT_HEADER_BYTES));
                                        checked(reread_verified(&view[at as usize..], lsn), at);
                                    }
                                }
                                Verified::Scanned(scan) => break scan,
                            }
                        },
                        None => segment.verify(max, &mut checked),
                    };
                    if let Some(start) = start {
                        // The vouched-for frames before `start` stay readable, each
                        // verified when read.
                        match scan.extents.first_mut() {
                            Some(first) if first.start == start => {
                                first.start = SEGMENT_HEADER_BYTES;
                            }
                            _ => scan.extents.insert(0, SEGMENT_HEADER_BYTES..start),
                        }
                    }
                    report.n_segments += 1;
                    report.n_frames += scan.n_frames;
                    report.bytes_verified +=
                        scan.extents.iter().map(|r| r.end - r.start).sum::<u64>();
                    report.note_damage(path, scan.damage.iter().chain(&unusable));
                    if segment.role == Role::Last && scan.torn_tail.is_some() {
                        report.torn_tail = Some((path.clone(), scan.end_offset));
                    }
                    found.push((scan, None));
                }
            }
            check_strict(options, report)?;
        }
        Ok(found)
    })
}

/// In strict mode, any damage found so far is an error.
fn check_strict(options: &JournalOptions, report: &RecoveryReport) -> Result<()> {
    if options.strict {
        if let Some(first) = report.damaged.first() {
            return Err(Error::Corrupt {
                segment: first.segment.clone(),
                offset: first.damage.offset,
                kind: first.damage.kind.clone(),
            });
        }
    }
    Ok(())
}

/// The file offset in this segment where a scan may start under `from`: past the
/// header, when `from.lsn` falls inside the segment and the frame at
/// `from.last_frame` verifies and ends exactly there. `None` means scan it all.
fn scan_start(bytes: &[u8], header: &SegmentHeader, from: ScanFrom, max: usize) -> Option<u64> {
    let base = header.base_lsn.0;
    if from.last_frame.0 < base || from.last_frame >= from.lsn {
        return None;
    }
    let start = SEGMENT_HEADER_BYTES.checked_add(from.lsn.0 - base)?;
    let last = SEGMENT_HEADER_BYTES + (from.last_frame.0 - base);
    if start > bytes.len() as u64 {
        return None;
    }
    let ctx = header.frame_context();
    let frame = decode_frame(&bytes[last as usize..], &ctx, from.last_frame, max).ok()?;
    (last + frame.len_bytes() == start).then_some(start)
}

/// Verifies every frame of the store in `dir`, and decodes every record, without
/// changing anything, not even a
/// torn tail, and without taking the lock: a store in use can be verified (its last
/// segment then ends at the preallocated zeros, or at a frame being written).
pub fn verify_store(dir: &Path, vfs: &dyn Vfs, options: &JournalOptions) -> Result<RecoveryReport> {
    let started = Instant::now();
    let mut report = RecoveryReport::default();
    // Verify decodes every payload too: a frame whose checksum holds but whose record
    // cannot be read (written from corrupted memory, say) is damage all the same.
    scan_store(
        dir,
        vfs,
        options,
        Access::ReadOnly,
        None,
        &mut report,
        |frame| frame.record().map(drop),
    )?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Creates a segment file that is visible only once it is valid: header written and
/// synced and space allocated under a temporary name, then renamed, then the directory
/// synced.
fn create_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    id: SegmentId,
    base: Lsn,
    capacity: u64,
) -> Result<ActiveSegment> {
    let path = dir.join(segment_file_name(base));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", segment_file_name(base)));
    let header =
        SegmentHeader::new(id, base).map_err(|e| Error::io("draw segment salt", &path, e))?;
    let file = publish_file(vfs, dir, &tmp, &path, |file| {
        file.allocate(capacity)
            .map_err(|e| Error::io("preallocate segment", &tmp, e))?;
        file.write_all_at(&header.encode(), 0)
            .map_err(|e| Error::io("write segment header", &tmp, e))
    })?;
    // Without a map (a layer that has none, or one that could not be made), reads of
    // the active segment use positioned reads instead: slower, never wrong.
    let view = file.map_live().unwrap_or(None);
    debug_assert!(view.as_ref().is_none_or(|v| v.len() as u64 >= capacity));
    Ok(ActiveSegment {
        path,
        ctx: header.frame_context(),
        header,
        file,
        written_offset: SEGMENT_HEADER_BYTES,
        writeback_offset: SEGMENT_HEADER_BYTES,
        pending: Vec::with_capacity(WRITE_CHUNK_BYTES),
        capacity,
        view,
    })
}

/// Runs the sealed-segment hook, if one is registered, for a segment just sealed.
fn announce_sealed(hook: Option<&SealHook>, segment: &SealedSegment) {
    if let Some(SealHook(hook)) = hook {
        hook(&SealedSegmentInfo::of(
            segment.path.clone(),
            segment.header.segment_id,
            segment.header.base_lsn,
            segment.end_lsn(),
            &segment.view,
        ));
    }
}

/// The index of the oldest of the segments (of these sizes, oldest first) that open
/// warms: the newest ones, at most `WARM_SEGMENTS_MAX` of them and `WARM_BYTES_MAX`.
fn first_to_warm(sizes: impl DoubleEndedIterator<Item = u64> + ExactSizeIterator) -> usize {
    let n = sizes.len();
    let mut bytes = 0u64;
    let n_warmed = sizes
        .rev()
        .take(WARM_SEGMENTS_MAX)
        .take_while(|&len| {
            bytes += len;
            bytes <= WARM_BYTES_MAX
        })
        .count();
    n - n_warmed
}

/// The warmth of a segment found at open, when it is to be warmed and is mapped (a
/// copy in memory has nothing to fault in).
fn warmth_for(file: Box<dyn VfsFile>, view: &ReadView, warm: bool) -> Option<Warmth> {
    (warm && matches!(view, ReadView::Mapped(_))).then(|| Warmth::new(file, view.len() as u64))
}

/// Truncates a fully written active segment to its frames, syncs it and maps it.
fn seal(active: ActiveSegment) -> Result<SealedSegment> {
    debug_assert!(active.pending.is_empty(), "seal follows a sync");
    // No map of the file may outlive the cut below.
    drop(active.view);
    let path = active.path;
    let end = active.written_offset;
    active
        .file
        .set_len(end)
        .map_err(|e| Error::io("seal segment", &path, e))?;
    active
        .file
        .sync_all()
        .map_err(|e| Error::io("sync segment", &path, e))?;
    let view = active
        .file
        .map_readonly()
        .map_err(|e| Error::io("map segment", &path, e))?;
    #[allow(clippy::single_range_in_vec_init)] // one extent, not a range of values
    let extents = if end > SEGMENT_HEADER_BYTES {
        std::iter::once(SEGMENT_HEADER_BYTES..end).collect()
    } else {
        Vec::new()
    };
    Ok(SealedSegment {
        path,
        ctx: active.ctx,
        header: active.header,
        view,
        extents,
        sparse: None,
        scanned: true,
        warmth: None,
    })
}

/// Prefetches the two cache lines from `offset` in `bytes` (a frame header and what
/// follows it), if `offset` is inside them.
#[inline]
fn prefetch_at(bytes: &[u8], offset: u64) {
    const LINE: usize = 64;
    let Ok(offset) = usize::try_from(offset) else {
        return;
    };
    for at in [offset, offset.saturating_add(LINE)] {
        if let Some(byte) = bytes.get(at) {
            crate::hint::prefetch(byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_warms_the_newest_segments_within_both_bounds() {
        let gib = 1u64 << 30;
        assert_eq!(first_to_warm([gib, gib, gib].into_iter()), 0);
        assert_eq!(first_to_warm(std::iter::empty()), 0);
        let many = vec![16 << 20; WARM_SEGMENTS_MAX + 10];
        assert_eq!(first_to_warm(many.into_iter()), 10);
        let n_fit = (WARM_BYTES_MAX / gib) as usize;
        let big = vec![gib; n_fit + 3];
        assert_eq!(first_to_warm(big.into_iter()), 3);
    }

    #[test]
    fn a_prefetch_outside_the_bytes_is_ignored() {
        let bytes = [0u8; 100];
        for offset in [0, 36, 99, 100, 4096, u64::MAX - 10, u64::MAX] {
            prefetch_at(&bytes, offset);
        }
        prefetch_at(&[], 0);
    }

    #[test]
    fn segment_names_sort_by_lsn_and_parse_back() {
        assert_eq!(segment_file_name(Lsn(4096)), "00000000000000004096.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000004096.seg"),
            Some(Lsn(4096))
        );
        assert_eq!(parse_segment_file_name("4096.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000409x.seg"), None);
        assert!(segment_file_name(Lsn(999)) < segment_file_name(Lsn(1000)));
    }
}
