//! The read commands of the `auditlog` binary on a real store built through the
//! library: `runs` (filters and paging), `show`, `tree`, `calls`, `tail` and `stats`,
//! as tables and as `--json`, and their errors (unknown run, missing store).

mod cli_support;

use cli_support::{N_CALLS, N_EVENTS, N_RUNS, build_store, fails, json, ok};
use serde_json::Value;

fn ids(runs: &Value) -> Vec<&str> {
    runs.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[test]
fn runs_lists_newest_first_with_every_filter_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();

    let all = json(d, &["runs"]);
    assert_eq!(all["total"], N_RUNS - 1, "dry runs are left out by default");
    assert_eq!(
        ids(&all["runs"]),
        ["root-2", "child-2", "grand-1", "child-1", "root-1", "old-1"]
    );
    let with_dry = json(d, &["runs", "--include-dry-run"]);
    assert_eq!(with_dry["total"], N_RUNS);
    assert_eq!(
        ids(&json(d, &["runs", "--status", "dry_run"])["runs"]),
        ["dry-1"]
    );
    assert_eq!(
        ids(&json(d, &["runs", "--skill", "triage"])["runs"]),
        ["root-2", "grand-1", "child-1"]
    );
    assert_eq!(
        ids(&json(d, &["runs", "--caller", "bob"])["runs"]),
        ["root-2"]
    );
    assert_eq!(
        ids(&json(d, &["runs", "--top-level"])["runs"]),
        ["root-2", "root-1", "old-1"]
    );
    assert_eq!(
        ids(&json(
            d,
            &[
                "runs",
                "--since",
                "2026-11-20",
                "--until",
                "2026-11-20T10:02:00Z"
            ]
        )["runs"]),
        ["child-1", "root-1"]
    );
    assert_eq!(
        ids(&json(d, &["runs", "--channel", "nowhere"])["runs"]),
        Vec::<&str>::new()
    );

    let page = json(d, &["runs", "--offset", "2", "--limit", "2"]);
    assert_eq!(page["total"], N_RUNS - 1, "the total ignores the page");
    assert_eq!(ids(&page["runs"]), ["grand-1", "child-1"]);
    assert_eq!(
        json(d, &["runs", "--limit", "0"])["limit"],
        50,
        "SPEC §3.11 clamp"
    );

    let table = ok(d, &["runs", "--limit", "2"]);
    assert!(
        table.contains("root-2") && table.contains("child-2"),
        "{table}"
    );
    assert!(!table.contains("old-1"), "the page holds two runs: {table}");
    assert!(table.contains("runs 1-2 of 6"), "{table}");

    let (code, _, stderr) = fails(d, &["runs", "--status", "finished"]);
    assert_eq!(code, 2, "a bad value is a usage error");
    assert!(stderr.contains("unknown status `finished`"), "{stderr}");
}

#[test]
fn show_prints_the_summary_and_every_event_and_refuses_unknown_runs() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();

    let shown = json(d, &["show", "root-1"]);
    assert_eq!(shown["run"]["id"], "root-1");
    assert_eq!(shown["run"]["status"], "ok");
    assert_eq!(shown["run"]["finished_at"], "2026-11-20T10:00:30Z");
    let types: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["resolved_model", "step", "tool_call", "tool_result"]
    );

    let table = ok(d, &["show", "child-1"]);
    assert!(table.contains("tool failed"), "the error is shown: {table}");
    assert!(table.contains("2 event(s)"), "{table}");

    let (code, _, stderr) = fails(d, &["show", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no run with id `nope`"), "{stderr}");
}

#[test]
fn tree_draws_the_parent_chain_and_the_children() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();

    let tree = json(d, &["tree", "child-1"]);
    let chain: Vec<&str> = tree["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["root-1", "child-1"], "root first, the run last");
    assert_eq!(tree["tree"]["children"][0]["id"], "grand-1");

    let drawn = ok(d, &["tree", "root-1"]);
    let lines: Vec<&str> = drawn.lines().collect();
    assert!(
        lines[0].starts_with("root-1") && lines[0].ends_with('◀'),
        "{drawn}"
    );
    assert!(lines[1].starts_with("├─ child-1"), "{drawn}");
    assert!(lines[2].starts_with("│  └─ grand-1"), "{drawn}");
    assert!(lines[3].starts_with("└─ child-2"), "{drawn}");

    let from_leaf = ok(d, &["tree", "grand-1"]);
    assert!(from_leaf.contains("   └─ grand-1"), "{from_leaf}");

    let (code, _, stderr) = fails(d, &["tree", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("nope"), "{stderr}");
}

#[test]
fn calls_lists_newest_first_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();

    let all = json(d, &["calls"]);
    assert_eq!(all["total"], N_CALLS);
    let call_ids: Vec<&str> = all["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(call_ids, ["call-x", "call-root-2", "call-root-1"]);
    assert_eq!(
        all["calls"][1]["outcome"],
        serde_json::json!({"kind": "execution_failed", "code": "TIMEOUT", "retryable": true}),
        "call events keep the SPEC §2.4 JSON form"
    );
    assert_eq!(json(d, &["calls", "--caller", "alice"])["total"], 2);
    assert_eq!(json(d, &["calls", "--tool", "fs.read"])["total"], 1);
    assert_eq!(json(d, &["calls", "--outcome", "success"])["total"], 1);
    assert_eq!(json(d, &["calls", "--since", "2026-11-21"])["total"], 2);

    let table = ok(d, &["calls", "--outcome", "rate_limited"]);
    assert!(
        table.contains("call-x") && table.contains("rate_limited"),
        "{table}"
    );
    assert!(table.contains("calls 1-1 of 1"), "{table}");
}

#[test]
fn tail_prints_the_newest_records_or_a_runs_newest_events() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();

    let lines = json(d, &["tail", "-n", "3"]);
    let kinds: Vec<&str> = lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["call", "call", "call"],
        "the store ends with three calls"
    );
    assert_eq!(
        lines[2]["id"], "call-x",
        "oldest of the tail first, newest last"
    );

    let everything = json(d, &["tail", "-n", "1000"]);
    // Every run start, finish, event and call.
    let n_finished = cli_support::RUNS.iter().filter(|r| r.5.is_some()).count() as u64;
    assert_eq!(
        everything.as_array().unwrap().len() as u64,
        N_RUNS + n_finished + N_EVENTS + N_CALLS
    );

    let run_tail = json(d, &["tail", "-n", "2", "--run", "root-1"]);
    let what: Vec<&str> = run_tail
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["what"].as_str().unwrap())
        .collect();
    assert!(
        what[0].starts_with("#3 tool_call") && what[1].starts_with("#4 tool_result"),
        "{what:?}"
    );

    let table = ok(d, &["tail", "-n", "2"]);
    assert!(
        table.contains("call-root-2") && table.contains("call-x"),
        "{table}"
    );

    let (code, _, stderr) = fails(d, &["tail", "--run", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("nope"), "{stderr}");
}

#[test]
fn stats_reports_counts_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();

    let stats = json(d, &["stats"]);
    assert_eq!(stats["runs"], N_RUNS);
    assert_eq!(stats["events"], N_EVENTS);
    assert_eq!(stats["calls"], N_CALLS);
    assert_eq!(stats["segments"], 1);
    let live = stats["live_bytes"].as_u64().unwrap();
    let log = stats["log_bytes"].as_u64().unwrap();
    let disk = stats["disk_bytes"].as_u64().unwrap();
    assert!(live > 0 && live == log, "nothing superseded yet: {stats}");
    assert!(
        disk > log,
        "files hold headers and the checkpoint too: {stats}"
    );

    // A purge makes part of the log dead: live bytes drop, the log does not shrink.
    ok(d, &["purge", "--before", "2026-11-01", "--yes"]);
    let after = json(d, &["stats"]);
    assert_eq!(after["runs"], N_RUNS - 1);
    assert!(after["live_bytes"].as_u64().unwrap() < live, "{after}");
    assert!(
        after["log_bytes"].as_u64().unwrap() > log,
        "the purge is a record: {after}"
    );

    let table = ok(d, &["stats"]);
    assert!(
        table.contains("live bytes") && table.contains("disk bytes"),
        "{table}"
    );
}

#[test]
fn every_read_command_refuses_a_missing_store_without_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-store");
    for command in [
        &["runs"][..],
        &["show", "x"],
        &["tree", "x"],
        &["calls"],
        &["tail"],
        &["stats"],
        &["verify"],
        &["purge", "--before", "1d"],
        &["export", "--out", "/tmp/never-written"],
    ] {
        let (code, _, stderr) = fails(&missing, command);
        assert_eq!(code, 1, "{command:?}");
        assert!(stderr.contains("no store at"), "{command:?}: {stderr}");
        assert!(!missing.exists(), "{command:?} created the store");
    }
}
