//! `auditlog runs`: runs newest first, with the filters of SPEC §3.11 and paging.

use auditlog::model::{Run, Status};
use auditlog::{RunFilter, Storage};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, parse_time, print_json, table, when};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
    /// Only runs with this status (running, ok, error, timeout, budget_exceeded,
    /// dry_run, preempted, lane_busy).
    #[arg(long)]
    status: Option<Status>,
    /// Only runs of this skill.
    #[arg(long)]
    skill: Option<String>,
    /// Only runs started by this caller.
    #[arg(long)]
    caller: Option<String>,
    /// Only runs on this channel.
    #[arg(long)]
    channel: Option<String>,
    /// Only top-level runs (no parent).
    #[arg(long)]
    top_level: bool,
    /// Also list dry runs.
    #[arg(long)]
    include_dry_run: bool,
    /// Runs started at or after this time (RFC 3339, a date, or an age like 2h).
    #[arg(long, value_parser = parse_time)]
    since: Option<auditlog::model::Timestamp>,
    /// Runs started before this time.
    #[arg(long, value_parser = parse_time)]
    until: Option<auditlog::model::Timestamp>,
    /// Skip this many runs.
    #[arg(long, default_value_t = 0)]
    offset: i64,
    /// Page size, 1 to 500 (anything else becomes 50).
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

#[derive(Serialize)]
struct Page<'a> {
    total: u64,
    offset: i64,
    limit: usize,
    runs: &'a [Run],
}

pub fn run(args: Args) -> CliResult {
    let log = args.dir.open_existing()?;
    let filter = RunFilter {
        status: args.status,
        skill_id: args.skill,
        caller_id: args.caller,
        channel_id: args.channel,
        top_level_only: args.top_level,
        include_dry_run: args.include_dry_run,
        since: args.since,
        until: args.until,
    };
    let total = log.count_runs_filtered(&filter)?;
    let runs = log.list_runs_filtered(&filter, args.offset, args.limit)?;
    let offset = args.offset.max(0);
    if args.output.json {
        print_json(&Page {
            total,
            offset,
            limit: auditlog::query::clamp_limit(args.limit),
            runs: &runs,
        })?;
    } else {
        let mut out = table(&[
            "run",
            "parent",
            "skill",
            "caller",
            "status",
            "started",
            "runtime",
            "tools",
            "tokens in/out",
        ]);
        for run in &runs {
            out.add_row(vec![
                run.id.clone(),
                run.parent_run_id.clone(),
                run.skill_id.clone(),
                run.caller_id.clone(),
                run.status.to_string(),
                when(run.started_at),
                crate::runtime(run.runtime_seconds),
                run.tool_calls_count.to_string(),
                format!("{}/{}", run.total_input_tokens, run.total_output_tokens),
            ]);
        }
        println!("{out}");
        let first = if runs.is_empty() { 0 } else { offset + 1 };
        println!("runs {first}-{} of {total}", offset + runs.len() as i64);
    }
    log.close()?;
    Ok(std::process::ExitCode::SUCCESS)
}
