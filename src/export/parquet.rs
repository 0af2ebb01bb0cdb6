//! Parquet export: three typed tables; `runs.id` joins `events.run_id`, and
//! `events.call_id` joins `calls.call_id`.
//!
//! ```text
//! runs    id, parent_run_id (null at top level), skill_id, caller_id, channel_id,
//!         status, started_at, finished_at (null while running), runtime_seconds,
//!         tool_calls_count, total_input_tokens, total_output_tokens,
//!         total_thinking_tokens, output, error, inputs (JSON text)
//! events  run_id, sequence, event_type, created_at, call_id (the payload's `id` of a
//!         tool_call / tool_result event, else null), payload (JSON text)
//! calls   call_id, ts, tool_id, caller_id, granted_capabilities (list of strings),
//!         duration_ms, outcome_kind, outcome_code, outcome_retryable, outcome_message,
//!         outcome_missing (list), outcome_retry_after_ms, tier, dry_run, schema_version,
//!         secrets_resolved, cursor_page
//! ```
//! Timestamps are `TIMESTAMP(MICROS, UTC)`: the precision every Parquet reader (DuckDB,
//! ClickHouse, Spark) maps to its own timestamp type; the nanoseconds of the log are
//! cut to microseconds (a run's events keep their order through `sequence`). Counts
//! are unsigned 64-bit. Free-form maps (inputs, payloads) are JSON text, which DuckDB
//! casts to `JSON` and ClickHouse reads with its JSON functions. Every file carries the
//! key `auditlog.schema` = [`EXPORT_SCHEMA`] in its metadata. Compression: snappy.
//!
//! # Invariants
//! - A file is closed (footer written) and synced before its path is reported.
//! - Rows are buffered at most [`ROWS_PER_BATCH`] at a time.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::Compression;
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::WriterProperties;
use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Float64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::{
    DayWriter, EXPORT_SCHEMA, ExportFormat, ExportOptions, RunRows, Table, create_parent, part_path,
};
use crate::error::{Error, Result};
use crate::model::{CallEvent, Outcome, Timestamp};

/// Rows buffered before they are handed to the Parquet writer as one batch.
const ROWS_PER_BATCH: usize = 8192;

fn micros(at: Timestamp) -> i64 {
    at.unix_nanos().div_euclid(1_000)
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn timestamps() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn encode_error(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::Encode(format!("parquet export to {}: {e}", path.display()))
}

/// The columns of one table, buffered.
trait Columns {
    fn schema() -> Schema;
    fn len(&self) -> usize;
    /// The buffered rows as arrays in schema order; the builders are left empty.
    fn finish(&mut self) -> Vec<ArrayRef>;
}

/// One open Parquet file of one table.
struct TableFile<C: Columns> {
    path: PathBuf,
    schema: SchemaRef,
    writer: ArrowWriter<File>,
    columns: C,
}

impl<C: Columns + Default> TableFile<C> {
    fn create(path: PathBuf) -> Result<TableFile<C>> {
        create_parent(&path)?;
        let file =
            File::create_new(&path).map_err(|e| Error::io("create export file", &path, e))?;
        let schema = Arc::new(C::schema());
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                "auditlog.schema".to_owned(),
                EXPORT_SCHEMA.to_owned(),
            )]))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
            .map_err(|e| encode_error(&path, e))?;
        Ok(TableFile {
            path,
            schema,
            writer,
            columns: C::default(),
        })
    }

    /// Hands the buffered rows to the writer once a batch is full (or `force`).
    fn flush_rows(&mut self, force: bool) -> Result<()> {
        let n = self.columns.len();
        if n == 0 || (!force && n < ROWS_PER_BATCH) {
            return Ok(());
        }
        let batch = RecordBatch::try_new(self.schema.clone(), self.columns.finish())
            .map_err(|e| encode_error(&self.path, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| encode_error(&self.path, e))
    }

    fn finish(mut self) -> Result<PathBuf> {
        self.flush_rows(true)?;
        let file = self
            .writer
            .into_inner()
            .map_err(|e| encode_error(&self.path, e))?;
        file.sync_all()
            .map_err(|e| Error::io("sync export file", &self.path, e))?;
        Ok(self.path)
    }
}

#[derive(Default)]
struct RunColumns {
    id: StringBuilder,
    parent_run_id: StringBuilder,
    skill_id: StringBuilder,
    caller_id: StringBuilder,
    channel_id: StringBuilder,
    status: StringBuilder,
    started_at: TimestampMicrosecondBuilder,
    finished_at: TimestampMicrosecondBuilder,
    runtime_seconds: Float64Builder,
    tool_calls_count: UInt64Builder,
    total_input_tokens: UInt64Builder,
    total_output_tokens: UInt64Builder,
    total_thinking_tokens: UInt64Builder,
    output: StringBuilder,
    error: StringBuilder,
    inputs: StringBuilder,
}

impl Columns for RunColumns {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("parent_run_id", DataType::Utf8, true),
            Field::new("skill_id", DataType::Utf8, false),
            Field::new("caller_id", DataType::Utf8, false),
            Field::new("channel_id", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("started_at", timestamp_type(), false),
            Field::new("finished_at", timestamp_type(), true),
            Field::new("runtime_seconds", DataType::Float64, false),
            Field::new("tool_calls_count", DataType::UInt64, false),
            Field::new("total_input_tokens", DataType::UInt64, false),
            Field::new("total_output_tokens", DataType::UInt64, false),
            Field::new("total_thinking_tokens", DataType::UInt64, false),
            Field::new("output", DataType::Utf8, false),
            Field::new("error", DataType::Utf8, false),
            Field::new("inputs", DataType::Utf8, false),
        ])
    }

    fn len(&self) -> usize {
        self.id.len()
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        // Builders made by `Default` have no time zone; the schema's type is set here.
        let utc = |b: &mut TimestampMicrosecondBuilder| -> ArrayRef {
            Arc::new(b.finish().with_timezone("UTC"))
        };
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.parent_run_id.finish()),
            Arc::new(self.skill_id.finish()),
            Arc::new(self.caller_id.finish()),
            Arc::new(self.channel_id.finish()),
            Arc::new(self.status.finish()),
            utc(&mut self.started_at),
            utc(&mut self.finished_at),
            Arc::new(self.runtime_seconds.finish()),
            Arc::new(self.tool_calls_count.finish()),
            Arc::new(self.total_input_tokens.finish()),
            Arc::new(self.total_output_tokens.finish()),
            Arc::new(self.total_thinking_tokens.finish()),
            Arc::new(self.output.finish()),
            Arc::new(self.error.finish()),
            Arc::new(self.inputs.finish()),
        ]
    }
}

#[derive(Default)]
struct EventColumns {
    run_id: StringBuilder,
    sequence: UInt64Builder,
    event_type: StringBuilder,
    created_at: TimestampMicrosecondBuilder,
    call_id: StringBuilder,
    payload: StringBuilder,
}

impl Columns for EventColumns {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("sequence", DataType::UInt64, false),
            Field::new("event_type", DataType::Utf8, false),
            Field::new("created_at", timestamp_type(), false),
            Field::new("call_id", DataType::Utf8, true),
            Field::new("payload", DataType::Utf8, false),
        ])
    }

    fn len(&self) -> usize {
        self.run_id.len()
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.run_id.finish()),
            Arc::new(self.sequence.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.created_at.finish().with_timezone("UTC")),
            Arc::new(self.call_id.finish()),
            Arc::new(self.payload.finish()),
        ]
    }
}

struct CallColumns {
    call_id: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    tool_id: StringBuilder,
    caller_id: StringBuilder,
    granted_capabilities: ListBuilder<StringBuilder>,
    duration_ms: UInt64Builder,
    outcome_kind: StringBuilder,
    outcome_code: StringBuilder,
    outcome_retryable: BooleanBuilder,
    outcome_message: StringBuilder,
    outcome_missing: ListBuilder<StringBuilder>,
    outcome_retry_after_ms: UInt64Builder,
    tier: StringBuilder,
    dry_run: BooleanBuilder,
    schema_version: UInt32Builder,
    secrets_resolved: BooleanBuilder,
    cursor_page: UInt32Builder,
}

impl Default for CallColumns {
    fn default() -> Self {
        CallColumns {
            call_id: StringBuilder::new(),
            ts: timestamps(),
            tool_id: StringBuilder::new(),
            caller_id: StringBuilder::new(),
            granted_capabilities: ListBuilder::new(StringBuilder::new()),
            duration_ms: UInt64Builder::new(),
            outcome_kind: StringBuilder::new(),
            outcome_code: StringBuilder::new(),
            outcome_retryable: BooleanBuilder::new(),
            outcome_message: StringBuilder::new(),
            outcome_missing: ListBuilder::new(StringBuilder::new()),
            outcome_retry_after_ms: UInt64Builder::new(),
            tier: StringBuilder::new(),
            dry_run: BooleanBuilder::new(),
            schema_version: UInt32Builder::new(),
            secrets_resolved: BooleanBuilder::new(),
            cursor_page: UInt32Builder::new(),
        }
    }
}

impl Columns for CallColumns {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("call_id", DataType::Utf8, false),
            Field::new("ts", timestamp_type(), false),
            Field::new("tool_id", DataType::Utf8, false),
            Field::new("caller_id", DataType::Utf8, true),
            Field::new("granted_capabilities", string_list(), false),
            Field::new("duration_ms", DataType::UInt64, false),
            Field::new("outcome_kind", DataType::Utf8, false),
            Field::new("outcome_code", DataType::Utf8, true),
            Field::new("outcome_retryable", DataType::Boolean, true),
            Field::new("outcome_message", DataType::Utf8, true),
            Field::new("outcome_missing", string_list(), true),
            Field::new("outcome_retry_after_ms", DataType::UInt64, true),
            Field::new("tier", DataType::Utf8, false),
            Field::new("dry_run", DataType::Boolean, false),
            Field::new("schema_version", DataType::UInt32, false),
            Field::new("secrets_resolved", DataType::Boolean, false),
            Field::new("cursor_page", DataType::UInt32, true),
        ])
    }

    fn len(&self) -> usize {
        self.call_id.len()
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.call_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.tool_id.finish()),
            Arc::new(self.caller_id.finish()),
            Arc::new(self.granted_capabilities.finish()),
            Arc::new(self.duration_ms.finish()),
            Arc::new(self.outcome_kind.finish()),
            Arc::new(self.outcome_code.finish()),
            Arc::new(self.outcome_retryable.finish()),
            Arc::new(self.outcome_message.finish()),
            Arc::new(self.outcome_missing.finish()),
            Arc::new(self.outcome_retry_after_ms.finish()),
            Arc::new(self.tier.finish()),
            Arc::new(self.dry_run.finish()),
            Arc::new(self.schema_version.finish()),
            Arc::new(self.secrets_resolved.finish()),
            Arc::new(self.cursor_page.finish()),
        ]
    }
}

impl CallColumns {
    fn push(&mut self, call: &CallEvent) {
        self.call_id.append_value(&call.call_id);
        self.ts.append_value(micros(call.ts));
        self.tool_id.append_value(&call.tool_id);
        self.caller_id.append_option(call.caller_id.as_deref());
        for capability in &call.granted_capabilities {
            self.granted_capabilities.values().append_value(capability);
        }
        self.granted_capabilities.append(true);
        self.duration_ms.append_value(call.duration_ms);
        self.outcome_kind.append_value(call.outcome.kind().as_str());
        let (code, retryable, message, missing, retry_after_ms) = match &call.outcome {
            Outcome::ExecutionFailed { code, retryable } => {
                (Some(code.as_str()), Some(*retryable), None, None, None)
            }
            Outcome::InvalidArgs { message } => (None, None, Some(message.as_str()), None, None),
            Outcome::CapabilityDenied { missing } => (None, None, None, Some(missing), None),
            Outcome::RateLimited { retry_after_ms } => (None, None, None, None, *retry_after_ms),
            Outcome::Success | Outcome::ToolNotFound => (None, None, None, None, None),
        };
        self.outcome_code.append_option(code);
        self.outcome_retryable.append_option(retryable);
        self.outcome_message.append_option(message);
        match missing {
            Some(missing) => {
                for capability in missing {
                    self.outcome_missing.values().append_value(capability);
                }
                self.outcome_missing.append(true);
            }
            None => self.outcome_missing.append(false),
        }
        self.outcome_retry_after_ms.append_option(retry_after_ms);
        self.tier.append_value(&call.tier);
        self.dry_run.append_value(call.dry_run);
        self.schema_version.append_value(call.schema_version);
        self.secrets_resolved.append_value(call.secrets_resolved);
        self.cursor_page.append_option(call.cursor_page);
    }
}

/// The `id` a tool_call or tool_result event's payload names (SPEC §4), if any.
fn call_id_of(event_type: &str, payload: &crate::model::Payload) -> Option<String> {
    if event_type != "tool_call" && event_type != "tool_result" {
        return None;
    }
    payload
        .get("id")
        .and_then(|id| id.as_str())
        .map(str::to_owned)
}

fn json_text(path: &std::path::Path, value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| encode_error(path, e))
}

/// One day's Parquet files: runs and events, or calls.
pub(crate) struct ParquetDay(Day);

enum Day {
    Runs {
        runs: Box<TableFile<RunColumns>>,
        events: Box<TableFile<EventColumns>>,
    },
    Calls(Box<TableFile<CallColumns>>),
}

impl ParquetDay {
    pub(crate) fn create(options: &ExportOptions, table: Table, day: &str) -> Result<ParquetDay> {
        let path = |table| part_path(&options.out_dir, table, day, ExportFormat::Parquet);
        Ok(ParquetDay(match table {
            Table::Runs | Table::Events => Day::Runs {
                runs: Box::new(TableFile::create(path(Table::Runs))?),
                events: Box::new(TableFile::create(path(Table::Events))?),
            },
            Table::Calls => Day::Calls(Box::new(TableFile::create(path(Table::Calls))?)),
        }))
    }
}

impl DayWriter for ParquetDay {
    fn write_run(&mut self, rows: &RunRows) -> Result<()> {
        let Day::Runs { runs, events } = &mut self.0 else {
            unreachable!("runs are written to a runs day");
        };
        let run = &rows.run;
        let c = &mut runs.columns;
        c.id.append_value(&run.id);
        c.parent_run_id
            .append_option((!run.parent_run_id.is_empty()).then_some(&run.parent_run_id));
        c.skill_id.append_value(&run.skill_id);
        c.caller_id.append_value(&run.caller_id);
        c.channel_id.append_value(&run.channel_id);
        c.status.append_value(run.status.as_str());
        c.started_at.append_value(micros(run.started_at));
        c.finished_at.append_option(run.finished_at.map(micros));
        c.runtime_seconds.append_value(run.runtime_seconds);
        c.tool_calls_count.append_value(run.tool_calls_count);
        c.total_input_tokens.append_value(run.total_input_tokens);
        c.total_output_tokens.append_value(run.total_output_tokens);
        c.total_thinking_tokens
            .append_value(run.total_thinking_tokens);
        c.output.append_value(&run.output);
        c.error.append_value(&run.error);
        c.inputs.append_value(json_text(&runs.path, &run.inputs)?);
        runs.flush_rows(false)?;
        for event in &rows.events {
            let c = &mut events.columns;
            c.run_id.append_value(&event.run_id);
            c.sequence.append_value(event.sequence);
            c.event_type.append_value(&event.event_type);
            c.created_at.append_value(micros(event.created_at));
            c.call_id
                .append_option(call_id_of(&event.event_type, &event.payload));
            c.payload
                .append_value(json_text(&events.path, &event.payload)?);
            events.flush_rows(false)?;
        }
        Ok(())
    }

    fn write_call(&mut self, call: &CallEvent) -> Result<()> {
        let Day::Calls(calls) = &mut self.0 else {
            unreachable!("calls are written to a calls day");
        };
        calls.columns.push(call);
        calls.flush_rows(false)
    }

    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>> {
        match self.0 {
            Day::Runs { runs, events } => Ok(vec![runs.finish()?, events.finish()?]),
            Day::Calls(calls) => Ok(vec![calls.finish()?]),
        }
    }
}
