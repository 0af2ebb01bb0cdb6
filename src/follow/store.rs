//! [`StoreFollower`]: follows a store's segment files from any process, without its lock.
//!
//! Where it sits: beside `segment`, reading what the journal writes. Each
//! [`StoreFollower::poll`] lists the directory and reads on from the last verified
//! position:
//! - the newest segment is the active one: it is read with positioned reads (never
//!   mapped, since the writer truncates it when sealing it) from the position reached,
//!   frame by frame with the codec's `decode_frame`, exactly as recovery reads a last
//!   segment; the first frame that does not verify (the preallocated zeros, or a batch
//!   still being written) ends the poll, and the next poll tries it again;
//! - a segment with a newer one after it is sealed (the journal seals before it creates
//!   the next one), so it is immutable: it is mapped and read on with recovery's own
//!   scans (`scan_segment_from` for a dense segment, skipping damage; `scan_sparse` for
//!   one compaction rewrote), and the follower moves on to the next segment.
//!
//! # Invariants
//! - Never takes the store's lock and never writes: a store in use can be followed.
//! - Only frames that verify are returned, each once, in LSN order: a frame is returned
//!   only if its LSN is at least the end of the last one returned.
//! - A segment removed or rewritten by compaction while it is being read is no error:
//!   an open file or map keeps reading the old file, and a segment gone before it was
//!   opened is passed over (the records it held were dead).
//! - A writer's crash and recovery are no error either: recovery cuts the last segment
//!   only at a frame that does not verify, which the follower has not passed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::{Frame, FrameError, Lsn, Record, decode_frame};
use crate::config::Config;
use crate::error::{CorruptionKind, Error, Result};
use crate::limits::{FOLLOW_READ_WINDOW_BYTES, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use crate::segment::header::SegmentHeader;
use crate::segment::list_segments;
use crate::segment::recovery::{Role, scan_segment_from};
use crate::segment::sparse::scan_sparse;
use crate::vfs::{Vfs, VfsFile};

/// Where a follower starts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FollowStart {
    /// Every record of the store, oldest first.
    Beginning,
    /// Only records written after the first poll.
    End,
    /// Records at or after this LSN.
    At(Lsn),
}

/// The segment the follower is reading.
#[derive(Debug)]
struct Cursor {
    base: Lsn,
    path: PathBuf,
    header: SegmentHeader,
    file: Box<dyn VfsFile>,
    /// File offset just past the last verified frame.
    offset: u64,
    /// A sealed (sparse) segment read to its end: wait for a newer one.
    exhausted: bool,
}

/// A read-only follower of a store directory (see the module docs).
#[derive(Debug)]
pub struct StoreFollower {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    record_bytes_max: usize,
    start: Option<FollowStart>,
    /// Frames below this LSN were returned (or are before the start).
    next_lsn: Lsn,
    cursor: Option<Cursor>,
    buf: Vec<u8>,
    n_unreadable: u64,
}

impl StoreFollower {
    /// A follower of the store `config` names (its directory, storage layer and record
    /// limit); nothing is read until the first poll.
    pub fn new(config: &Config, start: FollowStart) -> Result<StoreFollower> {
        config.validate()?;
        Ok(StoreFollower {
            dir: config.dir.clone(),
            vfs: config.vfs.clone(),
            record_bytes_max: config.record_bytes_max,
            start: Some(start),
            next_lsn: Lsn(0),
            cursor: None,
            buf: Vec::new(),
            n_unreadable: 0,
        })
    }

    /// The LSN the next record returned will have at least.
    pub fn position(&self) -> Lsn {
        self.next_lsn
    }

    /// Frames that verified but whose record could not be decoded; skipped.
    pub fn n_unreadable(&self) -> u64 {
        self.n_unreadable
    }

    /// Reads every record written since the last poll, in LSN order, handing each to
    /// `visit`; returns how many. Never blocks on the writer.
    pub fn poll(&mut self, mut visit: impl FnMut(Lsn, Record)) -> Result<usize> {
        let mut n_visited = 0usize;
        let mut deliver = |lsn: Lsn, record: Record| {
            n_visited += 1;
            visit(lsn, record);
        };
        match self.start.take() {
            Some(FollowStart::End) => {
                self.read_on(&mut |_, _| {})?;
            }
            Some(FollowStart::At(lsn)) => self.next_lsn = lsn,
            Some(FollowStart::Beginning) | None => {}
        }
        self.read_on(&mut deliver)?;
        Ok(n_visited)
    }

    /// Reads from the position reached up to the end of what verifies now.
    fn read_on(&mut self, visit: &mut dyn FnMut(Lsn, Record)) -> Result<()> {
        let bases = list_segments(&*self.vfs, &self.dir)?;
        loop {
            // The segment that holds `next_lsn`: the newest one starting at or before it.
            let idx = bases
                .partition_point(|&b| b <= self.next_lsn)
                .saturating_sub(1);
            let Some(&base) = bases.get(idx) else {
                return Ok(());
            };
            let next_base = bases.get(idx + 1).copied();
            // The active segment is opened again at every poll: a store closed and
            // reopened may have replaced it by a new file with the same base.
            let same = |c: &Cursor| c.base == base && next_base.is_some();
            if self.cursor.as_ref().is_none_or(|c| !same(c)) {
                match self.open(base)? {
                    Some(cursor) => {
                        let known = self.cursor.as_ref().is_some_and(|c| {
                            c.base == base && c.header.segment_id == cursor.header.segment_id
                        });
                        if !known {
                            self.cursor = Some(cursor);
                        }
                    }
                    // Removed since the listing (compaction): the next one follows.
                    None => match next_base {
                        Some(next) => {
                            self.next_lsn = self.next_lsn.max(next);
                            continue;
                        }
                        None => return Ok(()),
                    },
                }
            }
            match next_base {
                None => return self.read_active(visit),
                Some(next) => {
                    self.read_sealed(next, visit)?;
                    self.cursor = None;
                    self.next_lsn = self.next_lsn.max(next);
                }
            }
        }
    }

    /// Opens the segment with base LSN `base`; `None` if it is gone.
    fn open(&self, base: Lsn) -> Result<Option<Cursor>> {
        let path = self.dir.join(crate::segment::segment_file_name(base));
        let file = match self.vfs.open_ro(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open segment", &path, e)),
        };
        let mut bytes = [0u8; SEGMENT_HEADER_BYTES as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| Error::io("read segment header", &path, e))?;
        // A segment is renamed into place only once its header is written and synced,
        // so a header that does not verify is damage, as it is for recovery.
        let header = match SegmentHeader::decode(&bytes) {
            Ok(header) if header.base_lsn == base => header,
            Ok(header) => {
                let why = format!(
                    "header names base LSN {} but the file name {base}",
                    header.base_lsn
                );
                return Err(corrupt(&path, CorruptionKind::BadHeader(why)));
            }
            Err(why) => return Err(corrupt(&path, CorruptionKind::BadHeader(why))),
        };
        Ok(Some(Cursor {
            base,
            path,
            header,
            file,
            offset: SEGMENT_HEADER_BYTES,
            exhausted: false,
        }))
    }

    /// Reads the active segment on from the cursor, up to the first frame that does not
    /// verify.
    fn read_active(&mut self, visit: &mut dyn FnMut(Lsn, Record)) -> Result<()> {
        let cursor = self.cursor.as_mut().expect("a segment is open");
        if cursor.exhausted {
            return Ok(());
        }
        if cursor.header.is_sparse() {
            // The store was closed after a compaction rewrote its newest segment: read
            // it whole; appends go to a new segment, which the next poll finds.
            let next_lsn = &mut self.next_lsn;
            let n_unreadable = &mut self.n_unreadable;
            scan_mapped(cursor, None, self.record_bytes_max, &mut |frame| {
                deliver(frame, next_lsn, n_unreadable, visit)
            })?;
            cursor.exhausted = true;
            return Ok(());
        }
        let ctx = cursor.header.frame_context();
        let frame_bytes_max = FRAME_HEADER_BYTES as usize + self.record_bytes_max;
        // Small while idle (the preallocated zeros are read at every poll), doubled
        // while frames fill it.
        let mut window = FOLLOW_READ_WINDOW_BYTES / 16;
        loop {
            // The file may shrink under us (sealed, or cut by recovery after a crash):
            // a failed read only means "try again at the next poll".
            let Ok(len) = cursor.file.len() else {
                return Ok(());
            };
            let left = len.saturating_sub(cursor.offset);
            let want = left.min(window as u64) as usize;
            if want == 0 {
                return Ok(());
            }
            self.buf.resize(want, 0);
            if cursor
                .file
                .read_exact_at(&mut self.buf, cursor.offset)
                .is_err()
            {
                return Ok(());
            }
            let mut at = 0usize;
            let stop = loop {
                let lsn = lsn_at(&cursor.header, cursor.offset + at as u64);
                match decode_frame(&self.buf[at..], &ctx, lsn, self.record_bytes_max) {
                    Ok(frame) => {
                        at += frame.len_bytes() as usize;
                        deliver(frame, &mut self.next_lsn, &mut self.n_unreadable, visit);
                    }
                    Err(error) => break error,
                }
            };
            cursor.offset += at as u64;
            // The frames end here for now (zeros, or a batch being written) unless the
            // stop is the window's end rather than the file's: a frame cut short by
            // it, or too few bytes left to tell.
            let cut_by_window = (want as u64) < left
                && (stop == FrameError::Truncated || want - at < FRAME_HEADER_BYTES as usize);
            if !cut_by_window {
                return Ok(());
            }
            window = if at == 0 {
                if window >= frame_bytes_max {
                    return Ok(());
                }
                window.max(frame_bytes_max)
            } else {
                (window * 2).min(FOLLOW_READ_WINDOW_BYTES.max(window))
            };
        }
    }

    /// Reads a sealed segment on from the cursor to its end.
    fn read_sealed(&mut self, next_base: Lsn, visit: &mut dyn FnMut(Lsn, Record)) -> Result<()> {
        let cursor = self.cursor.as_mut().expect("a segment is open");
        if cursor.exhausted {
            return Ok(());
        }
        let next_lsn = &mut self.next_lsn;
        let n_unreadable = &mut self.n_unreadable;
        scan_mapped(
            cursor,
            Some(next_base),
            self.record_bytes_max,
            &mut |frame| deliver(frame, next_lsn, n_unreadable, visit),
        )
    }
}

/// Scans an immutable (sealed) segment through a map with recovery's scans: a sparse
/// one whole, a dense one on from the cursor's offset, skipping damaged ranges.
fn scan_mapped(
    cursor: &Cursor,
    next_base: Option<Lsn>,
    record_bytes_max: usize,
    visit: &mut dyn FnMut(Frame<'_>),
) -> Result<()> {
    let view = cursor
        .file
        .map_readonly()
        .map_err(|e| Error::io("map segment", &cursor.path, e))?;
    if cursor.header.is_sparse() {
        scan_sparse(
            &view,
            &cursor.header,
            next_base,
            record_bytes_max,
            |frame, _| visit(frame),
        );
    } else {
        let start = cursor.offset.min(view.len() as u64);
        if start >= SEGMENT_HEADER_BYTES {
            scan_segment_from(
                &view,
                &cursor.header,
                Role::Sealed,
                record_bytes_max,
                start,
                visit,
            );
        }
    }
    Ok(())
}

/// Hands a verified frame's record on if it is new; advances the position past it.
fn deliver(
    frame: Frame<'_>,
    next_lsn: &mut Lsn,
    n_unreadable: &mut u64,
    visit: &mut dyn FnMut(Lsn, Record),
) {
    if frame.lsn < *next_lsn {
        return;
    }
    *next_lsn = Lsn(frame.lsn.0 + frame.len_bytes());
    match frame.record() {
        Ok(record) => visit(frame.lsn, record),
        Err(_) => *n_unreadable += 1,
    }
}

fn lsn_at(header: &SegmentHeader, offset: u64) -> Lsn {
    debug_assert!(offset >= SEGMENT_HEADER_BYTES);
    Lsn(header.base_lsn.0 + (offset - SEGMENT_HEADER_BYTES))
}

fn corrupt(path: &Path, kind: CorruptionKind) -> Error {
    Error::Corrupt {
        segment: path.to_path_buf(),
        offset: 0,
        kind,
    }
}
