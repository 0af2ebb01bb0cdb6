//! One test per rule of SPEC §3: each states the rule in its name and shows that the
//! Storage API of `AuditLog` keeps it, including across a reopen where it matters.

use auditlog::model::{
    CallEvent, Outcome, OutcomeKind, Run, RunEvent, RunStats, Status, Timestamp,
};
use auditlog::{AuditLog, CallFilter, Config, Error, RunFilter, Storage};
use std::path::Path;

fn config(dir: &Path) -> Config {
    Config::new(dir)
        .segment_bytes(64 << 10)
        .record_bytes_max(16 << 10)
}

fn open(dir: &Path) -> AuditLog {
    AuditLog::open(config(dir)).unwrap()
}

fn at(n: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + n * 1000)
}

fn run(id: &str, skill: &str, started: i64) -> Run {
    Run {
        id: id.into(),
        skill_id: skill.into(),
        caller_id: "caller".into(),
        channel_id: "chan".into(),
        started_at: at(started),
        ..Run::default()
    }
}

fn child(id: &str, parent: &str, started: i64) -> Run {
    Run {
        parent_run_id: parent.into(),
        ..run(id, "s", started)
    }
}

fn stats(status: Status) -> RunStats {
    RunStats {
        status,
        output: format!("{status} output"),
        tool_calls: 2,
        ..RunStats::default()
    }
}

fn event(run_id: &str, sequence: u64, kind: &str) -> RunEvent {
    RunEvent {
        run_id: run_id.into(),
        sequence,
        event_type: kind.into(),
        created_at: at(sequence as i64),
        ..RunEvent::default()
    }
}

fn ids(runs: &[Run]) -> Vec<&str> {
    runs.iter().map(|r| r.id.as_str()).collect()
}

fn n_records(log: &AuditLog) -> usize {
    log.records_from(auditlog::Lsn(0)).unwrap().len()
}

/// Starts `id` and finishes it with `status` (unless running).
fn run_with_status(log: &AuditLog, run: Run, status: Status) {
    let id = run.id.clone();
    log.start_run(&run).unwrap();
    if status != Status::Running {
        log.finish_run(&id, &stats(status)).unwrap();
    }
}

#[test]
fn s3_1_open_creates_a_missing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/store");
    let log = open(&dir);
    assert!(dir.is_dir());
    assert_eq!(log.count_runs_filtered(&RunFilter::default()).unwrap(), 0);
}

#[test]
fn s3_2_start_run_stores_the_run_as_running_whatever_status_it_carries() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let mut given = run("r1", "s", 1);
    given.status = Status::Ok;
    given.finished_at = Some(at(2));
    given.inputs.insert("q".into(), "what".into());
    log.start_run(&given).unwrap();
    let got = log.get_run("r1").unwrap();
    assert_eq!(got.status, Status::Running);
    assert_eq!(got.finished_at, None);
    assert_eq!(got.inputs["q"], "what");
}

#[test]
fn s3_2_an_id_already_present_is_an_error_the_original_is_kept_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.start_run(&run("r1", "first", 1)).unwrap();
    let before = n_records(&log);
    let err = log.start_run(&run("r1", "second", 2)).unwrap_err();
    assert!(matches!(err, Error::Duplicate { what: "run", .. }), "{err}");
    assert_eq!(n_records(&log), before);
    assert_eq!(log.get_run("r1").unwrap().skill_id, "first");
}

#[test]
fn s3_2_an_empty_run_id_is_invalid_input_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let err = log.start_run(&run("", "s", 1)).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = log.append_log(&event("", 1, "step")).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert_eq!(n_records(&log), 0);
}

#[test]
fn s3_3_finish_run_sets_every_terminal_field_and_finished_at_now() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.start_run(&run("r1", "s", 1)).unwrap();
    let before = Timestamp::now();
    let stats = RunStats {
        status: Status::Error,
        output: "o".into(),
        error: "boom".into(),
        tool_calls: 3,
        runtime_seconds: 1.25,
        input_tokens: 10,
        output_tokens: 20,
        thinking_tokens: 30,
    };
    log.finish_run("r1", &stats).unwrap();
    let got = log.get_run("r1").unwrap();
    assert_eq!(got.status, Status::Error);
    assert_eq!((got.output.as_str(), got.error.as_str()), ("o", "boom"));
    assert_eq!(got.tool_calls_count, 3);
    assert_eq!(got.runtime_seconds, 1.25);
    assert_eq!(
        (
            got.total_input_tokens,
            got.total_output_tokens,
            got.total_thinking_tokens
        ),
        (10, 20, 30)
    );
    let finished = got.finished_at.unwrap();
    assert!(finished >= before && finished <= Timestamp::now());
}

#[test]
fn s3_3_finishing_an_unknown_run_is_not_found_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let err = log.finish_run("ghost", &stats(Status::Ok)).unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "run", .. }), "{err}");
    assert_eq!(n_records(&log), 0);
}

#[test]
fn s3_3_a_second_finish_wins_also_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let log = open(tmp.path());
        log.start_run(&run("r1", "s", 1)).unwrap();
        log.finish_run_at("r1", &stats(Status::Error), at(5))
            .unwrap();
        log.finish_run_at("r1", &stats(Status::Ok), at(7)).unwrap();
        assert_eq!(log.get_run("r1").unwrap().status, Status::Ok);
    }
    let log = open(tmp.path());
    let got = log.get_run("r1").unwrap();
    assert_eq!((got.status, got.finished_at), (Status::Ok, Some(at(7))));
    assert_eq!(
        ids(&log.list_finished_runs_before(at(6), 10).unwrap()),
        Vec::<&str>::new()
    );
}

#[test]
fn s3_4_a_duplicate_sequence_is_an_error_and_the_original_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.start_run(&run("r1", "s", 1)).unwrap();
    log.append_log(&event("r1", 1, "original")).unwrap();
    let before = n_records(&log);
    let err = log.append_log(&event("r1", 1, "replacement")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Duplicate {
                what: "run event",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(n_records(&log), before);
    let events = log.list_logs_by_run("r1").unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "original");
}

#[test]
fn s3_4_events_of_a_run_never_started_are_kept_and_join_it_when_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.append_log(&event("later", 2, "b")).unwrap();
    log.append_log(&event("later", 1, "a")).unwrap();
    assert_eq!(log.list_logs_by_run("later").unwrap().len(), 2);
    assert!(matches!(log.get_run("later"), Err(Error::NotFound { .. })));
    log.start_run(&run("later", "s", 1)).unwrap();
    log.append_log(&event("later", 3, "c")).unwrap();
    let kinds: Vec<String> = log
        .list_logs_by_run("later")
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(kinds, ["a", "b", "c"]);
}

#[test]
fn s3_5_get_run_of_an_unknown_id_is_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let err = log.get_run("nope").unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "run", ref id } if id == "nope"));
    assert_eq!(err.to_string(), "no run with id `nope` is stored");
}

#[test]
fn s3_6_events_come_back_in_sequence_order_whatever_the_arrival_order() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.start_run(&run("r1", "s", 1)).unwrap();
    for seq in [5, 1, 4, 2, 3] {
        log.append_log(&event("r1", seq, "step")).unwrap();
    }
    let seqs: Vec<u64> = log
        .list_logs_by_run("r1")
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert!(log.list_logs_by_run("unknown").unwrap().is_empty());
}

#[test]
fn s3_7_list_runs_by_skill_is_newest_first_at_most_limit_without_dry_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    run_with_status(&log, run("a", "s", 1), Status::Ok);
    run_with_status(&log, run("b", "s", 3), Status::DryRun);
    run_with_status(&log, run("c", "s", 2), Status::Error);
    run_with_status(&log, run("d", "s", 4), Status::Running);
    run_with_status(&log, run("e", "other", 5), Status::Ok);
    assert_eq!(
        ids(&log.list_runs_by_skill("s", 10).unwrap()),
        ["d", "c", "a"]
    );
    assert_eq!(ids(&log.list_runs_by_skill("s", 2).unwrap()), ["d", "c"]);
    assert!(log.list_runs_by_skill("none", 10).unwrap().is_empty());
}

#[test]
fn s3_8_list_runs_by_skill_paginated_pages_newest_first_with_or_without_dry_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    for i in 0..6 {
        let status = if i % 3 == 0 {
            Status::DryRun
        } else {
            Status::Ok
        };
        run_with_status(&log, run(&format!("r{i}"), "s", i), status);
    }
    let page = |offset, limit, dry| {
        ids(&log
            .list_runs_by_skill_paginated("s", offset, limit, dry)
            .unwrap())
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    assert_eq!(page(0, 2, false), ["r5", "r4"]);
    assert_eq!(page(2, 2, false), ["r2", "r1"]);
    assert_eq!(page(4, 2, false), Vec::<String>::new());
    assert_eq!(page(0, 3, true), ["r5", "r4", "r3"]);
    assert_eq!(page(-5, 1, true), ["r5"], "a negative offset is 0");
}

#[test]
fn s3_9_count_runs_by_skill_matches_the_paginated_total() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    for i in 0..7 {
        let status = if i % 2 == 0 {
            Status::DryRun
        } else {
            Status::Ok
        };
        run_with_status(&log, run(&format!("r{i}"), "s", i), status);
    }
    for dry in [false, true] {
        let total = log
            .list_runs_by_skill_paginated("s", 0, 500, dry)
            .unwrap()
            .len();
        assert_eq!(log.count_runs_by_skill("s", dry).unwrap(), total as u64);
    }
    assert_eq!(log.count_runs_by_skill("s", false).unwrap(), 3);
    assert_eq!(log.count_runs_by_skill("s", true).unwrap(), 7);
}

#[test]
fn s3_10_list_runs_by_caller_is_newest_first_at_most_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    for i in 0..4 {
        let mut r = run(&format!("r{i}"), "s", i);
        r.caller_id = if i == 2 { "other".into() } else { "me".into() };
        log.start_run(&r).unwrap();
    }
    assert_eq!(
        ids(&log.list_runs_by_caller("me", 10).unwrap()),
        ["r3", "r1", "r0"]
    );
    assert_eq!(ids(&log.list_runs_by_caller("me", 1).unwrap()), ["r3"]);
}

#[test]
fn s3_11_a_limit_at_most_zero_or_above_500_becomes_50() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let runs: Vec<auditlog::Record> = (0..600)
        .map(|i| auditlog::Record::RunStarted(run(&format!("r{i:03}"), "s", i)))
        .collect();
    log.append_batch(&runs).unwrap();
    let all = RunFilter::default();
    for (limit, expected) in [(0, 50), (-1, 50), (501, 50), (500, 500), (7, 7)] {
        assert_eq!(
            log.list_runs_filtered(&all, 0, limit).unwrap().len(),
            expected,
            "{limit}"
        );
    }
    assert_eq!(log.list_runs_filtered(&all, 0, 1).unwrap()[0].id, "r599");
    assert_eq!(log.list_runs_filtered(&all, 590, 500).unwrap().len(), 10);
}

#[test]
fn s3_11_dry_runs_are_excluded_unless_included_or_asked_for_by_status() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    run_with_status(&log, run("ok", "s", 1), Status::Ok);
    run_with_status(&log, run("dry", "s", 2), Status::DryRun);
    let list = |filter: RunFilter| ids(&log.list_runs_filtered(&filter, 0, 50).unwrap()).join(",");
    assert_eq!(list(RunFilter::default()), "ok");
    assert_eq!(
        list(RunFilter {
            include_dry_run: true,
            ..RunFilter::default()
        }),
        "dry,ok"
    );
    assert_eq!(
        list(RunFilter {
            status: Some(Status::DryRun),
            ..RunFilter::default()
        }),
        "dry"
    );
    assert_eq!(
        list(RunFilter {
            status: Some(Status::Ok),
            include_dry_run: true,
            ..RunFilter::default()
        }),
        "ok"
    );
}

#[test]
fn s3_11_every_filter_field_is_an_exact_match_and_top_level_only_hides_children() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let mut a = run("a", "s1", 1);
    a.caller_id = "c1".into();
    a.channel_id = "x".into();
    let mut b = child("b", "a", 2);
    b.caller_id = "c1".into();
    b.channel_id = "y".into();
    let mut c = run("c", "s2", 3);
    c.caller_id = "c2".into();
    c.channel_id = "x".into();
    for r in [a, b, c] {
        log.start_run(&r).unwrap();
    }
    let list = |filter: RunFilter| ids(&log.list_runs_filtered(&filter, 0, 50).unwrap()).join(",");
    let f = RunFilter::default;
    assert_eq!(
        list(RunFilter {
            top_level_only: true,
            ..f()
        }),
        "c,a"
    );
    assert_eq!(
        list(RunFilter {
            skill_id: Some("s1".into()),
            ..f()
        }),
        "a"
    );
    assert_eq!(
        list(RunFilter {
            caller_id: Some("c1".into()),
            ..f()
        }),
        "b,a"
    );
    assert_eq!(
        list(RunFilter {
            channel_id: Some("x".into()),
            ..f()
        }),
        "c,a"
    );
    assert_eq!(
        list(RunFilter {
            channel_id: Some("x".into()),
            caller_id: Some("c1".into()),
            ..f()
        }),
        "a"
    );
    assert_eq!(
        list(RunFilter {
            status: Some(Status::Running),
            ..f()
        }),
        "c,b,a"
    );
    assert_eq!(
        list(RunFilter {
            skill_id: Some("nobody".into()),
            ..f()
        }),
        ""
    );
}

#[test]
fn s3_11_since_is_inclusive_and_until_is_exclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    for i in 1..=5 {
        log.start_run(&run(&format!("r{i}"), "s", i)).unwrap();
    }
    let filter = RunFilter {
        since: Some(at(2)),
        until: Some(at(4)),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&log.list_runs_filtered(&filter, 0, 50).unwrap()),
        ["r3", "r2"]
    );
    assert_eq!(log.count_runs_filtered(&filter).unwrap(), 2);
    let empty = RunFilter {
        since: Some(at(4)),
        until: Some(at(4)),
        ..RunFilter::default()
    };
    assert_eq!(log.count_runs_filtered(&empty).unwrap(), 0);
}

#[test]
fn s3_12_count_runs_filtered_ignores_offset_and_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    for i in 0..120 {
        let status = if i % 4 == 0 {
            Status::DryRun
        } else {
            Status::Ok
        };
        run_with_status(&log, run(&format!("r{i}"), "s", i), status);
    }
    let filter = RunFilter::default();
    assert_eq!(log.list_runs_filtered(&filter, 0, 0).unwrap().len(), 50);
    assert_eq!(log.count_runs_filtered(&filter).unwrap(), 90);
    let with_dry = RunFilter {
        include_dry_run: true,
        ..RunFilter::default()
    };
    assert_eq!(log.count_runs_filtered(&with_dry).unwrap(), 120);
}

/// The default-filter count subtracts the dry runs from the candidates; the dry runs
/// it subtracts must follow a second finish, a purge and a reopen.
#[test]
fn s3_12_default_filter_counts_follow_refinishes_purges_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let counts = |log: &AuditLog| {
        let skill = |skill: &str, since: i64| RunFilter {
            skill_id: Some(skill.into()),
            since: Some(at(since)),
            ..RunFilter::default()
        };
        [
            log.count_runs_filtered(&RunFilter::default()).unwrap(),
            log.count_runs_filtered(&skill("a", 0)).unwrap(),
            log.count_runs_filtered(&skill("b", 10)).unwrap(),
            log.count_runs_by_skill("a", false).unwrap(),
        ]
    };
    let log = open(tmp.path());
    for i in 0..40 {
        let status = if i % 5 == 0 {
            Status::DryRun
        } else {
            Status::Ok
        };
        let skill = if i % 2 == 0 { "a" } else { "b" };
        run_with_status(&log, run(&format!("r{i}"), skill, i), status);
    }
    // Dry: r0 r5 r10 r15 r20 r25 r30 r35; "a" has r0 r10 r20 r30, "b" r5 r15 r25 r35.
    assert_eq!(counts(&log), [32, 16, 12, 16]);
    log.finish_run("r10", &stats(Status::Ok)).unwrap();
    log.finish_run("r11", &stats(Status::DryRun)).unwrap();
    assert_eq!(counts(&log), [32, 17, 11, 17]);
    assert_eq!(log.purge_older_than(at(6)).unwrap(), 6);
    // Gone: r0..r5 (dry r0, r5); "a" lost r2 r4, "b" r1 r3.
    assert_eq!(counts(&log), [28, 15, 11, 15]);
    log.close().unwrap();
    let log = open(tmp.path());
    assert!(matches!(
        log.checkpoint_use(),
        auditlog::CheckpointUse::Loaded { .. }
    ));
    assert_eq!(counts(&log), [28, 15, 11, 15]);
    log.finish_run("r20", &stats(Status::Error)).unwrap();
    assert_eq!(counts(&log), [29, 16, 11, 16]);
}

#[test]
fn s3_13_purge_deletes_older_runs_and_their_events_for_good() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let log = open(tmp.path());
        for i in 1..=4 {
            let id = format!("r{i}");
            log.start_run(&run(&id, "s", i)).unwrap();
            log.append_log(&event(&id, 1, "step")).unwrap();
        }
        assert_eq!(
            log.purge_older_than(at(3)).unwrap(),
            2,
            "started_at < t only"
        );
        assert_eq!(log.purge_older_than(at(3)).unwrap(), 0);
        assert!(matches!(log.get_run("r1"), Err(Error::NotFound { .. })));
        assert!(log.list_logs_by_run("r2").unwrap().is_empty());
        assert_eq!(log.get_run("r3").unwrap().id, "r3");
    }
    let tmp2 = tempfile::tempdir().unwrap();
    {
        let log = open(tmp2.path());
        log.start_run(&run("old", "s", 1)).unwrap();
        log.append_log(&event("old", 1, "step")).unwrap();
        log.start_run(&run("new", "s", 9)).unwrap();
        assert_eq!(log.purge_older_than(at(5)).unwrap(), 1);
        log.close().unwrap();
    }
    let log = open(tmp2.path());
    assert!(matches!(log.get_run("old"), Err(Error::NotFound { .. })));
    assert!(log.list_logs_by_run("old").unwrap().is_empty());
    assert_eq!(ids(&log.list_runs_by_skill("s", 10).unwrap()), ["new"]);
}

#[test]
fn s3_14_children_are_listed_oldest_first_and_an_empty_parent_matches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.start_run(&run("root", "s", 0)).unwrap();
    log.start_run(&child("c2", "root", 2)).unwrap();
    log.start_run(&child("c1", "root", 1)).unwrap();
    log.start_run(&child("g", "c1", 3)).unwrap();
    assert_eq!(
        ids(&log.list_children_by_parent("root").unwrap()),
        ["c1", "c2"]
    );
    assert!(log.list_children_by_parent("").unwrap().is_empty());
    assert!(log.list_children_by_parent("nobody").unwrap().is_empty());
}

#[test]
fn s3_15_the_parent_chain_is_root_first_and_ends_at_a_missing_ancestor() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.start_run(&run("root", "s", 0)).unwrap();
    log.start_run(&child("mid", "root", 1)).unwrap();
    log.start_run(&child("leaf", "mid", 2)).unwrap();
    log.start_run(&child("orphan", "gone", 3)).unwrap();
    assert_eq!(
        ids(&log.walk_parent_chain("leaf").unwrap()),
        ["root", "mid", "leaf"]
    );
    assert_eq!(ids(&log.walk_parent_chain("root").unwrap()), ["root"]);
    assert_eq!(ids(&log.walk_parent_chain("orphan").unwrap()), ["orphan"]);
    let err = log.walk_parent_chain("nope").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

#[test]
fn s3_15_a_cycle_in_the_data_gives_a_chain_of_at_most_32_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.start_run(&child("a", "b", 0)).unwrap();
    log.start_run(&child("b", "a", 1)).unwrap();
    log.start_run(&child("self", "self", 2)).unwrap();
    let chain = log.walk_parent_chain("a").unwrap();
    assert_eq!(chain.len(), auditlog::limits::PARENT_CHAIN_DEPTH_MAX);
    assert_eq!(chain.last().unwrap().id, "a", "run_id is last");
    assert_eq!(chain[chain.len() - 2].id, "b");
    assert_eq!(log.walk_parent_chain("self").unwrap().len(), 32);
}

#[test]
fn s3_16_finished_before_is_strict_oldest_first_never_running_and_limit_zero_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    for (id, finished) in [("late", 30), ("early", 10), ("edge", 20)] {
        log.start_run(&run(id, "s", 0)).unwrap();
        log.finish_run_at(id, &stats(Status::Ok), at(finished))
            .unwrap();
    }
    log.start_run(&run("running", "s", 0)).unwrap();
    assert_eq!(
        ids(&log.list_finished_runs_before(at(20), 10).unwrap()),
        ["early"]
    );
    assert_eq!(
        ids(&log.list_finished_runs_before(at(31), 10).unwrap()),
        ["early", "edge", "late"]
    );
    assert_eq!(
        ids(&log.list_finished_runs_before(at(31), 2).unwrap()),
        ["early", "edge"]
    );
    assert!(log.list_finished_runs_before(at(31), 0).unwrap().is_empty());
    assert!(
        log.list_finished_runs_before(at(31), -1)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn s3_17_last_run_by_skills_counts_ok_only_or_everything_but_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    run_with_status(&log, run("a1", "a", 1), Status::Ok);
    run_with_status(&log, run("a2", "a", 2), Status::Error);
    run_with_status(&log, run("a3", "a", 3), Status::DryRun);
    run_with_status(&log, run("b1", "b", 4), Status::Timeout);
    run_with_status(&log, run("c1", "c", 5), Status::Running);
    let ok_only = log
        .last_run_by_skills(&["a", "b", "c", "z"], false)
        .unwrap();
    assert_eq!(
        ok_only.into_iter().collect::<Vec<_>>(),
        [("a".to_string(), at(1))]
    );
    let failed = log.last_run_by_skills(&["a", "b", "c", "z"], true).unwrap();
    assert_eq!(
        failed.into_iter().collect::<Vec<_>>(),
        [
            ("a".to_string(), at(2)),
            ("b".to_string(), at(4)),
            ("c".to_string(), at(5))
        ]
    );
    assert!(log.last_run_by_skills(&[], true).unwrap().is_empty());
}

fn call(n: i64, caller: Option<&str>, tool: &str, outcome: Outcome) -> CallEvent {
    CallEvent {
        ts: at(n),
        call_id: format!("call-{n}"),
        tool_id: tool.into(),
        caller_id: caller.map(String::from),
        granted_capabilities: vec![],
        duration_ms: 1,
        outcome,
        tier: "warm".into(),
        dry_run: false,
        schema_version: 2,
        secrets_resolved: false,
        cursor_page: None,
    }
}

#[test]
fn s3_calls_are_listed_newest_first_and_counted_with_the_same_filter_conventions() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.record_call(&call(1, Some("me"), "t1", Outcome::Success))
        .unwrap();
    log.record_call(&call(3, None, "t1", Outcome::ToolNotFound))
        .unwrap();
    log.record_call(&call(2, Some("me"), "t2", Outcome::Success))
        .unwrap();
    let list = |f: CallFilter| {
        log.list_calls(&f, 0, 0)
            .unwrap()
            .into_iter()
            .map(|c| c.call_id)
            .collect::<Vec<_>>()
            .join(",")
    };
    let f = CallFilter::default;
    assert_eq!(list(f()), "call-3,call-2,call-1");
    assert_eq!(
        list(CallFilter {
            caller_id: Some("me".into()),
            ..f()
        }),
        "call-2,call-1"
    );
    assert_eq!(
        list(CallFilter {
            tool_id: Some("t1".into()),
            ..f()
        }),
        "call-3,call-1"
    );
    let success = CallFilter {
        outcome: Some(OutcomeKind::Success),
        since: Some(at(2)),
        until: Some(at(3)),
        ..f()
    };
    assert_eq!(list(success.clone()), "call-2");
    assert_eq!(log.count_calls(&success).unwrap(), 1);
    assert_eq!(log.count_calls(&f()).unwrap(), 3);
    assert_eq!(log.list_calls(&f(), 1, 1).unwrap()[0].call_id, "call-2");
}

#[test]
fn s3_1_reopening_a_store_answers_from_what_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.start_run(&run("r", "s", 1)).unwrap();
    log.close().unwrap();
    let log = open(tmp.path());
    assert_eq!(log.get_run("r").unwrap().id, "r");
}
