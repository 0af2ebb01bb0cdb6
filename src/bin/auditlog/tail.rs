//! `auditlog tail`: the newest records of the log, or the newest events of one run,
//! oldest of them first (as `tail` prints a file).
//!
//! `tail -f` then prints new records as they are written, until interrupted. It reads
//! the segment files with [`StoreFollower`] and never opens the store, so it follows a
//! store another process is writing (and holding the lock of) just as well as an idle
//! one. Each record is printed as one line: text columns, or one JSON object with
//! `--json`.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use auditlog::follow::FollowStart;
use auditlog::limits::FOLLOW_POLL_INTERVAL_MS_DEFAULT;
use auditlog::model::Timestamp;
use auditlog::{AuditLog, Config, Follow, Lsn, Record, Storage, StoreFollower};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, cut, print_json, table, when};

/// Bytes of the log read back per try when looking for the newest records; doubled
/// until enough records are found.
const TAIL_WINDOW_BYTES: u64 = 64 << 10;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many records (or events of the run) to print.
    #[arg(short = 'n', long, default_value_t = 20)]
    lines: usize,
    /// Print the newest events of this run instead of the newest records of the log.
    #[arg(long)]
    run: Option<String>,
    /// Then print new records as they are written, until interrupted; works on a store
    /// another process has open.
    #[arg(short = 'f', long)]
    follow: bool,
    /// With `--follow`: milliseconds between two looks at the store.
    #[arg(long, default_value_t = FOLLOW_POLL_INTERVAL_MS_DEFAULT)]
    poll_ms: u64,
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

/// One line of the tail.
#[derive(Debug, Serialize)]
struct Line {
    lsn: Option<u64>,
    kind: &'static str,
    /// The run (or call) the record belongs to.
    id: String,
    at: Option<Timestamp>,
    what: String,
}

fn line_of(lsn: Lsn, record: &Record) -> Line {
    let (kind, id, at, what) = match record {
        Record::RunStarted(run) => (
            "run_started",
            run.id.clone(),
            Some(run.started_at),
            format!(
                "skill={} caller={} parent={}",
                run.skill_id, run.caller_id, run.parent_run_id
            ),
        ),
        Record::RunFinished(finish) => (
            "run_finished",
            finish.run_id.clone(),
            Some(finish.finished_at),
            format!(
                "{} after {:.2}s",
                finish.stats.status, finish.stats.runtime_seconds
            ),
        ),
        Record::EventAppended(event) => (
            "event",
            event.run_id.clone(),
            Some(event.created_at),
            format!(
                "#{} {} {}",
                event.sequence,
                event.event_type,
                serde_json::to_string(&event.payload).unwrap_or_default()
            ),
        ),
        Record::CallRecorded(call) => (
            "call",
            call.call_id.clone(),
            Some(call.ts),
            format!(
                "{} {} {}ms",
                call.tool_id,
                call.outcome.kind(),
                call.duration_ms
            ),
        ),
        Record::Purge(purge) => (
            "purge",
            String::new(),
            Some(purge.purged_at),
            format!("runs started before {}", purge.before),
        ),
        Record::DropReport(drop) => (
            "drop_report",
            String::new(),
            Some(drop.last_at),
            format!(
                "{} event(s) dropped: {}",
                drop.n_dropped,
                drop.reason.as_str()
            ),
        ),
    };
    Line {
        lsn: Some(lsn.0),
        kind,
        id,
        at,
        what,
    }
}

/// The newest `n` records of the log: reads back a growing window from the end.
fn newest_records(log: &AuditLog, n: usize) -> CliResult<Vec<(Lsn, Record)>> {
    // Right after open everything is durable, so the durable LSN is the end of the log.
    let end = log.durable_lsn()?.0;
    let mut window = TAIL_WINDOW_BYTES;
    loop {
        let from = end.saturating_sub(window);
        let mut records = log.records_from(Lsn(from))?;
        if records.len() >= n || from == 0 {
            let skip = records.len().saturating_sub(n);
            return Ok(records.split_off(skip));
        }
        window = window.saturating_mul(2);
    }
}

pub fn run(args: Args) -> CliResult {
    if args.follow {
        return follow(&args);
    }
    let log = args.dir.open_existing()?;
    let lines: Vec<Line> = match &args.run {
        Some(run_id) => {
            // A run that was never started may still have events (SPEC §3.4), so an
            // unknown id with no events is the only error.
            let events = log.list_logs_by_run(run_id)?;
            if events.is_empty() {
                log.get_run(run_id)?;
            }
            let skip = events.len().saturating_sub(args.lines);
            events[skip..]
                .iter()
                .map(|event| Line {
                    lsn: None,
                    kind: "event",
                    id: event.run_id.clone(),
                    at: Some(event.created_at),
                    what: format!(
                        "#{} {} {}",
                        event.sequence,
                        event.event_type,
                        serde_json::to_string(&event.payload).unwrap_or_default()
                    ),
                })
                .collect()
        }
        None => newest_records(&log, args.lines)?
            .iter()
            .map(|(lsn, record)| line_of(*lsn, record))
            .collect(),
    };
    log.close()?;
    if args.output.json {
        print_json(&lines)?;
    } else {
        let mut out = table(&["lsn", "at", "kind", "id", "what"]);
        for line in &lines {
            out.add_row(vec![
                line.lsn.map(|l| l.to_string()).unwrap_or_default(),
                line.at.map(when).unwrap_or_default(),
                line.kind.to_owned(),
                line.id.clone(),
                cut(&line.what, 100),
            ]);
        }
        println!("{out}");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `tail -f`: the newest `lines` records (of the run, with `--run`), then every new one
/// as it is written. Returns when stdout is closed; otherwise runs until interrupted.
fn follow(args: &Args) -> CliResult {
    let dir = &args.dir.dir;
    if !dir.is_dir() {
        return Err(format!(
            "no store at {}: the directory does not exist",
            dir.display()
        )
        .into());
    }
    let filter = match &args.run {
        Some(run_id) => Follow::Run(run_id.clone()),
        None => Follow::All,
    };
    let mut follower = StoreFollower::new(&Config::new(dir), FollowStart::Beginning)?;
    let mut newest = VecDeque::with_capacity(args.lines.min(4096));
    follower.poll(|lsn, record| {
        if filter.matches(&record) && args.lines > 0 {
            if newest.len() == args.lines {
                newest.pop_front();
            }
            newest.push_back(line_of(lsn, &record));
        }
    })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let interval = Duration::from_millis(args.poll_ms.clamp(1, 60_000));
    let mut lines: Vec<Line> = newest.into();
    loop {
        for line in lines.drain(..) {
            let written = if args.output.json {
                serde_json::to_writer(&mut out, &line)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            } else {
                writeln!(
                    out,
                    "{:>12}  {}  {:<12}  {}  {}",
                    line.lsn.unwrap_or_default(),
                    line.at.map(when).unwrap_or_default(),
                    line.kind,
                    line.id,
                    cut(&line.what, 100)
                )
            };
            // A reader that went away (`| head`) ends the follow.
            if written.and_then(|()| out.flush()).is_err() {
                return Ok(std::process::ExitCode::SUCCESS);
            }
        }
        std::thread::sleep(interval);
        follower.poll(|lsn, record| {
            if filter.matches(&record) {
                lines.push(line_of(lsn, &record));
            }
        })?;
    }
}
