//! How much of the log is live: the bytes of the frames that queries can still return,
//! next to the bytes of every frame and the bytes the files take on disk.
//!
//! Where it sits: beside the Storage API, for operators (`auditlog stats`) and for
//! judging what compaction could reclaim.
//!
//! # Invariants
//! - Live frames are exactly the ones the index answers from: each live run's start
//!   and latest finish, the events the index holds for it, and the call events.
//!   Superseded finishes, purged runs and their events, refused duplicates, purge
//!   tombstones and events of runs never started are not live.
//! - Deliberately slow: it reads every frame (a scan for the log total and a read per
//!   live record) under the log's lock. It is an operator's question, not a hot path.

use crate::codec::{Lsn, Record};
use crate::error::{Error, Result};
use crate::index::{CallSelect, RunSelect};
use crate::log::AuditLog;

/// Bytes of a store, live and otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceUsage {
    /// Frames (header and payload) of every readable record in the log.
    pub log_bytes: u64,
    /// Frames of the records queries can return.
    pub live_bytes: u64,
    /// What the segment files take on disk (the active one at its preallocated size).
    pub disk_bytes: u64,
    pub n_segments: usize,
    pub n_frames: u64,
}

impl AuditLog {
    /// Measures the live and total bytes of the log (reads every frame; see the module
    /// docs).
    pub fn space_usage(&self) -> Result<SpaceUsage> {
        let state = self.lock();
        let journal = state.journal.as_ref().ok_or(Error::Closed)?;
        let index = &state.index;
        let stats = journal.stats();
        let mut usage = SpaceUsage {
            disk_bytes: stats.disk_bytes,
            n_segments: stats.n_segments,
            ..SpaceUsage::default()
        };
        journal.for_each_frame(Lsn(0), |frame| {
            usage.log_bytes += frame.len_bytes();
            usage.n_frames += 1;
            Ok(())
        })?;
        let frame_bytes = |lsn: Lsn| journal.with_frame(lsn, |frame, _, _| Ok(frame.len_bytes()));
        let every_run = RunSelect {
            status: None,
            skill_id: None,
            caller_id: None,
            channel_id: None,
            top_level_only: false,
            exclude_dry_run: false,
            since: None,
            until: None,
        };
        if let Some(resolved) = index.resolve(&every_run) {
            for entry in index.runs_newest_first(&resolved) {
                usage.live_bytes += frame_bytes(entry.started_lsn())?;
                if let Some(lsn) = entry.finished_lsn() {
                    usage.live_bytes += frame_bytes(lsn)?;
                }
                if let Record::RunStarted(run) = journal.read(entry.started_lsn())? {
                    for (_, lsn) in index.events_of(&run.id).iter() {
                        usage.live_bytes += frame_bytes(Lsn(lsn))?;
                    }
                }
            }
        }
        let every_call = CallSelect {
            caller_id: None,
            tool_id: None,
            outcome: None,
            since: None,
            until: None,
        };
        for lsn in index.calls_newest_first(&every_call) {
            usage.live_bytes += frame_bytes(lsn)?;
        }
        debug_assert!(usage.live_bytes <= usage.log_bytes);
        Ok(usage)
    }
}
