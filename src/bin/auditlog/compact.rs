//! `auditlog compact`: reclaim the space of purged and superseded records now, by
//! deleting segments with nothing live and rewriting mostly-dead ones.

use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, print_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Serialize)]
struct Compacted {
    n_passes: usize,
    n_segments_deleted: usize,
    n_segments_rewritten: usize,
    n_frames_removed: u64,
    bytes_before: u64,
    bytes_after: u64,
    bytes_copied: u64,
    copy_ms: f64,
}

pub fn run(args: Args) -> CliResult {
    let log = args.dir.open_existing()?;
    let report = log.compact()?;
    log.close()?;
    let out = Compacted {
        n_passes: report.n_passes,
        n_segments_deleted: report.n_segments_deleted,
        n_segments_rewritten: report.n_segments_rewritten,
        n_frames_removed: report.n_frames_removed,
        bytes_before: report.bytes_before,
        bytes_after: report.bytes_after,
        bytes_copied: report.bytes_copied,
        copy_ms: report.copy_elapsed.as_secs_f64() * 1e3,
    };
    if args.output.json {
        print_json(&out)?;
    } else {
        println!(
            "compacted in {} pass(es): {} segment(s) deleted, {} rewritten, {} dead record(s) removed; sealed segments {} → {} bytes",
            out.n_passes,
            out.n_segments_deleted,
            out.n_segments_rewritten,
            out.n_frames_removed,
            out.bytes_before,
            out.bytes_after
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
