//! Measures the ingest hot path: per-call latency of `record_event` from one paced
//! producer, and sustained written throughput; with `shaped`, the same event recorded
//! as an event of a registered shape (`record_shaped`).
//!
//! Run in release: `cargo run --release --example ingest_latency -- [samples]`.
//! The stores are created in a temporary directory under `$AUDITLOG_BENCH_DIR` (default:
//! the system temporary directory); point it at a tmpfs such as `/dev/shm` to measure
//! the engine without the disk's fsync and writeback costs. `$AUDITLOG_BENCH_QUEUE_KIB`
//! sets each shard's ring size for the paced runs (default: the recorder's 8 MiB).
//! Each call is timed with two `Instant::now()` reads around it (vDSO `clock_gettime`,
//! no syscall); the cost of an empty pair of reads is measured and printed too, so the
//! figures include it rather than hide it. `Instant` is used instead of rdtsc so the
//! numbers are in nanoseconds on any machine without calibration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auditlog::ingest::{Backpressure, EventRef, EventShape, FieldValue, ShapedEventRef};
use auditlog::model::Timestamp;
use auditlog::{AuditLog, Config, Durability, IngestConfig, Recorded, Recorder};
use hdrhistogram::Histogram;

fn tempdir() -> tempfile::TempDir {
    match std::env::var_os("AUDITLOG_BENCH_DIR") {
        Some(parent) => tempfile::tempdir_in(parent).expect("tempdir in AUDITLOG_BENCH_DIR"),
        None => tempfile::tempdir().expect("tempdir"),
    }
}

fn open(dir: &std::path::Path, durability: Durability) -> Arc<AuditLog> {
    Arc::new(AuditLog::open(Config::new(dir).durability(durability)).expect("open store"))
}

/// A typical dispatch event: four small fields, about 100 bytes.
fn with_event<T>(seq: u64, f: impl FnOnce(&EventRef<'_>) -> T) -> T {
    let fields = [
        ("tool", FieldValue::Str("ref:echo.say")),
        ("duration_ms", FieldValue::U64(seq % 97)),
        ("ok", FieldValue::Bool(true)),
        ("score", FieldValue::F64(0.25)),
    ];
    let event = EventRef {
        run_id: "run-0123456789abcdef",
        sequence: seq,
        event_type: "tool_call",
        fields: &fields,
        created_at: Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + seq as i64),
    };
    f(&event)
}

/// The same event as an event of a registered shape: only the run id, sequence, time
/// and values are copied per call.
fn with_shaped<T>(seq: u64, f: impl FnOnce(&ShapedEventRef<'_>) -> T) -> T {
    let values = [
        FieldValue::Str("ref:echo.say"),
        FieldValue::U64(seq % 97),
        FieldValue::Bool(true),
        FieldValue::F64(0.25),
    ];
    let event = ShapedEventRef {
        run_id: "run-0123456789abcdef",
        sequence: seq,
        values: &values,
        created_at: Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + seq as i64),
    };
    f(&event)
}

/// The shape of [`with_shaped`]'s event.
fn event_shape(recorder: &Recorder) -> EventShape {
    (recorder.shape("tool_call", &["tool", "duration_ms", "ok", "score"])).expect("a valid shape")
}

/// How a run records its events: a function of the recorder and the sequence, made
/// once the recorder exists (a shape is registered with it).
trait Form: Copy {
    fn on(self, recorder: &Recorder) -> impl Fn(&Recorder, u64) -> Recorded;
    /// The sustained run's label (no durability, blocking).
    fn label(self) -> &'static str;
}

/// Events as `EventRef`s (`record_event`).
#[derive(Copy, Clone)]
struct Plain;

impl Form for Plain {
    fn on(self, _: &Recorder) -> impl Fn(&Recorder, u64) -> Recorded {
        |recorder: &Recorder, seq| with_event(seq, |e| recorder.record_event(e))
    }
    fn label(self) -> &'static str {
        "None/block"
    }
}

/// Events of a registered shape (`record_shaped`).
#[derive(Copy, Clone)]
struct Shaped;

impl Form for Shaped {
    fn on(self, recorder: &Recorder) -> impl Fn(&Recorder, u64) -> Recorded {
        let shape = event_shape(recorder);
        move |recorder: &Recorder, seq| with_shaped(seq, |e| recorder.record_shaped(&shape, e))
    }
    fn label(self) -> &'static str {
        "None/block, shaped"
    }
}

/// Recording calls made at a fixed rate, each timed: every call, and the accepted ones
/// alone (a drop takes a shorter path, no encode but a clock read, so mixing them would
/// flatter or hide the accept path).
struct Paced {
    period: Duration,
    next: Instant,
    all: Histogram<u64>,
    accepted: Histogram<u64>,
    n_dropped: u64,
}

impl Paced {
    fn new(rate_per_s: u64) -> Paced {
        let new_hist =
            || Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram");
        Paced {
            period: Duration::from_nanos(1_000_000_000 / rate_per_s),
            next: Instant::now(),
            all: new_hist(),
            accepted: new_hist(),
            n_dropped: 0,
        }
    }

    /// Waits for the next call's time, then makes and times it.
    fn call(&mut self, record: impl FnOnce() -> Recorded) {
        while Instant::now() < self.next {
            std::hint::spin_loop();
        }
        self.next += self.period;
        let t0 = Instant::now();
        let outcome = record();
        let elapsed = (t0.elapsed().as_nanos() as u64).max(1);
        self.all.record(elapsed).expect("in range");
        if outcome.is_accepted() {
            self.accepted.record(elapsed).expect("in range");
        } else {
            self.n_dropped += 1;
        }
    }
}

/// The percentiles, and the share of calls at or under the 50 ns p50 target (the
/// clock reads in steps on some hosts, so a p50 alone hides how near it is).
fn summary(h: &Histogram<u64>) -> String {
    format!(
        "n={} p50={}ns p99={}ns p99.9={}ns max={}ns, {:.1} % at most 50 ns",
        h.len(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        100.0 * h.count_between(0, 50) as f64 / h.len().max(1) as f64,
    )
}

fn paced(rate_per_s: u64, n_samples: u64, form: impl Form) {
    let dir = tempdir();
    let mut config = IngestConfig::default();
    if let Some(kib) = std::env::var_os("AUDITLOG_BENCH_QUEUE_KIB") {
        let kib: usize = kib.to_str().and_then(|s| s.parse().ok()).expect("KiB");
        config.queue_bytes = kib << 10;
    }
    let recorder = Recorder::start(open(dir.path(), Durability::None), config).expect("start");
    let record = form.on(&recorder);
    let mut paced = Paced::new(rate_per_s);
    let start = Instant::now();
    for seq in 1..=n_samples {
        paced.call(|| record(&recorder, seq));
    }
    let wall = start.elapsed();
    recorder.flush().expect("flush");
    let cpu_s = committer_cpu_s().unwrap_or(f64::NAN);
    let report = recorder.close(Duration::from_secs(120));
    println!(
        "paced {rate_per_s}/s: achieved={:.0}/s dropped={} written={} committer cpu={cpu_s:.2}s = {:.0} ns/record\n  all calls:      {}\n  accepted calls: {}",
        n_samples as f64 / wall.as_secs_f64(),
        paced.n_dropped,
        report.written,
        cpu_s * 1e9 / report.written.max(1) as f64,
        summary(&paced.all),
        summary(&paced.accepted),
    );
}

fn timer_overhead(n: u64) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram");
    for _ in 0..n {
        let t0 = Instant::now();
        let elapsed = t0.elapsed().as_nanos() as u64;
        hist.record(elapsed.max(1)).expect("in range");
    }
    println!(
        "timer overhead (empty Instant pair): p50={}ns p99={}ns p99.9={}ns",
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
    );
}

/// CPU seconds the committer thread has used so far (Linux `/proc`, 10 ms ticks): its
/// cost per record, independent of how much of a core the shared machine gave it.
fn committer_cpu_s() -> Option<f64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        // Another thread may end between the listing and this read: skip it.
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim() != "auditlog-commit" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the parenthesized name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        return Some(ticks / 100.0);
    }
    None
}

/// A recorder over a fresh store in a temporary directory (kept alive by the caller).
fn start_recorder(
    durability: Durability,
    backpressure: Backpressure,
) -> (tempfile::TempDir, Recorder) {
    let dir = tempdir();
    let log = open(dir.path(), durability);
    let config = IngestConfig::default().backpressure(backpressure);
    let recorder = Recorder::start(log, config).expect("start");
    (dir, recorder)
}

fn sustained(
    label: &str,
    durability: Durability,
    backpressure: Backpressure,
    n: u64,
    form: impl Form,
) {
    let (_dir, recorder) = start_recorder(durability, backpressure);
    let record = form.on(&recorder);
    let start = Instant::now();
    let mut n_accepted = 0u64;
    for seq in 1..=n {
        n_accepted += u64::from(record(&recorder, seq).is_accepted());
    }
    let written = close_and_summarize(&recorder, start);
    let metrics = recorder.metrics();
    println!(
        "sustained {label}: n={n} accepted={n_accepted} {written}; fsyncs={} bytes={} high_water={}/{} bytes",
        metrics.fsyncs,
        metrics.bytes_appended,
        metrics.queue_high_water_bytes,
        metrics.queue_capacity_bytes,
    );
}

/// One producer records `n` events with spin-loop hints between calls and no timer, for
/// a profiler to see the record call alone (`perf record`, then `perf annotate`).
///
/// It also prints what a call costs with no clock read around it: blocks of 10 000
/// iterations with calls alternate with blocks of the same loop without them, and the
/// median difference per iteration is the call's average cost (not a distribution).
fn spin_paced(n: u64, form: impl Form) {
    const BLOCK: u64 = 10_000;
    let (_dir, recorder) = start_recorder(Durability::None, Backpressure::Drop);
    let record = form.on(&recorder);
    let spin = || {
        for _ in 0..30 {
            std::hint::spin_loop();
        }
    };
    let mut n_accepted = 0u64;
    let mut differences = Vec::new();
    let mut seq = 0u64;
    while seq < n {
        let start = Instant::now();
        for i in 0..BLOCK {
            spin();
            std::hint::black_box(i);
        }
        let alone = start.elapsed();
        let start = Instant::now();
        for _ in 0..BLOCK {
            spin();
            seq += 1;
            n_accepted += u64::from(record(&recorder, seq).is_accepted());
        }
        let with_calls = start.elapsed();
        differences.push((with_calls.as_nanos() as f64 - alone.as_nanos() as f64) / BLOCK as f64);
    }
    differences.sort_by(f64::total_cmp);
    let at = |q: f64| differences[((differences.len() - 1) as f64 * q) as usize];
    println!(
        "spin-paced: {n_accepted} of {seq} accepted; a call with no timer, median over {} \
         blocks {:.1} ns (quartiles {:.1} and {:.1})",
        differences.len(),
        at(0.5),
        at(0.25),
        at(0.75),
    );
}

/// One producer records whole runs: a start, 20 events and a finish each, `n` records
/// in all. Reports what the committer spends per record, starts and finishes included.
/// Records run number `run`: a start, 20 events and a finish, each recording call made
/// through `call` (which may pace and time it).
fn record_run(
    recorder: &Recorder,
    run: u64,
    id: &mut String,
    call: &mut impl FnMut(&mut dyn FnMut() -> Recorded),
) {
    let inputs = [("prompt", FieldValue::Str("summarize the attached report"))];
    let stats = auditlog::model::RunStats {
        status: auditlog::model::Status::Ok,
        output: "a short summary".into(),
        runtime_seconds: 1.5,
        ..Default::default()
    };
    id.clear();
    id.push_str(&format!("run-{run:016x}"));
    let at = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + run as i64 * 1_000);
    let started = auditlog::ingest::RunRef {
        id,
        skill_id: "summarize",
        caller_id: "caller-0042",
        channel_id: "web",
        parent_run_id: "",
        inputs: &inputs,
        started_at: at,
    };
    call(&mut || recorder.record_run_started(&started));
    for seq in 1..=20 {
        let fields = [
            ("text", FieldValue::Str("a step of the run")),
            ("n", FieldValue::U64(seq)),
        ];
        let event = EventRef {
            run_id: id,
            sequence: seq,
            event_type: "step",
            fields: &fields,
            created_at: at,
        };
        call(&mut || recorder.record_event(&event));
    }
    call(&mut || recorder.record_run_finished(id, &stats, at));
}

fn sustained_runs(n: u64) {
    let (_dir, recorder) = start_recorder(Durability::None, Backpressure::Block);
    let start = Instant::now();
    let mut id = String::new();
    for run in 0..n / 22 {
        record_run(&recorder, run, &mut id, &mut |record| {
            let _ = record();
        });
    }
    let written = close_and_summarize(&recorder, start);
    println!("sustained runs (start, 20 events, finish), 1 producer: {written}");
}

/// Whole runs recorded at `rate_per_s` records a second by one producer with the
/// default drop policy: the index grows to `n / 22` runs and takes its periodic
/// checkpoints meanwhile. Reports the calls dropped and the call latency.
fn paced_runs(n: u64, rate_per_s: u64) {
    let (_dir, recorder) = start_recorder(Durability::None, Backpressure::Drop);
    let mut paced = Paced::new(rate_per_s);
    let start = Instant::now();
    let mut id = String::new();
    for run in 0..n / 22 {
        record_run(&recorder, run, &mut id, &mut |record| paced.call(record));
    }
    let written = close_and_summarize(&recorder, start);
    println!(
        "paced runs at {rate_per_s}/s: dropped={}, calls {}; {written}",
        paced.n_dropped,
        summary(&paced.all)
    );
}

/// One producer records `n` call events at a fixed rate, each call timed: the call event
/// of `auditlog bench` (five strings of 8 to 25 bytes, two capabilities), built before
/// the clock is read, as a dispatch server holds it before it records it.
fn paced_calls(n: u64, rate_per_s: u64) {
    let (_dir, recorder) = start_recorder(Durability::None, Backpressure::Drop);
    let mut paced = Paced::new(rate_per_s);
    let start = Instant::now();
    for seq in 0..n {
        let call = auditlog::model::CallEvent {
            ts: Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + seq as i64 * 1_000),
            call_id: format!("call-{seq:016x}"),
            tool_id: "ref:search.web_query".into(),
            caller_id: Some("caller-0042-agent-gateway".into()),
            granted_capabilities: vec!["net.http.get".into(), "fs.read.workspace".into()],
            duration_ms: seq % 97,
            outcome: auditlog::model::Outcome::Success,
            tier: "standard".into(),
            dry_run: false,
            schema_version: 3,
            secrets_resolved: false,
            cursor_page: Some(1),
        };
        paced.call(|| recorder.record_call(&call));
    }
    let written = close_and_summarize(&recorder, start);
    println!(
        "paced calls at {rate_per_s}/s: dropped={}, calls {}; {written}",
        paced.n_dropped,
        summary(&paced.all)
    );
}

/// Two producers record `n` call events in all, each stamped with the time of its call,
/// as dispatch threads do: the calls reach the committer through two shards, so the
/// call index sees their timestamps slightly out of order. Reports what the committer
/// spends per record.
fn sustained_calls(n: u64) {
    let (_dir, recorder) = start_recorder(Durability::None, Backpressure::Block);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for producer in 0..2u64 {
            let recorder = &recorder;
            scope.spawn(move || {
                for seq in 0..n / 2 {
                    let call = auditlog::model::CallEvent {
                        ts: Timestamp::now(),
                        call_id: format!("call-{producer}-{seq}"),
                        tool_id: "ref:search.web_query".into(),
                        caller_id: Some("caller-0042".into()),
                        granted_capabilities: Vec::new(),
                        duration_ms: seq % 97,
                        outcome: auditlog::model::Outcome::Success,
                        tier: "standard".into(),
                        dry_run: false,
                        schema_version: 3,
                        secrets_resolved: false,
                        cursor_page: None,
                    };
                    let _ = recorder.record_call(&call);
                }
            });
        }
    });
    let written = close_and_summarize(&recorder, start);
    println!("sustained calls, 2 producers, time-stamped at the call: {written}");
}

/// A recorder left idle for `seconds`: the CPU its committer spends polling an empty
/// queue, in milliseconds per second.
fn idle(seconds: u64) {
    let (_dir, recorder) = start_recorder(Durability::None, Backpressure::Drop);
    // The thread names itself once it runs: wait for that.
    let before = (0..1000)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(1));
            committer_cpu_s()
        })
        .expect("the committer thread is listed");
    std::thread::sleep(Duration::from_secs(seconds));
    let spent = committer_cpu_s().unwrap_or(f64::NAN) - before;
    println!(
        "idle for {seconds} s: committer cpu={spent:.2}s = {:.1} ms per second",
        spent * 1e3 / seconds as f64
    );
    recorder.close(Duration::from_secs(10));
}

/// Flushes and closes `recorder`, started at `start`; says what was written, how fast,
/// and what the committer spent per record.
fn close_and_summarize(recorder: &Recorder, start: Instant) -> String {
    recorder.flush().expect("flush");
    let cpu_s = committer_cpu_s().unwrap_or(f64::NAN);
    let report = recorder.close(Duration::from_secs(300));
    let elapsed = start.elapsed();
    format!(
        "written={} dropped={} in {:.3}s = {:.0} written/s; committer cpu={cpu_s:.2}s = {:.0} ns/record",
        report.written,
        report.dropped.total(),
        elapsed.as_secs_f64(),
        report.written as f64 / elapsed.as_secs_f64(),
        cpu_s * 1e9 / report.written.max(1) as f64,
    )
}

/// The floor under the committer: one thread appending ready-made records with
/// `append_each` in batches of 4096, no queue and no decode. The records are built
/// before the clock starts; each batch continues the run's sequence (a repeated
/// sequence would be refused as a duplicate).
fn log_floor(n: u64) {
    let dir = tempdir();
    let log = open(dir.path(), Durability::None);
    let batches: Vec<Vec<auditlog::Record>> = (0..n.div_ceil(4096))
        .map(|batch_idx| {
            (1..=4096)
                .map(|i| batch_idx * 4096 + i)
                .map(|seq| with_event(seq, |e| auditlog::Record::EventAppended(e.to_owned_event())))
                .collect()
        })
        .collect();
    let start = Instant::now();
    let mut n_written = 0u64;
    for batch in &batches {
        let results = log.append_each(batch);
        n_written += results.iter().filter(|r| r.is_ok()).count() as u64;
    }
    let elapsed = start.elapsed();
    assert_eq!(
        n_written,
        batches.len() as u64 * 4096,
        "every record written"
    );
    println!(
        "log floor (append_each of ready records, 1 thread, Durability::None): {n_written} in {:.3}s = {:.0} records/s",
        elapsed.as_secs_f64(),
        n_written as f64 / elapsed.as_secs_f64()
    );
}

/// One run of events recorded as `form` records them: `spin`, `sustained` (without
/// durability, blocking) or paced at a rate.
fn event_mode(mode: &str, n_samples: u64, form: impl Form) {
    match mode {
        "spin" => spin_paced(n_samples, form),
        "sustained" => sustained(
            form.label(),
            Durability::None,
            Backpressure::Block,
            n_samples,
            form,
        ),
        rate => paced(rate.parse().expect("rate is a number"), n_samples, form),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_samples: u64 = (args.get(1))
        .map(|s| s.parse().expect("samples is a number"))
        .unwrap_or(1_000_000);
    // An optional second argument runs only the paced run at that rate, with
    // `sustained` only the sustained run without durability (for profiling), or with
    // `calls` only the two-producer run of time-stamped calls (`calls <rate>`: one
    // producer paced, each call timed, the event of `auditlog bench`), with `runs` only the
    // run of whole runs (`runs <rate>`: paced, with the drop policy), or with `spin` a
    // timer-free loop for profiling that also prints a call's cost without a timer, or with
    // `idle` (the first argument then in seconds) what the committer spends with nothing
    // to do. `shaped` before any of `<rate>`, `spin` and `sustained` records the same
    // event as an event of a registered shape.
    if args.get(2).is_some_and(|a| a == "shaped") {
        match args.get(3) {
            Some(mode) => event_mode(mode, n_samples, Shaped),
            None => {
                paced(100_000, n_samples, Shaped);
                paced(500_000, n_samples, Shaped);
                event_mode("sustained", 2 * n_samples, Shaped);
            }
        }
        return;
    }
    if let Some(mode) = args.get(2) {
        let rate = || args.get(3).map(|r| r.parse().expect("rate is a number"));
        match mode.as_str() {
            "calls" => match rate() {
                Some(rate) => paced_calls(n_samples, rate),
                None => sustained_calls(n_samples),
            },
            "runs" => match rate() {
                Some(rate) => paced_runs(n_samples, rate),
                None => sustained_runs(n_samples),
            },
            "idle" => idle(n_samples),
            mode => event_mode(mode, n_samples, Plain),
        }
        return;
    }
    timer_overhead(n_samples);
    log_floor(2 * n_samples);
    paced(100_000, n_samples, Plain);
    paced(500_000, n_samples, Plain);
    let n_sustained = 2 * n_samples;
    event_mode("sustained", n_sustained, Plain);
    sustained(
        "None/drop",
        Durability::None,
        Backpressure::Drop,
        n_sustained,
        Plain,
    );
    sustained(
        "GroupCommit{2}/block",
        Durability::GroupCommit { interval_ms: 2 },
        Backpressure::Block,
        n_sustained,
        Plain,
    );
}
