//! The compaction worker: carries out what the policy chooses, on demand or on its own
//! thread, and applies retention. See the module docs of `compaction` for the pass.
//!
//! # Invariants
//! - The log lock is taken for the snapshot and for each swap only.
//! - The horizon is durable before the first removal of a pass.
//! - The thread is stopped and joined before the journal closes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::horizon::write_horizon;
use super::policy::{self, Action, SegmentStats};
use super::{CompactionReport, RetentionReport};
use crate::codec::{Frame, Lsn, RecordKind, SegmentId};
use crate::config::Retention;
use crate::error::{Error, Result};
use crate::limits::{
    COMPACTION_BATCH_BYTES_MAX, COMPACTION_BATCH_SEGMENTS_MAX, COMPACTION_PASSES_MAX,
    COMPACTION_SYNC_THREADS_MAX,
};
use crate::log::{Shared, lock_unpoisoned};
use crate::model::Timestamp;
use crate::segment::SealedSegment;
use crate::segment::sparse::{Rewritten, write_sparse};
use crate::vfs::Vfs;

/// The run id of a `RunStarted` payload, borrowed; other fields are skipped.
#[derive(Deserialize)]
struct StartedId<'a> {
    id: &'a str,
}

/// The run id of a `RunFinished` or `EventAppended` payload, borrowed.
#[derive(Deserialize)]
struct OfRun<'a> {
    run_id: &'a str,
}

/// The run id in the payload of a run start (`id`), finish or event (`run_id`), or
/// `None` if it does not decode. The encoder writes that field first, so it is read
/// alone, without decoding the rest; any other layout is decoded in full.
fn run_id_of(kind: RecordKind, payload: &[u8]) -> Option<&str> {
    let key = match kind {
        RecordKind::RunStarted => "id",
        _ => "run_id",
    };
    let first_field = || {
        let mut rest = payload;
        rmp::decode::read_map_len(&mut rest).ok()?;
        let (name, rest) = rmp::decode::read_str_from_slice(rest).ok()?;
        (name == key).then_some(())?;
        rmp::decode::read_str_from_slice(rest)
            .ok()
            .map(|(id, _)| id)
    };
    first_field().or_else(|| match kind {
        RecordKind::RunStarted => rmp_serde::from_slice::<StartedId<'_>>(payload)
            .ok()
            .map(|s| s.id),
        _ => rmp_serde::from_slice::<OfRun<'_>>(payload)
            .ok()
            .map(|of| of.run_id),
    })
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

/// What one compaction pass leaves for the next (`Shared::pass`, held for a whole pass).
#[derive(Debug, Default)]
pub(crate) struct PassState {
    /// A pass renamed or removed segments and stopped before the directory sync that
    /// makes them durable. The next pass syncs the directory before its own removals:
    /// it may have chosen them (a run start) because of those.
    dir_unsynced: bool,
}

/// The kept / removable split of one segment's frames.
struct Plan {
    segment: Arc<SealedSegment>,
    stats: SegmentStats,
    /// LSNs of the frames to keep, sorted: a rewrite reads only these.
    kept: Vec<Lsn>,
}

/// Where the dead records of one run id, other than its starts, lie.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum DeadAt {
    /// All in the sealed segment with this base LSN.
    One(Lsn),
    /// In more than one sealed segment.
    Several,
}

fn run_pass(shared: &Shared) -> Result<PassReport> {
    let mut pass_state = lock_unpoisoned(&shared.pass);
    let mut report = PassReport::default();

    // 1. Snapshot, under the lock.
    let started = Instant::now();
    let (segments, mut live, pin_all_starts, snapshot_lsn, payload_max) = {
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
        let mut live = Vec::new();
        state.index.live_lsns_below(active_base, &mut live);
        let pin_all_starts = last_purge.is_some_and(|t| t >= active_base);
        (segments, live, pin_all_starts, snapshot_lsn, payload_max)
    };
    report.lock_held += started.elapsed();
    live.sort_unstable();
    report.bytes_before = segments.iter().map(|s| s.len_bytes()).sum();

    // 2. Classify, without the lock, in one walk: live frames are kept and dead ones
    // removable, but a dead start only once the walk has found where the other dead
    // records of its run lie. Run ids are borrowed from the mapped segments.
    let is_live = |frame: &Frame<'_>| {
        matches!(frame.kind, RecordKind::Purge | RecordKind::DropReport)
            || live.binary_search(&frame.lsn.0).is_ok()
    };
    let mut dead_at: HashMap<&str, DeadAt> = HashMap::new();
    let mut plans = Vec::with_capacity(segments.len());
    let mut dead_starts = Vec::new();
    let newest = segments.last().map(|s| s.base_lsn());
    for segment in &segments {
        let here = DeadAt::One(segment.base_lsn());
        let mut stats = SegmentStats {
            base: segment.base_lsn(),
            len_bytes: segment.len_bytes(),
            newest: Some(segment.base_lsn()) == newest,
            ..SegmentStats::default()
        };
        let mut kept = Vec::new();
        segment.for_each_frame(Lsn(0), payload_max, |frame| {
            if is_live(&frame) {
                stats.n_kept_frames += 1;
                stats.kept_bytes += frame.len_bytes();
                kept.push(frame.lsn);
                return Ok(());
            }
            match frame.kind {
                // Decided below; an undecodable start is kept.
                RecordKind::RunStarted => {
                    match run_id_of(frame.kind, frame.payload) {
                        Some(id) if !pin_all_starts => {
                            dead_starts.push((plans.len(), frame, id));
                        }
                        _ => {
                            stats.n_kept_frames += 1;
                            stats.kept_bytes += frame.len_bytes();
                            kept.push(frame.lsn);
                        }
                    }
                    return Ok(());
                }
                RecordKind::EventAppended | RecordKind::RunFinished => {
                    // An undecodable record is skipped by every replay: it pins nothing.
                    if let Some(run_id) = run_id_of(frame.kind, frame.payload) {
                        dead_at
                            .entry(run_id)
                            .and_modify(|at| {
                                if *at != here {
                                    *at = DeadAt::Several;
                                }
                            })
                            .or_insert(here);
                    }
                }
                _ => {}
            }
            stats.n_removable_frames += 1;
            stats.removable_bytes += frame.len_bytes();
            Ok(())
        })?;
        plans.push(Plan {
            segment: segment.clone(),
            stats,
            kept,
        });
    }
    for (plan_idx, frame, id) in dead_starts {
        let plan = &mut plans[plan_idx];
        let here = DeadAt::One(plan.segment.base_lsn());
        if dead_at.get(id).is_none_or(|&at| at == here) {
            plan.stats.n_removable_frames += 1;
            plan.stats.removable_bytes += frame.len_bytes();
        } else {
            plan.stats.n_kept_frames += 1;
            plan.stats.kept_bytes += frame.len_bytes();
            plan.kept.push(frame.lsn);
        }
    }
    for plan in &mut plans {
        plan.kept.sort_unstable();
        report.live_bytes += plan.stats.kept_bytes;
    }
    drop(live);

    // 3. Choose.
    let all_stats: Vec<SegmentStats> = plans.iter().map(|p| p.stats.clone()).collect();
    let by_base: HashMap<Lsn, Action> = policy::choose(&all_stats, &shared.policy)
        .into_iter()
        .map(|c| (c.base, c.action))
        .collect();
    let mut chosen = Vec::with_capacity(by_base.len());
    for plan in &plans {
        match by_base.get(&plan.segment.base_lsn()) {
            Some(&action) => chosen.push((plan, action)),
            None => report.bytes_after += plan.segment.len_bytes(),
        }
    }
    if chosen.is_empty() {
        return Ok(report);
    }

    // 4. Durable before the first removal: the horizon, and what an earlier pass that
    // stopped early renamed or removed.
    if pass_state.dir_unsynced {
        sync_dir(shared)?;
        pass_state.dir_unsynced = false;
    }
    let current = shared.lock().horizon;
    if current < snapshot_lsn {
        write_horizon(&*shared.vfs, &shared.dir, snapshot_lsn)?;
        shared.lock().horizon = snapshot_lsn;
    }

    // 5. Carry out, oldest first, a batch at a time.
    for batch in batches(&chosen, |(plan, _)| plan.stats.kept_bytes) {
        carry_out(shared, &mut pass_state, payload_max, batch, &mut report)?;
    }
    Shared::checkpoint_due(&mut shared.lock());
    Ok(report)
}

/// Splits the choices, in order, into batches of at most `COMPACTION_BATCH_SEGMENTS_MAX`
/// segments whose kept bytes add up to at most `COMPACTION_BATCH_BYTES_MAX` (a single
/// segment keeping more is a batch of its own): the bound on the temporary files and
/// the disk space a batch holds before its renames.
fn batches<T>(chosen: &[T], kept_bytes: impl Fn(&T) -> u64) -> impl Iterator<Item = &[T]> {
    let mut rest = chosen;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut total = 0;
        let n = rest
            .iter()
            .take(COMPACTION_BATCH_SEGMENTS_MAX)
            .take_while(|choice| {
                total += kept_bytes(choice);
                total <= COMPACTION_BATCH_BYTES_MAX
            })
            .count()
            .max(1);
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        Some(batch)
    })
}

/// Rewrites written under their temporary names and not installed yet. Whatever is
/// left when the batch stops early has its temporary removed (best effort: open
/// removes leftovers too).
struct Unpublished<'v> {
    vfs: &'v dyn Vfs,
    rewrites: VecDeque<Rewritten>,
}

impl Drop for Unpublished<'_> {
    fn drop(&mut self) {
        for rewritten in self.rewrites.drain(..) {
            let _ = self.vfs.remove_file(&rewritten.tmp);
        }
    }
}

/// Writes the rewrites, in order, under their temporary names, and syncs each on a
/// thread of its own while the next ones are written (at most
/// `COMPACTION_SYNC_THREADS_MAX` syncs at once): the copying overlaps the device's
/// work, and the file system may commit several syncs together. Each rewrite reads only
/// its kept frames, each verified as it is read, so a damaged frame is never given a
/// fresh checksum. Every file written ends in `unpublished`, synced or not, in order.
fn write_and_sync(
    vfs: &dyn Vfs,
    payload_max: usize,
    rewrites: &[&Plan],
    ids: Vec<SegmentId>,
    unpublished: &mut Unpublished<'_>,
) -> Result<()> {
    type Syncing<'s> = std::thread::ScopedJoinHandle<'s, (Rewritten, Result<()>)>;
    std::thread::scope(|scope| {
        let mut syncing: VecDeque<Syncing<'_>> = VecDeque::new();
        let mut result = Ok(());
        let mut join_oldest = |syncing: &mut VecDeque<Syncing<'_>>, result: &mut Result<()>| {
            let handle = syncing.pop_front().expect("a sync to join");
            let (rewritten, synced) = handle.join().expect("a segment sync does not panic");
            unpublished.rewrites.push_back(rewritten);
            if result.is_ok() {
                *result = synced;
            }
        };
        for (plan, id) in rewrites.iter().zip(ids) {
            if syncing.len() == COMPACTION_SYNC_THREADS_MAX {
                join_oldest(&mut syncing, &mut result);
            }
            if result.is_err() {
                break;
            }
            let segment = &plan.segment;
            let kept = plan
                .kept
                .iter()
                .map(|&lsn| segment.read_frame(lsn, payload_max).map(|(frame, _)| frame))
                .collect::<Result<Vec<_>>>()
                .and_then(|kept| {
                    write_sparse(
                        vfs,
                        &segment.path,
                        id,
                        segment.base_lsn(),
                        segment.end_lsn(),
                        kept.into_iter(),
                    )
                });
            match kept {
                Ok(mut rewritten) => syncing.push_back(scope.spawn(move || {
                    let synced = rewritten.sync();
                    (rewritten, synced)
                })),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        while !syncing.is_empty() {
            join_oldest(&mut syncing, &mut result);
        }
        result
    })
}

/// Carries out one batch. Without the lock, every rewrite is written under its
/// temporary name and synced. Then, the lock held for one segment at a time, each
/// rewrite is renamed over its segment and each segment that keeps nothing is removed.
/// Then the directory is synced once, without the lock.
///
/// Every segment changes by one directory operation, and a dead run start goes only in
/// the same file as the rest of its run's dead records (see the module docs), so a
/// crash that keeps any subset of the batch's renames and removals leaves each segment
/// old or new and a log that replays without purged data.
fn carry_out(
    shared: &Shared,
    pass_state: &mut PassState,
    payload_max: usize,
    batch: &[(&Plan, Action)],
    report: &mut PassReport,
) -> Result<()> {
    let started = Instant::now();
    let vfs = &*shared.vfs;
    let rewrites: Vec<&Plan> = batch
        .iter()
        .filter(|(_, action)| *action == Action::Rewrite)
        .map(|(plan, _)| *plan)
        .collect();
    let ids: Vec<SegmentId> = {
        let mut state = shared.lock();
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        rewrites
            .iter()
            .map(|_| journal.reserve_segment_id())
            .collect()
    };
    let mut unpublished = Unpublished {
        vfs,
        rewrites: VecDeque::with_capacity(rewrites.len()),
    };
    write_and_sync(vfs, payload_max, &rewrites, ids, &mut unpublished)?;
    pass_state.dir_unsynced = true;
    for (plan, action) in batch {
        let segment = &plan.segment;
        let locked = Instant::now();
        let mut state = shared.lock();
        let journal = state.journal.as_mut().ok_or(Error::Closed)?;
        match action {
            Action::Delete => {
                journal.remove_sealed(segment)?;
                report.n_deleted += 1;
            }
            Action::Rewrite => {
                let rewritten = unpublished
                    .rewrites
                    .pop_front()
                    .expect("one rewrite written per rewrite chosen");
                let len_bytes = rewritten.len_bytes;
                journal.install_rewrite(segment, rewritten)?;
                report.bytes_copied += len_bytes;
                report.bytes_after += len_bytes;
                report.n_rewritten += 1;
            }
        }
        drop(state);
        report.lock_held += locked.elapsed();
        report.n_frames_removed += plan.stats.n_removable_frames;
    }
    sync_dir(shared)?;
    pass_state.dir_unsynced = false;
    report.copy_elapsed += started.elapsed();
    Ok(())
}

fn sync_dir(shared: &Shared) -> Result<()> {
    shared
        .vfs
        .sync_dir(&shared.dir)
        .map_err(|e| Error::io("sync store directory", &shared.dir, e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Record;
    use crate::model::{Run, RunEvent};

    #[test]
    fn batches_keep_the_order_and_stay_within_their_bounds() {
        let max = COMPACTION_BATCH_BYTES_MAX;
        let kept = [max / 2, max / 2, 1, max * 2, 0, 7];
        let lens: Vec<usize> = batches(&kept, |&k| k).map(<[u64]>::len).collect();
        // A segment keeping more than the bound is a batch of its own.
        assert_eq!(lens, vec![2, 1, 1, 2]);
        let many = vec![0u64; COMPACTION_BATCH_SEGMENTS_MAX * 2 + 1];
        let lens: Vec<usize> = batches(&many, |&k| k).map(<[u64]>::len).collect();
        assert_eq!(
            lens,
            vec![
                COMPACTION_BATCH_SEGMENTS_MAX,
                COMPACTION_BATCH_SEGMENTS_MAX,
                1
            ]
        );
        assert_eq!(batches(&[] as &[u64], |&k| k).count(), 0);
    }

    #[test]
    fn the_run_id_is_read_from_the_first_field_or_from_a_full_decode() {
        let encode = |record: &Record| {
            let mut out = Vec::new();
            record.encode_payload(&mut out).unwrap();
            out
        };
        let start = encode(&Record::RunStarted(Run {
            id: "run-7".into(),
            ..Run::default()
        }));
        assert_eq!(run_id_of(RecordKind::RunStarted, &start), Some("run-7"));
        let event = encode(&Record::EventAppended(RunEvent {
            run_id: "run-8".into(),
            ..RunEvent::default()
        }));
        assert_eq!(run_id_of(RecordKind::EventAppended, &event), Some("run-8"));

        // Another field order is decoded in full; what does not decode names no run.
        #[derive(serde::Serialize)]
        struct Reordered {
            sequence: u64,
            run_id: String,
        }
        let reordered = rmp_serde::to_vec_named(&Reordered {
            sequence: 3,
            run_id: "run-9".into(),
        })
        .unwrap();
        assert_eq!(
            run_id_of(RecordKind::EventAppended, &reordered),
            Some("run-9")
        );
        assert_eq!(run_id_of(RecordKind::RunStarted, &event), None);
        assert_eq!(run_id_of(RecordKind::EventAppended, &[0xc1]), None);
    }
}
