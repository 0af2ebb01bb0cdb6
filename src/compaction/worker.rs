//! The compaction worker: carries out what the policy chooses, on demand or on its own
//! thread, and applies retention. See the module docs of `compaction` for the pass.
//!
//! # Invariants
//! - The log lock is taken for the snapshot and for each swap only.
//! - The horizon is durable before the first removal of a pass.
//! - The thread is stopped and joined before the journal closes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::horizon::write_horizon;
use super::policy::{self, Action, SegmentStats};
use super::{CompactionReport, RetentionReport};
use crate::codec::{Frame, Lsn, RecordKind};
use crate::config::Retention;
use crate::error::{Error, Result};
use crate::limits::COMPACTION_PASSES_MAX;
use crate::log::{Shared, lock_unpoisoned};
use crate::model::Timestamp;
use crate::segment::SealedSegment;
use crate::segment::sparse::write_sparse;

/// The run id of a `RunStarted` payload; other fields are skipped.
#[derive(Deserialize)]
struct StartedId {
    id: String,
}

/// The run id of a `RunFinished` or `EventAppended` payload.
#[derive(Deserialize)]
struct OfRun {
    run_id: String,
}

/// What one pass did.
#[derive(Debug, Default)]
struct PassReport {
    n_deleted: usize,
    n_rewritten: usize,
    n_frames_removed: u64,
    bytes_before: u64,
    bytes_after: u64,
    live_bytes: u64,
    bytes_copied: u64,
    copy_elapsed: Duration,
    lock_held: Duration,
}

/// Runs passes until one removes nothing, at most `COMPACTION_PASSES_MAX`.
pub(crate) fn compact(shared: &Shared) -> Result<CompactionReport> {
    let mut report = CompactionReport::default();
    for n in 0..COMPACTION_PASSES_MAX {
        let pass = run_pass(shared)?;
        if n == 0 {
            report.bytes_before = pass.bytes_before;
        }
        report.n_passes += 1;
        report.n_segments_deleted += pass.n_deleted;
        report.n_segments_rewritten += pass.n_rewritten;
        report.n_frames_removed += pass.n_frames_removed;
        report.bytes_copied += pass.bytes_copied;
        report.copy_elapsed += pass.copy_elapsed;
        report.lock_held += pass.lock_held;
        report.live_bytes = pass.live_bytes;
        report.bytes_after = pass.bytes_after;
        if pass.n_frames_removed == 0 {
            break;
        }
    }
    Ok(report)
}

/// The kept / removable split of one segment's frames.
struct Plan {
    segment: Arc<SealedSegment>,
    stats: SegmentStats,
    /// LSNs of the frames to drop, sorted.
    removable: Vec<u64>,
}

fn run_pass(shared: &Shared) -> Result<PassReport> {
    let _one_pass = lock_unpoisoned(&shared.pass);
    let mut report = PassReport::default();

    // 1. Snapshot, under the lock.
    let started = Instant::now();
    let (segments, mut live, pin_all_starts, snapshot_lsn, payload_max, vfs) = {
        let mut state = shared.lock();
        let last_purge = state.last_purge_lsn;
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        if journal.poisoned().is_none() && last_purge.is_some_and(|t| t >= journal.active_base()) {
            journal.seal_active()?;
        }
        let active_base = journal.active_base();
        let segments: Vec<Arc<SealedSegment>> = journal.sealed_segments().cloned().collect();
        let snapshot_lsn = journal.next_lsn();
        let payload_max = journal.record_bytes_max();
        let vfs = journal.vfs().clone();
        let mut live = Vec::new();
        state.index.live_lsns_below(active_base, &mut live);
        let pin_all_starts = last_purge.is_some_and(|t| t >= active_base);
        (
            segments,
            live,
            pin_all_starts,
            snapshot_lsn,
            payload_max,
            vfs,
        )
    };
    report.lock_held += started.elapsed();
    live.sort_unstable();
    report.bytes_before = segments.iter().map(|s| s.len_bytes()).sum();

    // 2. Classify, without the lock: which dead starts are still pinned.
    let is_live = |frame: &Frame<'_>| {
        matches!(frame.kind, RecordKind::Purge | RecordKind::DropReport)
            || live.binary_search(&frame.lsn.0).is_ok()
    };
    let mut pinned_ids: HashSet<String> = HashSet::new();
    for segment in &segments {
        segment.for_each_frame(Lsn(0), payload_max, |frame| {
            if is_live(&frame) {
                return Ok(());
            }
            // An undecodable record is skipped by every replay: it pins nothing.
            if matches!(
                frame.kind,
                RecordKind::EventAppended | RecordKind::RunFinished
            ) {
                if let Ok(of) = rmp_serde::from_slice::<OfRun>(frame.payload) {
                    pinned_ids.insert(of.run_id);
                }
            }
            Ok(())
        })?;
    }
    let mut plans = Vec::with_capacity(segments.len());
    let newest = segments.last().map(|s| s.base_lsn());
    for segment in &segments {
        let mut stats = SegmentStats {
            base: segment.base_lsn(),
            len_bytes: segment.len_bytes(),
            newest: Some(segment.base_lsn()) == newest,
            ..SegmentStats::default()
        };
        let mut removable = Vec::new();
        segment.for_each_frame(Lsn(0), payload_max, |frame| {
            let remove = !is_live(&frame)
                && (frame.kind != RecordKind::RunStarted
                    || (!pin_all_starts
                        && rmp_serde::from_slice::<StartedId>(frame.payload)
                            .is_ok_and(|s| !pinned_ids.contains(&s.id))));
            if remove {
                stats.n_removable_frames += 1;
                stats.removable_bytes += frame.len_bytes();
                removable.push(frame.lsn.0);
            } else {
                stats.n_kept_frames += 1;
                stats.kept_bytes += frame.len_bytes();
            }
            Ok(())
        })?;
        report.live_bytes += stats.kept_bytes;
        plans.push(Plan {
            segment: segment.clone(),
            stats,
            removable,
        });
    }
    drop(live);

    // 3. Choose.
    let all_stats: Vec<SegmentStats> = plans.iter().map(|p| p.stats.clone()).collect();
    let choices = policy::choose(&all_stats, &shared.policy);
    let mut by_base: HashMap<Lsn, Action> = choices.iter().map(|c| (c.base, c.action)).collect();

    // 4. Carry out, oldest first; the horizon first.
    let mut horizon_written = false;
    for plan in &plans {
        let Some(action) = by_base.remove(&plan.segment.base_lsn()) else {
            report.bytes_after += plan.segment.len_bytes();
            continue;
        };
        if !horizon_written {
            let current = shared.lock().horizon;
            if current < snapshot_lsn {
                write_horizon(&*vfs, &shared.dir, snapshot_lsn)?;
                shared.lock().horizon = snapshot_lsn;
            }
            horizon_written = true;
        }
        let segment = &plan.segment;
        match action {
            Action::Delete => {
                let started = Instant::now();
                let mut state = shared.lock();
                state
                    .journal
                    .as_mut()
                    .ok_or(Error::Closed)?
                    .remove_sealed(segment)?;
                report.lock_held += started.elapsed();
                report.n_deleted += 1;
            }
            Action::Rewrite => {
                let id = {
                    let mut state = shared.lock();
                    state
                        .journal
                        .as_mut()
                        .ok_or(Error::Closed)?
                        .reserve_segment_id()
                };
                let copy_started = Instant::now();
                let mut kept = Vec::with_capacity(plan.stats.n_kept_frames as usize);
                segment.for_each_frame(Lsn(0), payload_max, |frame| {
                    if plan.removable.binary_search(&frame.lsn.0).is_err() {
                        kept.push(frame);
                    }
                    Ok(())
                })?;
                let rewritten = write_sparse(
                    &*vfs,
                    &segment.path,
                    id,
                    segment.base_lsn(),
                    segment.end_lsn(),
                    kept.into_iter(),
                )?;
                report.copy_elapsed += copy_started.elapsed();
                report.bytes_copied += rewritten.len_bytes;
                report.bytes_after += rewritten.len_bytes;
                let started = Instant::now();
                let mut state = shared.lock();
                match state.journal.as_mut() {
                    Some(journal) => journal.install_rewrite(segment, rewritten)?,
                    None => {
                        let _ = vfs.remove_file(&rewritten.tmp);
                        return Err(Error::Closed);
                    }
                }
                report.lock_held += started.elapsed();
                report.n_rewritten += 1;
            }
        }
        report.n_frames_removed += plan.stats.n_removable_frames;
    }
    if report.n_frames_removed > 0 {
        Shared::checkpoint_due(&mut shared.lock());
    }
    Ok(report)
}

/// Applies `retention` as of `now`: purges by age, then by size, then compacts.
pub(crate) fn apply_retention(
    shared: &Shared,
    retention: &Retention,
    now: Timestamp,
) -> Result<RetentionReport> {
    let mut report = RetentionReport::default();
    if let Some(max_age) = retention.max_age {
        let age = i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX);
        let cutoff = Timestamp::from_unix_nanos(now.unix_nanos().saturating_sub(age));
        report.n_runs_purged += shared.purge(&mut shared.lock(), cutoff)?;
    }
    report.compaction = compact(shared)?;
    if let Some(max_bytes) = retention.max_total_bytes {
        let purged = purge_to_size(shared, max_bytes, report.compaction.live_bytes)?;
        if purged > 0 {
            report.n_runs_purged += purged;
            report.compaction = compact(shared)?;
        }
    }
    Ok(report)
}

/// Purges the oldest runs until the live records are estimated to fit in `max_bytes`.
///
/// The live bytes are the kept frames of the sealed segments (from the last pass) plus
/// the frames of the active segment; a run's size is the sum of its frames' sizes.
fn purge_to_size(shared: &Shared, max_bytes: u64, sealed_live_bytes: u64) -> Result<u64> {
    let mut state = shared.lock();
    let journal = state.journal.as_ref().ok_or(Error::Closed)?;
    let live = sealed_live_bytes + (journal.next_lsn().0 - journal.active_base().0);
    let Some(mut excess) = live.checked_sub(max_bytes).filter(|&e| e > 0) else {
        return Ok(0);
    };
    let mut cutoff = None;
    for (started_at, lsns) in state.index.runs_oldest_first() {
        if excess == 0 {
            cutoff = Some(started_at);
            break;
        }
        for lsn in lsns {
            let len = journal.with_frame(lsn, |frame, _, _| Ok(frame.len_bytes()))?;
            excess = excess.saturating_sub(len);
        }
        cutoff = Some(Timestamp::from_unix_nanos(
            started_at.unix_nanos().saturating_add(1),
        ));
    }
    match cutoff {
        Some(cutoff) => shared.purge(&mut state, cutoff),
        None => Ok(0),
    }
}

/// The background thread: retention and compaction every interval.
#[derive(Debug)]
pub(crate) struct Worker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Worker {
    /// Starts the thread.
    pub(crate) fn start(shared: Arc<Shared>, interval: Duration) -> Worker {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("auditlog-compaction".into())
            .spawn(move || {
                let (flag, wake) = &*signal;
                loop {
                    let stopped = lock_unpoisoned(flag);
                    let (stopped, _) = wake
                        .wait_timeout_while(stopped, interval, |stopped| !*stopped)
                        .unwrap_or_else(|e| e.into_inner());
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    let result = apply_retention(&shared, &shared.retention, Timestamp::now());
                    let mut error = lock_unpoisoned(&shared.compaction_error);
                    match result {
                        Ok(_) => *error = None,
                        // A closed log ends the worker; other errors are kept for
                        // `compaction_error` and the next round tries again.
                        Err(Error::Closed) => return,
                        Err(e) => *error = Some(e.to_string()),
                    }
                }
            })
            .expect("spawn the compaction thread");
        Worker { stop, thread }
    }

    /// Stops the thread (after the pass it may be in) and joins it.
    pub(crate) fn stop(self) {
        let (flag, wake) = &*self.stop;
        *lock_unpoisoned(flag) = true;
        wake.notify_all();
        // A panic in the worker has been reported by the panic hook already.
        let _ = self.thread.join();
    }
}
