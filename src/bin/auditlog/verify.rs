//! `auditlog verify`: verify every frame of a store, changing nothing, and report
//! damage. Exits non-zero when any damage is found.

use std::process::ExitCode;

use auditlog::{AuditLog, Config};

use crate::DirArg;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DirArg,
}

pub fn run(args: Args) -> Result<ExitCode, auditlog::Error> {
    let dir = args.dir.dir;
    if !dir.is_dir() {
        eprintln!("auditlog: {} is not a store directory", dir.display());
        return Ok(ExitCode::from(2));
    }
    let report = AuditLog::verify(&Config::new(&dir))?;
    println!(
        "{}: {} segment(s), {} frame(s), {} bytes verified in {:?}",
        dir.display(),
        report.n_segments,
        report.n_frames,
        report.bytes_verified,
        report.elapsed
    );
    if let Some((segment, offset)) = &report.torn_tail {
        println!(
            "torn tail cut in {} at byte {offset} (an interrupted last write)",
            segment.display()
        );
    }
    for damaged in &report.damaged {
        println!(
            "DAMAGED {} bytes {}..{}: {}",
            damaged.segment.display(),
            damaged.damage.offset,
            damaged.damage.offset + damaged.damage.len_bytes,
            damaged.damage.kind
        );
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
