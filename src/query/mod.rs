//! The Storage query API of SPEC §3, answered from the index.
//!
//! Where it sits: the top of the flow. [`Storage`] is the contract; [`AuditLog`]
//! implements it by validating against the index, appending to the journal, applying
//! to the index, and for reads asking the index which LSNs answer and reading those
//! records back from the segments.
//!
//! Conventions every method shares:
//! - *Newest first* is `started_at` descending; *oldest first* ascending. Two runs
//!   with the same timestamp are ordered by when they were started (the later start
//!   is the newer). Call events with the same `ts` are ordered by arrival likewise.
//! - A page limit ≤ 0 or > [`QUERY_PAGE_MAX`] becomes [`QUERY_PAGE_DEFAULT`]
//!   ([`clamp_limit`]), for every listing that takes a limit except
//!   `list_finished_runs_before`, where a limit ≤ 0 yields nothing (SPEC §3.16) and a
//!   larger one is capped at [`QUERY_PAGE_MAX`]. A negative offset is 0.
//! - `since` is inclusive, `until` exclusive.
//!
//! # Invariants
//! - A refused write (duplicate run id, duplicate sequence, unknown run, empty id) is
//!   refused before anything is appended: it never reaches the log.
//! - Reads see every write that returned before them (read-your-writes): writes apply
//!   to the index under the same lock that reads take.
//! - No answer is computed by scanning the log; only the records returned are read.
//!
//! [`AuditLog`]: crate::AuditLog

mod log_storage;
mod space;

pub use space::SpaceUsage;

use std::collections::BTreeMap;

use crate::error::Result;
use crate::limits::{QUERY_PAGE_DEFAULT, QUERY_PAGE_MAX};
use crate::model::{CallEvent, OutcomeKind, Run, RunEvent, RunStats, Status, Timestamp};

/// The run listing filter of SPEC §3.11; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Exact status. `Some(DryRun)` matches dry-run rows even without
    /// `include_dry_run`.
    pub status: Option<Status>,
    pub skill_id: Option<String>,
    pub caller_id: Option<String>,
    pub channel_id: Option<String>,
    /// Only runs with an empty parent id.
    pub top_level_only: bool,
    /// Also list `dry_run` rows.
    pub include_dry_run: bool,
    /// `started_at >= since`.
    pub since: Option<Timestamp>,
    /// `started_at < until`.
    pub until: Option<Timestamp>,
}

impl RunFilter {
    /// Whether dry-run rows are left out: unless asked for, or named as the status.
    pub fn excludes_dry_run(&self) -> bool {
        !self.include_dry_run && self.status != Some(Status::DryRun)
    }
}

/// The call event listing filter (SPEC §3, last paragraph); every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub caller_id: Option<String>,
    pub tool_id: Option<String>,
    pub outcome: Option<OutcomeKind>,
    /// `ts >= since`.
    pub since: Option<Timestamp>,
    /// `ts < until`.
    pub until: Option<Timestamp>,
}

/// The page size a listing uses for a requested `limit` (SPEC §3.11): ≤ 0 or more than
/// [`QUERY_PAGE_MAX`] becomes [`QUERY_PAGE_DEFAULT`].
pub fn clamp_limit(limit: i64) -> usize {
    if limit <= 0 || limit > QUERY_PAGE_MAX {
        QUERY_PAGE_DEFAULT as usize
    } else {
        limit as usize
    }
}

/// The offset a listing uses: negative offsets are 0.
pub fn clamp_offset(offset: i64) -> usize {
    usize::try_from(offset).unwrap_or(0)
}

/// The query and update API of SPEC §3. Opening (§3.1) is [`crate::AuditLog::open`].
pub trait Storage {
    /// Stores `run` with status `running` and no `finished_at` (§3.2). An id already
    /// stored is [`Error::Duplicate`](crate::Error::Duplicate); an empty id is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput).
    fn start_run(&self, run: &Run) -> Result<()>;

    /// Sets the terminal state and `finished_at = now` (§3.3). An unknown id is
    /// [`Error::NotFound`](crate::Error::NotFound); a status that is not terminal
    /// (`running`) is [`Error::InvalidInput`](crate::Error::InvalidInput); a second call
    /// wins over the first.
    fn finish_run(&self, run_id: &str, stats: &RunStats) -> Result<()>;

    /// Stores one event (§3.4). A sequence its run already holds is
    /// [`Error::Duplicate`](crate::Error::Duplicate) and the original is kept; sequence 0
    /// is [`Error::InvalidInput`](crate::Error::InvalidInput) (a run's first is 1,
    /// §2.3); events of a run never started are kept.
    fn append_log(&self, event: &RunEvent) -> Result<()>;

    /// The run, or [`Error::NotFound`](crate::Error::NotFound) (§3.5).
    fn get_run(&self, run_id: &str) -> Result<Run>;

    /// Every event of the run in sequence order; empty if none (§3.6).
    fn list_logs_by_run(&self, run_id: &str) -> Result<Vec<RunEvent>>;

    /// A skill's runs, newest first, at most `limit` (clamped), dry runs left out
    /// (§3.7).
    fn list_runs_by_skill(&self, skill_id: &str, limit: i64) -> Result<Vec<Run>>;

    /// A skill's runs, newest first, a page at `offset` (§3.8).
    fn list_runs_by_skill_paginated(
        &self,
        skill_id: &str,
        offset: i64,
        limit: i64,
        include_dry_run: bool,
    ) -> Result<Vec<Run>>;

    /// The total that `list_runs_by_skill_paginated` pages through (§3.9).
    fn count_runs_by_skill(&self, skill_id: &str, include_dry_run: bool) -> Result<u64>;

    /// A caller's runs, newest first, at most `limit` (clamped), dry runs included
    /// (§3.10).
    fn list_runs_by_caller(&self, caller_id: &str, limit: i64) -> Result<Vec<Run>>;

    /// Runs matching `filter`, newest first, a page at `offset` (§3.11).
    fn list_runs_filtered(&self, filter: &RunFilter, offset: i64, limit: i64) -> Result<Vec<Run>>;

    /// How many runs match `filter`, ignoring any page (§3.12).
    fn count_runs_filtered(&self, filter: &RunFilter) -> Result<u64>;

    /// Deletes every run started before `before`, with its events; returns how many
    /// runs were deleted (§3.13). The deletion is written to the log, so it survives a
    /// restart and a crash once this returned.
    fn purge_older_than(&self, before: Timestamp) -> Result<u64>;

    /// Runs whose parent id is `parent_id`, oldest first; an empty id matches nothing
    /// (§3.14).
    fn list_children_by_parent(&self, parent_id: &str) -> Result<Vec<Run>>;

    /// The chain from the root to `run_id`, at most
    /// [`PARENT_CHAIN_DEPTH_MAX`](crate::limits::PARENT_CHAIN_DEPTH_MAX) runs (§3.15).
    /// An unknown `run_id` is [`Error::NotFound`](crate::Error::NotFound); a missing
    /// ancestor ends the walk.
    fn walk_parent_chain(&self, run_id: &str) -> Result<Vec<Run>>;

    /// Runs with `finished_at < cutoff`, oldest finish first, at most `limit`; a limit
    /// ≤ 0 yields nothing (§3.16).
    fn list_finished_runs_before(&self, cutoff: Timestamp, limit: i64) -> Result<Vec<Run>>;

    /// The latest `started_at` per skill among `skill_ids` (§3.17). With
    /// `include_failed` every status but `dry_run` counts, otherwise only `ok`. Skills
    /// without a counted run are absent; an empty input is an empty map.
    fn last_run_by_skills(
        &self,
        skill_ids: &[&str],
        include_failed: bool,
    ) -> Result<BTreeMap<String, Timestamp>>;

    /// Stores one dispatch call event.
    fn record_call(&self, call: &CallEvent) -> Result<()>;

    /// Call events matching `filter`, newest first (`ts` descending), a page at
    /// `offset` with the same clamp as runs.
    fn list_calls(&self, filter: &CallFilter, offset: i64, limit: i64) -> Result<Vec<CallEvent>>;

    /// How many call events match `filter`.
    fn count_calls(&self, filter: &CallFilter) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_out_of_range_become_the_default_page() {
        assert_eq!(clamp_limit(0), 50);
        assert_eq!(clamp_limit(-3), 50);
        assert_eq!(clamp_limit(501), 50);
        assert_eq!(clamp_limit(500), 500);
        assert_eq!(clamp_limit(1), 1);
        assert_eq!(clamp_offset(-1), 0);
        assert_eq!(clamp_offset(7), 7);
    }

    #[test]
    fn dry_run_is_excluded_unless_asked_for_or_named() {
        assert!(RunFilter::default().excludes_dry_run());
        let named = RunFilter {
            status: Some(Status::DryRun),
            ..RunFilter::default()
        };
        assert!(!named.excludes_dry_run());
        let asked = RunFilter {
            include_dry_run: true,
            ..RunFilter::default()
        };
        assert!(!asked.excludes_dry_run());
    }
}
