//! `auditlog demo` end to end: it records into a fresh store, reports that nothing was
//! lost and draws a run tree; a second run adds to the same store; the store it leaves
//! verifies and answers every read command.

mod cli_support;

use cli_support::{auditlog, json, ok};

#[test]
fn demo_runs_twice_into_one_store_and_leaves_a_store_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let d = store.as_path();

    let first = ok(d, &["demo", "--seconds", "0.5", "--threads", "2"]);
    assert!(first.contains("nothing lost"), "{first}");
    assert!(first.contains("trace tree of run-"), "{first}");
    assert!(
        first.contains("├─ ") && first.contains("└─ "),
        "the tree has children: {first}"
    );

    let second = json(d, &["demo", "--seconds", "0.5", "--threads", "2"]);
    assert_eq!(second["nothing_lost"], true, "{second}");
    let new_runs = second["runs"].as_u64().unwrap();
    assert!(
        new_runs > 0 && second["nested_runs"].as_u64().unwrap() > 0,
        "{second}"
    );
    assert!(
        second["store_runs"].as_u64().unwrap() > new_runs,
        "the second demo added to the first one's runs: {second}"
    );
    assert!(second["events"].as_u64().unwrap() > second["runs"].as_u64().unwrap());
    assert!(second["calls"].as_u64().unwrap() > 0);

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
