//! Differential test of the recorder: random sequences of record calls from one
//! producer, and from two at once on ids of their own, against the same records
//! appended one at a time to a second log, checked against its index as the recorder's
//! committer checks them (`AuditLog::append_each`). The calls are run starts, events,
//! finishes and call events, valid and not, through the borrowed calls and as owned
//! records (events also as events of a registered shape), with fields that take the inline path and fields that take the slow path
//! (strings past the inline size, nested JSON, repeated keys, more fields than the
//! transcoder takes).
//!
//! The recorder blocks when its queues are full, or (a third test) drops, with queues
//! small enough that most cases fill them: a call dropped for want of room is counted
//! and never reaches the log.
//!
//! What the recorder's log holds must be what the direct log accepted, in the same
//! order within each run's events and finishes, each run's starts and each call id's
//! calls (see [`grouped`] for why a start may move against events). Every record the
//! direct log refused, and every one the recording call refused itself, must be
//! counted under the reason the log gave (oversized or rejected), in the close report
//! and in the log's in-band drop reports. Nothing else may be dropped, and every call
//! is written or counted once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use auditlog::codec::RunFinished;
use auditlog::ingest::{
    Backpressure, CloseReport, DropCounts, EventRef, FieldValue, RunRef, ShapedEventRef,
};
use auditlog::model::{
    CALL_EVENT_SCHEMA_VERSION, CallEvent, DropReason, Outcome, RunStats, Status, Timestamp,
};
use auditlog::{
    AuditLog, Config, Durability, Error, IngestConfig, Lsn, Record, Recorded, Recorder,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The largest record either log takes: small, so long fields make some oversized.
const RECORD_BYTES_MAX: usize = 4096;

/// Run ids a start may name: three valid ones, then an empty one and one over the
/// length limit, which every call refuses. Each producer has its own, after `prefix`.
fn run_ids(prefix: &str) -> [String; 5] {
    [
        format!("{prefix}run-a"),
        format!("{prefix}run-b"),
        format!("{prefix}run-ü-中"),
        String::new(),
        "r".repeat(auditlog::limits::ID_BYTES_MAX + 1),
    ]
}
const N_RUN_IDS: usize = 5;
/// A run no start names (after the producer's prefix): its finishes are always
/// refused, its events kept (SPEC §3.4).
const NEVER_STARTED: &str = "run-never";
/// Call ids, after the producer's prefix but for the empty one.
const CALL_IDS: [&str; 4] = ["call-1", "call-2", "call-ü", ""];
/// Tool ids: the empty one is refused by the log, after the call has taken it.
const TOOL_IDS: [&str; 2] = ["ref:echo.say", ""];
const KEYS: [&str; 5] = [
    "tool",
    "ok",
    "n",
    "ключ",
    "a-key-of-exactly-32-bytes-length",
];
const EVENT_TYPES: [&str; 3] = ["step", "tool_call", "a custom type"];

#[derive(Clone)]
enum FieldOwned {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Json(Value),
}

/// Strings shown by their length and first characters, so a failing case stays
/// readable.
impl std::fmt::Debug for FieldOwned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldOwned::Str(v) if v.len() > 16 => {
                let head: String = v.chars().take(4).collect();
                write!(f, "Str({head:?}.. {} bytes)", v.len())
            }
            other => write!(f, "{:?}", other.as_ref()),
        }
    }
}

impl FieldOwned {
    fn as_ref(&self) -> FieldValue<'_> {
        match self {
            FieldOwned::Null => FieldValue::Null,
            FieldOwned::Bool(v) => FieldValue::Bool(*v),
            FieldOwned::I64(v) => FieldValue::I64(*v),
            FieldOwned::U64(v) => FieldValue::U64(*v),
            FieldOwned::F64(v) => FieldValue::F64(*v),
            FieldOwned::Str(v) => FieldValue::Str(v),
            FieldOwned::Json(v) => FieldValue::Json(v),
        }
    }
}

/// Which sequence an event takes, from the highest this producer has recorded for
/// its run: the next one, that one again, or 0 (which every call refuses).
#[derive(Copy, Clone, Debug)]
enum Seq {
    Next,
    Repeat,
    Zero,
}

/// How an event is recorded: `record_event`, `Recorder::record` of the owned event, or
/// `record_shaped` with a shape of its type and keys registered first (the last field
/// of each key: a shape's keys are distinct, and the payload keeps the last).
#[derive(Copy, Clone, Debug)]
enum How {
    Borrowed,
    Owned,
    Shaped,
}

/// One record call. With `owned`, the record is made first and recorded through
/// `Recorder::record`; else through the borrowed call of its kind.
#[derive(Clone, Debug)]
enum Op {
    Start {
        run: usize,
        inputs: Vec<(usize, FieldOwned)>,
        child: bool,
        owned: bool,
    },
    /// `run` past the run ids is the producer's [`NEVER_STARTED`].
    Event {
        run: usize,
        seq: Seq,
        event_type: usize,
        fields: Vec<(usize, FieldOwned)>,
        how: How,
    },
    Finish {
        run: usize,
        status: Status,
        error: String,
        owned: bool,
    },
    Call {
        call: usize,
        tool: usize,
        outcome: Outcome,
        caller_id: Option<String>,
        owned: bool,
    },
}

fn field_value() -> impl Strategy<Value = FieldOwned> + Clone {
    // Lengths around the copy sizes of the slot encoder (8, 16, 32) and past the
    // inline size (512) and the record limit.
    let text = prop::sample::select(vec![0usize, 1, 7, 8, 9, 16, 31, 33, 300, 600, 5000])
        .prop_flat_map(|len| prop::collection::vec(any::<char>(), len))
        .prop_map(|chars| chars.into_iter().collect::<String>());
    let json = prop_oneof![
        Just(json!(null)),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z]{0,12}".prop_map(|s| json!(s)),
        Just(json!({"args": [1, "two", {"three": 3.5}]})),
        Just(json!([])),
    ];
    prop_oneof![
        Just(FieldOwned::Null),
        any::<bool>().prop_map(FieldOwned::Bool),
        any::<i64>().prop_map(FieldOwned::I64),
        any::<u64>().prop_map(FieldOwned::U64),
        prop::sample::select(vec![0.0, -0.5, 3.25, 1e300, f64::MIN_POSITIVE])
            .prop_map(FieldOwned::F64),
        text.prop_map(FieldOwned::Str),
        json.prop_map(FieldOwned::Json),
    ]
}

fn fields() -> impl Strategy<Value = Vec<(usize, FieldOwned)>> {
    let field = (0..KEYS.len(), field_value());
    prop_oneof![
        8 => prop::collection::vec(field.clone(), 0..6),
        // More fields than the transcoder sorts in place.
        1 => prop::collection::vec(field, 33..36),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let status = prop::sample::select(Status::ALL.to_vec());
    let seq = prop_oneof![6 => Just(Seq::Next), 1 => Just(Seq::Repeat), 1 => Just(Seq::Zero)];
    let how = prop_oneof![Just(How::Borrowed), Just(How::Owned), Just(How::Shaped)];
    let outcome = prop_oneof![
        Just(Outcome::Success),
        "[a-z]{0,40}".prop_map(|message| Outcome::InvalidArgs { message }),
        prop::collection::vec("[a-z]{1,8}", 0..3)
            .prop_map(|missing| Outcome::CapabilityDenied { missing }),
    ];
    prop_oneof![
        2 => (0..N_RUN_IDS, fields(), any::<bool>(), any::<bool>()).prop_map(
            |(run, inputs, child, owned)| Op::Start { run, inputs, child, owned }
        ),
        6 => (0..=N_RUN_IDS, seq, 0..EVENT_TYPES.len(), fields(), how).prop_map(
            |(run, seq, event_type, fields, how)| Op::Event {
                run,
                seq,
                event_type,
                fields,
                how
            }
        ),
        2 => (
            0..=N_RUN_IDS,
            status,
            prop::sample::select(vec![0usize, 10, 5000]),
            any::<bool>()
        )
            .prop_map(|(run, status, error_len, owned)| Op::Finish {
                run,
                status,
                error: "e".repeat(error_len),
                owned
            }),
        2 => (
            0..CALL_IDS.len(),
            prop_oneof![4 => Just(0), 1 => Just(1)],
            outcome,
            prop::option::of("[a-z]{1,10}"),
            any::<bool>()
        )
            .prop_map(|(call, tool, outcome, caller_id, owned)| Op::Call {
                call,
                tool,
                outcome,
                caller_id,
                owned
            }),
    ]
}

fn at(n: usize) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + n as i64)
}

fn open(dir: &std::path::Path) -> AuditLog {
    let config = Config::new(dir)
        .durability(Durability::None)
        .record_bytes_max(RECORD_BYTES_MAX);
    AuditLog::open(config).expect("open a log")
}

/// Appends one record as the recorder's committer does: checked against the index.
fn append_checked(log: &AuditLog, record: &Record) -> auditlog::Result<Lsn> {
    let mut results = log.append_each(std::slice::from_ref(record));
    results.pop().expect("one result per record")
}

/// The reason the recorder is expected to count for a record the log refuses.
fn reason_for(error: &Error) -> DropReason {
    match error {
        Error::RecordTooLarge { .. } => DropReason::Oversized,
        _ => DropReason::Rejected,
    }
}

fn add(counts: &mut DropCounts, reason: DropReason, n: u64) {
    *match reason {
        DropReason::QueueFull => &mut counts.queue_full,
        DropReason::Oversized => &mut counts.oversized,
        DropReason::AfterShutdown => &mut counts.after_shutdown,
        DropReason::Rejected => &mut counts.rejected,
        DropReason::IoFailure => &mut counts.io_failure,
    } += n;
}

/// The borrowed fields a record call takes.
/// Records `event` as an event of a shape of its type and keys (the last field of each
/// key, in the order of their first appearance).
fn record_shaped(recorder: &Recorder, event: &EventRef<'_>) -> Recorded {
    let mut keys: Vec<&str> = Vec::new();
    let mut values: Vec<FieldValue<'_>> = Vec::new();
    for &(key, value) in event.fields {
        match keys.iter().position(|k| *k == key) {
            Some(at) => values[at] = value,
            None => {
                keys.push(key);
                values.push(value);
            }
        }
    }
    let shape = recorder
        .shape(event.event_type, &keys)
        .expect("a valid shape");
    let shaped = ShapedEventRef {
        run_id: event.run_id,
        sequence: event.sequence,
        values: &values,
        created_at: event.created_at,
    };
    recorder.record_shaped(&shape, &shaped)
}

fn borrowed(fields: &[(usize, FieldOwned)]) -> Vec<(&'static str, FieldValue<'_>)> {
    fields
        .iter()
        .map(|(key, value)| (KEYS[*key], value.as_ref()))
        .collect()
}

/// One thread making record calls. Producers share no run or call id, so what the
/// direct log decides for one never depends on how the threads interleave.
struct Producer {
    runs: [String; N_RUN_IDS],
    never_started: String,
    prefix: String,
    /// The highest sequence recorded for each run id.
    last_seq: BTreeMap<String, u64>,
    /// Runs whose start the direct log took.
    started: HashSet<String>,
}

impl Producer {
    fn new(prefix: String) -> Producer {
        Producer {
            runs: run_ids(&prefix),
            never_started: format!("{prefix}{NEVER_STARTED}"),
            prefix,
            last_seq: BTreeMap::new(),
            started: HashSet::new(),
        }
    }

    /// Makes every call of `ops`, each record also appended to `direct`; returns the
    /// drops the recorder should count for them.
    fn run(
        &mut self,
        recorder: &Recorder,
        direct: &AuditLog,
        ops: &[Op],
    ) -> Result<DropCounts, TestCaseError> {
        let mut expected = DropCounts::default();
        for (n, op) in ops.iter().enumerate() {
            let (recorded, record) = self.call(recorder, n, op);
            match recorded {
                // Not taken for want of room: the log never sees it.
                Recorded::Dropped(DropReason::QueueFull) => {
                    add(&mut expected, DropReason::QueueFull, 1);
                }
                Recorded::Dropped(reason) => {
                    // A call refuses only what the log would refuse too.
                    prop_assert!(
                        append_checked(direct, &record).is_err(),
                        "refused at the call ({reason:?}), taken by the log: {record:?}"
                    );
                    add(&mut expected, reason, 1);
                }
                Recorded::Accepted => match append_checked(direct, &record) {
                    Ok(_) => {
                        if let Record::RunStarted(run) = &record {
                            self.started.insert(run.id.clone());
                        }
                    }
                    Err(error) => add(&mut expected, reason_for(&error), 1),
                },
            }
        }
        Ok(expected)
    }

    /// Makes the call `op` describes; returns what the recorder said and the record
    /// the call stands for.
    fn call(&mut self, recorder: &Recorder, n: usize, op: &Op) -> (Recorded, Record) {
        let runs = &self.runs;
        let never_started = self.never_started.as_str();
        let run_id = |run: usize| runs.get(run).map_or(never_started, String::as_str);
        match op {
            Op::Start {
                run,
                inputs,
                child,
                owned,
            } => {
                let inputs = borrowed(inputs);
                let run = RunRef {
                    id: run_id(*run),
                    skill_id: "summarize",
                    caller_id: "alice",
                    channel_id: "web",
                    parent_run_id: if *child { &runs[0] } else { "" },
                    inputs: &inputs,
                    started_at: at(n),
                };
                let record = Record::RunStarted(run.to_owned_run());
                let recorded = match owned {
                    true => recorder.record(&record),
                    false => recorder.record_run_started(&run),
                };
                (recorded, record)
            }
            Op::Event {
                run,
                seq,
                event_type,
                fields,
                how,
            } => {
                let run_id = run_id(*run);
                let last = self.last_seq.entry(run_id.to_owned()).or_default();
                let sequence = match seq {
                    Seq::Next => *last + 1,
                    Seq::Repeat => (*last).max(1),
                    Seq::Zero => 0,
                };
                *last = (*last).max(sequence);
                let fields = borrowed(fields);
                let event = EventRef {
                    run_id,
                    sequence,
                    event_type: EVENT_TYPES[*event_type],
                    fields: &fields,
                    created_at: at(n),
                };
                let record = Record::EventAppended(event.to_owned_event());
                let recorded = match how {
                    How::Owned => recorder.record(&record),
                    How::Borrowed => recorder.record_event(&event),
                    How::Shaped => record_shaped(recorder, &event),
                };
                (recorded, record)
            }
            Op::Finish {
                run,
                status,
                error,
                owned,
            } => {
                // A finish recorded before its run's start may be held until the start
                // comes, and then written; the direct log would have refused it. Only
                // runs already started, or never to be, are finished here.
                let run_id = match run_id(*run) {
                    id if self.started.contains(id) => id,
                    _ => never_started,
                };
                let stats = RunStats {
                    status: *status,
                    error: error.clone(),
                    tool_calls: n as u64,
                    ..RunStats::default()
                };
                let record = Record::RunFinished(RunFinished {
                    run_id: run_id.to_owned(),
                    stats: stats.clone(),
                    finished_at: at(n),
                });
                let recorded = match owned {
                    true => recorder.record(&record),
                    false => recorder.record_run_finished(run_id, &stats, at(n)),
                };
                (recorded, record)
            }
            Op::Call {
                call,
                tool,
                outcome,
                caller_id,
                owned,
            } => {
                let call = CallEvent {
                    ts: at(n),
                    call_id: match CALL_IDS[*call] {
                        "" => String::new(),
                        id => format!("{}{id}", self.prefix),
                    },
                    tool_id: TOOL_IDS[*tool].into(),
                    caller_id: caller_id.clone(),
                    granted_capabilities: vec!["net".into()],
                    duration_ms: n as u64,
                    outcome: outcome.clone(),
                    tier: "hot".into(),
                    dry_run: n % 2 == 0,
                    schema_version: CALL_EVENT_SCHEMA_VERSION,
                    secrets_resolved: false,
                    cursor_page: (n % 3 == 0).then_some(n as u32),
                };
                let recorded = match owned {
                    true => recorder.record(&Record::CallRecorded(call.clone())),
                    false => recorder.record_call(&call),
                };
                (recorded, Record::CallRecorded(call))
            }
        }
    }
}

/// The records of `log` grouped, each group in log order: a run's starts, a run's
/// events and finishes, a call id's calls. Also the drops its in-band reports count.
///
/// A run's starts are apart from its events: events behind a gap in their sequence
/// (left by a dropped call) wait in the recorder up to `reorder_window`, while a start
/// recorded after them goes straight through. Events keep their order among
/// themselves, and a finish lets every held event of its run out before it.
fn grouped(log: &AuditLog) -> (BTreeMap<String, Vec<Record>>, DropCounts) {
    let mut groups: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    let mut reported = DropCounts::default();
    for (_, record) in log.records_from(Lsn(0)).expect("read the log") {
        let key = match &record {
            Record::RunStarted(run) => format!("start of {}", run.id),
            Record::EventAppended(event) => format!("run {}", event.run_id),
            Record::RunFinished(finish) => format!("run {}", finish.run_id),
            Record::CallRecorded(call) => format!("call {}", call.call_id),
            Record::DropReport(report) => {
                add(&mut reported, report.reason, report.n_dropped);
                continue;
            }
            Record::Purge(_) => panic!("nothing purges here: {record:?}"),
        };
        groups.entry(key).or_default().push(record);
    }
    (groups, reported)
}

/// A recorder that never drops for want of room.
fn blocking() -> IngestConfig {
    IngestConfig::default().backpressure(Backpressure::Block)
}

/// A recorder that drops when its queues are full, with rings of 4 KiB and a slow path
/// of 8 KiB: a burst of calls fills them.
fn dropping() -> IngestConfig {
    IngestConfig::default()
        .queue_bytes(auditlog::limits::INGEST_QUEUE_BYTES_MIN)
        .slow_path_bytes(8 << 10)
}

/// Runs each producer's calls on a thread of its own, all at once, through a recorder
/// made with `config`, then compares the two logs. Returns the close report and the
/// calls that took the slow path.
fn check(
    ops_by_producer: &[Vec<Op>],
    config: IngestConfig,
) -> Result<(CloseReport, u64), TestCaseError> {
    let recorder_dir = tempfile::tempdir().expect("tempdir");
    let direct_dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(recorder_dir.path()));
    let direct = open(direct_dir.path());
    let config = config.shards(ops_by_producer.len());
    let recorder = Recorder::start(Arc::clone(&log), config).expect("start a recorder");

    let counted = std::thread::scope(|scope| {
        let threads: Vec<_> = (ops_by_producer.iter().enumerate())
            .map(|(i, ops)| {
                let (recorder, direct) = (&recorder, &direct);
                scope.spawn(move || Producer::new(format!("p{i}-")).run(recorder, direct, ops))
            })
            .collect();
        let joined = threads
            .into_iter()
            .map(|thread| thread.join().expect("a producer"));
        joined.collect::<Result<Vec<DropCounts>, TestCaseError>>()
    })?;
    let mut expected = DropCounts::default();
    for counts in counted {
        for reason in DropReason::ALL {
            add(&mut expected, reason, counts.get(reason));
        }
    }

    let report = recorder.close(Duration::from_secs(60));
    prop_assert!(report.completed, "close did not complete: {report:?}");
    prop_assert_eq!(report.unflushed, 0);
    prop_assert_eq!(&report.dropped, &expected);
    let (written, reported) = grouped(&log);
    let (accepted, none_reported) = grouped(&direct);
    // Every call is written or counted, once.
    let n_calls: usize = ops_by_producer.iter().map(Vec::len).sum();
    let n_accepted: usize = accepted.values().map(Vec::len).sum();
    prop_assert_eq!(report.written, n_accepted as u64);
    prop_assert_eq!(report.written + report.dropped.total(), n_calls as u64);
    prop_assert_eq!(none_reported, DropCounts::default());
    prop_assert_eq!(reported, expected);
    if written != accepted {
        let outline = |groups: &BTreeMap<String, Vec<Record>>| -> Vec<String> {
            let each = |r: &Record| match r {
                Record::EventAppended(event) => format!("event {}", event.sequence),
                other => format!("{:?}", other.kind()),
            };
            let group = |(key, records): (&String, &Vec<Record>)| {
                format!("{key}: {:?}", records.iter().map(each).collect::<Vec<_>>())
            };
            groups.iter().map(group).collect()
        };
        prop_assert_eq!(outline(&written), outline(&accepted), "in outline");
        prop_assert!(false, "the same outline, different contents");
    }
    Ok((report, recorder.metrics().slow_path))
}

/// One field of each kind, with the given string's length.
fn one_of_each(text_len: usize) -> Vec<(usize, FieldOwned)> {
    vec![
        (0, FieldOwned::Null),
        (1, FieldOwned::Bool(true)),
        (2, FieldOwned::I64(-7)),
        (3, FieldOwned::U64(7)),
        (4, FieldOwned::F64(0.5)),
        (0, FieldOwned::Str("s".repeat(text_len))),
        (1, FieldOwned::Json(json!(3))),
    ]
}

/// The paths the generated cases are meant to reach, each taken at least once by a
/// fixed case: so the model's check is known to cover them.
#[test]
fn a_fixed_case_takes_every_path_and_every_refusal() {
    let start = |run, owned| Op::Start {
        run,
        inputs: one_of_each(3),
        child: false,
        owned,
    };
    let event = |run, seq, fields, owned| Op::Event {
        run,
        seq,
        event_type: 0,
        fields,
        how: if owned { How::Owned } else { How::Borrowed },
    };
    let shaped = |run, seq, fields| Op::Event {
        run,
        seq,
        event_type: 1,
        fields,
        how: How::Shaped,
    };
    let finish = |run, status| Op::Finish {
        run,
        status,
        error: String::new(),
        owned: false,
    };
    let call = |call, tool| Op::Call {
        call,
        tool,
        outcome: Outcome::Success,
        caller_id: None,
        owned: false,
    };
    let nested = vec![(0, FieldOwned::Json(json!({"a": [1]})))];
    let many: Vec<_> = (0..34)
        .map(|i| (i % KEYS.len(), FieldOwned::U64(i as u64)))
        .collect();
    let ops = vec![
        start(0, false),
        start(1, true),
        start(0, false),                               // refused: a duplicate
        start(3, false),                               // refused at the call: empty id
        event(0, Seq::Next, one_of_each(8), false),    // inline
        event(0, Seq::Next, one_of_each(600), false),  // slow: past the inline size
        event(0, Seq::Next, nested, true),             // slow: nested JSON, owned
        event(0, Seq::Next, many.clone(), false),      // more fields than transcoded
        shaped(0, Seq::Next, one_of_each(8)),          // shaped, inline
        shaped(0, Seq::Next, one_of_each(800)),        // shaped, slow: past the inline size
        shaped(0, Seq::Next, many),                    // shaped, five keys kept of 34
        shaped(0, Seq::Repeat, Vec::new()),            // refused: a duplicate sequence
        shaped(0, Seq::Zero, Vec::new()),              // refused at the call: sequence 0
        event(0, Seq::Repeat, Vec::new(), false),      // refused: a duplicate sequence
        event(0, Seq::Next, one_of_each(5000), false), // slow, and oversized
        event(0, Seq::Zero, Vec::new(), false),        // refused at the call: sequence 0
        event(5, Seq::Next, Vec::new(), false),        // kept: a run never started
        finish(0, Status::Running),                    // refused at the call
        finish(0, Status::Ok),
        event(0, Seq::Next, Vec::new(), false), // after the finish: held
        event(0, Seq::Next, Vec::new(), false), // held
        event(0, Seq::Repeat, Vec::new(), false), // refused: a second held sequence
        finish(2, Status::Error),               // refused: never started
        call(0, 0),
        call(0, 0), // kept: call ids may repeat
        call(1, 1), // refused: an empty tool id
        call(3, 0), // refused at the call: empty id
    ];
    let (report, slow_path) = check(&[ops], blocking()).expect("the logs agree");
    assert_eq!(report.written, 15, "{report:?}");
    let dropped = DropCounts {
        oversized: 1,
        rejected: 11,
        ..DropCounts::default()
    };
    assert_eq!(report.dropped, dropped);
    assert!(slow_path >= 4, "the slow path taken {slow_path} times");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_recorder_writes_what_the_log_accepts_and_counts_the_rest(
        ops in prop::collection::vec(op(), 1..48)
    ) {
        check(&[ops], blocking())?;
    }

    #[test]
    fn so_it_does_with_two_producers_at_once(
        ops in prop::collection::vec(prop::collection::vec(op(), 1..48), 2)
    ) {
        check(&ops, blocking())?;
    }

    #[test]
    fn so_it_does_when_full_queues_drop_calls(
        ops in prop::collection::vec(prop::collection::vec(op(), 1..48), 1..=2)
    ) {
        check(&ops, dropping())?;
    }
}
