//! The SQLite peer: the [`Storage`] API over one SQLite database in WAL mode, the way
//! a server that picked SQLite for its audit log would write it.
//!
//! Where it sits: beside the benchmark harness of the CLI (`auditlog bench`), and
//! included with `#[path]` by `benches/query.rs` and `benches/ingest.rs`, so every
//! figure against SQLite comes from this one implementation. It uses only the crate's
//! public API and `rusqlite`.
//!
//! Schema: `runs` (a rowid table; the rowid is the start order, the tie-breaker for
//! equal `started_at`), `events` keyed by `(run_id, sequence)`, `calls`. Indexes on
//! skill, caller, channel, parent, started_at and finished_at of runs, and on ts,
//! caller and tool of calls: every query of SPEC §3 is answered from an index, as ours
//! are. Times are Unix nanoseconds; inputs, payloads, capabilities and outcomes are
//! JSON text.
//!
//! # Invariants
//! - The same answers as [`auditlog::AuditLog`] for every method
//!   (`tests/query_sqlite_peer.rs` checks a sample against it), so timing the two
//!   compares like with like.
//! - A statement is prepared once per connection (`prepare_cached`); the filtered
//!   queries cache one statement per combination of filter fields.
//! - Durability is chosen at open: `synchronous = FULL` makes every committed
//!   transaction durable when it returns (one WAL fsync per commit), `NORMAL` syncs
//!   only at checkpoints (a power loss may lose the last commits, a crash not).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use auditlog::limits::PARENT_CHAIN_DEPTH_MAX;
use auditlog::model::{CallEvent, Outcome, Run, RunEvent, RunStats, Timestamp};
use auditlog::query::{clamp_limit, clamp_offset};
use auditlog::{CallFilter, Error, Record, Result, RunFilter, Storage};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id TEXT NOT NULL UNIQUE,
    skill_id TEXT NOT NULL,
    caller_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    inputs TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    status TEXT NOT NULL,
    output TEXT NOT NULL,
    error TEXT NOT NULL,
    tool_calls_count INTEGER NOT NULL,
    runtime_seconds REAL NOT NULL,
    parent_run_id TEXT NOT NULL,
    total_input_tokens INTEGER NOT NULL,
    total_output_tokens INTEGER NOT NULL,
    total_thinking_tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_skill ON runs (skill_id, started_at);
CREATE INDEX IF NOT EXISTS runs_by_caller ON runs (caller_id, started_at);
CREATE INDEX IF NOT EXISTS runs_by_channel ON runs (channel_id, started_at);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id, started_at);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_by_finish ON runs (finished_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    ts INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    tool_id TEXT NOT NULL,
    caller_id TEXT,
    granted_capabilities TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome_kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    tier TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    secrets_resolved INTEGER NOT NULL,
    cursor_page INTEGER
);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (ts);
CREATE INDEX IF NOT EXISTS calls_by_caller ON calls (caller_id, ts);
CREATE INDEX IF NOT EXISTS calls_by_tool ON calls (tool_id, ts);
";

const RUN_COLUMNS: &str = "id, skill_id, caller_id, channel_id, inputs, started_at, \
     finished_at, status, output, error, tool_calls_count, runtime_seconds, parent_run_id, \
     total_input_tokens, total_output_tokens, total_thinking_tokens";

const CALL_COLUMNS: &str = "ts, call_id, tool_id, caller_id, granted_capabilities, \
     duration_ms, outcome, tier, dry_run, schema_version, secrets_resolved, cursor_page";

/// When a committed transaction is durable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SqliteSync {
    /// `synchronous = NORMAL`: the WAL is synced at checkpoints only.
    Normal,
    /// `synchronous = FULL`: every commit syncs the WAL before it returns.
    #[allow(dead_code, reason = "used by the durable ingest benchmark in benches/")]
    Full,
}

/// A [`Storage`] over one SQLite database file. `Send + Sync`: the connection sits
/// behind a mutex, as SQLite takes one writer at a time anyway.
#[derive(Debug)]
pub struct SqliteStorage {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating if missing) `path` in WAL mode with the schema and indexes.
    pub fn open(path: &Path, sync: SqliteSync) -> Result<SqliteStorage> {
        let fail = |e: rusqlite::Error| sql_error("open", path, e);
        let conn = Connection::open(path).map_err(fail)?;
        let synchronous = match sync {
            SqliteSync::Normal => "NORMAL",
            SqliteSync::Full => "FULL",
        };
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStorage {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fail(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |e| sql_error(op, &self.path, e)
    }

    /// Applies `records` in one transaction: one commit (and, with
    /// [`SqliteSync::Full`], one fsync) for the whole batch, as a loader or a batching
    /// writer would. Refused records (duplicates, unknown runs) are skipped, like the
    /// engine's `append_each`.
    #[allow(
        dead_code,
        reason = "used by the benchmarks in benches/ to build stores"
    )]
    pub fn apply_batch(&self, records: &[Record]) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(self.fail("begin"))?;
        for record in records {
            let applied = match record {
                Record::RunStarted(run) => insert_run(&tx, run),
                Record::RunFinished(finish) => {
                    update_finish(&tx, &finish.run_id, &finish.stats, finish.finished_at)
                        .map(|_| ())
                }
                Record::EventAppended(event) => insert_event(&tx, event),
                Record::CallRecorded(call) => insert_call(&tx, call),
                Record::Purge(tombstone) => purge(&tx, tombstone.before).map(|_| ()),
                Record::DropReport(_) => Ok(()),
            };
            match applied {
                Ok(()) => {}
                Err(e) if is_constraint(&e) => {}
                Err(e) => return Err(sql_error("apply", &self.path, e)),
            }
        }
        tx.commit().map_err(self.fail("commit"))
    }

    /// Runs of one statement: `sql` with `args`, each row read as a run.
    fn runs(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Run>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql).map_err(self.fail("prepare"))?;
        let rows = stmt
            .query_map(args, run_from_row)
            .map_err(self.fail("query runs"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.fail("read runs"))
    }

    fn count(&self, sql: &str, args: impl rusqlite::Params) -> Result<u64> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql).map_err(self.fail("prepare"))?;
        let n: i64 = stmt
            .query_row(args, |row| row.get(0))
            .map_err(self.fail("count"))?;
        Ok(n as u64)
    }
}

fn sql_error(op: &'static str, path: &Path, e: rusqlite::Error) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("model values always serialize")
}

fn insert_run(conn: &Connection, run: &Run) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO runs ({RUN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, 'running', \
         ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?
    .execute(params![
        run.id,
        run.skill_id,
        run.caller_id,
        run.channel_id,
        json(&run.inputs),
        run.started_at.unix_nanos(),
        run.output,
        run.error,
        run.tool_calls_count as i64,
        run.runtime_seconds,
        run.parent_run_id,
        run.total_input_tokens as i64,
        run.total_output_tokens as i64,
        run.total_thinking_tokens as i64,
    ])?;
    Ok(())
}

fn update_finish(
    conn: &Connection,
    run_id: &str,
    stats: &RunStats,
    finished_at: Timestamp,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE runs SET status = ?2, output = ?3, error = ?4, tool_calls_count = ?5, \
         runtime_seconds = ?6, total_input_tokens = ?7, total_output_tokens = ?8, \
         total_thinking_tokens = ?9, finished_at = ?10 WHERE id = ?1",
    )?
    .execute(params![
        run_id,
        stats.status.as_str(),
        stats.output,
        stats.error,
        stats.tool_calls as i64,
        stats.runtime_seconds,
        stats.input_tokens as i64,
        stats.output_tokens as i64,
        stats.thinking_tokens as i64,
        finished_at.unix_nanos(),
    ])
}

fn insert_event(conn: &Connection, event: &RunEvent) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (run_id, sequence, event_type, payload, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        event.run_id,
        event.sequence as i64,
        event.event_type,
        json(&event.payload),
        event.created_at.unix_nanos(),
    ])?;
    Ok(())
}

fn insert_call(conn: &Connection, call: &CallEvent) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO calls ({CALL_COLUMNS}, outcome_kind) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        call.ts.unix_nanos(),
        call.call_id,
        call.tool_id,
        call.caller_id,
        json(&call.granted_capabilities),
        call.duration_ms as i64,
        json(&call.outcome),
        call.tier,
        call.dry_run,
        call.schema_version,
        call.secrets_resolved,
        call.cursor_page,
        call.outcome.kind().as_str(),
    ])?;
    Ok(())
}

fn purge(conn: &Connection, before: Timestamp) -> rusqlite::Result<u64> {
    let before = before.unix_nanos();
    conn.prepare_cached(
        "DELETE FROM events WHERE run_id IN (SELECT id FROM runs WHERE started_at < ?1)",
    )?
    .execute([before])?;
    let n = conn
        .prepare_cached("DELETE FROM runs WHERE started_at < ?1")?
        .execute([before])?;
    Ok(n as u64)
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let status: String = row.get(7)?;
    Ok(Run {
        id: row.get(0)?,
        skill_id: row.get(1)?,
        caller_id: row.get(2)?,
        channel_id: row.get(3)?,
        inputs: parse_json(&row.get::<_, String>(4)?)?,
        started_at: Timestamp::from_unix_nanos(row.get(5)?),
        finished_at: row
            .get::<_, Option<i64>>(6)?
            .map(Timestamp::from_unix_nanos),
        status: status.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, e.into())
        })?,
        output: row.get(8)?,
        error: row.get(9)?,
        tool_calls_count: row.get::<_, i64>(10)? as u64,
        runtime_seconds: row.get(11)?,
        parent_run_id: row.get(12)?,
        total_input_tokens: row.get::<_, i64>(13)? as u64,
        total_output_tokens: row.get::<_, i64>(14)? as u64,
        total_thinking_tokens: row.get::<_, i64>(15)? as u64,
    })
}

fn call_from_row(row: &Row<'_>) -> rusqlite::Result<CallEvent> {
    let outcome: Outcome = parse_json(&row.get::<_, String>(6)?)?;
    Ok(CallEvent {
        ts: Timestamp::from_unix_nanos(row.get(0)?),
        call_id: row.get(1)?,
        tool_id: row.get(2)?,
        caller_id: row.get(3)?,
        granted_capabilities: parse_json(&row.get::<_, String>(4)?)?,
        duration_ms: row.get::<_, i64>(5)? as u64,
        outcome,
        tier: row.get(7)?,
        dry_run: row.get(8)?,
        schema_version: row.get(9)?,
        secrets_resolved: row.get(10)?,
        cursor_page: row.get(11)?,
    })
}

/// A `WHERE` clause being built: conditions joined by `AND`, with their arguments.
#[derive(Default)]
struct Where {
    clauses: Vec<&'static str>,
    args: Vec<SqlValue>,
}

impl Where {
    /// Adds `clause` (with one `?`) when `value` is given.
    fn text(&mut self, clause: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.clauses.push(clause);
            self.args.push(SqlValue::Text(value.to_owned()));
        }
    }

    /// Adds `clause` (with one `?`) when `at` is given.
    fn time(&mut self, clause: &'static str, at: Option<Timestamp>) {
        if let Some(at) = at {
            self.clauses.push(clause);
            self.args.push(SqlValue::Integer(at.unix_nanos()));
        }
    }

    /// Adds `clause` (without arguments) when `applies`.
    fn when(&mut self, clause: &'static str, applies: bool) {
        if applies {
            self.clauses.push(clause);
        }
    }

    fn finish(self) -> (String, Vec<SqlValue>) {
        let clause = if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        };
        (clause, self.args)
    }
}

/// The `WHERE` clause and arguments of a run filter.
fn run_filter_sql(filter: &RunFilter) -> (String, Vec<SqlValue>) {
    let mut sql = Where::default();
    sql.text("status = ?", filter.status.map(|s| s.as_str()));
    sql.text("skill_id = ?", filter.skill_id.as_deref());
    sql.text("caller_id = ?", filter.caller_id.as_deref());
    sql.text("channel_id = ?", filter.channel_id.as_deref());
    sql.when("parent_run_id = ''", filter.top_level_only);
    sql.when("status <> 'dry_run'", filter.excludes_dry_run());
    sql.time("started_at >= ?", filter.since);
    sql.time("started_at < ?", filter.until);
    sql.finish()
}

/// The `WHERE` clause and arguments of a call filter.
fn call_filter_sql(filter: &CallFilter) -> (String, Vec<SqlValue>) {
    let mut sql = Where::default();
    sql.text("caller_id = ?", filter.caller_id.as_deref());
    sql.text("tool_id = ?", filter.tool_id.as_deref());
    sql.text("outcome_kind = ?", filter.outcome.map(|k| k.as_str()));
    sql.time("ts >= ?", filter.since);
    sql.time("ts < ?", filter.until);
    sql.finish()
}

fn page(offset: i64, limit: i64) -> [SqlValue; 2] {
    [
        SqlValue::Integer(clamp_limit(limit) as i64),
        SqlValue::Integer(clamp_offset(offset) as i64),
    ]
}

impl Storage for SqliteStorage {
    fn start_run(&self, run: &Run) -> Result<()> {
        if run.id.is_empty() {
            return Err(Error::InvalidInput("run id is empty".into()));
        }
        match insert_run(&self.lock(), run) {
            Err(e) if is_constraint(&e) => Err(Error::Duplicate {
                what: "run",
                id: run.id.clone(),
            }),
            other => other.map_err(self.fail("insert run")),
        }
    }

    fn finish_run(&self, run_id: &str, stats: &RunStats) -> Result<()> {
        if !stats.status.is_terminal() {
            return Err(Error::InvalidInput(
                "a finish status is not terminal".into(),
            ));
        }
        let n = update_finish(&self.lock(), run_id, stats, Timestamp::now())
            .map_err(self.fail("finish run"))?;
        if n == 0 {
            return Err(Error::NotFound {
                what: "run",
                id: run_id.to_owned(),
            });
        }
        Ok(())
    }

    fn append_log(&self, event: &RunEvent) -> Result<()> {
        if event.run_id.is_empty() {
            return Err(Error::InvalidInput("event run id is empty".into()));
        }
        if event.sequence == 0 {
            return Err(Error::InvalidInput("event sequence is 0".into()));
        }
        match insert_event(&self.lock(), event) {
            Err(e) if is_constraint(&e) => Err(Error::Duplicate {
                what: "run event",
                id: format!("{}#{}", event.run_id, event.sequence),
            }),
            other => other.map_err(self.fail("insert event")),
        }
    }

    fn get_run(&self, run_id: &str) -> Result<Run> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
            .map_err(self.fail("prepare"))?;
        stmt.query_row([run_id], run_from_row)
            .optional()
            .map_err(self.fail("get run"))?
            .ok_or_else(|| Error::NotFound {
                what: "run",
                id: run_id.to_owned(),
            })
    }

    fn list_logs_by_run(&self, run_id: &str) -> Result<Vec<RunEvent>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT sequence, event_type, payload, created_at FROM events \
                 WHERE run_id = ?1 ORDER BY sequence",
            )
            .map_err(self.fail("prepare"))?;
        let rows = stmt
            .query_map([run_id], |row| {
                Ok(RunEvent {
                    run_id: run_id.to_owned(),
                    sequence: row.get::<_, i64>(0)? as u64,
                    event_type: row.get(1)?,
                    payload: parse_json(&row.get::<_, String>(2)?)?,
                    created_at: Timestamp::from_unix_nanos(row.get(3)?),
                })
            })
            .map_err(self.fail("list events"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.fail("read events"))
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
        let filter = RunFilter {
            skill_id: Some(skill_id.to_owned()),
            include_dry_run,
            ..RunFilter::default()
        };
        self.list_runs_filtered(&filter, offset, limit)
    }

    fn count_runs_by_skill(&self, skill_id: &str, include_dry_run: bool) -> Result<u64> {
        let filter = RunFilter {
            skill_id: Some(skill_id.to_owned()),
            include_dry_run,
            ..RunFilter::default()
        };
        self.count_runs_filtered(&filter)
    }

    fn list_runs_by_caller(&self, caller_id: &str, limit: i64) -> Result<Vec<Run>> {
        let filter = RunFilter {
            caller_id: Some(caller_id.to_owned()),
            include_dry_run: true,
            ..RunFilter::default()
        };
        self.list_runs_filtered(&filter, 0, limit)
    }

    fn list_runs_filtered(&self, filter: &RunFilter, offset: i64, limit: i64) -> Result<Vec<Run>> {
        let (clause, mut args) = run_filter_sql(filter);
        args.extend(page(offset, limit));
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs {clause} \
             ORDER BY started_at DESC, rowid DESC LIMIT ? OFFSET ?"
        );
        self.runs(&sql, params_from_iter(args))
    }

    fn count_runs_filtered(&self, filter: &RunFilter) -> Result<u64> {
        let (clause, args) = run_filter_sql(filter);
        self.count(
            &format!("SELECT COUNT(*) FROM runs {clause}"),
            params_from_iter(args),
        )
    }

    fn purge_older_than(&self, before: Timestamp) -> Result<u64> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(self.fail("begin"))?;
        let n = purge(&tx, before).map_err(self.fail("purge"))?;
        tx.commit().map_err(self.fail("commit"))?;
        Ok(n)
    }

    fn list_children_by_parent(&self, parent_id: &str) -> Result<Vec<Run>> {
        if parent_id.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE parent_run_id = ?1 \
             ORDER BY started_at, rowid"
        );
        self.runs(&sql, [parent_id])
    }

    fn walk_parent_chain(&self, run_id: &str) -> Result<Vec<Run>> {
        let mut chain = vec![self.get_run(run_id)?];
        while chain.len() < PARENT_CHAIN_DEPTH_MAX {
            let parent = &chain[chain.len() - 1].parent_run_id;
            if parent.is_empty() {
                break;
            }
            match self.get_run(parent) {
                Ok(run) => chain.push(run),
                Err(Error::NotFound { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        chain.reverse();
        Ok(chain)
    }

    fn list_finished_runs_before(&self, cutoff: Timestamp, limit: i64) -> Result<Vec<Run>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(auditlog::limits::QUERY_PAGE_MAX);
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE finished_at < ?1 \
             ORDER BY finished_at, rowid LIMIT ?2"
        );
        self.runs(&sql, params![cutoff.unix_nanos(), limit])
    }

    fn last_run_by_skills(
        &self,
        skill_ids: &[&str],
        include_failed: bool,
    ) -> Result<BTreeMap<String, Timestamp>> {
        let sql = if include_failed {
            "SELECT started_at FROM runs WHERE skill_id = ?1 AND status <> 'dry_run' \
             ORDER BY started_at DESC LIMIT 1"
        } else {
            "SELECT started_at FROM runs WHERE skill_id = ?1 AND status = 'ok' \
             ORDER BY started_at DESC LIMIT 1"
        };
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql).map_err(self.fail("prepare"))?;
        let mut latest = BTreeMap::new();
        for skill in skill_ids {
            let at: Option<i64> = stmt
                .query_row([skill], |row| row.get(0))
                .optional()
                .map_err(self.fail("last run"))?;
            if let Some(at) = at {
                latest.insert((*skill).to_owned(), Timestamp::from_unix_nanos(at));
            }
        }
        Ok(latest)
    }

    fn record_call(&self, call: &CallEvent) -> Result<()> {
        insert_call(&self.lock(), call).map_err(self.fail("insert call"))
    }

    fn list_calls(&self, filter: &CallFilter, offset: i64, limit: i64) -> Result<Vec<CallEvent>> {
        let (clause, mut args) = call_filter_sql(filter);
        args.extend(page(offset, limit));
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls {clause} \
             ORDER BY ts DESC, rowid DESC LIMIT ? OFFSET ?"
        );
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&sql).map_err(self.fail("prepare"))?;
        let rows = stmt
            .query_map(params_from_iter(args), call_from_row)
            .map_err(self.fail("list calls"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.fail("read calls"))
    }

    fn count_calls(&self, filter: &CallFilter) -> Result<u64> {
        let (clause, args) = call_filter_sql(filter);
        self.count(
            &format!("SELECT COUNT(*) FROM calls {clause}"),
            params_from_iter(args),
        )
    }
}
