//! The `auditlog` command: run the demo, inspect, verify, purge and export a store.
//!
//! Where it sits: outside the library, using only its public API. One file per
//! subcommand; this file holds the options and output helpers they share.
//!
//! # Invariants
//! - Every subcommand takes `--dir` (default `./auditlog-data`) and, where it prints
//!   data, `--json` (one JSON document on stdout) instead of a table.
//! - A command that reads a store never creates one: a missing directory is an error.
//! - Errors go to stderr as `auditlog: <what went wrong>` with a non-zero exit code:
//!   1 for a failure or damage found, 2 for a usage error (clap's convention).

#[cfg(feature = "bench")]
mod bench;
#[cfg(not(feature = "bench"))]
#[path = "bench/disabled.rs"]
mod bench;
mod calls;
mod compact;
mod demo;
mod export;
mod purge;
mod replay;
mod runs;
mod show;
mod stats;
mod tail;
mod tree;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use auditlog::model::Timestamp;
use auditlog::{AuditLog, Config};
use clap::{Parser, Subcommand};
use comfy_table::{ContentArrangement, Table, presets};

/// Operate an auditlog store: record a demo, query runs and calls, verify, export.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a dispatch server recording agent runs into a store, then report.
    Demo(demo::Args),
    /// List runs, newest first, with the filters of SPEC §3.11 and paging.
    Runs(runs::Args),
    /// Show one run: its summary and every event, in sequence order.
    Show(show::Args),
    /// Draw a run's parent chain and its child runs as a tree.
    Tree(tree::Args),
    /// List dispatch call events, newest first, with filters and paging.
    Calls(calls::Args),
    /// Print the newest records of the log, or the newest events of one run.
    Tail(tail::Args),
    /// Print counts, segments and bytes of a store.
    Stats(stats::Args),
    /// Verify every frame and the index checkpoint; exits non-zero on any damage.
    Verify(verify::Args),
    /// Delete every run started before a time, with its events.
    Purge(purge::Args),
    /// Reclaim the space of purged and superseded records now.
    Compact(compact::Args),
    /// Rebuild a session's iteration history from its phase and verdict events.
    Replay(replay::Args),
    /// Export runs, events and calls as JSON lines or Parquet, partitioned by day.
    Export(export::Args),
    /// Measure per-call latency, throughput and drops beside the peers (feature `bench`).
    Bench(bench::Args),
}

/// The store directory option shared by every subcommand.
#[derive(Debug, clap::Args)]
struct DirArg {
    /// The store directory.
    #[arg(long, default_value = "./auditlog-data")]
    dir: PathBuf,
}

impl DirArg {
    /// Opens an existing store; a missing directory is an error, never a new store.
    fn open_existing(&self) -> CliResult<AuditLog> {
        if !self.dir.is_dir() {
            return Err(format!(
                "no store at {}: the directory does not exist (pass --dir, or record one with `auditlog demo`)",
                self.dir.display()
            )
            .into());
        }
        Ok(AuditLog::open(Config::new(&self.dir))?)
    }
}

/// The output option shared by every subcommand that prints data.
#[derive(Debug, clap::Args)]
struct OutputArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// What a subcommand returns: an exit code, or an error printed as `auditlog: ...`.
type CliResult<T = ExitCode> = Result<T, Box<dyn std::error::Error>>;

/// Parses a time given on the command line: RFC 3339 (`2026-11-21T10:00:00Z`), a UTC
/// date (`2026-11-21`, midnight), or an age before now (`90s`, `15m`, `12h`, `30d`).
fn parse_time(text: &str) -> Result<Timestamp, String> {
    if let Ok(at) = Timestamp::parse_rfc3339(text) {
        return Ok(at);
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        return Ok(Timestamp::from_datetime(midnight));
    }
    let last = text.chars().last();
    let unit_seconds = match last {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => 0,
    };
    let digits = &text[..text.len() - last.map_or(0, char::len_utf8)];
    let amount = digits.parse::<u32>().ok();
    match amount {
        Some(amount) if unit_seconds > 0 => {
            let nanos = i64::from(amount) * unit_seconds * 1_000_000_000;
            Ok(Timestamp::from_unix_nanos(
                Timestamp::now().unix_nanos().saturating_sub(nanos),
            ))
        }
        _ => Err(format!(
            "`{text}` is not a time: use RFC 3339 (2026-11-21T10:00:00Z), a date (2026-11-21) or an age (90s, 15m, 12h, 30d)"
        )),
    }
}

/// A table in the house style.
fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

/// A timestamp for a table cell: RFC 3339 UTC to the millisecond.
fn when(at: Timestamp) -> String {
    at.to_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A run time for people: milliseconds below a second, seconds above.
fn runtime(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

/// Cuts `text` to at most `max` characters, marking the cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> CliResult<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A byte count for people: `12.3 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Show(args) => show::run(args),
        Command::Tree(args) => tree::run(args),
        Command::Calls(args) => calls::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Compact(args) => compact::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Purge(args) => purge::run(args),
        Command::Export(args) => export::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("auditlog: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_dates_and_ages() {
        assert_eq!(
            parse_time("2026-11-21").unwrap(),
            Timestamp::parse_rfc3339("2026-11-21T00:00:00Z").unwrap()
        );
        assert!(parse_time("2026-11-21T10:00:00+01:00").is_ok());
        let age = Timestamp::now().unix_nanos() - parse_time("2h").unwrap().unix_nanos();
        assert!((7_199_000_000_000..7_201_000_000_000).contains(&age));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("").is_err());
    }

    #[test]
    fn cut_marks_the_cut_and_keeps_characters_whole() {
        assert_eq!(cut("héllo", 2), "hé…");
        assert_eq!(cut("hi", 2), "hi");
    }

    #[test]
    fn run_times_pick_their_unit() {
        assert_eq!(runtime(0.0123), "12.3 ms");
        assert_eq!(runtime(75.0), "75.00 s");
    }

    #[test]
    fn byte_counts_read_like_people_write_them() {
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
