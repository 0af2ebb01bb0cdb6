//! [`Storage`] for [`AuditLog`]: validate against the index, append, apply; for reads,
//! ask the index for LSNs and read those records back from the segments.

use std::collections::BTreeMap;

use crate::codec::{Lsn, Record, RunFinished};
use crate::error::{Error, Result};
use crate::index::{CallSelect, Index, RunEntry, RunSelect};
use crate::limits::{PARENT_CHAIN_DEPTH_MAX, QUERY_PAGE_MAX};
use crate::log::AuditLog;
use crate::model::{CallEvent, Run, RunEvent, RunStats, Status, Timestamp};
use crate::query::{CallFilter, RunFilter, Storage, clamp_limit, clamp_offset};
use crate::segment::Journal;

/// Reads a run back into `run`: its `RunStarted` record with its latest finish
/// applied. Records are read into their place in the answer, not moved there.
fn read_run(journal: &Journal, entry: &RunEntry, run: &mut Run) -> Result<()> {
    journal.read_into(entry.started_lsn(), run)?;
    if let Some(lsn) = entry.finished_lsn() {
        journal.read_finish_into(lsn, run)?;
    }
    debug_assert_eq!(run.status, entry.status(), "the index agrees with the log");
    Ok(())
}

/// Starts loading the frames `read_run` will read for `entry` (see
/// [`Journal::prefetch_frame`]).
fn prefetch_run(journal: &Journal, entry: &RunEntry) {
    journal.prefetch_frame(entry.started_lsn());
    if let Some(lsn) = entry.finished_lsn() {
        journal.prefetch_frame(lsn);
    }
}

/// Calls `read` on each of `items` in turn, each time having had `prefetch` start
/// loading what the next one needs: a record read then waits for memory while the
/// one before it is decoded, not after.
fn read_ahead<T>(
    items: impl Iterator<Item = T>,
    prefetch: impl Fn(&T),
    mut read: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let mut items = items.peekable();
    if let Some(first) = items.peek() {
        prefetch(first);
    }
    while let Some(item) = items.next() {
        if let Some(next) = items.peek() {
            prefetch(next);
        }
        read(item)?;
    }
    Ok(())
}

/// Reads back at most `limit` runs.
fn read_runs<'a>(
    journal: &Journal,
    entries: impl Iterator<Item = &'a RunEntry>,
    limit: usize,
) -> Result<Vec<Run>> {
    let most = entries.size_hint().1.map_or(limit, |n| n.min(limit));
    let mut runs = Vec::with_capacity(most);
    read_ahead(
        entries.take(limit),
        |entry| prefetch_run(journal, entry),
        |entry| read_run(journal, entry, push_default(&mut runs)),
    )?;
    Ok(runs)
}

/// Appends a default item to `items` and returns it, for a record to be read into.
fn push_default<T: Default>(items: &mut Vec<T>) -> &mut T {
    items.push(T::default());
    items.last_mut().expect("just pushed")
}

fn journal_of(state: &crate::log::State) -> Result<&Journal> {
    state.journal.as_ref().ok_or(Error::Closed)
}

/// Runs newest first matching `select`, a page at `offset`.
fn list_page(
    journal: &Journal,
    index: &Index,
    select: &RunSelect<'_>,
    offset: usize,
    limit: usize,
) -> Result<Vec<Run>> {
    let Some(resolved) = index.resolve(select) else {
        return Ok(Vec::new());
    };
    read_runs(
        journal,
        index.runs_newest_first(&resolved).skip(offset),
        limit,
    )
}

fn count(index: &Index, select: &RunSelect<'_>) -> u64 {
    index
        .resolve(select)
        .map_or(0, |resolved| index.count_runs(&resolved))
}

fn run_select(filter: &RunFilter) -> RunSelect<'_> {
    RunSelect {
        status: filter.status,
        skill_id: filter.skill_id.as_deref(),
        caller_id: filter.caller_id.as_deref(),
        channel_id: filter.channel_id.as_deref(),
        top_level_only: filter.top_level_only,
        exclude_dry_run: filter.excludes_dry_run(),
        since: filter.since,
        until: filter.until,
    }
}

fn call_select(filter: &CallFilter) -> CallSelect<'_> {
    CallSelect {
        caller_id: filter.caller_id.as_deref(),
        tool_id: filter.tool_id.as_deref(),
        outcome: filter.outcome,
        since: filter.since,
        until: filter.until,
    }
}

impl AuditLog {
    /// [`Storage::finish_run`] with an explicit `finished_at`, for callers that keep
    /// their own clock (imports, tests).
    pub fn finish_run_at(
        &self,
        run_id: &str,
        stats: &RunStats,
        finished_at: Timestamp,
    ) -> Result<()> {
        let mut state = self.lock();
        journal_of(&state)?;
        state.index.check_finish(run_id, stats.status)?;
        let record = Record::RunFinished(RunFinished {
            run_id: run_id.to_owned(),
            stats: stats.clone(),
            finished_at,
        });
        self.commit(&mut state, std::slice::from_ref(&record))?;
        Ok(())
    }
}

impl Storage for AuditLog {
    fn start_run(&self, run: &Run) -> Result<()> {
        let mut state = self.lock();
        journal_of(&state)?;
        state.index.check_start(&run.id)?;
        let mut run = run.clone();
        run.status = Status::Running;
        run.finished_at = None;
        self.commit(&mut state, &[Record::RunStarted(run)])?;
        Ok(())
    }

    fn finish_run(&self, run_id: &str, stats: &RunStats) -> Result<()> {
        self.finish_run_at(run_id, stats, Timestamp::now())
    }

    fn append_log(&self, event: &RunEvent) -> Result<()> {
        let mut state = self.lock();
        journal_of(&state)?;
        state.index.check_event(&event.run_id, event.sequence)?;
        self.commit(&mut state, &[Record::EventAppended(event.clone())])?;
        Ok(())
    }

    fn get_run(&self, run_id: &str) -> Result<Run> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        let entry = state.index.lookup(run_id)?;
        // The start is read at once, yet asking for it here too is faster: its load
        // and the finish's then overlap from the first (docs/benchmarks.md).
        prefetch_run(journal, entry);
        let mut run = Run::default();
        read_run(journal, entry, &mut run)?;
        Ok(run)
    }

    fn list_logs_by_run(&self, run_id: &str) -> Result<Vec<RunEvent>> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        let events = state.index.events_of(run_id);
        let mut read = Vec::with_capacity(events.len());
        read_ahead(
            events.iter(),
            |&(_, lsn)| journal.prefetch_frame(Lsn(lsn)),
            |(_, lsn)| journal.read_into(Lsn(lsn), push_default(&mut read)),
        )?;
        Ok(read)
    }

    fn list_runs_by_skill(&self, skill_id: &str, limit: i64) -> Result<Vec<Run>> {
        self.list_runs_by_skill_paginated(skill_id, 0, limit, false)
    }

    fn list_runs_by_skill_paginated(
        &self,
        skill_id: &str,
        offset: i64,
        limit: i64,
        include_dry_run: bool,
    ) -> Result<Vec<Run>> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        let select = RunSelect {
            skill_id: Some(skill_id),
            exclude_dry_run: !include_dry_run,
            ..RunSelect::default()
        };
        list_page(
            journal,
            &state.index,
            &select,
            clamp_offset(offset),
            clamp_limit(limit),
        )
    }

    fn count_runs_by_skill(&self, skill_id: &str, include_dry_run: bool) -> Result<u64> {
        let state = self.lock();
        journal_of(&state)?;
        let select = RunSelect {
            skill_id: Some(skill_id),
            exclude_dry_run: !include_dry_run,
            ..RunSelect::default()
        };
        Ok(count(&state.index, &select))
    }

    fn list_runs_by_caller(&self, caller_id: &str, limit: i64) -> Result<Vec<Run>> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        let select = RunSelect {
            caller_id: Some(caller_id),
            ..RunSelect::default()
        };
        list_page(journal, &state.index, &select, 0, clamp_limit(limit))
    }

    fn list_runs_filtered(&self, filter: &RunFilter, offset: i64, limit: i64) -> Result<Vec<Run>> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        list_page(
            journal,
            &state.index,
            &run_select(filter),
            clamp_offset(offset),
            clamp_limit(limit),
        )
    }

    fn count_runs_filtered(&self, filter: &RunFilter) -> Result<u64> {
        let state = self.lock();
        journal_of(&state)?;
        Ok(count(&state.index, &run_select(filter)))
    }

    fn purge_older_than(&self, before: Timestamp) -> Result<u64> {
        let mut state = self.lock();
        self.purge(&mut state, before)
    }

    fn list_children_by_parent(&self, parent_id: &str) -> Result<Vec<Run>> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        if parent_id.is_empty() {
            return Ok(Vec::new());
        }
        let children = state.index.children_oldest_first(parent_id);
        read_runs(journal, children, usize::MAX)
    }

    fn walk_parent_chain(&self, run_id: &str) -> Result<Vec<Run>> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        // The chain is found in the index first, without decoding each record for
        // its parent's id. A missing ancestor ends the walk (SPEC §3.15).
        let leaf = state.index.lookup(run_id)?;
        let chain = std::iter::successors(Some(leaf), |&entry| state.index.parent_of(entry));
        let mut chain = read_runs(journal, chain, PARENT_CHAIN_DEPTH_MAX)?;
        chain.reverse();
        Ok(chain)
    }

    fn list_finished_runs_before(&self, cutoff: Timestamp, limit: i64) -> Result<Vec<Run>> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(QUERY_PAGE_MAX) as usize;
        read_runs(journal, state.index.finished_before(cutoff), limit)
    }

    fn last_run_by_skills(
        &self,
        skill_ids: &[&str],
        include_failed: bool,
    ) -> Result<BTreeMap<String, Timestamp>> {
        if skill_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let state = self.lock();
        journal_of(&state)?;
        let counts = |status: Status| {
            if include_failed {
                status != Status::DryRun
            } else {
                status == Status::Ok
            }
        };
        Ok(skill_ids
            .iter()
            .filter_map(|&skill| {
                let at = state.index.last_start_of_skill(skill, counts)?;
                Some((skill.to_owned(), at))
            })
            .collect())
    }

    fn record_call(&self, call: &CallEvent) -> Result<()> {
        let mut state = self.lock();
        let record = Record::CallRecorded(call.clone());
        state.index.check(&record)?;
        self.commit(&mut state, std::slice::from_ref(&record))?;
        Ok(())
    }

    fn list_calls(&self, filter: &CallFilter, offset: i64, limit: i64) -> Result<Vec<CallEvent>> {
        let state = self.lock();
        let journal = journal_of(&state)?;
        let limit = clamp_limit(limit);
        let mut calls = Vec::with_capacity(limit);
        let lsns = (state.index.calls_newest_first(&call_select(filter)))
            .skip(clamp_offset(offset))
            .take(limit);
        read_ahead(
            lsns,
            |&lsn| journal.prefetch_frame(lsn),
            |lsn| journal.read_as(lsn).map(|call| calls.push(call)),
        )?;
        Ok(calls)
    }

    fn count_calls(&self, filter: &CallFilter) -> Result<u64> {
        let state = self.lock();
        journal_of(&state)?;
        Ok(state.index.calls_newest_first(&call_select(filter)).count() as u64)
    }
}
