//! The README's example, kept compiling.
use auditlog::codec::RunFinished;
use auditlog::model::{Run, RunEvent, RunStats, Status, Timestamp};
use auditlog::{AuditLog, Config, Durability, Lsn, Record};

fn main() -> auditlog::Result<()> {
    let dir = std::env::temp_dir().join(format!("auditlog-quickstart-{}", std::process::id()));
    let log =
        AuditLog::open(Config::new(&dir).durability(Durability::GroupCommit { interval_ms: 2 }))?;
    let mut run = Run::new("run-42", "summarize");
    run.caller_id = "alice".into();
    let step = RunEvent {
        run_id: "run-42".into(),
        sequence: 1,
        event_type: "step".into(),
        created_at: Timestamp::now(),
        ..Default::default()
    };
    let finish = RunFinished {
        run_id: "run-42".into(),
        stats: RunStats {
            status: Status::Ok,
            tool_calls: 0,
            ..Default::default()
        },
        finished_at: Timestamp::now(),
    };
    log.append_batch(&[
        Record::RunStarted(run),
        Record::EventAppended(step),
        Record::RunFinished(finish),
    ])?;
    log.flush()?;
    for (lsn, record) in log.records_from(Lsn(0))? {
        println!("{lsn}: {record:?}");
    }
    log.close()?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
