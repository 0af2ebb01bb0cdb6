//! The hot path does not allocate: recording inline events, events of a registered
//! shape, run starts, run finishes and call events from a producer thread makes zero
//! heap allocations on that thread (counted by a global allocator that counts only
//! while a thread-local flag is set). Registering a shape already registered makes none
//! either.
//! A large event, which takes the slow path, does allocate: the counter really counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use auditlog::ingest::{EventRef, FieldValue, RunRef, ShapedEventRef};
use auditlog::model::{CALL_EVENT_SCHEMA_VERSION, CallEvent, Outcome, RunStats, Status, Timestamp};
use auditlog::{AuditLog, Config, Durability, IngestConfig, Recorded, Recorder};

struct Counting;

static N_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        N_ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the same arguments; counting touches
// only an atomic and a const-initialized thread-local, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        debug_assert!(
            layout.size() != 0,
            "GlobalAlloc is never asked for zero bytes"
        );
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        debug_assert!(!ptr.is_null());
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        debug_assert!(layout.size() != 0);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        debug_assert!(!ptr.is_null() && new_size != 0);
        // SAFETY: as for `dealloc`, and `new_size` comes from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = N_ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    N_ALLOCS.load(Ordering::Relaxed) - before
}

#[test]
fn recording_inline_records_makes_no_allocation_on_the_calling_thread() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(AuditLog::open(Config::new(dir.path()).durability(Durability::None)).unwrap());
    let recorder = Recorder::start(log, IngestConfig::default()).unwrap();
    let json = serde_json::json!("a scalar");
    let fields = [
        ("tool", FieldValue::Str("ref:echo.say")),
        ("ok", FieldValue::Bool(true)),
        ("n", FieldValue::I64(-3)),
        ("tokens", FieldValue::U64(1234)),
        ("score", FieldValue::F64(0.5)),
        ("note", FieldValue::Json(&json)),
        ("nothing", FieldValue::Null),
    ];
    let call = CallEvent {
        ts: Timestamp::from_unix_millis(1),
        call_id: "call-1".into(),
        tool_id: "ref:echo.say".into(),
        caller_id: Some("alice".into()),
        granted_capabilities: vec!["read".into(), "net".into()],
        duration_ms: 17,
        outcome: Outcome::ExecutionFailed {
            code: "E42".into(),
            retryable: true,
        },
        tier: "warm".into(),
        dry_run: false,
        schema_version: CALL_EVENT_SCHEMA_VERSION,
        secrets_resolved: false,
        cursor_page: Some(2),
    };
    let stats = RunStats {
        status: Status::Ok,
        output: "done".into(),
        ..RunStats::default()
    };
    // Distinct runs, their ids made before anything is measured: every record is valid
    // (a second start of one run would be refused as a duplicate).
    let run_ids: Vec<String> = (0..2_000).map(|i| format!("run-{i}")).collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    let values: Vec<FieldValue<'_>> = fields.iter().map(|(_, v)| *v).collect();
    let shape = recorder.shape("step", &keys).unwrap();
    let mut next_run = 0usize;
    let at = Timestamp::from_unix_millis(2);
    let mut n_accepted = 0u64;
    let mut record_all = |n: u64| {
        for _ in 0..n {
            let run_id = run_ids[next_run].as_str();
            next_run += 1;
            let run = RunRef {
                id: run_id,
                skill_id: "summarize",
                caller_id: "alice",
                channel_id: "web",
                parent_run_id: "",
                inputs: &fields,
                started_at: Timestamp::from_unix_millis(1),
            };
            let event = EventRef {
                run_id,
                sequence: 1,
                event_type: "step",
                fields: &fields,
                created_at: at,
            };
            let shaped = ShapedEventRef {
                run_id,
                sequence: 2,
                values: &values,
                created_at: at,
            };
            for outcome in [
                recorder.record_run_started(&run),
                recorder.record_event(&event),
                recorder.record_shaped(&shape, &shaped),
                recorder.record_call(&call),
                recorder.record_run_finished(run_id, &stats, at),
            ] {
                assert_eq!(outcome, Recorded::Accepted);
                n_accepted += 1;
            }
        }
    };
    // The default 8 MiB ring holds tens of thousands of these records, so 2 000 never
    // fill it.
    let n_allocs = allocations_during(|| record_all(500));
    assert_eq!(n_allocs, 0, "the inline hot path allocated");
    // Finding a shape registered before allocates nothing either.
    let n_allocs = allocations_during(|| {
        assert_eq!(recorder.shape("step", &keys).unwrap(), shape);
    });
    assert_eq!(n_allocs, 0, "registering a known shape again allocated");

    // A field too large for a slot takes the slow path, which allocates.
    let big = "x".repeat(4096);
    let big_fields = [("text", FieldValue::Str(&big))];
    let big_event = EventRef {
        run_id: "run-big",
        sequence: 1,
        event_type: "step",
        fields: &big_fields,
        created_at: at,
    };
    let n_allocs = allocations_during(|| {
        assert_eq!(recorder.record_event(&big_event), Recorded::Accepted);
    });
    assert!(n_allocs > 0, "the counter must see slow-path allocations");

    recorder.flush().unwrap();
    let metrics = recorder.metrics();
    assert_eq!(metrics.written, n_accepted + 1);
    assert_eq!(metrics.slow_path, 1);
    assert_eq!(metrics.dropped.total(), 0);
}
