//! A plain in-memory model of the Storage API (SPEC §3), written straightforwardly, and
//! a driver that runs a sequence of operations against both the model and an
//! `AuditLog` (reopens with and without a checkpoint and compaction passes mixed in),
//! comparing every answer. Shared by the model-based proptest (`tests/query_model.rs`,
//! on the real file system) and the `ops_model` fuzz target (on the in-memory `SimVfs`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use auditlog::model::{
    CallEvent, Outcome, OutcomeKind, Run, RunEvent, RunStats, Status, Timestamp,
};
use auditlog::vfs::Vfs;
use auditlog::{AuditLog, CallFilter, CheckpointUse, Config, Error, RunFilter, Storage};

pub const IDS: [&str; 6] = ["r0", "r1", "r2", "r3", "r4", "r5"];
pub const SKILLS: [&str; 3] = ["s0", "s1", "s2"];
pub const CALLERS: [&str; 2] = ["c0", "c1"];
pub const CHANNELS: [&str; 2] = ["x", "y"];
pub const TOOLS: [&str; 2] = ["t0", "t1"];

pub fn at(n: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + n)
}

pub fn clamp(limit: i64) -> usize {
    if limit <= 0 || limit > 500 {
        50
    } else {
        limit as usize
    }
}

pub fn offset(offset: i64) -> usize {
    offset.max(0) as usize
}

#[derive(Clone, Debug)]
pub enum Op {
    Start {
        id: usize,
        skill: usize,
        caller: usize,
        channel: usize,
        parent: Option<usize>,
        started: i64,
    },
    Finish {
        id: usize,
        status: Status,
        at: i64,
    },
    Append {
        id: usize,
        seq: u64,
        kind: usize,
    },
    Get {
        id: usize,
    },
    ListLogs {
        id: usize,
    },
    BySkill {
        skill: usize,
        limit: i64,
    },
    BySkillPage {
        skill: usize,
        offset: i64,
        limit: i64,
        dry: bool,
    },
    CountBySkill {
        skill: usize,
        dry: bool,
    },
    ByCaller {
        caller: usize,
        limit: i64,
    },
    Filtered {
        filter: RunFilter,
        offset: i64,
        limit: i64,
    },
    CountFiltered {
        filter: RunFilter,
    },
    Purge {
        before: i64,
    },
    Children {
        parent: Option<usize>,
    },
    Walk {
        id: usize,
    },
    FinishedBefore {
        cutoff: i64,
        limit: i64,
    },
    LastBySkills {
        skills: Vec<usize>,
        include_failed: bool,
    },
    RecordCall {
        caller: Option<usize>,
        tool: usize,
        outcome: usize,
        ts: i64,
    },
    ListCalls {
        filter: CallFilter,
        offset: i64,
        limit: i64,
    },
    CountCalls {
        filter: CallFilter,
    },
    /// 0: close and reopen (checkpoint written on close); 1: close, delete the
    /// checkpoint, reopen (full rebuild); 2: close, put back the checkpoint saved at an
    /// earlier reopen (an older prefix of the same log), reopen.
    Reopen {
        mode: u8,
    },
    /// `AuditLog::compact()`.
    Compact,
}

/// The plain model of SPEC §3.
#[derive(Default)]
pub struct Model {
    /// Live runs by id, with their start number (the tie-break between equal times).
    runs: BTreeMap<String, (u64, Run)>,
    events: HashMap<String, BTreeMap<u64, RunEvent>>,
    calls: Vec<(u64, CallEvent)>,
    n_started: u64,
}

/// An answer, with errors reduced to their kind.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Unit,
    Run(Box<Run>),
    Runs(Vec<Run>),
    Events(Vec<RunEvent>),
    Count(u64),
    Last(BTreeMap<String, Timestamp>),
    Calls(Vec<CallEvent>),
    NotFound,
    Duplicate,
    /// Refused as invalid input (an event with sequence 0, a finish whose status is
    /// not terminal).
    Invalid,
}

pub fn answer<T>(result: Result<T, Error>, ok: impl FnOnce(T) -> Answer) -> Answer {
    match result {
        Ok(value) => ok(value),
        Err(Error::NotFound { .. }) => Answer::NotFound,
        Err(Error::Duplicate { .. }) => Answer::Duplicate,
        Err(Error::InvalidInput(_)) => Answer::Invalid,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

impl Model {
    fn newest_first(&self, keep: impl Fn(&Run) -> bool) -> Vec<Run> {
        let mut runs: Vec<&(u64, Run)> = self.runs.values().filter(|(_, r)| keep(r)).collect();
        runs.sort_by_key(|(n, r)| std::cmp::Reverse((r.started_at, *n)));
        runs.into_iter().map(|(_, r)| r.clone()).collect()
    }

    fn page(runs: Vec<Run>, off: i64, limit: i64) -> Answer {
        Answer::Runs(
            runs.into_iter()
                .skip(offset(off))
                .take(clamp(limit))
                .collect(),
        )
    }

    fn filter_matches(f: &RunFilter, r: &Run) -> bool {
        let excludes_dry = !f.include_dry_run && f.status != Some(Status::DryRun);
        f.status.is_none_or(|s| r.status == s)
            && f.skill_id.as_ref().is_none_or(|s| &r.skill_id == s)
            && f.caller_id.as_ref().is_none_or(|c| &r.caller_id == c)
            && f.channel_id.as_ref().is_none_or(|c| &r.channel_id == c)
            && (!f.top_level_only || r.parent_run_id.is_empty())
            && (!excludes_dry || r.status != Status::DryRun)
            && f.since.is_none_or(|t| r.started_at >= t)
            && f.until.is_none_or(|t| r.started_at < t)
    }

    fn call_matches(f: &CallFilter, c: &CallEvent) -> bool {
        f.caller_id
            .as_ref()
            .is_none_or(|x| c.caller_id.as_ref() == Some(x))
            && f.tool_id.as_ref().is_none_or(|t| &c.tool_id == t)
            && f.outcome.is_none_or(|k| c.outcome.kind() == k)
            && f.since.is_none_or(|t| c.ts >= t)
            && f.until.is_none_or(|t| c.ts < t)
    }

    fn calls_newest_first(&self, f: &CallFilter) -> Vec<CallEvent> {
        let mut calls: Vec<&(u64, CallEvent)> = self
            .calls
            .iter()
            .filter(|(_, c)| Self::call_matches(f, c))
            .collect();
        calls.sort_by_key(|(n, c)| std::cmp::Reverse((c.ts, *n)));
        calls.into_iter().map(|(_, c)| c.clone()).collect()
    }

    pub fn apply(&mut self, op: &Op) -> Answer {
        match op {
            Op::Start { .. } => {
                let run = start_of(op);
                if self.runs.contains_key(&run.id) {
                    return Answer::Duplicate;
                }
                self.n_started += 1;
                self.runs.insert(run.id.clone(), (self.n_started, run));
                Answer::Unit
            }
            Op::Finish { status, .. } if !status.is_terminal() => Answer::Invalid,
            Op::Finish { id, status, at: t } => match self.runs.get_mut(IDS[*id]) {
                None => Answer::NotFound,
                Some((_, run)) => {
                    run.apply_finish(&stats_of(*status), at(*t));
                    Answer::Unit
                }
            },
            Op::Append { .. } => {
                let event = event_of(op);
                if event.sequence == 0 {
                    return Answer::Invalid;
                }
                let events = self.events.entry(event.run_id.clone()).or_default();
                if events.contains_key(&event.sequence) {
                    return Answer::Duplicate;
                }
                events.insert(event.sequence, event);
                Answer::Unit
            }
            Op::Get { id } => match self.runs.get(IDS[*id]) {
                Some((_, run)) => Answer::Run(Box::new(run.clone())),
                None => Answer::NotFound,
            },
            Op::ListLogs { id } => Answer::Events(
                self.events
                    .get(IDS[*id])
                    .map(|e| e.values().cloned().collect())
                    .unwrap_or_default(),
            ),
            Op::BySkill { skill, limit } => Self::page(
                self.newest_first(|r| r.skill_id == SKILLS[*skill] && r.status != Status::DryRun),
                0,
                *limit,
            ),
            Op::BySkillPage {
                skill,
                offset,
                limit,
                dry,
            } => Self::page(
                self.newest_first(|r| {
                    r.skill_id == SKILLS[*skill] && (*dry || r.status != Status::DryRun)
                }),
                *offset,
                *limit,
            ),
            Op::CountBySkill { skill, dry } => Answer::Count(
                self.newest_first(|r| {
                    r.skill_id == SKILLS[*skill] && (*dry || r.status != Status::DryRun)
                })
                .len() as u64,
            ),
            Op::ByCaller { caller, limit } => Self::page(
                self.newest_first(|r| r.caller_id == CALLERS[*caller]),
                0,
                *limit,
            ),
            Op::Filtered {
                filter,
                offset,
                limit,
            } => Self::page(
                self.newest_first(|r| Self::filter_matches(filter, r)),
                *offset,
                *limit,
            ),
            Op::CountFiltered { filter } => {
                Answer::Count(self.newest_first(|r| Self::filter_matches(filter, r)).len() as u64)
            }
            Op::Purge { before } => {
                let purged: Vec<String> = self
                    .runs
                    .values()
                    .filter(|(_, r)| r.started_at < at(*before))
                    .map(|(_, r)| r.id.clone())
                    .collect();
                for id in &purged {
                    self.runs.remove(id);
                    self.events.remove(id);
                }
                Answer::Count(purged.len() as u64)
            }
            Op::Children { parent } => {
                let Some(parent) = parent else {
                    return Answer::Runs(Vec::new());
                };
                let mut runs = self.newest_first(|r| r.parent_run_id == IDS[*parent]);
                runs.reverse();
                Answer::Runs(runs)
            }
            Op::Walk { id } => {
                let Some((_, run)) = self.runs.get(IDS[*id]) else {
                    return Answer::NotFound;
                };
                let mut chain = vec![run.clone()];
                while chain.len() < 32 {
                    let parent = &chain.last().unwrap().parent_run_id;
                    match self.runs.get(parent) {
                        Some((_, p)) if !parent.is_empty() => chain.push(p.clone()),
                        _ => break,
                    }
                }
                chain.reverse();
                Answer::Runs(chain)
            }
            Op::FinishedBefore { cutoff, limit } => {
                if *limit <= 0 {
                    return Answer::Runs(Vec::new());
                }
                let mut runs: Vec<&(u64, Run)> = self
                    .runs
                    .values()
                    .filter(|(_, r)| r.finished_at.is_some_and(|f| f < at(*cutoff)))
                    .collect();
                runs.sort_by_key(|(n, r)| (r.finished_at, *n));
                Answer::Runs(
                    runs.into_iter()
                        .take((*limit).min(500) as usize)
                        .map(|(_, r)| r.clone())
                        .collect(),
                )
            }
            Op::LastBySkills {
                skills,
                include_failed,
            } => {
                let mut out = BTreeMap::new();
                for &s in skills {
                    let name = skill_name(s);
                    let latest = self
                        .runs
                        .values()
                        .filter(|(_, r)| r.skill_id == name)
                        .filter(|(_, r)| {
                            if *include_failed {
                                r.status != Status::DryRun
                            } else {
                                r.status == Status::Ok
                            }
                        })
                        .map(|(_, r)| r.started_at)
                        .max();
                    if let Some(t) = latest {
                        out.insert(name.to_string(), t);
                    }
                }
                Answer::Last(out)
            }
            Op::RecordCall { .. } => {
                self.calls.push((self.calls.len() as u64, call_of(op)));
                Answer::Unit
            }
            Op::ListCalls {
                filter,
                offset: off,
                limit,
            } => Answer::Calls(
                self.calls_newest_first(filter)
                    .into_iter()
                    .skip(offset(*off))
                    .take(clamp(*limit))
                    .collect(),
            ),
            Op::CountCalls { filter } => {
                Answer::Count(self.calls_newest_first(filter).len() as u64)
            }
            Op::Reopen { .. } | Op::Compact => Answer::Unit,
        }
    }
}

pub fn skill_name(i: usize) -> &'static str {
    SKILLS.get(i).copied().unwrap_or("never-used")
}

pub fn start_of(op: &Op) -> Run {
    let Op::Start {
        id,
        skill,
        caller,
        channel,
        parent,
        started,
    } = op
    else {
        unreachable!()
    };
    Run {
        id: IDS[*id].into(),
        skill_id: SKILLS[*skill].into(),
        caller_id: CALLERS[*caller].into(),
        channel_id: CHANNELS[*channel].into(),
        started_at: at(*started),
        parent_run_id: parent.map_or(String::new(), |p| IDS[p].to_string()),
        ..Run::default()
    }
}

pub fn stats_of(status: Status) -> RunStats {
    RunStats {
        status,
        output: format!("{status}"),
        tool_calls: 1,
        ..RunStats::default()
    }
}

pub fn event_of(op: &Op) -> RunEvent {
    let Op::Append { id, seq, kind } = op else {
        unreachable!()
    };
    let mut event = RunEvent {
        run_id: IDS[*id].into(),
        sequence: *seq,
        event_type: ["step", "tool_call", "custom"][*kind].into(),
        created_at: at(*seq as i64),
        ..RunEvent::default()
    };
    event.payload.insert("n".into(), (*seq).into());
    event
}

pub fn call_of(op: &Op) -> CallEvent {
    let Op::RecordCall {
        caller,
        tool,
        outcome,
        ts,
    } = op
    else {
        unreachable!()
    };
    let outcome = match OutcomeKind::ALL[*outcome] {
        OutcomeKind::Success => Outcome::Success,
        OutcomeKind::ExecutionFailed => Outcome::ExecutionFailed {
            code: "E".into(),
            retryable: true,
        },
        OutcomeKind::InvalidArgs => Outcome::InvalidArgs {
            message: "m".into(),
        },
        OutcomeKind::CapabilityDenied => Outcome::CapabilityDenied {
            missing: vec!["x".into()],
        },
        OutcomeKind::RateLimited => Outcome::RateLimited {
            retry_after_ms: Some(5),
        },
        OutcomeKind::ToolNotFound => Outcome::ToolNotFound,
    };
    CallEvent {
        ts: at(*ts),
        call_id: format!("call-{ts}"),
        tool_id: TOOLS[*tool].into(),
        caller_id: caller.map(|c| CALLERS[c].to_string()),
        granted_capabilities: vec![],
        duration_ms: 3,
        outcome,
        tier: "warm".into(),
        dry_run: false,
        schema_version: 2,
        secrets_resolved: false,
        cursor_page: None,
    }
}

pub fn run_on_log(log: &AuditLog, op: &Op) -> Answer {
    let unit = |()| Answer::Unit;
    match op {
        Op::Start { .. } => answer(log.start_run(&start_of(op)), unit),
        Op::Finish { id, status, at: t } => answer(
            log.finish_run_at(IDS[*id], &stats_of(*status), at(*t)),
            unit,
        ),
        Op::Append { .. } => answer(log.append_log(&event_of(op)), unit),
        Op::Get { id } => answer(log.get_run(IDS[*id]), |r| Answer::Run(Box::new(r))),
        Op::ListLogs { id } => answer(log.list_logs_by_run(IDS[*id]), Answer::Events),
        Op::BySkill { skill, limit } => {
            answer(log.list_runs_by_skill(SKILLS[*skill], *limit), Answer::Runs)
        }
        Op::BySkillPage {
            skill,
            offset,
            limit,
            dry,
        } => answer(
            log.list_runs_by_skill_paginated(SKILLS[*skill], *offset, *limit, *dry),
            Answer::Runs,
        ),
        Op::CountBySkill { skill, dry } => {
            answer(log.count_runs_by_skill(SKILLS[*skill], *dry), Answer::Count)
        }
        Op::ByCaller { caller, limit } => answer(
            log.list_runs_by_caller(CALLERS[*caller], *limit),
            Answer::Runs,
        ),
        Op::Filtered {
            filter,
            offset,
            limit,
        } => answer(
            log.list_runs_filtered(filter, *offset, *limit),
            Answer::Runs,
        ),
        Op::CountFiltered { filter } => answer(log.count_runs_filtered(filter), Answer::Count),
        Op::Purge { before } => answer(log.purge_older_than(at(*before)), Answer::Count),
        Op::Children { parent } => answer(
            log.list_children_by_parent(parent.map_or("", |p| IDS[p])),
            Answer::Runs,
        ),
        Op::Walk { id } => answer(log.walk_parent_chain(IDS[*id]), Answer::Runs),
        Op::FinishedBefore { cutoff, limit } => answer(
            log.list_finished_runs_before(at(*cutoff), *limit),
            Answer::Runs,
        ),
        Op::LastBySkills {
            skills,
            include_failed,
        } => {
            let names: Vec<&str> = skills.iter().map(|&s| skill_name(s)).collect();
            answer(
                log.last_run_by_skills(&names, *include_failed),
                Answer::Last,
            )
        }
        Op::RecordCall { .. } => answer(log.record_call(&call_of(op)), unit),
        Op::ListCalls {
            filter,
            offset,
            limit,
        } => answer(log.list_calls(filter, *offset, *limit), Answer::Calls),
        Op::CountCalls { filter } => answer(log.count_calls(filter), Answer::Count),
        Op::Compact => unreachable!("handled by the driver"),
        Op::Reopen { .. } => unreachable!("handled by the driver"),
    }
}

fn open(vfs: &Arc<dyn Vfs>, dir: &Path) -> AuditLog {
    let config = Config::new(dir)
        .vfs(Arc::clone(vfs))
        .segment_bytes(4 << 10)
        .record_bytes_max(1 << 10)
        .checkpoint_every_records(7)
        .compaction_policy(auditlog::compaction::Policy {
            removable_share_min: 0.0,
        });
    AuditLog::open(config).unwrap()
}

fn read_file(vfs: &dyn Vfs, path: &Path) -> Option<Vec<u8>> {
    let file = vfs.open_ro(path).ok()?;
    let mut bytes = vec![0; file.len().unwrap() as usize];
    file.read_exact_at(&mut bytes, 0).unwrap();
    Some(bytes)
}

fn write_file(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) {
    let _ = vfs.remove_file(path);
    let file = vfs.create_new(path).unwrap();
    file.write_all_at(bytes, 0).unwrap();
    file.sync_all().unwrap();
}

/// Runs `ops` against a log in `dir` on `vfs` and against the model; the first answer
/// that differs (or a checkpoint used when it should not be, or not used when it
/// should) is the error.
pub fn run_ops(vfs: Arc<dyn Vfs>, dir: &Path, ops: &[Op]) -> Result<(), String> {
    let ckpt = dir.join("index.ckpt");
    let mut log = open(&vfs, dir);
    let mut model = Model::default();
    let mut saved: Option<Vec<u8>> = None;
    // Whether a compaction removed records: an older checkpoint put back may then be
    // refused (its last frame gone, or it predates the compaction horizon).
    let mut compacted = false;
    for (step, op) in ops.iter().enumerate() {
        if let Op::Compact = op {
            let report = log.compact().unwrap();
            compacted |= report.n_frames_removed > 0;
            continue;
        }
        if let Op::Reopen { mode } = op {
            log.close().unwrap();
            let current = read_file(&*vfs, &ckpt);
            let ckpt_existed = current.is_some() && (*mode != 2 || saved.is_some());
            match mode {
                1 => {
                    let _ = vfs.remove_file(&ckpt);
                }
                2 => {
                    if let Some(old) = &saved {
                        write_file(&*vfs, &ckpt, old);
                    }
                }
                _ => {}
            }
            if saved.is_none() {
                saved = current;
            }
            log = open(&vfs, dir);
            let used = log.checkpoint_use().clone();
            let loaded = matches!(used, CheckpointUse::Loaded { .. });
            let fine = match mode {
                1 => used == CheckpointUse::Missing,
                2 if compacted && matches!(used, CheckpointUse::Ignored(_)) => true,
                _ => loaded || (used == CheckpointUse::Missing && !ckpt_existed),
            };
            if !fine {
                return Err(format!("step {step} ({op:?}): checkpoint {used:?}"));
            }
            continue;
        }
        let expected = model.apply(op);
        let got = run_on_log(&log, op);
        if got != expected {
            return Err(format!(
                "step {step} ({op:?}): the log answered {got:?}, the model {expected:?}"
            ));
        }
    }
    Ok(())
}
