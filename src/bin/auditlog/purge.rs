//! `auditlog purge --before TIME`: delete every run started before a time, with its
//! events (SPEC §3.13). Without `--yes` it only says how many runs it would delete.

use auditlog::model::Timestamp;
use auditlog::{RunFilter, Storage};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, parse_time, print_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Delete runs started before this time (RFC 3339, a date, or an age like 30d).
    #[arg(long, value_parser = parse_time)]
    before: Timestamp,
    /// Really delete; without it the command only counts.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Serialize)]
struct Purged {
    before: Timestamp,
    n_runs: u64,
    deleted: bool,
}

pub fn run(args: Args) -> CliResult {
    let log = args.dir.open_existing()?;
    let out = if args.yes {
        Purged {
            before: args.before,
            n_runs: log.purge_older_than(args.before)?,
            deleted: true,
        }
    } else {
        let filter = RunFilter {
            include_dry_run: true,
            until: Some(args.before),
            ..RunFilter::default()
        };
        Purged {
            before: args.before,
            n_runs: log.count_runs_filtered(&filter)?,
            deleted: false,
        }
    };
    log.close()?;
    if args.output.json {
        print_json(&out)?;
    } else if out.deleted {
        println!(
            "deleted {} run(s) started before {}, with their events; the deletion is durable",
            out.n_runs, out.before
        );
    } else {
        println!(
            "would delete {} run(s) started before {}, with their events; pass --yes to delete",
            out.n_runs, out.before
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
