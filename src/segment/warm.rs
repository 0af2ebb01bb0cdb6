//! Warming: the sealed segments a log found at open are faulted into its maps by a
//! thread of their own, and reads of a part not yet faulted in use positioned reads.
//!
//! Where it sits: beside the sealed segments' read path. `Journal::open` gives each
//! mapped sealed segment a [`Warmth`] (its file and a bit per chunk);
//! `Journal::with_frame` asks it whether a frame's bytes are mapped in this process
//! yet; the [`Warmer`] started by `AuditLog::open` faults the chunks in, newest segment
//! first, and sets their bits.
//!
//! Why: the first touch of a page of a fresh map takes a page fault (16 pages mapped
//! per fault), about 4 µs on a virtual machine, where a positioned read of the same few
//! hundred bytes from the page cache takes about 1 µs. Reads just after an open would
//! otherwise pay the fault at random places for as long as the process lives.
//!
//! # Invariants
//! - A chunk's bit is set only after the whole chunk was faulted in (or touched page
//!   by page where the kernel refuses `MADV_POPULATE_READ`). A bit only says which
//!   path is cheaper: both read the same immutable bytes of a sealed file, so a page
//!   the kernel later unmaps only costs a fault again.
//! - A segment is finished (marked all warm, its file closed, read only through its
//!   map from then on) once every chunk is warm, or at once when the warmer gives it
//!   up: one not all in the page cache when its turn comes (`cachestat`, which takes
//!   no lock of the process's maps) is left to be faulted in by the reads, so warming
//!   reads nothing from disk where the kernel can tell.
//! - The warmer holds the segments weakly: a segment compaction replaced or removed is
//!   passed over, and no file or map outlives its segment for longer than one chunk.
//! - The warmer is stopped and joined before the journal closes.
//! - At most `WARM_SEGMENTS_MAX` segments keep their file open for this, and only
//!   until they are warm.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;

use super::SealedSegment;
use crate::limits::WARM_CHUNK_BYTES;
use crate::vfs::{ReadView, VfsFile};

/// A sealed segment's file, for the reads of chunks its map does not hold yet, and a
/// bit per chunk of the map that does.
#[derive(Debug)]
pub struct Warmth {
    /// Taken away (closed) by [`Warmth::finish`].
    file: Mutex<Option<Arc<dyn VfsFile>>>,
    warm: Box<[AtomicU64]>,
    n_chunks: usize,
    /// Set by [`Warmth::finish`]: reads then look at nothing else.
    all_warm: AtomicBool,
}

impl Warmth {
    /// Warmth for a file of `len_bytes` bytes, all of it cold.
    pub fn new(file: Box<dyn VfsFile>, len_bytes: u64) -> Warmth {
        let n_chunks = len_bytes.div_ceil(WARM_CHUNK_BYTES) as usize;
        let warm = (0..n_chunks.div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        Warmth {
            file: Mutex::new(Some(Arc::from(file))),
            warm,
            n_chunks,
            all_warm: AtomicBool::new(false),
        }
    }

    /// The file, for positioned reads; `None` once [`Warmth::finish`] closed it.
    pub fn file(&self) -> Option<Arc<dyn VfsFile>> {
        self.file_slot().clone()
    }

    /// Marks the whole map warm and closes the file: when every chunk was faulted in,
    /// or when the segment was given up on. Reads from then on go through the map.
    pub fn finish(&self) {
        self.all_warm.store(true, Ordering::Relaxed);
        self.file_slot().take();
    }

    fn file_slot(&self) -> MutexGuard<'_, Option<Arc<dyn VfsFile>>> {
        // Nothing is ever left half-done under this lock.
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether every chunk that `bytes` (file offsets) touches is mapped in.
    pub fn is_warm(&self, bytes: Range<u64>) -> bool {
        if bytes.is_empty() || self.is_all_warm() {
            return true;
        }
        let first = (bytes.start / WARM_CHUNK_BYTES) as usize;
        let last = ((bytes.end - 1) / WARM_CHUNK_BYTES) as usize;
        (first..=last.min(self.n_chunks.saturating_sub(1))).all(|chunk| {
            // Relaxed: the bit chooses between two correct reads of immutable bytes.
            self.warm[chunk / 64].load(Ordering::Relaxed) & (1 << (chunk % 64)) != 0
        })
    }

    /// Whether [`Warmth::finish`] was called.
    pub fn is_all_warm(&self) -> bool {
        self.all_warm.load(Ordering::Relaxed)
    }

    /// Marks `chunk` mapped in.
    fn set_warm(&self, chunk: usize) {
        debug_assert!(chunk < self.n_chunks);
        self.warm[chunk / 64].fetch_or(1 << (chunk % 64), Ordering::Relaxed);
    }
}

/// Faults `bytes` of `view` into this process: `MADV_POPULATE_READ` where the kernel
/// has it, else a read of one byte per page.
fn fault_in(view: &ReadView, bytes: Range<usize>) {
    if view.prefault_range(bytes.clone()).is_ok() {
        return;
    }
    let mut sum = 0u8;
    for at in bytes.step_by(4096) {
        sum = sum.wrapping_add(view[at]);
    }
    std::hint::black_box(sum);
}

/// Faults every chunk of `segment` in, in order, unless `stop` is set first, if the
/// whole segment is in the page cache. One that is not is given up on at once: it is
/// read through its map, as without warming. Faulting in what is not cached would read
/// it from disk, and the faults of a query's reads, each reading the pages around it,
/// serve a cold page cache better than reads of a few bytes; while pages are being
/// read in, faulting them in also held up the process's other threads (a `get_run`
/// took 100–230 ms, docs/benchmarks.md).
fn warm_segment(segment: &Weak<SealedSegment>, stop: &AtomicBool) {
    let whole_cached = segment.upgrade().is_some_and(|segment| {
        let file = segment.warmth.as_ref().and_then(Warmth::file);
        file.is_some_and(|file| file.is_cached(0, segment.len_bytes()).unwrap_or(false))
    });
    if !whole_cached {
        give_up(std::slice::from_ref(segment));
        return;
    }
    let mut chunk = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // Held for one chunk at a time, so a segment compaction removes is let go of.
        let Some(segment) = segment.upgrade() else {
            return;
        };
        let Some(warmth) = &segment.warmth else {
            return;
        };
        if chunk >= warmth.n_chunks {
            warmth.finish();
            return;
        }
        let start = chunk as u64 * WARM_CHUNK_BYTES;
        let end = (start + WARM_CHUNK_BYTES).min(segment.len_bytes());
        fault_in(&segment.view, start as usize..end as usize);
        warmth.set_warm(chunk);
        chunk += 1;
    }
}

/// Marks `segments` warm without faulting them in and closes their files: from then
/// on they are read through their maps, a page fault at each first touch.
fn give_up(segments: &[Weak<SealedSegment>]) {
    for segment in segments.iter().filter_map(Weak::upgrade) {
        if let Some(warmth) = &segment.warmth {
            warmth.finish();
        }
    }
}

/// The thread that warms the segments found at open.
#[derive(Debug)]
pub struct Warmer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Warmer {
    /// Starts warming `segments`, in the order given; `None` when there is nothing to
    /// warm, or when the thread cannot be started: the segments are then marked warm
    /// and their files closed, so reads go through the maps and fault as they would
    /// without warming.
    pub fn start(segments: Vec<Weak<SealedSegment>>) -> Option<Warmer> {
        if segments.is_empty() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let to_warm = segments.clone();
        let spawned = std::thread::Builder::new()
            .name("auditlog-warmer".into())
            .spawn(move || {
                for segment in &to_warm {
                    warm_segment(segment, &stopped);
                }
            });
        match spawned {
            Ok(thread) => Some(Warmer { stop, thread }),
            Err(_) => {
                give_up(&segments);
                None
            }
        }
    }

    /// Whether every segment it was given is warm (or gone).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the thread after the chunk it is faulting in, and joins it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // A panic in the warmer left some chunks cold: reads of them stay positioned
        // reads, which is all it changes.
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Lsn, Record};
    use crate::error::Error;
    use crate::limits::FRAME_HEADER_BYTES;
    use crate::model::{Payload, RunEvent, Timestamp};
    use crate::segment::{Journal, JournalOptions};
    use crate::vfs::{FaultPlan, FaultyVfs, OsVfs, SimVfs, Vfs};
    use std::path::Path;
    use std::sync::atomic::Ordering::SeqCst;

    fn warmth(len_bytes: u64) -> Warmth {
        let vfs = SimVfs::new();
        let file = vfs.create_new(Path::new("/w")).unwrap();
        Warmth::new(file, len_bytes)
    }

    #[test]
    fn a_range_is_warm_only_when_every_chunk_it_touches_is() {
        let c = WARM_CHUNK_BYTES;
        let warmth = warmth(3 * c + 10);
        assert_eq!(warmth.n_chunks, 4);
        assert!(!warmth.is_warm(0..1));
        warmth.set_warm(0);
        assert!(warmth.is_warm(0..c));
        assert!(!warmth.is_warm(c - 1..c + 1), "straddles a cold chunk");
        warmth.set_warm(1);
        assert!(warmth.is_warm(c - 1..c + 1));
        assert!(!warmth.is_all_warm());
        assert!(warmth.is_warm(5..5), "an empty range touches nothing");
        warmth.set_warm(3);
        assert!(warmth.is_warm(3 * c..3 * c + 10));
        assert!(!warmth.is_warm(2 * c..3 * c));
        warmth.finish();
        assert!(warmth.is_all_warm());
    }

    #[test]
    fn chunks_past_the_sixty_fourth_have_bits_of_their_own() {
        let warmth = warmth(130 * WARM_CHUNK_BYTES);
        warmth.set_warm(129);
        assert!(warmth.is_warm(129 * WARM_CHUNK_BYTES..130 * WARM_CHUNK_BYTES));
        assert!(!warmth.is_warm(65 * WARM_CHUNK_BYTES..66 * WARM_CHUNK_BYTES));
        assert!(!warmth.is_warm(WARM_CHUNK_BYTES..2 * WARM_CHUNK_BYTES));
    }

    fn options() -> JournalOptions {
        JournalOptions {
            segment_bytes: 2 * WARM_CHUNK_BYTES,
            record_bytes_max: 64 << 10,
            strict: false,
            on_sealed: None,
            warm_at_open: true,
        }
    }

    /// Event `sequence`, whose text is `text_bytes` long.
    fn event(sequence: u64, text_bytes: usize) -> Record {
        let mut payload = Payload::new();
        payload.insert("text".into(), "x".repeat(text_bytes).into());
        Record::EventAppended(RunEvent {
            run_id: "run-a".into(),
            sequence,
            event_type: "step".into(),
            payload,
            created_at: Timestamp::from_unix_millis(1_700_000_000_000),
        })
    }

    /// A closed store in `dir` whose first segment is sealed with frames over both
    /// of its chunks: most shorter than a cold read's first read, some longer, one
    /// across the chunks' border. Its records, their LSNs, and that frame's index.
    fn store(dir: &Path) -> (Vec<Record>, Vec<Lsn>, usize) {
        let (mut journal, _) =
            Journal::open(dir, Arc::new(OsVfs), options(), None, |_| Ok(())).unwrap();
        let mut records = Vec::new();
        let mut lsns = Vec::new();
        for sequence in 1.. {
            let record = event(sequence, [40, 300, 2_000, 9_000][sequence as usize % 4]);
            lsns.push(journal.append(&record).unwrap());
            records.push(record);
            if journal.next_lsn().0 > WARM_CHUNK_BYTES + (200 << 10) {
                break;
            }
        }
        journal.close().unwrap();
        assert_eq!(
            lsns[0],
            Lsn(0),
            "the first segment's frames sit at LSN + header"
        );
        let offset = |lsn: Lsn| lsn.0 + crate::limits::SEGMENT_HEADER_BYTES;
        let across = (0..lsns.len() - 1)
            .find(|&i| offset(lsns[i]) < WARM_CHUNK_BYTES && offset(lsns[i + 1]) > WARM_CHUNK_BYTES)
            .expect("a frame crosses into the second chunk");
        (records, lsns, across)
    }

    /// The store in `dir` opened on a layer whose positioned reads fail when told.
    fn reopen(dir: &Path) -> (Journal, Arc<FaultPlan>) {
        let plan = FaultPlan::new();
        let vfs = Arc::new(FaultyVfs::new(OsVfs, plan.clone()));
        let (journal, _) = Journal::open(dir, vfs, options(), None, |_| Ok(())).unwrap();
        (journal, plan)
    }

    /// A store made by [`store`] and reopened by [`reopen`], every chunk cold.
    fn reopened_store() -> (
        tempfile::TempDir,
        Vec<Record>,
        Vec<Lsn>,
        Journal,
        Arc<FaultPlan>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (records, lsns, _) = store(dir.path());
        let (journal, plan) = reopen(dir.path());
        (dir, records, lsns, journal, plan)
    }

    /// Waits for `warmer` to be done with every segment, then joins it.
    fn finish(warmer: Warmer) {
        while !warmer.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        warmer.stop();
    }

    /// Every record reads back as written.
    fn assert_reads_all(journal: &Journal, records: &[Record], lsns: &[Lsn]) {
        for (i, &lsn) in lsns.iter().enumerate() {
            assert_eq!(journal.read(lsn).unwrap(), records[i], "record {i}");
        }
    }

    fn sealed_warmth(journal: &Journal) -> &Warmth {
        let segment = journal.sealed_segments().next().expect("a sealed segment");
        segment.warmth.as_ref().expect("found at open, so warmed")
    }

    #[test]
    fn cold_frames_are_read_with_positioned_reads_and_warm_ones_through_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let (records, lsns, across) = store(dir.path());
        let (journal, plan) = reopen(dir.path());
        let longest = lsns.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
        assert!(
            longest > super::super::COLD_READ_BYTES as u64,
            "some frames take two reads"
        );
        assert_reads_all(&journal, &records, &lsns);

        // Every chunk cold: each read is a positioned read, so each fails.
        plan.fail_reads.store(true, SeqCst);
        for &lsn in &lsns {
            assert!(matches!(journal.read(lsn), Err(Error::Io { .. })));
        }
        // The first chunk warm: its frames come from the map, the one across the
        // border and those after it still from the file.
        sealed_warmth(&journal).set_warm(0);
        for (i, &lsn) in lsns.iter().enumerate() {
            match journal.read(lsn) {
                Ok(_) => assert!(i < across, "record {i} read through the map"),
                Err(Error::Io { .. }) => assert!(i >= across, "record {i} read from the file"),
                Err(other) => panic!("record {i}: {other}"),
            }
        }
        plan.fail_reads.store(false, SeqCst);
        assert_reads_all(&journal, &records, &lsns);
    }

    #[test]
    fn the_warmer_warms_every_segment_found_at_open_and_reads_then_use_the_map() {
        let (dir, records, lsns, journal, plan) = reopened_store();
        let to_warm = journal.to_warm();
        assert_eq!(to_warm.len(), journal.sealed_segments().count());
        let warmer = Warmer::start(to_warm).expect("something to warm");
        finish(warmer);
        assert!(sealed_warmth(&journal).is_all_warm());
        assert!(sealed_warmth(&journal).file().is_none(), "closed once warm");
        assert!(journal.to_warm().is_empty());
        plan.fail_reads.store(true, SeqCst);
        assert_reads_all(&journal, &records, &lsns);

        journal.close().unwrap();

        // A warmer whose segments are gone stops without touching them.
        let (journal, _) = reopen(dir.path());
        let warmer = Warmer::start(journal.to_warm()).expect("something to warm");
        drop(journal);
        warmer.stop();
    }

    #[test]
    fn a_segment_not_all_in_the_page_cache_is_given_up_on_not_read_from_disk() {
        let (_dir, records, lsns, journal, plan) = reopened_store();
        plan.uncached.store(true, SeqCst);
        let warmer = Warmer::start(journal.to_warm()).expect("something to warm");
        finish(warmer);
        assert!(sealed_warmth(&journal).is_all_warm());
        assert!(sealed_warmth(&journal).file().is_none());
        assert_reads_all(&journal, &records, &lsns);
    }

    #[test]
    fn segments_given_up_on_are_read_through_their_maps() {
        let (_dir, records, lsns, journal, plan) = reopened_store();
        give_up(&journal.to_warm());
        assert!(journal.to_warm().is_empty());
        assert!(sealed_warmth(&journal).file().is_none());
        plan.fail_reads.store(true, SeqCst);
        assert_reads_all(&journal, &records, &lsns);
    }

    #[test]
    fn a_cold_frame_not_in_the_page_cache_is_read_through_the_map() {
        let (_dir, records, lsns, journal, plan) = reopened_store();
        plan.uncached.store(true, SeqCst);
        assert!(!sealed_warmth(&journal).is_all_warm());
        assert_reads_all(&journal, &records, &lsns);
    }

    #[test]
    fn a_read_that_finds_the_file_closed_reads_the_map() {
        let (_dir, records, lsns, journal, plan) = reopened_store();
        // As when the warmer finishes between a read's look at the bits and its read.
        sealed_warmth(&journal).file_slot().take();
        plan.fail_reads.store(true, SeqCst);
        assert_reads_all(&journal, &records, &lsns);
    }

    #[test]
    fn a_damaged_cold_frame_is_refused_naming_its_segment_and_offset() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let (_, lsns, _) = store(dir.path());
        let (journal, _) = reopen(dir.path());
        let segment = journal.sealed_segments().next().unwrap().clone();
        let offset_of =
            |lsn: Lsn| lsn.0 - segment.base_lsn().0 + crate::limits::SEGMENT_HEADER_BYTES;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment.path)
            .unwrap();
        // Damaged after open, so open's scan did not see it: a flipped payload bit, a
        // length past the record limit, and one past the file's end but within it.
        file.write_all_at(b"\xff", offset_of(lsns[3]) + FRAME_HEADER_BYTES + 2)
            .unwrap();
        file.write_all_at(&u32::MAX.to_le_bytes(), offset_of(lsns[5]) + 4)
            .unwrap();
        let near_end = lsns.len() - 2;
        file.write_all_at(&60_000u32.to_le_bytes(), offset_of(lsns[near_end]) + 4)
            .unwrap();
        for i in [3, 5, near_end] {
            match journal.read(lsns[i]) {
                Err(Error::Corrupt {
                    segment: named,
                    offset,
                    ..
                }) => {
                    assert_eq!(named, segment.path, "record {i}");
                    assert_eq!(offset, offset_of(lsns[i]), "record {i}");
                }
                other => panic!("record {i}: a damaged frame was read: {other:?}"),
            }
        }
        assert!(journal.read(lsns[4]).is_ok());
    }
}
