//! `auditlog stats`: counts, segments, live and disk bytes of a store, and what open
//! found (recovery, index checkpoint).

use auditlog::{CallFilter, CheckpointUse, Storage};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, bytes, print_json, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Debug, Serialize)]
struct Stats {
    runs: u64,
    events: u64,
    calls: u64,
    segments: usize,
    frames: u64,
    /// Frames queries can return.
    live_bytes: u64,
    /// Frames of every record in the log.
    log_bytes: u64,
    /// What the store's files take on disk at rest (before this command opened it).
    disk_bytes: u64,
    /// How open built the index: `loaded`, `missing` or `ignored: why`.
    checkpoint: String,
    recovery_ms: f64,
    damaged_ranges: usize,
}

pub fn run(args: Args) -> CliResult {
    // Measured before open, which preallocates a new active segment.
    let (n_segments, disk_bytes) = store_files(&args.dir.dir)?;
    let log = args.dir.open_existing()?;
    let (n_runs, n_events) = log.index_counts();
    let usage = log.space_usage()?;
    let report = log.recovery_report();
    let stats = Stats {
        runs: n_runs as u64,
        events: n_events,
        calls: log.count_calls(&CallFilter::default())?,
        segments: n_segments,
        frames: usage.n_frames,
        live_bytes: usage.live_bytes,
        log_bytes: usage.log_bytes,
        disk_bytes,
        checkpoint: match log.checkpoint_use() {
            CheckpointUse::Missing => "missing".into(),
            CheckpointUse::Loaded { covered } => format!("loaded (covers the log below {covered})"),
            CheckpointUse::Ignored(why) => format!("ignored: {why}"),
        },
        recovery_ms: report.elapsed.as_secs_f64() * 1e3,
        damaged_ranges: report.damaged.len(),
    };
    if args.output.json {
        print_json(&stats)?;
    } else {
        let mut out = table(&["metric", "value"]);
        let live_share = if stats.log_bytes == 0 {
            0.0
        } else {
            100.0 * stats.live_bytes as f64 / stats.log_bytes as f64
        };
        for (metric, value) in [
            ("runs", stats.runs.to_string()),
            ("run events", stats.events.to_string()),
            ("call events", stats.calls.to_string()),
            ("segments", stats.segments.to_string()),
            ("frames", stats.frames.to_string()),
            (
                "live bytes",
                format!("{} ({live_share:.1}% of the log)", bytes(stats.live_bytes)),
            ),
            ("log bytes", bytes(stats.log_bytes)),
            ("disk bytes", bytes(stats.disk_bytes)),
            ("index checkpoint", stats.checkpoint.clone()),
            ("open took", format!("{:.1} ms", stats.recovery_ms)),
            ("damaged ranges", stats.damaged_ranges.to_string()),
        ] {
            out.add_row(vec![metric.to_owned(), value]);
        }
        println!("{out}");
    }
    log.close()?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The number of segment files and the bytes of every file in the store directory.
fn store_files(dir: &std::path::Path) -> CliResult<(usize, u64)> {
    let (mut n_segments, mut total) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok((0, 0));
    };
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_file() {
            total += metadata.len();
            if entry.path().extension().is_some_and(|e| e == "seg") {
                n_segments += 1;
            }
        }
    }
    Ok((n_segments, total))
}
