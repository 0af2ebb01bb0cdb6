//! `auditlog bench`: per-call latency of the recorder beside the tools a user would
//! pick instead, in one process run, on the same event, into files of one temporary
//! directory.
//!
//! Where it sits: a CLI subcommand built only with the `bench` feature (the peers'
//! crates are not in a default build). One file per system: `ours.rs`, `atd.rs`,
//! `appender.rs` (tracing with tracing-appender), `channel.rs` (crossbeam),
//! `sqlite.rs` (which also implements the whole `Storage` API for `benches/`).
//!
//! How each call is timed, the same for every system: the event is built first, then
//! two `Instant::now()` reads enclose the one call that hands it over, and the
//! difference goes into an HDR histogram per producer thread (merged afterwards).
//! Paced producers spin until each call's scheduled time; a system slower than the
//! schedule makes its producer fall behind, which shows as a lower throughput. A
//! producer that falls far behind stops at its scenario's deadline (three times the
//! planned time, plus a second), so one slow system cannot stretch the run: the
//! `calls` column then shows fewer calls than planned.
//!
//! # Invariants
//! - Every system records the event of `workload.rs`, writes to a file in the run's
//!   temporary directory and is given the same scenarios in the same order.
//! - Throughput is events handed over and not dropped, divided by the time from the
//!   first call until the system has written everything (its drain, flush or close
//!   included).
//! - Drops are what each system itself counts; `ours` counts by reason and sums here.

mod appender;
mod atd;
mod channel;
mod ours;
pub mod sqlite;
mod sqlite_peer;
pub mod workload;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{CliResult, OutputArg, print_json, table};

/// Measure per-call latency, throughput and drops of auditlog and its peers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Short scenarios (0.25 s paced, 3 bursts): the whole run takes well under a
    /// minute.
    #[arg(long)]
    quick: bool,
    /// Seconds each paced scenario offers load (default 2, or 0.25 with --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Bursts per burst scenario (default 10, or 3 with --quick).
    #[arg(long)]
    bursts: Option<u32>,
    /// Only these systems (comma-separated): auditlog, atd-runtime, tracing-appender,
    /// crossbeam, sqlite.
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    #[command(flatten)]
    output: OutputArg,
}

/// Every system, in the order they run and print.
pub const SYSTEMS: [&str; 5] = [
    ours::NAME,
    atd::NAME,
    appender::NAME,
    channel::NAME,
    sqlite_peer::NAME,
];

/// Calls of one burst, back to back, per producer.
const BURST_EVENTS: u64 = 10_000;
/// Idle time after each burst, in which the systems drain.
const BURST_IDLE: Duration = Duration::from_millis(50);
/// How many times its planned duration a scenario may take before its producers stop.
const DEADLINE_FACTOR: u32 = 3;
/// Added to every scenario's deadline.
const DEADLINE_SLACK: Duration = Duration::from_secs(1);
/// The histograms' range: 1 ns to 60 s at 3 significant digits.
const HISTOGRAM_MAX_NS: u64 = 60_000_000_000;

/// How a scenario's producers offer load.
#[derive(Copy, Clone, Debug)]
enum Pace {
    /// `events_per_s` in total over every producer, for `seconds`.
    Rate { events_per_s: u64, seconds: f64 },
    /// `n_bursts` times: `BURST_EVENTS` calls back to back, then `BURST_IDLE`.
    Burst { n_bursts: u32 },
}

#[derive(Clone, Debug)]
struct Scenario {
    name: String,
    n_producers: u64,
    pace: Pace,
}

impl Scenario {
    /// How long the scenario takes when every call is instant.
    fn planned(&self) -> Duration {
        match self.pace {
            Pace::Rate { seconds, .. } => Duration::from_secs_f64(seconds),
            Pace::Burst { n_bursts } => BURST_IDLE * n_bursts,
        }
    }

    fn calls_per_producer(&self) -> u64 {
        match self.pace {
            Pace::Rate {
                events_per_s,
                seconds,
            } => ((events_per_s as f64 * seconds) as u64 / self.n_producers).max(1),
            Pace::Burst { n_bursts } => u64::from(n_bursts) * BURST_EVENTS,
        }
    }
}

fn scenarios(seconds: f64, n_bursts: u32) -> Vec<Scenario> {
    let mut all = Vec::new();
    for n_producers in [1, 2] {
        for events_per_s in [100_000, 500_000] {
            all.push(Scenario {
                name: format!("paced {}k/s, {n_producers}p", events_per_s / 1000),
                n_producers,
                pace: Pace::Rate {
                    events_per_s,
                    seconds,
                },
            });
        }
        all.push(Scenario {
            name: format!("burst {}k, {n_producers}p", BURST_EVENTS / 1000),
            n_producers,
            pace: Pace::Burst { n_bursts },
        });
    }
    all
}

/// What a system reports once it has written everything.
pub struct Finished {
    /// Events the system refused or lost, as it counts them.
    pub n_dropped: u64,
}

/// One system under test, as the producers see it.
pub trait System: Sync {
    /// What one call hands over, built before the timed call.
    type Event;

    /// The event for sequence number `seq` (not timed).
    fn event(&self, seq: u64) -> Self::Event;

    /// The timed call: hands one event to the system.
    fn record(&self, event: &Self::Event);

    /// Runs a producer thread's whole loop; a system that needs per-thread setup
    /// (tracing's dispatcher) does it here, outside the timed calls.
    fn in_producer<R>(&self, produce: impl FnOnce() -> R) -> R {
        produce()
    }

    /// Waits until everything accepted is written, then stops.
    fn finish(self) -> Finished;
}

/// One row of the results.
#[derive(Debug, Serialize)]
struct Measured {
    system: &'static str,
    scenario: String,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    throughput_eps: u64,
    drops: u64,
    #[serde(skip)]
    n_calls: u64,
}

#[derive(Serialize)]
struct Report {
    results: Vec<Measured>,
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 3).expect("valid histogram bounds")
}

/// One producer's calls; returns its histogram of per-call nanoseconds.
fn produce<S: System>(
    system: &S,
    scenario: &Scenario,
    producer_idx: u64,
    deadline: Instant,
) -> Histogram<u64> {
    let mut hist = new_histogram();
    let n_calls = scenario.calls_per_producer();
    let seq_base = producer_idx << 40;
    let mut timed_call = |seq: u64| {
        let event = system.event(seq_base + seq);
        let t0 = Instant::now();
        system.record(&event);
        let elapsed_ns = t0.elapsed().as_nanos() as u64;
        hist.saturating_record(elapsed_ns.max(1));
        drop(event);
    };
    match scenario.pace {
        Pace::Rate { events_per_s, .. } => {
            let period = Duration::from_nanos(scenario.n_producers * 1_000_000_000 / events_per_s);
            // Producers interleave: producer k starts k/n of a period late.
            let mut next =
                Instant::now() + period * producer_idx as u32 / scenario.n_producers as u32;
            for seq in 0..n_calls {
                let mut now = Instant::now();
                while now < next {
                    std::hint::spin_loop();
                    now = Instant::now();
                }
                if now > deadline {
                    break;
                }
                next += period;
                timed_call(seq);
            }
        }
        Pace::Burst { n_bursts } => {
            for burst_idx in 0..u64::from(n_bursts) {
                if Instant::now() > deadline {
                    break;
                }
                for seq in 0..BURST_EVENTS {
                    timed_call(burst_idx * BURST_EVENTS + seq);
                }
                std::thread::sleep(BURST_IDLE);
            }
        }
    }
    hist
}

/// Runs one scenario on a fresh system.
fn measure<S: System>(name: &'static str, system: S, scenario: &Scenario) -> Measured {
    let started = Instant::now();
    let deadline = started + scenario.planned() * DEADLINE_FACTOR + DEADLINE_SLACK;
    let hists: Vec<Histogram<u64>> = std::thread::scope(|scope| {
        let producers: Vec<_> = (0..scenario.n_producers)
            .map(|producer_idx| {
                let system = &system;
                scope.spawn(move || {
                    system.in_producer(|| produce(system, scenario, producer_idx, deadline))
                })
            })
            .collect();
        producers
            .into_iter()
            .map(|p| p.join().expect("a producer panicked"))
            .collect()
    });
    let finished = system.finish();
    let elapsed = started.elapsed();
    let mut hist = new_histogram();
    for h in &hists {
        hist.add(h).expect("histograms share their bounds");
    }
    let n_calls = hist.len();
    let n_kept = n_calls.saturating_sub(finished.n_dropped);
    Measured {
        system: name,
        scenario: scenario.name.clone(),
        p50_ns: hist.value_at_quantile(0.50),
        p99_ns: hist.value_at_quantile(0.99),
        p999_ns: hist.value_at_quantile(0.999),
        max_ns: hist.max(),
        throughput_eps: (n_kept as f64 / elapsed.as_secs_f64()) as u64,
        drops: finished.n_dropped,
        n_calls,
    }
}

/// Opens `name` in `dir` and runs `scenario` on it.
fn measure_system(name: &str, dir: &std::path::Path, scenario: &Scenario) -> CliResult<Measured> {
    let file = dir.join(format!("{name}-{}", scenario_slug(&scenario.name)));
    Ok(match name {
        ours::NAME => measure(ours::NAME, ours::Ours::open(&file)?, scenario),
        atd::NAME => measure(atd::NAME, atd::Atd::open(&file)?, scenario),
        appender::NAME => measure(appender::NAME, appender::Appender::open(&file)?, scenario),
        channel::NAME => measure(channel::NAME, channel::Channel::open(&file)?, scenario),
        sqlite_peer::NAME => measure(
            sqlite_peer::NAME,
            sqlite_peer::Sqlite::open(&file)?,
            scenario,
        ),
        other => {
            return Err(format!(
                "unknown system `{other}`; expected one of {}",
                SYSTEMS.join(", ")
            )
            .into());
        }
    })
}

fn scenario_slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub fn run(args: Args) -> CliResult {
    let seconds = args.seconds.unwrap_or(if args.quick { 0.25 } else { 2.0 });
    let n_bursts = args.bursts.unwrap_or(if args.quick { 3 } else { 10 });
    if !(seconds > 0.0 && seconds <= 600.0) {
        return Err(format!("--seconds must be in (0, 600], not {seconds}").into());
    }
    let systems: Vec<&str> = if args.systems.is_empty() {
        SYSTEMS.to_vec()
    } else {
        args.systems.iter().map(String::as_str).collect()
    };
    let dir = tempfile::Builder::new()
        .prefix("auditlog-bench-peers-")
        .tempdir()?;
    let payload = workload::json_line_bytes(&workload::call_event(0));
    eprintln!(
        "auditlog bench: {} systems x {} scenarios, event {payload} bytes as JSON, files in {}",
        systems.len(),
        scenarios(seconds, n_bursts).len(),
        dir.path().display()
    );
    let mut results = Vec::new();
    for scenario in scenarios(seconds, n_bursts) {
        for name in &systems {
            let measured = measure_system(name, dir.path(), &scenario)?;
            eprintln!(
                "  {:<16} {:<18} p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns, {} events/s, {} dropped",
                measured.system,
                measured.scenario,
                measured.p50_ns,
                measured.p99_ns,
                measured.p999_ns,
                measured.max_ns,
                measured.throughput_eps,
                measured.drops
            );
            results.push(measured);
        }
    }
    if args.output.json {
        print_json(&Report { results })?;
    } else {
        print_tables(&results);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tables(results: &[Measured]) {
    let mut measured = table(&[
        "system", "scenario", "calls", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "events/s",
        "drops",
    ]);
    for m in results {
        measured.add_row(vec![
            m.system.to_owned(),
            m.scenario.clone(),
            m.n_calls.to_string(),
            m.p50_ns.to_string(),
            m.p99_ns.to_string(),
            m.p999_ns.to_string(),
            m.max_ns.to_string(),
            m.throughput_eps.to_string(),
            m.drops.to_string(),
        ]);
    }
    println!("{measured}");
    // How many times slower each peer's call is than ours, in the same scenario.
    let mut ratios = table(&["scenario", "peer", "p50 ×", "p99 ×", "p99.9 ×", "max ×"]);
    for ours in results.iter().filter(|m| m.system == ours::NAME) {
        for peer in results
            .iter()
            .filter(|m| m.system != ours::NAME && m.scenario == ours.scenario)
        {
            let ratio =
                |theirs: u64, ours: u64| format!("{:.1}", theirs as f64 / ours.max(1) as f64);
            ratios.add_row(vec![
                ours.scenario.clone(),
                peer.system.to_owned(),
                ratio(peer.p50_ns, ours.p50_ns),
                ratio(peer.p99_ns, ours.p99_ns),
                ratio(peer.p999_ns, ours.p999_ns),
                ratio(peer.max_ns, ours.max_ns),
            ]);
        }
    }
    println!("\nper-call latency of each peer over auditlog's (> 1: auditlog is faster)\n{ratios}");
}
