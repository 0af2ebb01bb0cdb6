//! `auditlog show RUN`: one run's summary and every event in sequence order.

use auditlog::Storage;
use auditlog::model::{Run, RunEvent};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, cut, print_json, table, when};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id.
    run: String,
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Serialize)]
struct Shown<'a> {
    run: &'a Run,
    events: &'a [RunEvent],
}

pub fn run(args: Args) -> CliResult {
    let log = args.dir.open_existing()?;
    let run = log.get_run(&args.run)?;
    let events = log.list_logs_by_run(&args.run)?;
    if args.output.json {
        print_json(&Shown {
            run: &run,
            events: &events,
        })?;
    } else {
        let mut summary = table(&["field", "value"]);
        let finished = run.finished_at.map(when).unwrap_or_else(|| "-".into());
        let inputs = serde_json::to_string(&run.inputs)?;
        for (field, value) in [
            ("run", run.id.clone()),
            ("parent", run.parent_run_id.clone()),
            ("skill", run.skill_id.clone()),
            ("caller", run.caller_id.clone()),
            ("channel", run.channel_id.clone()),
            ("status", run.status.to_string()),
            ("started", when(run.started_at)),
            ("finished", finished),
            ("runtime", crate::runtime(run.runtime_seconds)),
            ("tool calls", run.tool_calls_count.to_string()),
            (
                "tokens in/out/thinking",
                format!(
                    "{}/{}/{}",
                    run.total_input_tokens, run.total_output_tokens, run.total_thinking_tokens
                ),
            ),
            ("inputs", cut(&inputs, 200)),
            ("output", cut(&run.output, 200)),
            ("error", cut(&run.error, 200)),
        ] {
            summary.add_row(vec![field.to_owned(), value]);
        }
        println!("{summary}");
        let mut log_table = table(&["seq", "at", "type", "payload"]);
        for event in &events {
            log_table.add_row(vec![
                event.sequence.to_string(),
                when(event.created_at),
                event.event_type.clone(),
                cut(&serde_json::to_string(&event.payload)?, 100),
            ]);
        }
        println!("{log_table}");
        println!("{} event(s)", events.len());
    }
    log.close()?;
    Ok(std::process::ExitCode::SUCCESS)
}
