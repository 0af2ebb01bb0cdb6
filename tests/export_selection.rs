//! What an export holds: exactly the live records in the time range. Purged runs and
//! their events never appear, a running run has no `finished_at`, a superseded finish
//! is replaced by the latest one, `--since/--until` select runs by `started_at` and
//! calls by `ts`, and a run's events go with it.

mod cli_support;

use std::fs;
use std::path::Path;

use auditlog::export::{ExportFormat, ExportOptions, export};
use auditlog::model::{RunStats, Status};
use auditlog::{AuditLog, Config, Storage};
use cli_support::{at, build_store};
use serde_json::Value;

/// Every row of a JSON lines table, across its day partitions, in day order.
fn rows(out: &Path, table: &str) -> Vec<Value> {
    let Ok(days) = fs::read_dir(out.join(table)) else {
        return Vec::new();
    };
    let mut days: Vec<_> = days.map(|d| d.unwrap().path()).collect();
    days.sort();
    days.iter()
        .flat_map(|day| {
            fs::read_to_string(day.join("part-0.jsonl"))
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn ids(rows: &[Value], field: &str) -> Vec<String> {
    rows.iter()
        .map(|r| r[field].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_export_holds_exactly_the_live_records_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    build_store(&store);
    let log = AuditLog::open(Config::new(&store)).unwrap();
    log.purge_older_than(at("2026-06-01T00:00:00Z")).unwrap();
    // A second finish wins over the first (SPEC §3.3).
    let stats = RunStats {
        status: Status::Timeout,
        ..RunStats::default()
    };
    log.finish_run_at("root-2", &stats, at("2026-11-21T09:05:00Z"))
        .unwrap();

    let all = dir.path().join("all");
    let summary = export(&log, &ExportOptions::new(ExportFormat::Jsonl, &all), |_| {}).unwrap();
    assert_eq!(
        (summary.n_runs, summary.n_events, summary.n_calls),
        (6, 9, 3)
    );
    let runs = rows(&all, "runs");
    assert_eq!(
        ids(&runs, "id"),
        ["root-1", "child-1", "grand-1", "child-2", "root-2", "dry-1"],
        "oldest first; the purged run is gone"
    );
    assert!(
        runs.iter()
            .all(|r| r["schema"] == auditlog::export::EXPORT_SCHEMA)
    );
    let grand = &runs[2];
    assert_eq!(grand["status"], "running");
    assert!(
        grand.get("finished_at").is_none(),
        "a running run has no finish: {grand}"
    );
    let root2 = &runs[4];
    assert_eq!(root2["status"], "timeout");
    assert_eq!(root2["finished_at"], "2026-11-21T09:05:00Z");
    let events = rows(&all, "events");
    assert!(
        ids(&events, "run_id").iter().all(|id| id != "old-1"),
        "purged events are gone"
    );
    let sequences: Vec<u64> = events
        .iter()
        .filter(|e| e["run_id"] == "root-1")
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4]);

    let range = dir.path().join("range");
    let mut options = ExportOptions::new(ExportFormat::Jsonl, &range);
    options.since = Some(at("2026-11-20T10:01:00Z"));
    options.until = Some(at("2026-11-21T09:10:00Z"));
    let mut progress = Vec::new();
    let summary = export(&log, &options, |p| progress.push(p)).unwrap();
    assert_eq!(
        ids(&rows(&range, "runs"), "id"),
        ["child-1", "grand-1", "child-2", "root-2"]
    );
    assert_eq!(
        summary.n_events,
        2 + 3,
        "child-1's and root-2's events go with them"
    );
    assert_eq!(ids(&rows(&range, "calls"), "call_id"), ["call-root-2"]);
    let last = progress.last().unwrap();
    assert_eq!(last.n_done, last.n_total, "progress ends at the total");
    assert_eq!(last.n_total, 4 + 1);
    log.close().unwrap();
}

#[test]
fn an_empty_store_exports_nothing_and_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(Config::new(dir.path().join("store"))).unwrap();
    let out = dir.path().join("out");
    let summary = export(
        &log,
        &ExportOptions::new(ExportFormat::Parquet, &out),
        |_| {},
    )
    .unwrap();
    assert_eq!(summary, Default::default());
    assert!(fs::read_dir(&out).unwrap().next().is_none());
    log.close().unwrap();
}
