//! Operation sequences against the model: arbitrary bytes are read as a sequence of
//! Storage operations (with reopens, checkpoint swaps and compaction passes) and run
//! against an `AuditLog` on the in-memory `SimVfs` and against the plain model of
//! SPEC §3 that the model-based proptest uses; every answer must be the same.
#![no_main]

#[path = "../common/bounded_alloc.rs"]
mod bounded_alloc;

#[path = "../../tests/model/mod.rs"]
mod model;

use std::path::Path;
use std::sync::Arc;

use auditlog::model::{OutcomeKind, Status};
use auditlog::vfs::SimVfs;
use auditlog::{CallFilter, RunFilter};
use libfuzzer_sys::fuzz_target;
use model::{CALLERS, CHANNELS, IDS, Op, SKILLS, TOOLS, at, run_ops};

/// Operations per input at most: longer inputs are cut, so one execution stays short.
const OPS_MAX: usize = 96;

/// Reads the input a byte at a time; past its end every byte reads as zero.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        first
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// `None` or a number below `n`.
    fn maybe(&mut self, n: usize) -> Option<usize> {
        let b = self.byte() as usize;
        (b % (n + 1) != n).then_some(b % (n + 1))
    }

    /// A time offset in `0..12` as the model uses them.
    fn time(&mut self) -> i64 {
        self.below(12) as i64
    }

    fn bound(&mut self) -> Option<auditlog::model::Timestamp> {
        self.maybe(12).map(|t| at(t as i64))
    }

    /// A page limit, including the clamp's edges.
    fn limit(&mut self) -> i64 {
        [-1, 0, 1, 2, 3, 500, 501][self.below(7)]
    }

    fn offset(&mut self) -> i64 {
        self.below(5) as i64 - 1
    }

    fn status(&mut self) -> Status {
        Status::ALL[self.below(Status::ALL.len())]
    }

    fn run_filter(&mut self) -> RunFilter {
        RunFilter {
            status: self.flag().then(|| self.status()),
            skill_id: self.maybe(SKILLS.len()).map(|i| SKILLS[i].to_string()),
            caller_id: self.maybe(CALLERS.len()).map(|i| CALLERS[i].to_string()),
            channel_id: self.maybe(CHANNELS.len()).map(|i| CHANNELS[i].to_string()),
            top_level_only: self.flag(),
            include_dry_run: self.flag(),
            since: self.bound(),
            until: self.bound(),
        }
    }

    fn call_filter(&mut self) -> CallFilter {
        CallFilter {
            caller_id: self.maybe(CALLERS.len()).map(|i| CALLERS[i].to_string()),
            tool_id: self.maybe(TOOLS.len()).map(|i| TOOLS[i].to_string()),
            outcome: self
                .maybe(OutcomeKind::ALL.len())
                .map(|i| OutcomeKind::ALL[i]),
            since: self.bound(),
            until: self.bound(),
        }
    }

    fn op(&mut self) -> Op {
        let id = IDS.len();
        match self.byte() % 21 {
            0 => Op::Start {
                id: self.below(id),
                skill: self.below(SKILLS.len()),
                caller: self.below(CALLERS.len()),
                channel: self.below(CHANNELS.len()),
                parent: self.maybe(id),
                started: self.below(10) as i64,
            },
            1 => Op::Finish {
                id: self.below(id),
                status: self.status(),
                at: self.below(10) as i64,
            },
            2 => Op::Append {
                id: self.below(id),
                seq: self.below(5) as u64,
                kind: self.below(3),
            },
            3 => Op::Get { id: self.below(id) },
            4 => Op::ListLogs { id: self.below(id) },
            5 => Op::BySkill {
                skill: self.below(SKILLS.len()),
                limit: self.limit(),
            },
            6 => Op::BySkillPage {
                skill: self.below(SKILLS.len()),
                offset: self.offset(),
                limit: self.limit(),
                dry: self.flag(),
            },
            7 => Op::CountBySkill {
                skill: self.below(SKILLS.len()),
                dry: self.flag(),
            },
            8 => Op::ByCaller {
                caller: self.below(CALLERS.len()),
                limit: self.limit(),
            },
            9 => Op::Filtered {
                filter: self.run_filter(),
                offset: self.offset(),
                limit: self.limit(),
            },
            10 => Op::CountFiltered {
                filter: self.run_filter(),
            },
            11 => Op::Purge {
                before: self.below(8) as i64,
            },
            12 => Op::Children {
                parent: self.maybe(id),
            },
            13 => Op::Walk { id: self.below(id) },
            14 => Op::FinishedBefore {
                cutoff: self.time(),
                limit: self.limit(),
            },
            15 => Op::LastBySkills {
                skills: (0..self.below(4))
                    .map(|_| self.below(SKILLS.len() + 1))
                    .collect(),
                include_failed: self.flag(),
            },
            16 => Op::RecordCall {
                caller: self.maybe(CALLERS.len()),
                tool: self.below(TOOLS.len()),
                outcome: self.below(OutcomeKind::ALL.len()),
                ts: self.below(10) as i64,
            },
            17 => Op::ListCalls {
                filter: self.call_filter(),
                offset: self.offset(),
                limit: self.limit(),
            },
            18 => Op::CountCalls {
                filter: self.call_filter(),
            },
            19 => Op::Reopen {
                mode: self.below(3) as u8,
            },
            _ => Op::Compact,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    let mut ops = Vec::new();
    while !bytes.0.is_empty() && ops.len() < OPS_MAX {
        ops.push(bytes.op());
    }
    if let Err(difference) = run_ops(Arc::new(SimVfs::new()), Path::new("/store"), &ops) {
        panic!("{difference}");
    }
});
