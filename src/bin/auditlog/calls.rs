//! `auditlog calls`: dispatch call events newest first, with filters and paging.

use auditlog::model::{CallEvent, OutcomeKind, Timestamp};
use auditlog::{CallFilter, Storage};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, parse_time, print_json, table, when};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
    /// Only calls made for this caller.
    #[arg(long)]
    caller: Option<String>,
    /// Only calls of this tool.
    #[arg(long)]
    tool: Option<String>,
    /// Only calls with this outcome (success, execution_failed, invalid_args,
    /// capability_denied, rate_limited, tool_not_found).
    #[arg(long)]
    outcome: Option<OutcomeKind>,
    /// Calls at or after this time (RFC 3339, a date, or an age like 2h).
    #[arg(long, value_parser = parse_time)]
    since: Option<Timestamp>,
    /// Calls before this time.
    #[arg(long, value_parser = parse_time)]
    until: Option<Timestamp>,
    /// Skip this many calls.
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
    calls: &'a [CallEvent],
}

pub fn run(args: Args) -> CliResult {
    let log = args.dir.open_existing()?;
    let filter = CallFilter {
        caller_id: args.caller,
        tool_id: args.tool,
        outcome: args.outcome,
        since: args.since,
        until: args.until,
    };
    let total = log.count_calls(&filter)?;
    let calls = log.list_calls(&filter, args.offset, args.limit)?;
    let offset = args.offset.max(0);
    if args.output.json {
        print_json(&Page {
            total,
            offset,
            limit: auditlog::query::clamp_limit(args.limit),
            calls: &calls,
        })?;
    } else {
        let mut out = table(&["ts", "call", "tool", "caller", "outcome", "ms", "tier"]);
        for call in &calls {
            out.add_row(vec![
                when(call.ts),
                call.call_id.clone(),
                call.tool_id.clone(),
                call.caller_id.clone().unwrap_or_default(),
                call.outcome.kind().to_string(),
                call.duration_ms.to_string(),
                call.tier.clone(),
            ]);
        }
        println!("{out}");
        let first = if calls.is_empty() { 0 } else { offset + 1 };
        println!("calls {first}-{} of {total}", offset + calls.len() as i64);
    }
    log.close()?;
    Ok(std::process::ExitCode::SUCCESS)
}
