//! `auditlog replay SESSION`: rebuild a session's iteration history from its phase and
//! verdict events (SPEC §5) and print it, one row per phase.

use auditlog::session::{Iteration, replay};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, print_json, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The session id (the run id its events were recorded under).
    session: String,
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Serialize)]
struct Replayed<'a> {
    session: &'a str,
    iterations: &'a [Iteration],
}

pub fn run(args: Args) -> CliResult {
    let log = args.dir.open_existing()?;
    let iterations = replay(&log, &args.session)?;
    log.close()?;
    if args.output.json {
        print_json(&Replayed {
            session: &args.session,
            iterations: &iterations,
        })?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if iterations.is_empty() {
        println!("session {} has no phase or verdict events", args.session);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let mut rows = table(&["iteration", "phase", "status", "error", "verdict", "reason"]);
    for iteration in &iterations {
        let index = iteration
            .iteration_index
            .map_or("-".to_owned(), |i| i.to_string());
        let verdict = iteration
            .verdict
            .clone()
            .unwrap_or_else(|| "(none)".to_owned());
        let reason = iteration.verdict_reason.clone().unwrap_or_default();
        if iteration.phases.is_empty() {
            rows.add_row(vec![
                index,
                "-".into(),
                "-".into(),
                String::new(),
                verdict,
                reason,
            ]);
            continue;
        }
        let last = iteration.phases.len() - 1;
        for (phase_idx, phase) in iteration.phases.iter().enumerate() {
            let (verdict, reason) = if phase_idx == last {
                (verdict.clone(), reason.clone())
            } else {
                (String::new(), String::new())
            };
            rows.add_row(vec![
                index.clone(),
                phase.phase.clone(),
                phase.status.clone(),
                phase.error_message.clone().unwrap_or_default(),
                verdict,
                reason,
            ]);
        }
    }
    println!("{rows}");
    println!(
        "{} iteration(s) in session {}",
        iterations.len(),
        args.session
    );
    Ok(std::process::ExitCode::SUCCESS)
}
