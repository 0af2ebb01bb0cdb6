//! The `auditlog` command: run the demo, inspect and verify a store.

mod demo;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operate an auditlog store.
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
    /// Verify every frame of a store and report what recovery finds.
    Verify(verify::Args),
}

/// The store directory option shared by every subcommand.
#[derive(Debug, clap::Args)]
struct DirArg {
    /// The store directory.
    #[arg(long, default_value = "./auditlog-data")]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Verify(args) => verify::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("auditlog: {error}");
            ExitCode::FAILURE
        }
    }
}
