//! `auditlog demo`: several threads simulate a dispatch server recording into a store
//! through the Storage API (runs with nested child runs, steps, tool calls and results,
//! errors, dispatch call events, session phase and verdict events) for a few seconds
//! with a progress bar; then the store is reopened and checked, figures are printed,
//! and one run's trace tree is drawn. Running it again adds to the same store.
//!
//! Deliberately absent for now: record latency percentiles and drop counts, which
//! belong to the non-blocking ingest front end; the demo records through the blocking
//! Storage calls.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use auditlog::model::{
    CALL_EVENT_SCHEMA_VERSION, CallEvent, Outcome, Payload, Run, RunEvent, RunStats, Status,
    Timestamp,
};
use auditlog::{AuditLog, CallFilter, Config, Storage};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::{CliResult, DirArg, OutputArg, bytes, print_json, table};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
    /// How long to record for, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// How many recording threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
}

/// What the recording threads did.
#[derive(Debug, Default)]
struct Totals {
    runs: u64,
    children: u64,
    events: u64,
    calls: u64,
    /// A top-level run with children and grandchildren, to draw.
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

    fn records(&self) -> u64 {
        // A run is two records: its start and its finish.
        self.runs * 2 + self.events + self.calls
    }
}

const TOOLS: [&str; 5] = [
    "web.search",
    "fs.read",
    "http_get",
    "email_send",
    "mcp_call",
];
const SKILLS: [&str; 4] = ["summarize", "triage", "research", "code_review"];
const MODELS: [&str; 2] = ["model-large", "model-small"];
const PHASES: [&str; 5] = ["propose", "execute", "observe", "evaluate", "decide"];

pub fn run(args: Args) -> CliResult {
    let dir = args.dir.dir;
    let log = Arc::new(AuditLog::open(Config::new(&dir))?);
    let (runs_before, events_before) = log.index_counts();
    let calls_before = log.count_calls(&CallFilter::default())?;
    if !args.output.json {
        println!(
            "opened {} ({} runs, {} events, {} calls already there; open took {:.1?})",
            dir.display(),
            runs_before,
            events_before,
            calls_before,
            log.recovery_report().elapsed
        );
    }

    let n_threads = args.threads.clamp(1, 64);
    let duration = Duration::from_secs_f64(args.seconds.clamp(0.1, 3600.0));
    let started = Instant::now();
    let deadline = started + duration;
    // Run ids carry the start time in base 36, so a second demo adds new runs.
    let stamp = base36(Timestamp::now().unix_millis() as u64);
    let n_records = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..n_threads)
        .map(|worker| {
            let log = log.clone();
            let stamp = stamp.clone();
            let n_records = n_records.clone();
            thread::spawn(move || record_runs(&log, worker, &stamp, deadline, &n_records))
        })
        .collect();

    let bar = ProgressBar::new(duration.as_millis() as u64).with_style(
        ProgressStyle::with_template("recording {bar:40} {elapsed}/{duration}  {msg}")
            .expect("a valid template"),
    );
    let done = AtomicBool::new(false);
    let totals = thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let elapsed = started.elapsed().min(duration);
                bar.set_position(elapsed.as_millis() as u64);
                let n = n_records.load(Ordering::Relaxed);
                bar.set_message(format!(
                    "{n} records, {:.0}/s",
                    n as f64 / started.elapsed().as_secs_f64()
                ));
                thread::sleep(Duration::from_millis(100));
            }
        });
        let mut totals = Totals::default();
        let mut failure = None;
        for worker in workers {
            match worker.join().expect("a recording thread panicked") {
                Ok(t) => totals.add(t),
                Err(e) => failure = Some(e),
            }
        }
        done.store(true, Ordering::Relaxed);
        match failure {
            Some(e) => Err(e),
            None => Ok(totals),
        }
    })?;
    bar.finish_and_clear();
    log.flush()?;
    let elapsed = started.elapsed();
    let journal = log.journal_stats()?;
    let log = Arc::try_unwrap(log).expect("every recording thread has joined");
    log.close()?;
    let before = (runs_before, events_before, calls_before);
    report(
        &dir,
        args.output.json,
        n_threads,
        &totals,
        elapsed,
        journal,
        before,
    )
}

/// What the demo did and found, printed as a table or as JSON.
#[derive(Debug, Serialize)]
struct DemoReport {
    threads: usize,
    seconds: f64,
    runs: u64,
    nested_runs: u64,
    events: u64,
    calls: u64,
    records_per_second: f64,
    mb_per_second: f64,
    fsyncs: u64,
    segments: usize,
    store_bytes: u64,
    reopen_ms: f64,
    frames_verified: u64,
    /// Every run, event and call recorded is in the reopened store.
    nothing_lost: bool,
    store_runs: u64,
    store_events: u64,
    store_calls: u64,
    example_run: Option<String>,
    #[serde(skip)]
    tree: Option<String>,
}

/// Reopens the store, checks every recorded row is back, prints figures and a tree.
fn report(
    dir: &std::path::Path,
    json: bool,
    n_threads: usize,
    totals: &Totals,
    elapsed: Duration,
    journal: auditlog::segment::JournalStats,
    before: (usize, u64, u64),
) -> CliResult {
    // Measured before the reopen preallocates a new active segment.
    let (mut segments, mut store_bytes) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_file() {
            store_bytes += metadata.len();
            segments += usize::from(entry.path().extension().is_some_and(|e| e == "seg"));
        }
    }
    let reopened_at = Instant::now();
    let log = AuditLog::open(Config::new(dir))?;
    let reopen = reopened_at.elapsed();
    let (n_runs, n_events) = log.index_counts();
    let n_calls = log.count_calls(&CallFilter::default())?;
    let expected = (
        before.0 as u64 + totals.runs,
        before.1 + totals.events,
        before.2 + totals.calls,
    );
    let seconds = elapsed.as_secs_f64();
    let tree = match &totals.example_run {
        Some(run_id) => Some(crate::tree::draw(&crate::tree::load(&log, run_id)?)),
        None => None,
    };
    let out = DemoReport {
        threads: n_threads,
        seconds,
        runs: totals.runs,
        nested_runs: totals.children,
        events: totals.events,
        calls: totals.calls,
        records_per_second: totals.records() as f64 / seconds,
        mb_per_second: journal.bytes_appended as f64 / seconds / 1e6,
        fsyncs: journal.n_fsyncs,
        segments,
        store_bytes,
        reopen_ms: reopen.as_secs_f64() * 1e3,
        frames_verified: log.recovery_report().n_frames,
        nothing_lost: (n_runs as u64, n_events, n_calls) == expected,
        store_runs: n_runs as u64,
        store_events: n_events,
        store_calls: n_calls,
        example_run: totals.example_run.clone(),
        tree,
    };
    log.close()?;
    if json {
        print_json(&out)?;
    } else {
        print_report(dir, &out);
    }
    Ok(if out.nothing_lost {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(dir: &std::path::Path, out: &DemoReport) {
    let mut figures = table(&["figure", "value"]);
    for (figure, value) in [
        ("recording threads", out.threads.to_string()),
        ("recorded for", format!("{:.2} s", out.seconds)),
        (
            "runs (nested)",
            format!("{} ({})", out.runs, out.nested_runs),
        ),
        ("run events", out.events.to_string()),
        ("call events", out.calls.to_string()),
        (
            "throughput",
            format!(
                "{:.0} records/s, {:.1} MB/s",
                out.records_per_second, out.mb_per_second
            ),
        ),
        (
            "fsyncs",
            format!(
                "{} ({:.0} records per fsync)",
                out.fsyncs,
                out.records_per_second * out.seconds / out.fsyncs.max(1) as f64
            ),
        ),
        ("segments", out.segments.to_string()),
        ("store size", bytes(out.store_bytes)),
        (
            "reopen (recovery + index)",
            format!(
                "{:.1} ms, {} frames verified",
                out.reopen_ms, out.frames_verified
            ),
        ),
        (
            "reopened store holds",
            format!(
                "{} runs, {} events, {} calls: {}",
                out.store_runs,
                out.store_events,
                out.store_calls,
                if out.nothing_lost {
                    "nothing lost"
                } else {
                    "MISMATCH"
                }
            ),
        ),
    ] {
        figures.add_row(vec![figure.to_owned(), value]);
    }
    println!("{figures}");
    if let (Some(run_id), Some(tree)) = (&out.example_run, &out.tree) {
        println!("trace tree of {run_id}:");
        print!("{tree}");
        println!(
            "try: auditlog show {run_id} --dir {0}   |   auditlog runs --dir {0} --limit 10",
            dir.display()
        );
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

/// One thread of the simulated dispatch server.
fn record_runs(
    log: &AuditLog,
    worker: usize,
    stamp: &str,
    deadline: Instant,
    n_records: &AtomicU64,
) -> Result<Totals, auditlog::Error> {
    let mut totals = Totals::default();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let root = format!("run-{stamp}-{worker}-{n}");
        let mut sim = RunSim::start(log, &root, "", n, n_records)?;
        sim.steps(2 + n % 3)?;
        // Every third run dispatches child runs mid-way; every sixth child has one of
        // its own.
        if n % 3 == 0 {
            for k in 1..=2 {
                let child = format!("{root}.c{k}");
                let mut child_sim = RunSim::start(log, &child, &root, n + k, n_records)?;
                child_sim.steps(2)?;
                if n % 6 == 0 && k == 1 {
                    let grandchild = format!("{child}.g1");
                    let mut g = RunSim::start(log, &grandchild, &child, n + 7, n_records)?;
                    g.steps(1)?;
                    totals.add(g.finish(log, n_records)?);
                    totals.children += 1;
                    if totals.example_run.is_none() {
                        totals.example_run = Some(root.clone());
                    }
                }
                totals.add(child_sim.finish(log, n_records)?);
                totals.children += 1;
            }
        }
        sim.steps(1)?;
        totals.add(sim.finish(log, n_records)?);
    }
    Ok(totals)
}

/// One simulated run: it records its own events and calls as a per-run writer would.
struct RunSim<'a> {
    log: &'a AuditLog,
    n_records: &'a AtomicU64,
    id: String,
    n: u64,
    sequence: u64,
    started: Instant,
    totals: Totals,
    tool_calls: u64,
    in_tokens: u64,
    out_tokens: u64,
    failed: bool,
}

impl<'a> RunSim<'a> {
    fn start(
        log: &'a AuditLog,
        id: &str,
        parent: &str,
        n: u64,
        n_records: &'a AtomicU64,
    ) -> Result<RunSim<'a>, auditlog::Error> {
        let mut run = Run::new(id, SKILLS[n as usize % SKILLS.len()]);
        run.caller_id = format!("caller-{}", n % 17);
        run.channel_id = ["slack", "api", "cron"][n as usize % 3].into();
        run.parent_run_id = parent.into();
        run.inputs
            .insert("prompt".into(), format!("task number {n}").into());
        log.start_run(&run)?;
        n_records.fetch_add(1, Ordering::Relaxed);
        let mut sim = RunSim {
            log,
            n_records,
            id: id.to_owned(),
            n,
            sequence: 0,
            started: Instant::now(),
            totals: Totals::default(),
            tool_calls: 0,
            in_tokens: 0,
            out_tokens: 0,
            failed: false,
        };
        sim.totals.runs = 1;
        sim.event(
            "resolved_model",
            json!({"model": MODELS[n as usize % MODELS.len()]}),
        )?;
        Ok(sim)
    }

    fn event(
        &mut self,
        event_type: &str,
        payload: serde_json::Value,
    ) -> Result<(), auditlog::Error> {
        self.sequence += 1;
        let payload: Payload = payload.as_object().cloned().unwrap_or_default();
        self.log.append_log(&RunEvent {
            run_id: self.id.clone(),
            sequence: self.sequence,
            event_type: event_type.into(),
            payload,
            created_at: Timestamp::now(),
        })?;
        self.totals.events += 1;
        self.n_records.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// `n_steps` model steps, each with one tool call and its result.
    fn steps(&mut self, n_steps: u64) -> Result<(), auditlog::Error> {
        for _ in 0..n_steps {
            let iter = self.sequence + 1;
            let (in_tokens, out_tokens) = (100 + iter * 7 % 50, 30 + iter * 3 % 20);
            self.in_tokens += in_tokens;
            self.out_tokens += out_tokens;
            let tool = TOOLS[(self.n + iter) as usize % TOOLS.len()];
            let secret = tool == "mcp_call" || tool == "email_send" || tool.starts_with("http_");
            let mut step = json!({
                "iter": iter,
                "step_ms": 40 + iter % 25,
                "text_len": 33,
                "model": MODELS[self.n as usize % MODELS.len()],
                "finish_reason": "tool_use",
                "in_tokens": in_tokens,
                "out_tokens": out_tokens,
            });
            if secret {
                step["text_redacted"] = true.into();
            } else {
                step["text"] = "looking up the next piece of evidence".into();
            }
            self.event("step", step)?;
            let call_id = format!("{}-call-{iter}", self.id);
            self.event(
                "tool_call",
                json!({"name": tool, "id": call_id, "args": {"q": format!("status of item {}", self.n)}}),
            )?;
            let outcome = match (self.n + iter) % 23 {
                0 => Outcome::ExecutionFailed {
                    code: "TIMEOUT".into(),
                    retryable: true,
                },
                7 => Outcome::RateLimited {
                    retry_after_ms: Some(250),
                },
                13 => Outcome::CapabilityDenied {
                    missing: vec!["net.external".into()],
                },
                _ => Outcome::Success,
            };
            let ok = outcome == Outcome::Success;
            self.event(
                "tool_result",
                json!({"name": tool, "id": call_id, "result": if ok { "ok: 3 items" } else { "failed" }, "truncated": false}),
            )?;
            self.log.record_call(&CallEvent {
                ts: Timestamp::now(),
                call_id,
                tool_id: tool.into(),
                caller_id: Some(format!("caller-{}", self.n % 17)),
                granted_capabilities: vec!["read".into()],
                duration_ms: 3 + (self.n + iter) % 40,
                outcome,
                tier: ["hot", "warm"][(iter % 2) as usize].into(),
                dry_run: false,
                schema_version: CALL_EVENT_SCHEMA_VERSION,
                secrets_resolved: secret,
                cursor_page: None,
            })?;
            self.totals.calls += 1;
            self.n_records.fetch_add(1, Ordering::Relaxed);
            self.tool_calls += 1;
            if !ok {
                self.failed = true;
                self.event("error", json!({"message": format!("{tool} failed")}))?;
            }
        }
        Ok(())
    }

    fn finish(mut self, log: &AuditLog, n_records: &AtomicU64) -> Result<Totals, auditlog::Error> {
        // Research runs record an iteration session: phases, then a verdict.
        if self.n % SKILLS.len() as u64 == 2 {
            for phase in PHASES {
                self.event(
                    "mission_phase_event",
                    json!({"iteration_index": 0, "phase": phase, "phase_status": "succeeded", "timestamp": Timestamp::now()}),
                )?;
            }
            self.event(
                "mission_verdict_event",
                json!({"iteration_index": 0, "verdict": if self.failed { "revise" } else { "accept" }, "verdict_reason": "evidence checked", "timestamp": Timestamp::now()}),
            )?;
        }
        let status = match self.n % 29 {
            _ if self.failed => Status::Error,
            5 => Status::Timeout,
            11 => Status::BudgetExceeded,
            _ => Status::Ok,
        };
        log.finish_run(
            &self.id,
            &RunStats {
                status,
                output: "done".into(),
                error: if status == Status::Ok {
                    String::new()
                } else {
                    format!("ended with {status}")
                },
                tool_calls: self.tool_calls,
                runtime_seconds: self.started.elapsed().as_secs_f64(),
                input_tokens: self.in_tokens,
                output_tokens: self.out_tokens,
                thinking_tokens: 0,
            },
        )?;
        n_records.fetch_add(1, Ordering::Relaxed);
        Ok(self.totals)
    }
}
