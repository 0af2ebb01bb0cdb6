//! The commands of the `auditlog` binary that check, change or copy a store: `verify`
//! (exit 0 on a clean store, non-zero with a report on a damaged frame or checkpoint),
//! `purge` (counts without `--yes`, deletes durably with it), `export` (both formats,
//! partitioned by day, refused over an earlier export), `compact` (after a purge, the
//! store still answers the same and verifies), and `--help` everywhere.

mod cli_support;

use std::fs;
use std::path::Path;

use cli_support::{N_CALLS, N_EVENTS, N_RUNS, auditlog, build_store, fails, json, ok};

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn verify_passes_a_clean_store_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let before: Vec<_> = segments(dir.path());
    let text = ok(dir.path(), &["verify"]);
    assert!(text.contains("OK: every frame verifies"), "{text}");
    assert!(text.contains("index checkpoint: valid"), "{text}");
    let report = json(dir.path(), &["verify"]);
    assert_eq!(report["clean"], true);
    assert_eq!(report["checkpoint_ok"], true);
    assert_eq!(report["segments"], 1);
    assert_eq!(segments(dir.path()), before, "verify creates no segment");
}

#[test]
fn verify_exits_non_zero_with_a_report_on_a_damaged_frame() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let segment = &segments(dir.path())[0];
    // Inside the first frame: the frames after it still verify, so this is damage,
    // not a torn tail.
    flip_byte(segment, auditlog::limits::SEGMENT_HEADER_BYTES + 30);

    let (code, stdout, _) = fails(dir.path(), &["verify"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("DAMAGED"), "{stdout}");
    assert!(stdout.contains("DAMAGE FOUND"), "{stdout}");
    assert!(
        stdout.contains(&segment.file_name().unwrap().to_string_lossy().to_string()),
        "the report names the file: {stdout}"
    );
    let (code, stdout, _) = fails(dir.path(), &["verify", "--json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["clean"], false);
    assert!(
        !report["damaged"].as_array().unwrap().is_empty(),
        "{report}"
    );
}

#[test]
fn verify_exits_non_zero_on_a_damaged_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let checkpoint = dir.path().join("index.ckpt");
    let len = fs::metadata(&checkpoint).unwrap().len();
    flip_byte(&checkpoint, len - 3);

    let (code, stdout, _) = fails(dir.path(), &["verify"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("index checkpoint: DAMAGED"), "{stdout}");
    assert!(
        stdout.contains("rebuilds the index from the log"),
        "{stdout}"
    );
    // The data itself is intact and still answers.
    assert_eq!(json(dir.path(), &["stats"])["runs"], N_RUNS);
}

#[test]
fn purge_counts_without_yes_and_deletes_durably_with_it() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();

    let dry = json(d, &["purge", "--before", "2026-11-21"]);
    assert_eq!(dry["deleted"], false);
    assert_eq!(dry["n_runs"], 5, "old-1, root-1, child-1, grand-1, child-2");
    assert_eq!(
        json(d, &["stats"])["runs"],
        N_RUNS,
        "nothing deleted without --yes"
    );
    assert!(ok(d, &["purge", "--before", "2026-11-21"]).contains("pass --yes"));

    let done = json(d, &["purge", "--before", "2026-11-21", "--yes"]);
    assert_eq!(done["deleted"], true);
    assert_eq!(done["n_runs"], 5);
    // A new process sees the purge: it is in the log.
    let stats = json(d, &["stats"]);
    assert_eq!(stats["runs"], 2);
    assert_eq!(stats["events"], 3, "root-2's events are left");
    let (code, _, stderr) = fails(d, &["show", "root-1"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no run with id `root-1`"), "{stderr}");
    assert_eq!(
        json(d, &["purge", "--before", "2026-11-21", "--yes"])["n_runs"],
        0
    );

    let (code, _, stderr) = fails(d, &["purge", "--before", "last tuesday"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a time"), "{stderr}");
}

#[test]
fn export_writes_both_formats_partitioned_by_day() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();
    let out = tempfile::tempdir().unwrap();

    let jsonl = out.path().join("jsonl");
    let summary = json(
        d,
        &[
            "export",
            "--format",
            "jsonl",
            "--out",
            jsonl.to_str().unwrap(),
        ],
    );
    assert_eq!(summary["runs"], N_RUNS);
    assert_eq!(summary["events"], N_EVENTS);
    assert_eq!(summary["calls"], N_CALLS);
    for (table, day) in [
        ("runs", "2026-01-01"),
        ("runs", "2026-11-20"),
        ("runs", "2026-11-21"),
        ("events", "2026-11-20"),
        ("calls", "2026-11-21"),
    ] {
        let file = jsonl
            .join(table)
            .join(format!("date={day}"))
            .join("part-0.jsonl");
        assert!(file.is_file(), "{} is missing", file.display());
    }
    let runs = fs::read_to_string(jsonl.join("runs/date=2026-11-20/part-0.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(runs.lines().next().unwrap()).unwrap();
    assert_eq!(first["schema"], auditlog::export::EXPORT_SCHEMA);
    assert_eq!(first["id"], "root-1");
    assert_eq!(
        first["started_at"], "2026-11-20T10:00:00Z",
        "RFC 3339 in UTC"
    );
    assert_eq!(runs.lines().count(), 4, "root-1, child-1, grand-1, child-2");

    let (code, _, stderr) = fails(d, &["export", "--out", jsonl.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("already holds an export"), "{stderr}");

    let nested = out.path().join("nested");
    ok(
        d,
        &[
            "export",
            "--nest-events",
            "--since",
            "2026-11-21",
            "--out",
            nested.to_str().unwrap(),
        ],
    );
    let runs = fs::read_to_string(nested.join("runs/date=2026-11-21/part-0.jsonl")).unwrap();
    let root2: serde_json::Value = serde_json::from_str(runs.lines().next().unwrap()).unwrap();
    assert_eq!(root2["id"], "root-2");
    assert_eq!(root2["events"].as_array().unwrap().len(), 3);
    assert!(
        !nested.join("events").exists(),
        "nested events have no table of their own"
    );
    assert!(
        !nested.join("runs/date=2026-11-20").exists(),
        "--since leaves earlier days out"
    );

    let parquet = out.path().join("parquet");
    let text = ok(
        d,
        &[
            "export",
            "--format",
            "parquet",
            "--out",
            parquet.to_str().unwrap(),
        ],
    );
    assert!(
        text.contains("exported 7 run(s), 10 event(s) and 3 call(s) as parquet"),
        "{text}"
    );
    let file = parquet.join("events/date=2026-11-20/part-0.parquet");
    let bytes = fs::read(&file).unwrap();
    assert_eq!(&bytes[..4], b"PAR1", "{} is a Parquet file", file.display());

    let (code, _, stderr) = fails(
        d,
        &[
            "export",
            "--format",
            "parquet",
            "--nest-events",
            "--out",
            out.path().join("x").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("JSON lines option"), "{stderr}");
}

#[test]
fn compact_after_a_purge_keeps_every_answer_and_the_store_verifies() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    let d = dir.path();
    json(d, &["purge", "--before", "2026-11-21", "--yes"]);
    let before = json(d, &["stats"]);
    let runs_before = json(d, &["runs", "--include-dry-run"]);
    let compacted = json(d, &["compact"]);
    assert!(compacted["n_passes"].as_u64().unwrap() >= 1, "{compacted}");
    assert!(
        compacted["bytes_after"].as_u64() <= compacted["bytes_before"].as_u64(),
        "{compacted}"
    );
    let after = json(d, &["stats"]);
    assert_eq!(after["runs"], before["runs"]);
    assert_eq!(after["events"], before["events"]);
    assert_eq!(after["calls"], before["calls"]);
    assert_eq!(json(d, &["runs", "--include-dry-run"]), runs_before);
    assert!(ok(d, &["compact"]).contains("compacted in"));
    ok(d, &["verify"]);
}

#[test]
fn every_subcommand_has_help_and_usage_errors_exit_2() {
    for command in [
        "demo", "runs", "show", "tree", "calls", "tail", "stats", "verify", "purge", "compact",
        "replay", "export",
    ] {
        let out = auditlog(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("--dir"), "{command} takes --dir: {help}");
        assert!(help.contains("--json"), "{command} takes --json: {help}");
    }
    let top = String::from_utf8(auditlog(&["--help"]).stdout).unwrap();
    assert!(top.contains("export") && top.contains("tree"), "{top}");
    assert_eq!(auditlog(&["runs", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(
        auditlog(&["show"]).status.code(),
        Some(2),
        "a run id is required"
    );
}
