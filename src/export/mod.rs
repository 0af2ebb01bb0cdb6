//! Export for offline forensics (SPEC §6): runs, run events and call events over a
//! time range, as JSON lines or Parquet, partitioned by day, readable by DuckDB as is.
//!
//! Where it sits: beside `query`, at the top of the flow. It asks the index which
//! records are live (the same truth the query API answers from), reads them back from
//! the segments, and hands rows to a format writer (`jsonl`, `parquet`).
//!
//! Layout of an export directory (`part-0` grows to `part-1`, ... in later versions
//! that split large days):
//! ```text
//! OUT/runs/date=2026-11-21/part-0.{jsonl,parquet}     one row per run, by started_at day
//! OUT/events/date=2026-11-21/part-0.{jsonl,parquet}   one row per run event, by its run's day
//! OUT/calls/date=2026-11-21/part-0.{jsonl,parquet}    one row per call event, by ts day
//! ```
//! Events are partitioned by the day their run started, not by their own timestamp, so
//! a day's runs and events join within the day's partitions. The `date=` directories
//! are Hive-style partitions: DuckDB's `hive_partitioning` and ClickHouse's globs read
//! them directly.
//!
//! # Invariants
//! - Exactly the live records are exported: runs the index holds (purged runs never),
//!   the events the index holds for them, and the call events the index holds. Events
//!   of a run that was never started are not exported.
//! - A run is selected by `since <= started_at < until`, a call by `since <= ts < until`;
//!   a run's events go with it whatever their timestamps.
//! - Rows are written oldest first; within a run, events in sequence order.
//! - The log's lock is held only to list LSNs from the index and to read one record at
//!   a time, so a store being written to can be exported.
//! - Deliberately absent: deletion or rewriting of existing files. An export into a
//!   directory that already holds an export is refused.

mod jsonl;
mod parquet;

use std::path::{Path, PathBuf};

use crate::codec::{Lsn, Record};
use crate::error::{Error, Result};
use crate::index::{CallSelect, RunSelect};
use crate::log::AuditLog;
use crate::model::{CallEvent, Run, RunEvent, Timestamp};
use crate::query::Storage;

/// The schema version every exported row carries (JSON lines: the `schema` field;
/// Parquet: the `auditlog.schema` key of the file metadata). Bump it when a column is
/// renamed, retyped or removed; adding a column keeps it.
pub const EXPORT_SCHEMA: &str = "auditlog.export.v1";

/// The file format of an export.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line, RFC 3339 UTC timestamps, a `schema` field.
    Jsonl,
    /// Typed columns, snappy-compressed, timestamps as UTC microseconds.
    Parquet,
}

impl ExportFormat {
    /// The file extension of the format.
    pub const fn extension(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Parquet => "parquet",
        }
    }
}

/// What to export, and where.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// The directory to write into; created if missing, refused if it holds an export.
    pub out_dir: PathBuf,
    /// `started_at` (runs) or `ts` (calls) at or after this.
    pub since: Option<Timestamp>,
    /// `started_at` (runs) or `ts` (calls) before this.
    pub until: Option<Timestamp>,
    /// JSON lines only: put each run's events in an `events` array of its row instead
    /// of a separate `events` table.
    pub nest_events: bool,
}

impl ExportOptions {
    /// Every record, flat tables, into `out_dir`.
    pub fn new(format: ExportFormat, out_dir: impl Into<PathBuf>) -> ExportOptions {
        ExportOptions {
            format,
            out_dir: out_dir.into(),
            since: None,
            until: None,
            nest_events: false,
        }
    }
}

/// How far an export has got, for a progress bar.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExportProgress {
    /// Runs (each with its events) and calls written so far.
    pub n_done: u64,
    /// Runs and calls the export will write in all.
    pub n_total: u64,
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub n_runs: u64,
    pub n_events: u64,
    pub n_calls: u64,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
}

/// The tables of an export.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Runs,
    Events,
    Calls,
}

impl Table {
    pub(crate) const fn dir_name(self) -> &'static str {
        match self {
            Table::Runs => "runs",
            Table::Events => "events",
            Table::Calls => "calls",
        }
    }
}

/// One run with its events, as read back from the log.
pub(crate) struct RunRows {
    pub run: Run,
    pub events: Vec<RunEvent>,
}

/// A format: receives the rows of one day's partition of one table at a time.
pub(crate) trait DayWriter {
    /// Writes one run (and, unless events are a table of their own, its events).
    fn write_run(&mut self, rows: &RunRows) -> Result<()>;
    /// Writes one call event.
    fn write_call(&mut self, call: &CallEvent) -> Result<()>;
    /// Finishes the day's files; returns the paths written.
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>>;
}

/// The `YYYY-MM-DD` (UTC) of a timestamp.
fn day_of(at: Timestamp) -> String {
    at.to_datetime().format("%Y-%m-%d").to_string()
}

/// The path of one day's part file of a table.
pub(crate) fn part_path(out_dir: &Path, table: Table, day: &str, format: ExportFormat) -> PathBuf {
    out_dir
        .join(table.dir_name())
        .join(format!("date={day}"))
        .join(format!("part-0.{}", format.extension()))
}

/// Creates the parent directory of `path`.
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    let parent = path.parent().expect("a part path has a parent");
    std::fs::create_dir_all(parent).map_err(|e| Error::io("create export directory", parent, e))
}

/// The LSNs an export reads: each run's start and latest finish, and the calls.
struct Plan {
    /// Oldest first.
    runs: Vec<(Lsn, Option<Lsn>)>,
    /// Oldest first.
    calls: Vec<Lsn>,
}

/// Lists, under the log's lock, what the index holds in the range.
fn plan(log: &AuditLog, options: &ExportOptions) -> Plan {
    let state = log.lock();
    let index = &state.index;
    let select = RunSelect {
        status: None,
        skill_id: None,
        caller_id: None,
        channel_id: None,
        top_level_only: false,
        exclude_dry_run: false,
        since: options.since,
        until: options.until,
    };
    let mut runs: Vec<(Lsn, Option<Lsn>)> = match index.resolve(&select) {
        Some(resolved) => index
            .runs_newest_first(&resolved)
            .map(|entry| (entry.started_lsn(), entry.finished_lsn()))
            .collect(),
        None => Vec::new(),
    };
    runs.reverse();
    let mut calls: Vec<Lsn> = index
        .calls_newest_first(&CallSelect {
            caller_id: None,
            tool_id: None,
            outcome: None,
            since: options.since,
            until: options.until,
        })
        .collect();
    calls.reverse();
    Plan { runs, calls }
}

fn unexpected(lsn: Lsn, wanted: &str) -> Error {
    Error::Corrupt {
        segment: PathBuf::new(),
        offset: lsn.0,
        kind: crate::CorruptionKind::BadPayload(format!(
            "the index expects a {wanted} record at LSN {lsn}"
        )),
    }
}

/// Reads a run back (its start with its latest finish applied) and its events.
fn read_run_rows(log: &AuditLog, started: Lsn, finished: Option<Lsn>) -> Result<RunRows> {
    let Record::RunStarted(mut run) = log.read(started)? else {
        return Err(unexpected(started, "RunStarted"));
    };
    if let Some(lsn) = finished {
        let Record::RunFinished(finish) = log.read(lsn)? else {
            return Err(unexpected(lsn, "RunFinished"));
        };
        run.apply_finish(&finish.stats, finish.finished_at);
    }
    let events = log.list_logs_by_run(&run.id)?;
    Ok(RunRows { run, events })
}

/// Opens the writer of one day's partition of the runs (and events) or of the calls.
fn day_writer(options: &ExportOptions, table: Table, day: &str) -> Result<Box<dyn DayWriter>> {
    match options.format {
        ExportFormat::Jsonl => Ok(Box::new(jsonl::JsonlDay::create(options, table, day)?)),
        ExportFormat::Parquet => Ok(Box::new(parquet::ParquetDay::create(options, table, day)?)),
    }
}

/// Exports the live records of `log` selected by `options`; `progress` is called after
/// every few records.
pub fn export(
    log: &AuditLog,
    options: &ExportOptions,
    mut progress: impl FnMut(ExportProgress),
) -> Result<ExportSummary> {
    if options.nest_events && options.format != ExportFormat::Jsonl {
        return Err(Error::InvalidInput(
            "nested events are a JSON lines option; Parquet has an events table that joins on run_id".into(),
        ));
    }
    for table in [Table::Runs, Table::Events, Table::Calls] {
        let dir = options.out_dir.join(table.dir_name());
        if dir.exists() {
            return Err(Error::InvalidInput(format!(
                "{} already holds an export; choose an empty directory",
                options.out_dir.display()
            )));
        }
    }
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|e| Error::io("create export directory", &options.out_dir, e))?;

    let plan = plan(log, options);
    // Progress counts runs and calls: a run's events are read with it.
    let mut status = ExportProgress {
        n_done: 0,
        n_total: (plan.runs.len() + plan.calls.len()) as u64,
    };
    progress(status);
    let mut summary = ExportSummary::default();
    let mut current: Option<(String, Box<dyn DayWriter>)> = None;
    for &(started, finished) in &plan.runs {
        let rows = read_run_rows(log, started, finished)?;
        let day = day_of(rows.run.started_at);
        if current.as_ref().is_none_or(|(d, _)| *d != day) {
            if let Some((_, writer)) = current.take() {
                summary.files.extend(writer.finish()?);
            }
            current = Some((day.clone(), day_writer(options, Table::Runs, &day)?));
        }
        current.as_mut().expect("opened above").1.write_run(&rows)?;
        summary.n_runs += 1;
        summary.n_events += rows.events.len() as u64;
        status.n_done += 1;
        if status.n_done % 64 == 0 {
            progress(status);
        }
    }
    if let Some((_, writer)) = current.take() {
        summary.files.extend(writer.finish()?);
    }
    for &lsn in &plan.calls {
        let Record::CallRecorded(call) = log.read(lsn)? else {
            return Err(unexpected(lsn, "CallRecorded"));
        };
        let day = day_of(call.ts);
        if current.as_ref().is_none_or(|(d, _)| *d != day) {
            if let Some((_, writer)) = current.take() {
                summary.files.extend(writer.finish()?);
            }
            current = Some((day.clone(), day_writer(options, Table::Calls, &day)?));
        }
        current
            .as_mut()
            .expect("opened above")
            .1
            .write_call(&call)?;
        summary.n_calls += 1;
        status.n_done += 1;
        if status.n_done % 256 == 0 {
            progress(status);
        }
    }
    if let Some((_, writer)) = current.take() {
        summary.files.extend(writer.finish()?);
    }
    progress(status);
    debug_assert_eq!(status.n_done, status.n_total);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates_and_parts_are_hive_partitions() {
        let at = Timestamp::parse_rfc3339("2026-11-21T23:30:00-02:00").unwrap();
        assert_eq!(day_of(at), "2026-11-22");
        assert_eq!(
            part_path(
                Path::new("out"),
                Table::Events,
                "2026-11-22",
                ExportFormat::Parquet
            ),
            Path::new("out/events/date=2026-11-22/part-0.parquet")
        );
    }
}
