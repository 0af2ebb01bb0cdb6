//! The SQLite peer of the benchmarks (`src/bin/auditlog/bench/sqlite.rs`) answers
//! like the engine: the same records applied to both, every read query of the Storage
//! API returns the same, a purge deletes as many runs, and its errors are the engine's
//! (`NotFound`, `Duplicate`). Without this the query benchmarks would compare unlike
//! work.

#[path = "../src/bin/auditlog/bench/sqlite.rs"]
mod sqlite;

use auditlog::model::{CallEvent, Outcome, Run, RunEvent, RunStats, Status, Timestamp};
use auditlog::{AuditLog, CallFilter, Config, Error, Record, RunFilter, Storage};
use sqlite::{SqliteStorage, SqliteSync};

/// A few runs in a chain, a dry run, events and calls, applied to both stores.
fn sample() -> Vec<Record> {
    let mut records = Vec::new();
    for i in 0..6i64 {
        records.push(Record::RunStarted(Run {
            id: format!("run-{i}"),
            skill_id: format!("skill-{}", i % 2),
            caller_id: "caller-1".into(),
            started_at: Timestamp::from_unix_millis(1_000 + i),
            parent_run_id: if i == 0 {
                String::new()
            } else {
                format!("run-{}", i - 1)
            },
            ..Run::default()
        }));
        records.push(Record::EventAppended(RunEvent {
            run_id: format!("run-{i}"),
            sequence: 1,
            event_type: "step".into(),
            ..RunEvent::default()
        }));
        records.push(Record::RunFinished(auditlog::codec::RunFinished {
            run_id: format!("run-{i}"),
            stats: RunStats {
                status: if i == 3 { Status::DryRun } else { Status::Ok },
                ..RunStats::default()
            },
            finished_at: Timestamp::from_unix_millis(2_000 + i),
        }));
        records.push(Record::CallRecorded(CallEvent {
            ts: Timestamp::from_unix_millis(1_000 + i),
            call_id: format!("call-{i}"),
            tool_id: "tool".into(),
            caller_id: None,
            granted_capabilities: vec!["net".into()],
            duration_ms: 3,
            outcome: Outcome::InvalidArgs {
                message: "bad".into(),
            },
            tier: "standard".into(),
            dry_run: false,
            schema_version: 3,
            secrets_resolved: false,
            cursor_page: None,
        }));
    }
    records
}

#[test]
fn answers_like_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let ours = AuditLog::open(Config::new(dir.path().join("log"))).unwrap();
    ours.append_batch(&sample()).unwrap();
    let sqlite = SqliteStorage::open(&dir.path().join("db"), SqliteSync::Normal).unwrap();
    sqlite.apply_batch(&sample()).unwrap();
    let stores: [&dyn Storage; 2] = [&ours, &sqlite];
    let answers: Vec<String> = stores
        .iter()
        .map(|s| {
            [
                format!("{:?}", s.get_run("run-2").unwrap()),
                format!("{:?}", s.list_logs_by_run("run-2").unwrap()),
                format!("{:?}", s.list_runs_by_skill("skill-1", 10).unwrap()),
                format!("{:?}", s.count_runs_by_skill("skill-1", true).unwrap()),
                format!("{:?}", s.list_runs_by_caller("caller-1", 3).unwrap()),
                format!(
                    "{:?}",
                    s.list_runs_filtered(&RunFilter::default(), 1, 2).unwrap()
                ),
                format!(
                    "{:?}",
                    s.count_runs_filtered(&RunFilter::default()).unwrap()
                ),
                format!("{:?}", s.list_children_by_parent("run-1").unwrap()),
                format!("{:?}", s.walk_parent_chain("run-4").unwrap()),
                format!(
                    "{:?}",
                    s.list_finished_runs_before(Timestamp::from_unix_millis(2_003), 10)
                        .unwrap()
                ),
                format!(
                    "{:?}",
                    s.last_run_by_skills(&["skill-0", "skill-1", "none"], false)
                        .unwrap()
                ),
                format!("{:?}", s.list_calls(&CallFilter::default(), 0, 3).unwrap()),
                format!("{:?}", s.count_calls(&CallFilter::default()).unwrap()),
            ]
            .join("\n")
        })
        .collect();
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        sqlite
            .purge_older_than(Timestamp::from_unix_millis(1_002))
            .unwrap(),
        ours.purge_older_than(Timestamp::from_unix_millis(1_002))
            .unwrap()
    );
    assert!(matches!(
        sqlite.get_run("run-0"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        sqlite.start_run(&Run::new("run-5", "s")),
        Err(Error::Duplicate { .. })
    ));
}
