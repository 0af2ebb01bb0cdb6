//! Exports are readable by DuckDB as they are (SPEC §6): a store built through the
//! library is exported as JSON lines and as Parquet, and DuckDB (the Python package,
//! installed by `.ci/run`) counts the rows of runs, events and calls, joins runs to
//! events on the run id and events to calls on the call id, and reads the typed
//! columns. Without DuckDB this test FAILS, unless `AUDITLOG_SKIP_DUCKDB=1` is set, in
//! which case it says loudly that it checked nothing.

mod cli_support;

use std::path::Path;
use std::process::Command;

use auditlog::export::{ExportFormat, ExportOptions, export};
use auditlog::{AuditLog, Config};
use cli_support::{N_CALLS, N_EVENTS, N_RUNS, build_store};

/// The DuckDB script: prints one JSON object of answers for an export directory.
const QUERIES: &str = r#"
import json, sys
import duckdb
out, ext = sys.argv[1], sys.argv[2]
reader = "read_parquet" if ext == "parquet" else "read_json_auto"
def t(name):
    return f"{reader}('{out}/{name}/*/*.{ext}', hive_partitioning = true)"
con = duckdb.connect()
one = lambda sql: con.execute(sql).fetchall()[0][0]
answers = {
    "runs": one(f"select count(*) from {t('runs')}"),
    "events": one(f"select count(*) from {t('events')}"),
    "calls": one(f"select count(*) from {t('calls')}"),
    "joined": one(f"select count(*) from {t('runs')} r join {t('events')} e on e.run_id = r.id"),
    "root1_events": one(f"select count(*) from {t('runs')} r join {t('events')} e on e.run_id = r.id where r.id = 'root-1'"),
    "error_run_events": one(f"select string_agg(e.event_type, ',' order by e.sequence) from {t('runs')} r join {t('events')} e on e.run_id = r.id where r.status = 'error'"),
    "days": one(f"select count(distinct date) from {t('runs')}"),
    "started_type": one(f"select typeof(started_at) from {t('runs')} limit 1"),
    "latest_start": one(f"select strftime(max(started_at) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S') from {t('runs')}"),
    "failed_call": one(f"select call_id from {t('calls')} where " + ("outcome_kind" if ext == "parquet" else "outcome.kind") + " = 'execution_failed'"),
}
if ext == "parquet":
    answers["events_to_calls"] = one(f"select count(*) from {t('events')} e join {t('calls')} c using (call_id) where e.event_type = 'tool_call'")
    answers["schema"] = one(f"select decode(value) from parquet_kv_metadata('{out}/runs/*/*.parquet') where decode(key) = 'auditlog.schema' limit 1")
else:
    answers["schema"] = one(f"select distinct schema from {t('runs')}")
print(json.dumps(answers))
"#;

/// Whether `python3 -c 'import duckdb'` works; if not, fails loudly unless skipping
/// was asked for.
fn duckdb_available() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output();
    let why = match probe {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
        Err(e) => format!("python3 cannot be run: {e}"),
    };
    if std::env::var("AUDITLOG_SKIP_DUCKDB").is_ok_and(|v| v == "1") {
        // Written to the stderr handle itself, not through `eprintln!`, so the test
        // harness does not capture it: the skip shows in every run's output.
        let banner = format!(
            "\n!!!!!!!!\n!!! SKIPPED: the DuckDB export test checked NOTHING (AUDITLOG_SKIP_DUCKDB=1): {}\n!!! install it with: python3 -m pip install duckdb\n!!!!!!!!\n",
            why.trim()
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes());
        return false;
    }
    panic!(
        "DuckDB is missing, so the export cannot be checked: {why}\n\
         install it with `python3 -m pip install duckdb` (.ci/run does), or set \
         AUDITLOG_SKIP_DUCKDB=1 to skip this test knowingly"
    );
}

fn ask_duckdb(out: &Path, format: ExportFormat) -> serde_json::Value {
    let result = Command::new("python3")
        .args(["-c", QUERIES, out.to_str().unwrap(), format.extension()])
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "DuckDB could not read the {} export: {}",
        format.extension(),
        String::from_utf8_lossy(&result.stderr)
    );
    serde_json::from_slice(&result.stdout).unwrap()
}

#[test]
fn duckdb_reads_both_export_formats_and_joins_runs_to_events() {
    if !duckdb_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    build_store(&store);
    let log = AuditLog::open(Config::new(&store)).unwrap();
    for format in [ExportFormat::Jsonl, ExportFormat::Parquet] {
        let out = dir.path().join(format.extension());
        let summary = export(&log, &ExportOptions::new(format, &out), |_| {}).unwrap();
        assert_eq!(
            (summary.n_runs, summary.n_events, summary.n_calls),
            (N_RUNS, N_EVENTS, N_CALLS)
        );

        let answers = ask_duckdb(&out, format);
        let name = format.extension();
        assert_eq!(answers["runs"], N_RUNS, "{name}: {answers}");
        assert_eq!(answers["events"], N_EVENTS, "{name}: {answers}");
        assert_eq!(answers["calls"], N_CALLS, "{name}: {answers}");
        assert_eq!(
            answers["joined"], N_EVENTS,
            "{name}: every event joins its run"
        );
        assert_eq!(answers["root1_events"], 4, "{name}: {answers}");
        assert_eq!(
            answers["error_run_events"], "step,error",
            "{name}: {answers}"
        );
        assert_eq!(answers["days"], 3, "{name}: partitioned by day: {answers}");
        assert_eq!(
            answers["started_type"], "TIMESTAMP WITH TIME ZONE",
            "{name}: timestamps are typed: {answers}"
        );
        assert_eq!(
            answers["latest_start"], "2026-11-21T11:00:00",
            "{name}: {answers}"
        );
        assert_eq!(answers["failed_call"], "call-root-2", "{name}: {answers}");
        assert_eq!(
            answers["schema"],
            auditlog::export::EXPORT_SCHEMA,
            "{name}: {answers}"
        );
        if format == ExportFormat::Parquet {
            assert_eq!(
                answers["events_to_calls"], 2,
                "tool_call events join their calls"
            );
        }
    }
    log.close().unwrap();
}
