//! `auditlog demo`: several threads record agent runs (with nested child runs, steps,
//! tool calls and dispatch-call events) into a store, then the store is reopened and
//! every record verified.

use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use auditlog::codec::RunFinished;
use auditlog::model::{
    CALL_EVENT_SCHEMA_VERSION, CallEvent, Outcome, Payload, Run, RunEvent, RunStats, Status,
    Timestamp,
};
use auditlog::{AuditLog, Config, Lsn, Record};

use crate::DirArg;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DirArg,
    /// How long to record for, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// How many recording threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

pub fn run(args: Args) -> Result<ExitCode, auditlog::Error> {
    let dir = args.dir.dir;
    let log = Arc::new(AuditLog::open(Config::new(&dir))?);
    let before = log.records_from(Lsn(0))?.len();
    println!(
        "opened {} ({} records already there)",
        dir.display(),
        before
    );
    let report = log.recovery_report();
    println!(
        "recovery: {} segment(s), {} frame(s), {} bytes verified in {:?}{}",
        report.n_segments,
        report.n_frames,
        report.bytes_verified,
        report.elapsed,
        if report.is_clean() {
            ""
        } else {
            " (damage found: run `auditlog verify`)"
        }
    );

    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds.max(0.1));
    let started = Instant::now();
    let stamp = Timestamp::now().unix_nanos();
    let workers: Vec<_> = (0..args.threads.max(1))
        .map(|worker| {
            let log = log.clone();
            thread::spawn(move || record_runs(&log, worker, stamp, deadline))
        })
        .collect();
    let mut totals = Totals::default();
    for worker in workers {
        totals.add(worker.join().expect("a recording thread panicked")?);
    }
    log.flush()?;
    let elapsed = started.elapsed();
    let stats = log.journal_stats()?;
    let n_records = totals.runs * 2 + totals.events + totals.calls;
    println!(
        "recorded {} runs ({} nested), {} run events and {} call events in {:.2?} with {} thread(s)",
        totals.runs, totals.children, totals.events, totals.calls, elapsed, args.threads
    );
    println!(
        "throughput: {:.0} records/s, {:.1} MB/s; {} fsyncs; {} segment(s), {:.1} MiB on disk",
        n_records as f64 / elapsed.as_secs_f64(),
        stats.bytes_appended as f64 / elapsed.as_secs_f64() / 1e6,
        stats.n_fsyncs,
        stats.n_segments,
        stats.disk_bytes as f64 / (1 << 20) as f64
    );
    let example = totals.example_run.clone();
    match Arc::try_unwrap(log) {
        Ok(log) => log.close()?,
        Err(_) => unreachable!("every recording thread has joined"),
    }

    // Reopen: recovery verifies every frame, and every record must be back.
    let log = AuditLog::open(Config::new(&dir))?;
    let records = log.records_from(Lsn(0))?;
    let expected = before as u64 + n_records;
    println!(
        "reopened: {} records verified in {:?}, {} expected: {}",
        records.len(),
        log.recovery_report().elapsed,
        expected,
        if records.len() as u64 == expected {
            "nothing lost"
        } else {
            "MISMATCH"
        }
    );
    if let Some(run_id) = example {
        print_trace(&records, &run_id);
    }
    log.close()?;
    Ok(if records.len() as u64 == expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug, Default)]
struct Totals {
    runs: u64,
    children: u64,
    events: u64,
    calls: u64,
    example_run: Option<String>,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.runs += other.runs;
        self.children += other.children;
        self.events += other.events;
        self.calls += other.calls;
        self.example_run = self.example_run.take().or(other.example_run);
    }
}

const TOOLS: [&str; 4] = ["web.search", "fs.read", "http_get", "email_send"];
const SKILLS: [&str; 3] = ["summarize", "triage", "research"];

fn record_runs(
    log: &AuditLog,
    worker: usize,
    stamp: i64,
    deadline: Instant,
) -> Result<Totals, auditlog::Error> {
    let mut totals = Totals::default();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let root = format!("run-{stamp}-{worker}-{n}");
        let mut batch = Vec::with_capacity(64);
        push_run(&mut batch, &root, "", n, &mut totals);
        // Every third run dispatches a child run.
        if n % 3 == 0 {
            push_run(&mut batch, &format!("{root}.child"), &root, n, &mut totals);
            totals.children += 1;
        }
        log.append_batch(&batch)?;
        totals.example_run.get_or_insert(root);
    }
    Ok(totals)
}

fn push_run(batch: &mut Vec<Record>, id: &str, parent: &str, n: u64, totals: &mut Totals) {
    let mut run = Run::new(id, SKILLS[n as usize % SKILLS.len()]);
    run.caller_id = format!("caller-{}", n % 17);
    run.channel_id = "demo".into();
    run.parent_run_id = parent.into();
    run.inputs
        .insert("prompt".into(), format!("task number {n}").into());
    batch.push(Record::RunStarted(run));
    let mut sequence = 0;
    let mut event = |event_type: &str, payload: serde_json::Value| {
        sequence += 1;
        let payload: Payload = payload.as_object().cloned().unwrap_or_default();
        Record::EventAppended(RunEvent {
            run_id: id.into(),
            sequence,
            event_type: event_type.into(),
            payload,
            created_at: Timestamp::now(),
        })
    };
    let n_steps = 3 + n % 4;
    for iter in 1..=n_steps {
        batch.push(event("step", serde_json::json!({"iter": iter, "text": "thinking about the next tool call", "in_tokens": 120, "out_tokens": 40})));
        let tool = TOOLS[(n + iter) as usize % TOOLS.len()];
        let call_id = format!("{id}-call-{iter}");
        batch.push(event(
            "tool_call",
            serde_json::json!({"name": tool, "id": call_id, "args": {"q": "status"}}),
        ));
        let failed = (n + iter) % 11 == 0;
        batch.push(event("tool_result", serde_json::json!({"name": tool, "id": call_id, "result": if failed { "timeout" } else { "ok" }, "truncated": false})));
        batch.push(Record::CallRecorded(CallEvent {
            ts: Timestamp::now(),
            call_id,
            tool_id: tool.into(),
            caller_id: Some(format!("caller-{}", n % 17)),
            granted_capabilities: vec!["read".into()],
            duration_ms: 3 + (n + iter) % 40,
            outcome: if failed {
                Outcome::ExecutionFailed {
                    code: "TIMEOUT".into(),
                    retryable: true,
                }
            } else {
                Outcome::Success
            },
            tier: "warm".into(),
            dry_run: false,
            schema_version: CALL_EVENT_SCHEMA_VERSION,
            secrets_resolved: tool.starts_with("http_"),
            cursor_page: None,
        }));
        totals.events += 3;
        totals.calls += 1;
    }
    let status = if n % 13 == 0 {
        Status::Error
    } else {
        Status::Ok
    };
    batch.push(Record::RunFinished(RunFinished {
        run_id: id.into(),
        stats: RunStats {
            status,
            output: "done".into(),
            error: if status == Status::Error {
                "tool budget exhausted".into()
            } else {
                String::new()
            },
            tool_calls: n_steps,
            runtime_seconds: 0.25 * n_steps as f64,
            input_tokens: 120 * n_steps,
            output_tokens: 40 * n_steps,
            thinking_tokens: 0,
        },
        finished_at: Timestamp::now(),
    }));
    totals.runs += 1;
}

/// Prints one run's records as a small trace tree (its child runs indented).
fn print_trace(records: &[(Lsn, Record)], run_id: &str) {
    println!("trace of {run_id}:");
    let child_prefix = format!("{run_id}.child");
    for (lsn, record) in records {
        let (owner, line) = match record {
            Record::RunStarted(run) => (
                run.id.as_str(),
                format!("start  skill={} caller={}", run.skill_id, run.caller_id),
            ),
            Record::EventAppended(e) => (
                e.run_id.as_str(),
                format!("#{:<3} {}", e.sequence, e.event_type),
            ),
            Record::RunFinished(f) => (
                f.run_id.as_str(),
                format!(
                    "finish {} after {:.2}s",
                    f.stats.status, f.stats.runtime_seconds
                ),
            ),
            _ => continue,
        };
        if owner == run_id {
            println!("  ├─ {line}  (lsn {lsn})");
        } else if owner == child_prefix {
            println!("  │   └─ child {line}  (lsn {lsn})");
        }
    }
}
