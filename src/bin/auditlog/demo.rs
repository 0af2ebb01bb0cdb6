//! `auditlog demo`: several threads simulate a dispatch server recording into a store
//! through the non-blocking front end a server uses on its hot path: a [`Recorder`],
//! a [`RunWriter`] per run (steps, tool calls and results, errors, the resolved model),
//! a [`Session`] per research run (phase and verdict events) and a [`CallSink`] for
//! dispatch call events, with nested child runs, for a few seconds with a progress
//! bar. Every call is timed. Then the recorder is closed, the store reopened and
//! checked, and throughput, record latency percentiles, drops by reason, store size
//! and one run's trace tree are printed. Running it again adds new runs to the store.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use auditlog::ingest::{DropCounts, FieldValue, RunRef};
use auditlog::model::{CALL_EVENT_SCHEMA_VERSION, CallEvent, Outcome, RunStats, Status, Timestamp};
use auditlog::session::{Phase, PhaseEvent, PhaseStatus, VerdictEvent};
use auditlog::writer::{StepObservation, TokenUsage, ToolCall};
use auditlog::{
    AuditLog, CallFilter, CallSink, Config, IngestConfig, Recorder, RunFilter, RunWriter, Session,
    Storage,
};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

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
    /// Record calls per second to aim at over all threads, as a server's load would
    /// come; 0 records as fast as the threads can (the queue then fills and drops).
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
}

/// What the recording threads did.
#[derive(Debug)]
struct Totals {
    runs: u64,
    children: u64,
    /// Record calls made (each timed): run starts, events, calls, finishes.
    n_calls_made: u64,
    /// Nanoseconds per record call.
    latency_ns: Histogram<u64>,
    /// A top-level run with children and grandchildren, to draw.
    example_run: Option<String>,
    /// A session recorded beside a research run, for `auditlog replay`.
    example_session: Option<String>,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            runs: 0,
            children: 0,
            n_calls_made: 0,
            // One nanosecond to a minute, three significant digits.
            latency_ns: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("valid histogram bounds"),
            example_run: None,
            example_session: None,
        }
    }

    fn add(&mut self, other: Totals) {
        self.runs += other.runs;
        self.children += other.children;
        self.n_calls_made += other.n_calls_made;
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms of the same bounds");
        self.example_run = self.example_run.take().or(other.example_run);
        self.example_session = self.example_session.take().or(other.example_session);
    }

    /// Runs `call` and records how long it took.
    #[inline]
    fn timed<T>(&mut self, call: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = call();
        let ns = started.elapsed().as_nanos() as u64;
        self.latency_ns.saturating_record(ns.max(1));
        self.n_calls_made += 1;
        out
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
const PHASES: [Phase; 5] = [
    Phase::Propose,
    Phase::Execute,
    Phase::Observe,
    Phase::Evaluate,
    Phase::Decide,
];

/// Rows of a store: runs, finished runs, events, calls.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Rows {
    runs: u64,
    finished: u64,
    events: u64,
    calls: u64,
}

impl Rows {
    fn of(log: &AuditLog) -> CliResult<Rows> {
        let (runs, events) = log.index_counts();
        let running = log.count_runs_filtered(&RunFilter {
            status: Some(Status::Running),
            include_dry_run: true,
            ..RunFilter::default()
        })?;
        Ok(Rows {
            runs: runs as u64,
            finished: runs as u64 - running,
            events,
            calls: log.count_calls(&CallFilter::default())?,
        })
    }

    /// Records these rows stand for: a run is a start and, once finished, a finish.
    fn records(&self) -> u64 {
        self.runs + self.finished + self.events + self.calls
    }
}

pub fn run(args: Args) -> CliResult {
    let dir = args.dir.dir;
    let log = Arc::new(AuditLog::open(Config::new(&dir))?);
    let before = Rows::of(&log)?;
    if !args.output.json {
        println!(
            "opened {} ({} runs, {} events, {} calls already there; open took {:.1?})",
            dir.display(),
            before.runs,
            before.events,
            before.calls,
            log.recovery_report().elapsed
        );
    }
    let recorder = Recorder::start(log.clone(), IngestConfig::default())?;

    let n_threads = args.threads.clamp(1, 64);
    let duration = Duration::from_secs_f64(args.seconds.clamp(0.1, 3600.0));
    let started = Instant::now();
    let deadline = started + duration;
    // Run ids carry the start time in base 36, so a second demo adds new runs.
    let stamp = base36(Timestamp::now().unix_millis() as u64);
    let n_made = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..n_threads)
        .map(|worker| {
            let recorder = recorder.clone();
            let stamp = stamp.clone();
            let n_made = n_made.clone();
            let pace = Pace {
                started,
                deadline,
                calls_per_second: args.rate as f64 / n_threads as f64,
            };
            thread::spawn(move || record_runs(&recorder, worker, &stamp, pace, &n_made))
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
                let n = n_made.load(Ordering::Relaxed);
                let metrics = recorder.metrics();
                bar.set_message(format!(
                    "{n} record calls, {:.0}/s, {} written, {} dropped",
                    n as f64 / started.elapsed().as_secs_f64(),
                    metrics.written,
                    metrics.dropped.total()
                ));
                thread::sleep(Duration::from_millis(100));
            }
        });
        let mut totals = Totals::new();
        for worker in workers {
            totals.add(worker.join().expect("a recording thread panicked"));
        }
        done.store(true, Ordering::Relaxed);
        totals
    });
    bar.finish_and_clear();
    // Close writes and syncs everything accepted.
    let closed = recorder.close(Duration::from_secs(60));
    let elapsed = started.elapsed();
    let metrics = recorder.metrics();
    drop(recorder);
    if !closed.completed {
        return Err("the recorder did not finish writing within a minute".into());
    }
    let log = Arc::try_unwrap(log).map_err(|_| "the log is still shared")?;
    log.close()?;
    report(
        &dir,
        args.output.json,
        n_threads,
        &totals,
        elapsed,
        &metrics,
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
    /// Record calls made (run starts, events, call events, finishes).
    record_calls: u64,
    /// Records the log acknowledged, and per second over the whole demo.
    written: u64,
    records_per_second: f64,
    mb_per_second: f64,
    /// Time of one record call, in nanoseconds.
    latency_ns: Latency,
    /// Records not written, by reason.
    dropped: DropCounts,
    dropped_total: u64,
    fsyncs: u64,
    segments: usize,
    store_bytes: u64,
    reopen_ms: f64,
    frames_verified: u64,
    /// Every record the log acknowledged is in the reopened store.
    nothing_lost: bool,
    store_runs: u64,
    store_events: u64,
    store_calls: u64,
    example_run: Option<String>,
    example_session: Option<String>,
    #[serde(skip)]
    tree: Option<String>,
}

/// Percentiles of the record call latency, in nanoseconds.
#[derive(Debug, Serialize)]
struct Latency {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

/// Reopens the store, checks every written record is back, prints figures and a tree.
fn report(
    dir: &std::path::Path,
    json: bool,
    n_threads: usize,
    totals: &Totals,
    elapsed: Duration,
    metrics: &auditlog::ingest::Metrics,
    before: Rows,
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
    let after = Rows::of(&log)?;
    let seconds = elapsed.as_secs_f64();
    let tree = match &totals.example_run {
        Some(run_id) => Some(crate::tree::draw(&crate::tree::load(&log, run_id)?)),
        None => None,
    };
    let histogram = &totals.latency_ns;
    let out = DemoReport {
        threads: n_threads,
        seconds,
        runs: totals.runs,
        nested_runs: totals.children,
        record_calls: totals.n_calls_made,
        written: metrics.written,
        records_per_second: metrics.written as f64 / seconds,
        mb_per_second: metrics.bytes_appended as f64 / seconds / 1e6,
        latency_ns: Latency {
            p50: histogram.value_at_quantile(0.5),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        },
        dropped: metrics.dropped,
        dropped_total: metrics.dropped.total(),
        fsyncs: metrics.fsyncs,
        segments,
        store_bytes,
        reopen_ms: reopen.as_secs_f64() * 1e3,
        frames_verified: log.recovery_report().n_frames,
        // The drop reports the recorder wrote are records too, but not rows.
        nothing_lost: after.records() - before.records() == metrics.written,
        store_runs: after.runs,
        store_events: after.events,
        store_calls: after.calls,
        example_run: totals.example_run.clone(),
        example_session: totals.example_session.clone(),
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
    let micros = |ns: u64| format!("{:.2} µs", ns as f64 / 1e3);
    let dropped = if out.dropped_total == 0 {
        "none".to_owned()
    } else {
        let d = &out.dropped;
        format!(
            "{} (queue full {}, oversized {}, after shutdown {}, rejected {}, I/O failure {})",
            out.dropped_total,
            d.queue_full,
            d.oversized,
            d.after_shutdown,
            d.rejected,
            d.io_failure
        )
    };
    for (figure, value) in [
        ("recording threads", out.threads.to_string()),
        ("recorded for", format!("{:.2} s", out.seconds)),
        (
            "runs (nested)",
            format!("{} ({})", out.runs, out.nested_runs),
        ),
        ("record calls", out.record_calls.to_string()),
        (
            "throughput",
            format!(
                "{} records written, {:.0} records/s, {:.1} MB/s",
                out.written, out.records_per_second, out.mb_per_second
            ),
        ),
        (
            "record call latency",
            format!(
                "p50 {}, p99 {}, p99.9 {}, max {}",
                micros(out.latency_ns.p50),
                micros(out.latency_ns.p99),
                micros(out.latency_ns.p999),
                micros(out.latency_ns.max)
            ),
        ),
        ("dropped", dropped),
        (
            "fsyncs",
            format!(
                "{} ({:.0} records per fsync)",
                out.fsyncs,
                out.written as f64 / out.fsyncs.max(1) as f64
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
    if let Some(session) = &out.example_session {
        println!("     auditlog replay {session} --dir {}", dir.display());
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

/// When a recording thread records, and how fast.
#[derive(Copy, Clone, Debug)]
struct Pace {
    started: Instant,
    deadline: Instant,
    /// 0: as fast as it can.
    calls_per_second: f64,
}

impl Pace {
    /// Sleeps while the thread is ahead of its rate.
    fn wait(&self, n_calls_made: u64) {
        if self.calls_per_second <= 0.0 {
            return;
        }
        let due =
            self.started + Duration::from_secs_f64(n_calls_made as f64 / self.calls_per_second);
        let now = Instant::now();
        if due > now {
            thread::sleep((due - now).min(self.deadline.saturating_duration_since(now)));
        }
    }
}

/// One thread of the simulated dispatch server.
fn record_runs(
    recorder: &Recorder,
    worker: usize,
    stamp: &str,
    pace: Pace,
    n_made: &AtomicU64,
) -> Totals {
    let mut totals = Totals::new();
    let sink = CallSink::new(recorder.clone());
    let mut n = 0u64;
    while Instant::now() < pace.deadline {
        pace.wait(totals.n_calls_made);
        n += 1;
        let before = totals.n_calls_made;
        let root = format!("run-{stamp}-{worker}-{n}");
        let mut sim = RunSim::start(recorder, &mut totals, &root, "", n);
        sim.steps(&mut totals, &sink, 2 + n % 3);
        // Every third run dispatches child runs mid-way; every sixth child has one of
        // its own.
        if n % 3 == 0 {
            for k in 1..=2 {
                let child = format!("{root}.c{k}");
                let mut child_sim = RunSim::start(recorder, &mut totals, &child, &root, n + k);
                child_sim.steps(&mut totals, &sink, 2);
                if n % 6 == 0 && k == 1 {
                    let grandchild = format!("{child}.g1");
                    let mut g = RunSim::start(recorder, &mut totals, &grandchild, &child, n + 7);
                    g.steps(&mut totals, &sink, 1);
                    g.finish(&mut totals);
                    totals.children += 1;
                    if totals.example_run.is_none() {
                        totals.example_run = Some(root.clone());
                    }
                }
                child_sim.finish(&mut totals);
                totals.children += 1;
            }
        }
        sim.steps(&mut totals, &sink, 1);
        // Research runs drive an iteration session: phases, then a verdict.
        if n % SKILLS.len() as u64 == 2 {
            let session_id = format!("mission-{stamp}-{worker}-{n}");
            let session = Session::new(recorder.clone(), session_id.clone());
            for phase in PHASES {
                let now = Timestamp::now();
                totals.timed(|| {
                    session.phase(&PhaseEvent {
                        iteration_index: 0,
                        phase,
                        status: PhaseStatus::Succeeded,
                        started_at: now,
                        ended_at: now,
                        error_message: None,
                    })
                });
            }
            totals.timed(|| {
                session.verdict(&VerdictEvent {
                    iteration_index: 0,
                    verdict: if sim.failed { "revise" } else { "accept" },
                    verdict_reason: "evidence checked",
                    revision_rationale: sim.failed.then_some("a tool failed"),
                })
            });
            totals.example_session.get_or_insert(session_id);
        }
        sim.finish(&mut totals);
        n_made.fetch_add(totals.n_calls_made - before, Ordering::Relaxed);
    }
    totals
}

/// One simulated run, recorded through its own `RunWriter`.
struct RunSim {
    writer: RunWriter,
    id: String,
    n: u64,
    iteration: u64,
    started: Instant,
    failed: bool,
}

impl RunSim {
    fn start(recorder: &Recorder, totals: &mut Totals, id: &str, parent: &str, n: u64) -> RunSim {
        let prompt = format!("task number {n}");
        let caller = format!("caller-{}", n % 17);
        let run = RunRef {
            id,
            skill_id: SKILLS[n as usize % SKILLS.len()],
            caller_id: &caller,
            channel_id: ["slack", "api", "cron"][n as usize % 3],
            parent_run_id: parent,
            inputs: &[("prompt", FieldValue::Str(&prompt))],
            started_at: Timestamp::now(),
        };
        let _ = totals.timed(|| recorder.record_run_started(&run));
        totals.runs += 1;
        RunSim {
            // Closing never waits for durability: the demo closes the recorder at the end.
            writer: RunWriter::new(recorder.clone(), id).close_wait(Duration::ZERO),
            id: id.to_owned(),
            n,
            iteration: 0,
            started: Instant::now(),
            failed: false,
        }
    }

    /// `n_steps` model steps, each with one tool call, its result and its call event.
    fn steps(&mut self, totals: &mut Totals, sink: &CallSink, n_steps: u64) {
        for _ in 0..n_steps {
            self.iteration += 1;
            let iter = self.iteration;
            let tool = TOOLS[(self.n + iter) as usize % TOOLS.len()];
            let model = MODELS[self.n as usize % MODELS.len()];
            totals.timed(|| {
                self.writer.on_step(
                    iter,
                    &StepObservation {
                        text: "  looking up the next piece of evidence  ",
                        model: Some(model),
                        finish_reason: Some("tool_use"),
                        usage: TokenUsage {
                            input: 100 + iter * 7 % 50,
                            output: 30 + iter * 3 % 20,
                            thinking: 0,
                            cache_read: iter % 2 * 64,
                        },
                        tool_names: &[tool],
                    },
                )
            });
            let call_id = format!("{}-call-{iter}", self.id);
            let args = format!(r#"{{"q":"status of item {}"}}"#, self.n);
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
            totals.timed(|| {
                self.writer.on_tool(
                    &ToolCall {
                        name: tool,
                        args: &args,
                        id: &call_id,
                    },
                    if ok { "ok: 3 items" } else { "failed" },
                )
            });
            let secret = auditlog::writer::is_secret_bearing_tool(tool);
            let call = CallEvent {
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
            };
            let _ = totals.timed(|| sink.on_call(&call));
            if !ok {
                self.failed = true;
                totals.timed(|| self.writer.log_error(&format!("{tool} failed")));
            }
        }
    }

    fn finish(self, totals: &mut Totals) {
        let status = match self.n % 29 {
            _ if self.failed => Status::Error,
            5 => Status::Timeout,
            11 => Status::BudgetExceeded,
            _ => Status::Ok,
        };
        let stats = RunStats {
            status,
            output: "done".into(),
            error: if status == Status::Ok {
                String::new()
            } else {
                format!("ended with {status}")
            },
            runtime_seconds: self.started.elapsed().as_secs_f64(),
            ..RunStats::default()
        };
        let _ = totals.timed(|| self.writer.close(&stats));
    }
}
