//! `auditlog demo` end to end: it records into a fresh store through the recorder, the
//! run writers, a session and the call sink, reports throughput, record latency
//! percentiles and drops by reason, that nothing written was lost, and draws a run
//! tree; a second run adds new runs to the same store; the store it leaves verifies and
//! answers every read command, `replay` of the session included.

mod cli_support;

use cli_support::{auditlog, json, ok};

#[test]
fn demo_runs_twice_into_one_store_and_leaves_a_store_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let d = store.as_path();

    // A rate the debug build's committer keeps up with, so nothing is dropped.
    let demo = [
        "demo",
        "--seconds",
        "0.5",
        "--threads",
        "2",
        "--rate",
        "10000",
    ];
    let first = ok(d, &demo);
    assert!(first.contains("nothing lost"), "{first}");
    assert!(first.contains("trace tree of run-"), "{first}");
    assert!(
        first.contains("record call latency") && first.contains("p99.9"),
        "{first}"
    );
    assert!(
        first.contains("├─ ") && first.contains("└─ "),
        "the tree has children: {first}"
    );

    let second = json(d, &demo);
    assert_eq!(second["nothing_lost"], true, "{second}");
    let latency = &second["latency_ns"];
    let p = |q: &str| latency[q].as_u64().unwrap();
    assert!(0 < p("p50") && p("p50") <= p("p99"), "{latency}");
    assert!(p("p99") <= p("p999") && p("p999") <= p("max"), "{latency}");
    assert!(second["written"].as_u64().unwrap() > 0);
    assert!(second["records_per_second"].as_f64().unwrap() > 0.0);
    assert!(second["store_bytes"].as_u64().unwrap() > 0);
    let dropped = &second["dropped"];
    for reason in [
        "queue_full",
        "oversized",
        "after_shutdown",
        "rejected",
        "io_failure",
    ] {
        assert!(dropped[reason].is_u64(), "{reason} in {dropped}");
    }
    assert_eq!(second["dropped_total"], 0, "{second}");
    let new_runs = second["runs"].as_u64().unwrap();
    assert!(
        new_runs > 0 && second["nested_runs"].as_u64().unwrap() > 0,
        "{second}"
    );
    assert!(
        second["store_runs"].as_u64().unwrap() > new_runs,
        "the second demo added to the first one's runs: {second}"
    );
    assert!(second["store_events"].as_u64().unwrap() > second["store_runs"].as_u64().unwrap());
    assert!(second["store_calls"].as_u64().unwrap() > 0);
    let session = second["example_session"].as_str().unwrap();
    let replayed = json(d, &["replay", session]);
    assert!(
        replayed.to_string().contains("accept") || replayed.to_string().contains("revise"),
        "{replayed}"
    );

    assert_eq!(json(d, &["verify"])["clean"], true);
    let stats = json(d, &["stats"]);
    assert_eq!(stats["runs"], second["store_runs"]);
    assert_eq!(stats["calls"], second["store_calls"]);

    let example = second["example_run"].as_str().unwrap();
    let tree = json(d, &["tree", example]);
    assert!(
        !tree["tree"]["children"].as_array().unwrap().is_empty(),
        "{tree}"
    );
    let shown = json(d, &["show", example]);
    let types: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for expected in ["resolved_model", "step", "tool_call", "tool_result"] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    let errors = json(d, &["runs", "--status", "error", "--limit", "1"]);
    assert!(
        errors["total"].as_u64().unwrap() > 0,
        "the demo records failures too"
    );
    assert!(
        json(d, &["calls", "--outcome", "execution_failed"])["total"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(auditlog(&["demo", "--help"]).status.success());
}
