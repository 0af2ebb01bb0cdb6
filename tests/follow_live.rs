//! Live subscriptions: a follower of a run, of a session or of the whole log receives
//! exactly the acknowledged records its filter selects, in log order; records the log
//! refused never reach it; a follower that never reads loses records (counted, with the
//! gap on the next one) while every record is still written; dropping a subscription
//! unsubscribes it and closing the log ends it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use auditlog::follow::RecvError;
use auditlog::ingest::{EventRef, FieldValue};
use auditlog::model::{
    CALL_EVENT_SCHEMA_VERSION, CallEvent, Outcome, Run, RunEvent, RunStats, Status, Timestamp,
};
use auditlog::session::{Phase, PhaseEvent, PhaseStatus, VerdictEvent};
use auditlog::{AuditLog, Follow, Followed, IngestConfig, Lsn, Record, Recorder, Session, Storage};

const WAIT: Duration = Duration::from_secs(10);

fn open(dir: &std::path::Path) -> AuditLog {
    AuditLog::open(common::small_config(dir)).unwrap()
}

fn event(run_id: &str, sequence: u64) -> RunEvent {
    RunEvent {
        run_id: run_id.into(),
        sequence,
        event_type: "step".into(),
        created_at: Timestamp::now(),
        ..RunEvent::default()
    }
}

fn call(call_id: &str) -> CallEvent {
    CallEvent {
        ts: Timestamp::now(),
        call_id: call_id.into(),
        tool_id: "fs.read".into(),
        caller_id: None,
        granted_capabilities: vec![],
        duration_ms: 1,
        outcome: Outcome::Success,
        tier: "hot".into(),
        dry_run: false,
        schema_version: CALL_EVENT_SCHEMA_VERSION,
        secrets_resolved: false,
        cursor_page: None,
    }
}

/// Everything queued now.
fn drain(sub: &auditlog::Subscription) -> Vec<Followed> {
    std::iter::from_fn(|| sub.try_recv()).collect()
}

#[test]
fn a_run_follower_receives_that_run_only_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let sub = log.subscribe(Follow::Run("a".into()), 64).unwrap();
    log.start_run(&Run::new("a", "s")).unwrap();
    log.start_run(&Run::new("b", "s")).unwrap();
    for seq in 1..=3 {
        log.append_log(&event("a", seq)).unwrap();
        log.append_log(&event("b", seq)).unwrap();
    }
    log.record_call(&call("c1")).unwrap();
    log.finish_run(
        "a",
        &RunStats {
            status: Status::Ok,
            ..RunStats::default()
        },
    )
    .unwrap();

    let got = drain(&sub);
    let kinds: Vec<&str> = got
        .iter()
        .map(|f| match &*f.record {
            Record::RunStarted(run) if run.id == "a" => "start",
            Record::EventAppended(e) if e.run_id == "a" => "event",
            Record::RunFinished(f) if f.run_id == "a" => "finish",
            other => panic!("not run a: {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["start", "event", "event", "event", "finish"]);
    assert!(got.windows(2).all(|w| w[0].lsn < w[1].lsn), "log order");
    assert!(got.iter().all(|f| f.missed_before == 0));
    assert_eq!(sub.missed(), 0);
    // What was delivered is what the log holds at those LSNs.
    for followed in &got {
        assert_eq!(log.read(followed.lsn).unwrap(), *followed.record);
    }
}

#[test]
fn a_session_follower_receives_the_sessions_events_from_the_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    let recorder = Recorder::start(log.clone(), IngestConfig::default()).unwrap();
    let sub = recorder
        .subscribe(Follow::Session("mission-1".into()), 64)
        .unwrap();
    let session = Session::new(recorder.clone(), "mission-1");
    let other = Session::new(recorder.clone(), "mission-2");
    let now = Timestamp::now();
    for phase in [Phase::Propose, Phase::Execute] {
        let phase = PhaseEvent {
            iteration_index: 0,
            phase,
            status: PhaseStatus::Succeeded,
            started_at: now,
            ended_at: now,
            error_message: None,
        };
        session.phase(&phase);
        other.phase(&phase);
    }
    session.verdict(&VerdictEvent {
        iteration_index: 0,
        verdict: "accept",
        verdict_reason: "done",
        revision_rationale: None,
    });

    let mut types = Vec::new();
    while types.len() < 3 {
        let followed = sub.recv_timeout(WAIT).expect("the session's events arrive");
        let Record::EventAppended(event) = &*followed.record else {
            panic!("a session event: {:?}", followed.record);
        };
        assert_eq!(event.run_id, "mission-1");
        assert_eq!(event.sequence, types.len() as u64 + 1);
        types.push(event.event_type.clone());
    }
    assert_eq!(
        types,
        [
            "mission_phase_event",
            "mission_phase_event",
            "mission_verdict_event"
        ]
    );
    recorder.flush().unwrap();
    assert_eq!(sub.try_recv(), None, "nothing of the other session");
}

#[test]
fn a_follower_of_everything_sees_the_log_as_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.start_run(&Run::new("before", "s")).unwrap();
    log.flush().unwrap();
    let from = log.durable_lsn().unwrap();
    let sub = log.subscribe(Follow::All, 1024).unwrap();
    log.start_run(&Run::new("a", "s")).unwrap();
    log.append_log(&event("a", 1)).unwrap();
    log.record_call(&call("c1")).unwrap();
    log.append_batch(&[
        common::event("x", 1, "batch"),
        common::event("x", 2, "batch"),
    ])
    .unwrap();
    let got: Vec<(Lsn, Record)> = drain(&sub)
        .into_iter()
        .map(|f| (f.lsn, (*f.record).clone()))
        .collect();
    let written: Vec<(Lsn, Record)> = log
        .records_from(Lsn(0))
        .unwrap()
        .into_iter()
        .filter(|(lsn, _)| *lsn >= from)
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got, written, "from the subscription on, exactly the log");
}

#[test]
fn refused_records_are_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    let sub = log.subscribe(Follow::All, 1024).unwrap();
    log.start_run(&Run::new("a", "s")).unwrap();
    assert!(log.start_run(&Run::new("a", "s")).is_err(), "duplicate run");
    log.append_log(&event("a", 1)).unwrap();
    assert!(
        log.append_log(&event("a", 1)).is_err(),
        "duplicate sequence"
    );
    assert!(
        log.finish_run(
            "nobody",
            &RunStats {
                status: Status::Ok,
                ..RunStats::default()
            }
        )
        .is_err()
    );
    let results = log.append_each(&[
        Record::EventAppended(event("a", 2)),
        Record::EventAppended(event("a", 2)),
        common::event("a", 3, &"x".repeat(8 << 10)),
    ]);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);

    // Through the recorder: a duplicate sequence is rejected by the log, counted as a
    // drop, and not delivered.
    let recorder = Recorder::start(log.clone(), IngestConfig::default()).unwrap();
    for sequence in [4, 4] {
        let _ = recorder.record_event(&EventRef {
            run_id: "a",
            sequence,
            event_type: "step",
            fields: &[("n", FieldValue::U64(sequence))],
            created_at: Timestamp::now(),
        });
    }
    recorder.flush().unwrap();
    assert_eq!(recorder.metrics().dropped.rejected, 1);

    let delivered: Vec<Record> = drain(&sub)
        .into_iter()
        .map(|f| (*f.record).clone())
        .collect();
    let events: Vec<u64> = delivered
        .iter()
        .filter_map(|r| match r {
            Record::EventAppended(e) => Some(e.sequence),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [1, 2, 4],
        "each accepted event once, no refused one"
    );
    let starts = delivered
        .iter()
        .filter(|r| matches!(r, Record::RunStarted(_)))
        .count();
    assert_eq!(starts, 1);
    assert!(
        delivered
            .iter()
            .all(|r| !matches!(r, Record::RunFinished(_))),
        "no finish of an unknown run"
    );
    assert_eq!(sub.missed(), 0);
}

#[test]
fn a_follower_that_never_reads_loses_records_and_the_recorder_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    let recorder = Recorder::start(
        log.clone(),
        IngestConfig::default().backpressure(auditlog::ingest::Backpressure::Block),
    )
    .unwrap();
    let stalled = recorder.subscribe(Follow::All, 16).unwrap();
    let reader = recorder
        .subscribe(Follow::Run("r-1".into()), 1 << 16)
        .unwrap();
    let n_runs = 4u64;
    let n_events = 5_000u64;
    let producers: Vec<_> = (0..n_runs)
        .map(|r| {
            let recorder = recorder.clone();
            std::thread::spawn(move || {
                let run_id = format!("r-{r}");
                for sequence in 1..=n_events {
                    let outcome = recorder.record_event(&EventRef {
                        run_id: &run_id,
                        sequence,
                        event_type: "step",
                        fields: &[("i", FieldValue::U64(sequence))],
                        created_at: Timestamp::now(),
                    });
                    assert!(outcome.is_accepted());
                }
            })
        })
        .collect();
    // A follower that reads as it goes receives its run whole, in sequence order.
    let mut next = 1;
    while next <= n_events {
        let followed = reader.recv_timeout(WAIT).expect("run r-1 keeps coming");
        assert_eq!(followed.missed_before, 0);
        let Record::EventAppended(event) = &*followed.record else {
            panic!("an event");
        };
        assert_eq!((event.run_id.as_str(), event.sequence), ("r-1", next));
        next += 1;
    }
    for producer in producers {
        producer.join().unwrap();
    }
    recorder.flush().unwrap();

    let total = n_runs * n_events;
    let metrics = recorder.metrics();
    assert_eq!(metrics.written, total, "every record was written");
    assert_eq!(metrics.dropped.total(), 0);
    assert_eq!(log.index_counts().1, total);
    let queued = drain(&stalled);
    assert_eq!(queued.len(), 16, "the stalled queue is full");
    assert_eq!(stalled.missed(), total - queued.len() as u64);
    assert_eq!(queued[0].missed_before, 0, "the first records were queued");
    assert_eq!(reader.missed(), 0);

    // Once it reads again it receives new records, told how many it lost.
    log.append(&common::event("later", 1, "x")).unwrap();
    let after = stalled.recv_timeout(WAIT).unwrap();
    assert_eq!(after.missed_before, stalled.missed());
}

#[test]
fn dropping_a_subscription_unsubscribes_and_closing_the_log_ends_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let kept = log.subscribe(Follow::All, 4).unwrap();
    let dropped = log.subscribe(Follow::All, 4).unwrap();
    assert_eq!(log.n_followers(), 2);
    drop(dropped);
    assert_eq!(log.n_followers(), 1);
    for seq in 1..=10 {
        log.append(&common::event("a", seq, "x")).unwrap();
    }
    assert_eq!(kept.missed(), 6);
    assert!(kept.recv_timeout(Duration::from_millis(1)).is_ok());
    // A receiver waiting in another thread is woken by the close.
    let waiter = std::thread::spawn(move || {
        let mut n = 0;
        while kept.recv().is_some() {
            n += 1;
        }
        (n, kept.recv_timeout(Duration::ZERO))
    });
    log.close().unwrap();
    let (n, last) = waiter.join().unwrap();
    assert_eq!(n, 3, "what was queued is still received");
    assert_eq!(last, Err(RecvError::Ended));
}
