//! JSON lines export: one object per line, each with a `schema` field.
//!
//! Rows are the model's own JSON forms (`Run`, `RunEvent`, `CallEvent`, so call events
//! keep the SPEC §2.4 field names) with `"schema": "auditlog.export.v1"` added first.
//! Timestamps are RFC 3339 strings in UTC (`2026-11-21T10:00:00.123456789Z`), which
//! DuckDB reads as timestamps. A run's `finished_at` is absent while it is running.
//!
//! # Invariants
//! - Every line is one complete JSON object ending in `\n`; a file is flushed and
//!   synced before its path is reported.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    DayWriter, EXPORT_SCHEMA, ExportFormat, ExportOptions, RunRows, Table, create_parent, part_path,
};
use crate::error::{Error, Result};
use crate::model::{CallEvent, Run, RunEvent};

#[derive(Serialize)]
struct RunLine<'a> {
    schema: &'static str,
    #[serde(flatten)]
    run: &'a Run,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<&'a [RunEvent]>,
}

#[derive(Serialize)]
struct EventLine<'a> {
    schema: &'static str,
    #[serde(flatten)]
    event: &'a RunEvent,
}

#[derive(Serialize)]
struct CallLine<'a> {
    schema: &'static str,
    #[serde(flatten)]
    call: &'a CallEvent,
}

/// One open JSON lines file.
struct LinesFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl LinesFile {
    fn create(path: PathBuf) -> Result<LinesFile> {
        create_parent(&path)?;
        let file =
            File::create_new(&path).map_err(|e| Error::io("create export file", &path, e))?;
        Ok(LinesFile {
            path,
            out: BufWriter::with_capacity(1 << 16, file),
        })
    }

    fn write(&mut self, row: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.out, row).map_err(|e| Error::Encode(e.to_string()))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| Error::io("write export file", &self.path, e))
    }

    fn finish(self) -> Result<PathBuf> {
        let path = self.path;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io("write export file", &path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("sync export file", &path, e))?;
        Ok(path)
    }
}

/// One day's JSON lines files of the runs (with the events) or of the calls.
pub(crate) struct JsonlDay {
    out_dir: PathBuf,
    day: String,
    nest_events: bool,
    main: LinesFile,
    /// Opened at the first event, so a day without events has no events file.
    events: Option<LinesFile>,
}

impl JsonlDay {
    pub(crate) fn create(options: &ExportOptions, table: Table, day: &str) -> Result<JsonlDay> {
        let path = part_path(&options.out_dir, table, day, ExportFormat::Jsonl);
        Ok(JsonlDay {
            out_dir: options.out_dir.clone(),
            day: day.to_owned(),
            nest_events: options.nest_events,
            main: LinesFile::create(path)?,
            events: None,
        })
    }

    fn events_file(&mut self) -> Result<&mut LinesFile> {
        if self.events.is_none() {
            let path = part_path(
                Path::new(&self.out_dir),
                Table::Events,
                &self.day,
                ExportFormat::Jsonl,
            );
            self.events = Some(LinesFile::create(path)?);
        }
        Ok(self.events.as_mut().expect("opened above"))
    }
}

impl DayWriter for JsonlDay {
    fn write_run(&mut self, rows: &RunRows) -> Result<()> {
        self.main.write(&RunLine {
            schema: EXPORT_SCHEMA,
            run: &rows.run,
            events: self.nest_events.then_some(rows.events.as_slice()),
        })?;
        if !self.nest_events && !rows.events.is_empty() {
            let events = self.events_file()?;
            for event in &rows.events {
                events.write(&EventLine {
                    schema: EXPORT_SCHEMA,
                    event,
                })?;
            }
        }
        Ok(())
    }

    fn write_call(&mut self, call: &CallEvent) -> Result<()> {
        self.main.write(&CallLine {
            schema: EXPORT_SCHEMA,
            call,
        })
    }

    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>> {
        let mut paths = vec![self.main.finish()?];
        if let Some(events) = self.events {
            paths.push(events.finish()?);
        }
        Ok(paths)
    }
}
