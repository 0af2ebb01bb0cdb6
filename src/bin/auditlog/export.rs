//! `auditlog export`: runs, events and calls as JSON lines or Parquet, partitioned by
//! day, with a progress bar (SPEC §6). The work is `auditlog::export`; this is glue.

use std::path::PathBuf;
use std::process::ExitCode;

use auditlog::export::{ExportFormat, ExportOptions, export};
use auditlog::model::Timestamp;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, print_json, table};

#[derive(Copy, Clone, Debug, clap::ValueEnum)]
enum Format {
    /// One JSON object per line, with a `schema` field and RFC 3339 UTC timestamps.
    Jsonl,
    /// Typed columns; runs.id joins events.run_id; events.call_id joins calls.call_id.
    Parquet,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// The directory to write into (created; must not hold an export already).
    #[arg(long)]
    out: PathBuf,
    /// Runs started (calls made) at or after this time (RFC 3339, a date, or an age).
    #[arg(long, value_parser = crate::parse_time)]
    since: Option<Timestamp>,
    /// Runs started (calls made) before this time.
    #[arg(long, value_parser = crate::parse_time)]
    until: Option<Timestamp>,
    /// JSON lines only: nest each run's events in its row instead of an events table.
    #[arg(long)]
    nest_events: bool,
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Serialize)]
struct Exported {
    out: PathBuf,
    format: &'static str,
    schema: &'static str,
    runs: u64,
    events: u64,
    calls: u64,
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> CliResult {
    let log = args.dir.open_existing()?;
    let format = match args.format {
        Format::Jsonl => ExportFormat::Jsonl,
        Format::Parquet => ExportFormat::Parquet,
    };
    let options = ExportOptions {
        format,
        out_dir: args.out.clone(),
        since: args.since,
        until: args.until,
        nest_events: args.nest_events,
    };
    // Drawn on stderr, and only when it is a terminal.
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "exporting {bar:40} {pos}/{len} runs and calls  {per_sec}  eta {eta}",
        )
        .expect("a valid template"),
    );
    let summary = export(&log, &options, |progress| {
        bar.set_length(progress.n_total);
        bar.set_position(progress.n_done);
    })?;
    bar.finish_and_clear();
    log.close()?;
    let out = Exported {
        out: args.out,
        format: format.extension(),
        schema: auditlog::export::EXPORT_SCHEMA,
        runs: summary.n_runs,
        events: summary.n_events,
        calls: summary.n_calls,
        files: summary.files,
    };
    if args.output.json {
        print_json(&out)?;
    } else {
        let mut files = table(&["file", "bytes"]);
        for file in &out.files {
            let len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            files.add_row(vec![file.display().to_string(), len.to_string()]);
        }
        println!("{files}");
        println!(
            "exported {} run(s), {} event(s) and {} call(s) as {} ({}) into {}",
            out.runs,
            out.events,
            out.calls,
            out.format,
            out.schema,
            out.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
