//! Bad input gets a clear error and loses nothing: oversized records, invalid UTF-8
//! read back from disk, duplicate run ids and sequences, finishing an unknown run,
//! empty ids, timestamps at the ends of the representable range, a read-only store
//! directory and a foreign file in it, reads at LSNs where no frame starts, an ingest
//! configuration out of bounds. (A store already locked: `log_lock.rs`.)

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::sync::RwLock;

use auditlog::model::{CallEvent, Outcome, Payload, Run, RunEvent, RunStats, Status, Timestamp};
use auditlog::{
    AuditLog, Config, CorruptionKind, Error, Lsn, Record, RecoveryMode, RunFilter, Storage,
};
use common::segment_files;

/// The read-only test runs chattr(1); a forked child shares this process's open file
/// descriptors (a store's lock file among them) until it execs, so the tests that open
/// and close stores take turns with it.
static TURN: RwLock<()> = RwLock::new(());

fn shared_turn() -> std::sync::RwLockReadGuard<'static, ()> {
    TURN.read().unwrap_or_else(|e| e.into_inner())
}

fn config(dir: &Path) -> Config {
    Config::new(dir)
        .segment_bytes(256 << 10)
        .record_bytes_max(64 << 10)
}

fn run(id: &str, started_ms: i64) -> Run {
    Run {
        id: id.into(),
        skill_id: "skill".into(),
        caller_id: "caller".into(),
        started_at: Timestamp::from_unix_millis(started_ms),
        ..Run::default()
    }
}

fn step(run_id: &str, sequence: u64, text: &str) -> RunEvent {
    let mut payload = Payload::new();
    payload.insert("text".into(), text.into());
    RunEvent {
        run_id: run_id.into(),
        sequence,
        event_type: "step".into(),
        payload,
        created_at: Timestamp::from_unix_millis(1_000 + sequence as i64),
    }
}

fn n_records(log: &AuditLog) -> usize {
    log.records_from(Lsn(0)).unwrap().len()
}

/// The shared turn, and a store with one run and three events, closed and opened again:
/// its directory, the log and how many records it holds.
fn opened_store_with_a_run() -> (
    std::sync::RwLockReadGuard<'static, ()>,
    tempfile::TempDir,
    AuditLog,
    usize,
) {
    let turn = shared_turn();
    let dir = tempfile::tempdir().unwrap();
    store_with_a_run(dir.path());
    let log = AuditLog::open(config(dir.path())).unwrap();
    let before = n_records(&log);
    (turn, dir, log, before)
}

/// A store with one run and three events, closed.
fn store_with_a_run(dir: &Path) {
    let log = AuditLog::open(config(dir)).unwrap();
    log.start_run(&run("r1", 1_000)).unwrap();
    for seq in 1..=3 {
        log.append_log(&step("r1", seq, &format!("step number {seq}")))
            .unwrap();
    }
    log.close().unwrap();
}

#[test]
fn an_oversized_event_is_refused_and_the_run_is_untouched() {
    let (_turn, _dir, log, before) = opened_store_with_a_run();
    let err = log
        .append_log(&step("r1", 4, &"x".repeat(100 << 10)))
        .unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(n_records(&log), before);
    // The sequence was not taken by the refused event.
    log.append_log(&step("r1", 4, "small")).unwrap();
    assert_eq!(log.list_logs_by_run("r1").unwrap().len(), 4);
}

#[test]
fn duplicate_run_ids_and_sequences_are_refused_and_the_originals_kept() {
    let (_turn, dir, log, before) = opened_store_with_a_run();
    let mut imposter = run("r1", 9_999);
    imposter.skill_id = "other".into();
    let err = log.start_run(&imposter).unwrap_err();
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    assert!(err.to_string().contains("r1"), "{err}");
    let err = log
        .append_log(&step("r1", 2, "a different step 2"))
        .unwrap_err();
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");
    assert_eq!(n_records(&log), before, "nothing was written");
    assert_eq!(log.get_run("r1").unwrap().skill_id, "skill");
    assert_eq!(
        log.list_logs_by_run("r1").unwrap()[1].payload["text"],
        "step number 2"
    );
    log.close().unwrap();
    let log = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(
        log.list_logs_by_run("r1").unwrap()[1].payload["text"],
        "step number 2",
        "and after reopen"
    );
}

#[test]
fn a_finish_whose_status_is_not_terminal_is_refused_and_the_run_stays_running() {
    let (_turn, dir, log, before) = opened_store_with_a_run();
    let running = RunStats {
        status: Status::Running,
        ..RunStats::default()
    };
    let err = log.finish_run("r1", &running).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("not terminal"), "{err}");
    assert_eq!(n_records(&log), before, "nothing was written");

    // Written unchecked, it is in the log but not in the index, now and after a reopen.
    let finish = Record::RunFinished(auditlog::codec::RunFinished {
        run_id: "r1".into(),
        stats: running,
        finished_at: Timestamp::from_unix_millis(9_000),
    });
    log.append_batch(std::slice::from_ref(&finish)).unwrap();
    assert_eq!(n_records(&log), before + 1);
    assert_eq!(log.get_run("r1").unwrap().finished_at, None);
    log.close().unwrap();
    let log = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(log.get_run("r1").unwrap().finished_at, None, "after reopen");
}

#[test]
fn an_event_with_sequence_0_is_refused_through_every_write_path() {
    let (_turn, dir, log, before) = opened_store_with_a_run();
    let err = log
        .append_log(&step("r1", 0, "before the first"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("sequence 1"), "{err}");
    let zero = Record::EventAppended(step("r1", 0, "before the first"));
    assert!(matches!(
        log.append_each(std::slice::from_ref(&zero))[0],
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(n_records(&log), before, "nothing was written");

    // Written unchecked, it is in the log but not in the index, now and after a reopen.
    log.append_batch(std::slice::from_ref(&zero)).unwrap();
    let sequences = |log: &AuditLog| -> Vec<u64> {
        log.list_logs_by_run("r1")
            .unwrap()
            .iter()
            .map(|event| event.sequence)
            .collect()
    };
    let indexed = sequences(&log);
    assert!(!indexed.contains(&0), "{indexed:?}");
    log.close().unwrap();
    let log = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(sequences(&log), indexed, "after reopen");
}

#[test]
fn finishing_an_unknown_run_is_not_found_and_writes_nothing() {
    let (_turn, _dir, log, before) = opened_store_with_a_run();
    let stats = RunStats {
        status: Status::Ok,
        ..RunStats::default()
    };
    let err = log.finish_run("nope", &stats).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    assert_eq!(n_records(&log), before);
}

#[test]
fn empty_ids_are_refused_with_nothing_written() {
    let (_turn, _dir, log, before) = opened_store_with_a_run();
    assert!(matches!(
        log.start_run(&run("", 1)),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        log.append_log(&step("", 1, "x")),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        log.finish_run("", &RunStats::default()),
        Err(Error::InvalidInput(_) | Error::NotFound { .. })
    ));
    let call = CallEvent {
        ts: Timestamp::from_unix_millis(5),
        call_id: String::new(),
        tool_id: "t".into(),
        caller_id: None,
        granted_capabilities: vec![],
        duration_ms: 1,
        outcome: Outcome::Success,
        tier: "warm".into(),
        dry_run: false,
        schema_version: 2,
        secrets_resolved: false,
        cursor_page: None,
    };
    assert!(
        matches!(log.record_call(&call), Err(Error::InvalidInput(_))),
        "an empty call id"
    );
    let long = "x".repeat(auditlog::limits::ID_BYTES_MAX + 1);
    assert!(
        matches!(log.start_run(&run(&long, 1)), Err(Error::InvalidInput(_))),
        "an id over the limit"
    );
    assert_eq!(n_records(&log), before);
}

#[test]
fn timestamps_at_the_ends_of_the_range_are_stored_ordered_and_purged_correctly() {
    let _turn = shared_turn();
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(dir.path())).unwrap();
    let mut ancient = run("ancient", 0);
    ancient.started_at = Timestamp::MIN;
    let mut distant = run("distant", 0);
    distant.started_at = Timestamp::MAX;
    log.start_run(&ancient).unwrap();
    log.start_run(&distant).unwrap();
    log.start_run(&run("now", 1_700_000_000_000)).unwrap();
    let ids = |runs: Vec<Run>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(log
            .list_runs_filtered(&RunFilter::default(), 0, 10)
            .unwrap()),
        ["distant", "now", "ancient"]
    );
    let until_max = RunFilter {
        until: Some(Timestamp::MAX),
        ..RunFilter::default()
    };
    assert_eq!(
        ids(log.list_runs_filtered(&until_max, 0, 10).unwrap()),
        ["now", "ancient"],
        "until is exclusive"
    );
    let since_min = RunFilter {
        since: Some(Timestamp::MIN),
        ..RunFilter::default()
    };
    assert_eq!(
        log.count_runs_filtered(&since_min).unwrap(),
        3,
        "since is inclusive"
    );
    assert_eq!(
        log.purge_older_than(Timestamp::MIN).unwrap(),
        0,
        "nothing is older than the oldest instant"
    );
    log.close().unwrap();
    let log = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(log.get_run("ancient").unwrap().started_at, Timestamp::MIN);
    assert_eq!(log.get_run("distant").unwrap().started_at, Timestamp::MAX);
    assert_eq!(log.purge_older_than(Timestamp::MAX).unwrap(), 2);
    assert!(matches!(
        log.get_run("ancient"),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(log.get_run("distant").unwrap().id, "distant");
}

/// Rewrites the first occurrence of `needle` in a frame's payload and fixes the
/// frame's checksum, as a writer with corrupted memory would have written it.
#[test]
fn a_read_at_an_lsn_where_no_frame_starts_is_an_error_not_a_panic() {
    let _turn = shared_turn();
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(tmp.path())).unwrap();
    log.start_run(&run("r", 0)).unwrap();
    for sequence in 1..=600 {
        log.append_log(&step("r", sequence, &"x".repeat(600)))
            .unwrap();
    }
    assert!(
        segment_files(tmp.path()).len() >= 2,
        "a sealed segment and the active one"
    );
    let lsns = log.append_batch(&[]).unwrap();
    assert!(lsns.is_empty());
    let all = log.records_from(Lsn(0)).unwrap();
    let (last, _) = all.last().unwrap();
    for lsn in [
        Lsn(1),
        Lsn(all[1].0.0 + 3),
        Lsn(last.0 + 1),
        Lsn(last.0 + 100_000),
        Lsn(u64::MAX / 2),
        Lsn(u64::MAX - 1),
        Lsn(u64::MAX),
    ] {
        assert!(log.read(lsn).is_err(), "a read at {lsn:?}");
    }
    assert!(log.records_from(Lsn(u64::MAX)).unwrap().is_empty());
    assert_eq!(log.list_logs_by_run("r").unwrap().len(), 600);

    // A store of one segment, whose base LSN is 0.
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(config(tmp.path())).unwrap();
    log.start_run(&run("r", 0)).unwrap();
    for lsn in [Lsn(1), Lsn(u64::MAX - 1), Lsn(u64::MAX)] {
        assert!(log.read(lsn).is_err(), "a read at {lsn:?}");
    }
}

fn rewrite_payload_with_valid_crc(segment: &Path, needle: &[u8], replacement: &[u8]) {
    assert_eq!(needle.len(), replacement.len());
    let bytes = fs::read(segment).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in the segment");
    let (salt, segment_id) = (&bytes[40..48], &bytes[16..24]);
    // Walk frames to find the one holding `at`.
    let mut frame = 128usize;
    loop {
        let len = u32::from_le_bytes(bytes[frame + 4..frame + 8].try_into().unwrap()) as usize;
        if at < frame + 20 + len {
            break;
        }
        frame += 20 + len;
    }
    let len = u32::from_le_bytes(bytes[frame + 4..frame + 8].try_into().unwrap()) as usize;
    let mut patched = bytes[frame..frame + 20 + len].to_vec();
    let rel = at - frame;
    patched[rel..rel + replacement.len()].copy_from_slice(replacement);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(salt);
    hasher.update(segment_id);
    hasher.update(&patched[4..]);
    patched[..4].copy_from_slice(&hasher.finalize().to_le_bytes());
    let file = OpenOptions::new().write(true).open(segment).unwrap();
    file.write_all_at(&patched, frame as u64).unwrap();
}

#[test]
fn invalid_utf8_read_back_from_disk_is_a_clear_error_naming_where_it_is() {
    let _turn = shared_turn();
    let dir = tempfile::tempdir().unwrap();
    store_with_a_run(dir.path());
    let segment = segment_files(dir.path()).pop().unwrap();
    // "step number 2" becomes invalid UTF-8 inside a frame that still verifies.
    rewrite_payload_with_valid_crc(&segment, b"number 2", b"numb\xFF\xFE 2");

    // verify decodes every record, checkpoint or not.
    let report = AuditLog::verify(&config(dir.path())).unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert!(
        matches!(report.damaged[0].damage.kind, CorruptionKind::BadPayload(_)),
        "{report:?}"
    );

    // Open indexes only the fields it needs (from the checkpoint, or decoded from the
    // log without one), so the bad record surfaces when it is read: a clear error
    // naming where it is, in both cases; everything else stays readable.
    let expect_corrupt_on_read = |log: &AuditLog| {
        match log.list_logs_by_run("r1") {
            Err(Error::Corrupt {
                segment: at,
                kind: CorruptionKind::BadPayload(_),
                ..
            }) => {
                assert_eq!(at, segment)
            }
            other => panic!("expected a corrupt-record error, got {other:?}"),
        }
        assert_eq!(
            log.get_run("r1").unwrap().id,
            "r1",
            "the run itself is intact"
        );
    };
    expect_corrupt_on_read(&AuditLog::open(config(dir.path())).unwrap());
    fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    expect_corrupt_on_read(&AuditLog::open(config(dir.path())).unwrap());
    // A strict verify refuses the store.
    assert!(matches!(
        AuditLog::verify(&config(dir.path()).recovery(RecoveryMode::Strict)),
        Err(Error::Corrupt {
            kind: CorruptionKind::BadPayload(_),
            ..
        })
    ));
}

#[test]
fn a_foreign_file_in_the_store_is_a_clear_error_and_nothing_is_touched() {
    let _turn = shared_turn();
    let dir = tempfile::tempdir().unwrap();
    store_with_a_run(dir.path());
    let stranger = dir.path().join("notes.txt");
    fs::write(&stranger, "mine").unwrap();
    let before: Vec<_> = segment_files(dir.path())
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    let err = AuditLog::open(config(dir.path())).unwrap_err();
    assert!(matches!(err, Error::ForeignFile { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    let after: Vec<_> = segment_files(dir.path())
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(fs::read_to_string(&stranger).unwrap(), "mine");
    fs::remove_file(&stranger).unwrap();
    let log = AuditLog::open(config(dir.path())).unwrap();
    assert_eq!(log.list_logs_by_run("r1").unwrap().len(), 3);
}

/// Makes `dir` refuse new entries: `chattr +i` when running as root (root ignores
/// permission bits), else mode 0500.
struct ReadOnlyDir<'a>(&'a Path, bool);

impl<'a> ReadOnlyDir<'a> {
    fn new(dir: &'a Path) -> ReadOnlyDir<'a> {
        let as_root = {
            use std::os::unix::fs::MetadataExt;
            let probe = tempfile::NamedTempFile::new().unwrap();
            probe.as_file().metadata().unwrap().uid() == 0
        };
        if as_root {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok,
                "running as root, this test needs chattr(1) and a file system with the immutable flag"
            );
        } else {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).unwrap();
        }
        ReadOnlyDir(dir, as_root)
    }
}

impl Drop for ReadOnlyDir<'_> {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(self.0).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(self.0, fs::Permissions::from_mode(0o700));
        }
    }
}

#[test]
fn a_read_only_store_directory_is_a_clear_error_and_can_still_be_verified() {
    let _turn = TURN.write().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    store_with_a_run(&store);
    {
        let _read_only = ReadOnlyDir::new(&store);
        let err = AuditLog::open(config(&store)).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(
            err.to_string().contains(&store.display().to_string()),
            "the error names the store: {err}"
        );
        let report = AuditLog::verify(&config(&store)).unwrap();
        assert_eq!(report.n_frames, 4);
        assert!(report.is_clean());
    }
    let log = AuditLog::open(config(&store)).unwrap();
    assert_eq!(
        log.list_logs_by_run("r1").unwrap().len(),
        3,
        "nothing was lost"
    );
}

#[test]
fn an_ingest_config_out_of_bounds_is_refused_with_what_is_wrong() {
    use auditlog::IngestConfig;
    use std::time::Duration;

    let cases = [
        (
            IngestConfig::default().idle_park(Duration::from_secs(2)),
            "idle_park",
        ),
        (
            IngestConfig::default().reorder_window(Duration::from_secs(61)),
            "reorder_window",
        ),
        (
            IngestConfig {
                inline_bytes: 0,
                ..IngestConfig::default()
            },
            "inline_bytes",
        ),
        (IngestConfig::default().queue_bytes(1), "queue"),
    ];
    for (config, field) in cases {
        match config.validate() {
            Err(Error::InvalidConfig(why)) => assert!(why.contains(field), "{field}: {why}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let longest = IngestConfig::default().idle_park(Duration::from_secs(1));
    assert!(
        longest.validate().is_ok(),
        "1 s is the longest park allowed"
    );
    assert!(IngestConfig::default().validate().is_ok());
}
