//! Compaction and retention: giving back the space of purged records.
//!
//! Where it sits: beside the flow, below the handle. A pure [`policy`] turns segment
//! statistics into a choice; the worker (`worker.rs`) carries it out (on demand through
//! `AuditLog::compact`, or on its own thread every `Config::compaction_interval_ms`,
//! together with the [`Retention`](crate::Retention) policy).
//!
//! # How a pass works
//! 1. **Snapshot** (log lock held briefly). If the newest purge tombstone is in the
//!    active segment, the active segment is sealed first, so everything that purge
//!    killed lies in sealed segments. Then the sealed segments (`Arc`s) are cloned and
//!    the index is asked for every LSN it still refers to below the active segment
//!    (`Index::live_lsns_below`, the one function that knows the index's layout).
//! 2. **Classify** (no lock). Every frame of every sealed segment is *live* if the
//!    index refers to it or it is a purge tombstone or a drop report (kept forever by
//!    kind: tiny, and tombstones are what make a replay from any point drop the purged
//!    runs again). Every other frame is *dead*: a purged run's start, finish and events,
//!    a superseded finish, a record the index refused.
//! 3. **Choose** with [`policy::choose`]: segments keeping nothing are deleted; segments
//!    with at least `removable_share_min` of their bytes removable are rewritten.
//! 4. **Write the horizon** (see below) if anything was chosen; first, if an earlier
//!    pass stopped between its renames and its directory sync, sync the directory.
//! 5. **Carry out**, oldest first, in batches (at most `COMPACTION_BATCH_SEGMENTS_MAX`
//!    segments and about `COMPACTION_BATCH_BYTES_MAX` kept bytes each). Without the
//!    lock, every rewrite of the batch copies the kept frames, each with its ORIGINAL
//!    LSN, into `<name>.compact` under a fresh salt and segment id, with a checksummed
//!    LSN → offset table in a footer; it reads only the kept frames, each verified, and
//!    each file is synced on a thread of its own while the next is written. Then, the
//!    lock held for one segment at a time, each is renamed over `<name>` (the journal's
//!    `Arc` swapped) and each segment keeping nothing is removed. Then the directory is
//!    synced once for the batch, without the lock. A crash at any step leaves, for each
//!    segment of the batch independently, the old file or the new one under the name,
//!    never both and never neither (a leftover `.compact` is removed at open); which
//!    renames and removals of an unsynced batch survive does not matter (see the next
//!    section).
//!
//! Because LSNs are preserved, every LSN the index holds stays valid and the index is
//! never updated by compaction. Records purged between the snapshot and the swap are
//! simply copied, and removed by a later pass.
//!
//! # When a dead run start may go
//! Replaying the log rebuilds the index, and a run's `RunStarted` record shapes how its
//! other records replay: events of that run id written before it (orphans) are adopted
//! by it, events after it attach to it, and the purge tombstone then removes the run
//! with all of them. If the start were removed while some of those events were still on
//! disk (in a segment not rewritten yet, or not yet durable in a pass cut by a crash),
//! a replay would keep them as orphans of a run that no longer exists: purged data would
//! reappear. So a dead `RunStarted` is removable only when every other dead record of
//! that run id (event or finish) left in the log at the snapshot is in the start's own
//! segment, and never while the newest tombstone is in the active segment. Then the
//! start and those records leave together, in the one rename (or removal) of that
//! segment, which a crash keeps whole or not at all. A run whose dead records span
//! segments loses them in one pass and its start in the next, once they are durably
//! gone; `AuditLog::compact` runs passes until one removes nothing.
//!
//! # Why the horizon
//! An index checkpoint is the index at some LSN `c`, and open replays the log from `c`
//! into it. A checkpoint taken before a pass may still hold an orphan event whose
//! adopting start (after `c`) that pass removed; replaying from `c` would then never
//! adopt it. Before its first removal, a pass durably records its snapshot LSN as the
//! *compaction horizon* (`compaction.horizon`); open ignores (and rebuilds instead of)
//! any checkpoint covering less, whether it is the one written before the pass or an old
//! copy put back. A checkpoint taken after the snapshot only refers to records live at
//! the snapshot, so it stays usable, and a close after compaction writes a new one.
//!
//! # Invariants
//! - The active segment is never rewritten or removed; only sealed segments are.
//! - Nothing the index refers to, no tombstone and no drop report is ever removed.
//! - A rewritten segment keeps its file name, base LSN and end LSN; its frames keep
//!   their LSNs. The newest sealed segment is never deleted (its end is where the log
//!   continues at the next open), only rewritten.
//! - The log lock is held for the snapshot and for each swap, never while copying or
//!   syncing: recording does not wait for the copy. Passes never overlap
//!   (`Shared::pass`).
//! - A rewrite is synced before its rename. The directory is synced before a pass
//!   returns, or, if it stopped on an error, before the next pass removes anything: a
//!   pass only builds on removals that are durable.
//! - Calls (SPEC §2.4) are never purged: SPEC §3.13 purges runs and their events only.
//!   A call is dead only if it was never indexed, which the Storage API never writes.
//!
//! # Known limits
//! - A pass walks (and verifies) every frame of every sealed segment, so its cost grows
//!   with the store, not with the garbage; the lock hold of the snapshot grows with the
//!   number of live records (one `u64` copied per record, sorted outside the lock).
//! - A purged run whose records span two segments keeps its start one pass longer, and
//!   with a policy that rewrites for any garbage that second pass copies the start's
//!   segment again to drop it. Removing such a start in the first pass would need the
//!   other segment's rewrite to be durable first: one more directory sync per link of
//!   such a chain of segments.
//! - Records written through raw `AuditLog::append_batch` that the index refused (a
//!   second `RunStarted` for a live run id) replay differently once the record that
//!   caused the refusal is compacted away: the refused start may then be accepted. The
//!   Storage API never writes such records.

mod horizon;
pub mod policy;
mod worker;

pub(crate) use horizon::read_horizon;
pub use policy::{Action, Choice, Policy, SegmentStats};
pub(crate) use worker::{PassState, Worker, apply_retention, compact};

use std::time::Duration;

/// What `AuditLog::compact` (or one background round) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Passes run.
    pub n_passes: usize,
    pub n_segments_deleted: usize,
    pub n_segments_rewritten: usize,
    /// Dead frames removed from the log.
    pub n_frames_removed: u64,
    /// Bytes of the sealed segments before the first pass.
    pub bytes_before: u64,
    /// Bytes of the sealed segments (those present before the first pass) after the last.
    pub bytes_after: u64,
    /// Bytes of the frames kept in the sealed segments, at the last pass's snapshot.
    pub live_bytes: u64,
    /// Bytes written into rewritten segment files.
    pub bytes_copied: u64,
    /// Wall time of carrying out the choices: writing and syncing the rewritten
    /// segments, renaming them in and removing deleted ones, and the directory syncs
    /// that make this durable (not the snapshot, the classification or the horizon).
    pub copy_elapsed: Duration,
    /// Time the log lock was held by the passes, in total.
    pub lock_held: Duration,
}

/// What a retention round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Runs purged by age and by size.
    pub n_runs_purged: u64,
    pub compaction: CompactionReport,
}
