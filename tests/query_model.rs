//! Model-based test of the Storage API: random sequences of every Storage method, with
//! reopens mixed in (using the checkpoint written on close, rebuilding without one,
//! and restoring an older checkpoint of the same log), run against `AuditLog` and
//! against the plain in-memory model of SPEC §3 in `tests/model`. Every answer, error
//! kinds included, must be the same. Compaction passes (with a policy that rewrites
//! every segment with anything to remove) are mixed in too: every answer must still
//! match the model — purged runs and their events stay gone — through compaction,
//! reopen, a rebuild and an older checkpoint put back.

mod model;

use std::sync::Arc;

use auditlog::model::{OutcomeKind, Status, Timestamp};
use auditlog::vfs::OsVfs;
use auditlog::{CallFilter, RunFilter};
use model::{CALLERS, CHANNELS, IDS, Op, SKILLS, TOOLS, at, run_ops};
use proptest::prelude::*;

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn bound() -> impl Strategy<Value = Option<Timestamp>> {
    prop::option::of((0i64..12).prop_map(at))
}

fn run_filter() -> impl Strategy<Value = RunFilter> {
    (
        prop::option::of(status()),
        prop::option::of(0..SKILLS.len()),
        prop::option::of(0..CALLERS.len()),
        prop::option::of(0..CHANNELS.len()),
        any::<bool>(),
        any::<bool>(),
        bound(),
        bound(),
    )
        .prop_map(
            |(status, skill, caller, channel, top, dry, since, until)| RunFilter {
                status,
                skill_id: skill.map(|i| SKILLS[i].to_string()),
                caller_id: caller.map(|i| CALLERS[i].to_string()),
                channel_id: channel.map(|i| CHANNELS[i].to_string()),
                top_level_only: top,
                include_dry_run: dry,
                since,
                until,
            },
        )
}

fn call_filter() -> impl Strategy<Value = CallFilter> {
    (
        prop::option::of(0..CALLERS.len()),
        prop::option::of(0..TOOLS.len()),
        prop::option::of(0..OutcomeKind::ALL.len()),
        bound(),
        bound(),
    )
        .prop_map(|(caller, tool, outcome, since, until)| CallFilter {
            caller_id: caller.map(|i| CALLERS[i].to_string()),
            tool_id: tool.map(|i| TOOLS[i].to_string()),
            outcome: outcome.map(|i| OutcomeKind::ALL[i]),
            since,
            until,
        })
}

fn limit() -> impl Strategy<Value = i64> {
    prop_oneof![-1i64..4, Just(0), Just(501), Just(500)]
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..IDS.len();
    prop_oneof![
        6 => (id.clone(), 0..SKILLS.len(), 0..CALLERS.len(), 0..CHANNELS.len(),
              prop::option::of(0..IDS.len()), 0i64..10)
            .prop_map(|(id, skill, caller, channel, parent, started)|
                Op::Start { id, skill, caller, channel, parent, started }),
        3 => (id.clone(), status(), 0i64..10).prop_map(|(id, status, at)| Op::Finish { id, status, at }),
        5 => (id.clone(), 0u64..5, 0usize..3).prop_map(|(id, seq, kind)| Op::Append { id, seq, kind }),
        2 => id.clone().prop_map(|id| Op::Get { id }),
        2 => id.clone().prop_map(|id| Op::ListLogs { id }),
        1 => (0..SKILLS.len(), limit()).prop_map(|(skill, limit)| Op::BySkill { skill, limit }),
        1 => (0..SKILLS.len(), -1i64..4, limit(), any::<bool>())
            .prop_map(|(skill, offset, limit, dry)| Op::BySkillPage { skill, offset, limit, dry }),
        1 => (0..SKILLS.len(), any::<bool>()).prop_map(|(skill, dry)| Op::CountBySkill { skill, dry }),
        1 => (0..CALLERS.len(), limit()).prop_map(|(caller, limit)| Op::ByCaller { caller, limit }),
        3 => (run_filter(), -1i64..4, limit())
            .prop_map(|(filter, offset, limit)| Op::Filtered { filter, offset, limit }),
        2 => run_filter().prop_map(|filter| Op::CountFiltered { filter }),
        1 => (0i64..8).prop_map(|before| Op::Purge { before }),
        1 => prop::option::of(id.clone()).prop_map(|parent| Op::Children { parent }),
        2 => id.clone().prop_map(|id| Op::Walk { id }),
        1 => (0i64..12, limit()).prop_map(|(cutoff, limit)| Op::FinishedBefore { cutoff, limit }),
        1 => (prop::collection::vec(0..SKILLS.len() + 1, 0..4), any::<bool>())
            .prop_map(|(skills, include_failed)| Op::LastBySkills { skills, include_failed }),
        2 => (prop::option::of(0..CALLERS.len()), 0..TOOLS.len(), 0..OutcomeKind::ALL.len(), 0i64..10)
            .prop_map(|(caller, tool, outcome, ts)| Op::RecordCall { caller, tool, outcome, ts }),
        1 => (call_filter(), -1i64..4, limit())
            .prop_map(|(filter, offset, limit)| Op::ListCalls { filter, offset, limit }),
        1 => call_filter().prop_map(|filter| Op::CountCalls { filter }),
        1 => (0u8..3).prop_map(|mode| Op::Reopen { mode }),
        1 => Just(Op::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_storage_answer_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let tmp = tempfile::tempdir().unwrap();
        let outcome = run_ops(Arc::new(OsVfs), tmp.path(), &ops);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
