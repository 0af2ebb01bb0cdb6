//! `auditlog verify`: verify every frame of a store and its index checkpoint, changing
//! nothing (a store in use can be verified), and report damage. Exits non-zero when
//! any damage is found.

use std::process::ExitCode;

use auditlog::index::checkpoint;
use auditlog::vfs::OsVfs;
use auditlog::{AuditLog, Config};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, print_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Debug, Serialize)]
struct Damaged {
    segment: String,
    offset: u64,
    len_bytes: u64,
    kind: String,
}

#[derive(Debug, Serialize)]
struct Report {
    clean: bool,
    segments: usize,
    frames: u64,
    bytes_verified: u64,
    elapsed_ms: f64,
    /// Where an interrupted last write would be cut (not damage).
    torn_tail: Option<(String, u64)>,
    damaged: Vec<Damaged>,
    /// `missing`, `valid (...)` or `damaged: why`.
    checkpoint: String,
    checkpoint_ok: bool,
}

pub fn run(args: Args) -> CliResult {
    let dir = args.dir.dir;
    if !dir.is_dir() {
        return Err(format!(
            "no store at {}: the directory does not exist",
            dir.display()
        )
        .into());
    }
    let report = AuditLog::verify(&Config::new(&dir))?;
    let (checkpoint, checkpoint_ok) = match checkpoint::load(&OsVfs, &dir) {
        Ok(None) => (
            "missing (open rebuilds the index from the log)".to_owned(),
            true,
        ),
        Ok(Some(loaded)) => (
            format!(
                "valid: its checksum verifies and its index is consistent; it covers the log below {}",
                loaded.coverage.covered
            ),
            true,
        ),
        Err(why) => (
            format!("DAMAGED: {why} (open ignores it and rebuilds the index from the log)"),
            false,
        ),
    };
    let out = Report {
        clean: report.is_clean() && checkpoint_ok,
        segments: report.n_segments,
        frames: report.n_frames,
        bytes_verified: report.bytes_verified,
        elapsed_ms: report.elapsed.as_secs_f64() * 1e3,
        torn_tail: report
            .torn_tail
            .as_ref()
            .map(|(path, offset)| (path.display().to_string(), *offset)),
        damaged: report
            .damaged
            .iter()
            .map(|d| Damaged {
                segment: d.segment.display().to_string(),
                offset: d.damage.offset,
                len_bytes: d.damage.len_bytes,
                kind: d.damage.kind.to_string(),
            })
            .collect(),
        checkpoint,
        checkpoint_ok,
    };
    if args.output.json {
        print_json(&out)?;
    } else {
        println!(
            "{}: {} segment(s), {} frame(s), {} bytes verified in {:.1} ms",
            dir.display(),
            out.segments,
            out.frames,
            out.bytes_verified,
            out.elapsed_ms
        );
        if let Some((segment, offset)) = &out.torn_tail {
            println!(
                "torn tail: {segment} ends at byte {offset} (an interrupted last write; open cuts it)"
            );
        }
        for damaged in &out.damaged {
            println!(
                "DAMAGED {} bytes {}..{}: {}",
                damaged.segment,
                damaged.offset,
                damaged.offset + damaged.len_bytes,
                damaged.kind
            );
        }
        println!("index checkpoint: {}", out.checkpoint);
        println!(
            "{}",
            if out.clean {
                "OK: every frame verifies"
            } else {
                "DAMAGE FOUND: damaged ranges are never returned as data; see above"
            }
        );
    }
    Ok(if out.clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
