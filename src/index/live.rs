//! Which records the index still refers to: what compaction must keep.
//!
//! Kept apart from the rest of the index on purpose: this is the only place compaction
//! depends on the index's internal layout, so a change of layout touches one function.
//!
//! # Invariants
//! - Every LSN a query can read is reported: the `RunStarted` and latest `RunFinished`
//!   of every live run, every event of a live run, every orphan event, every call.
//! - Once the index stops referring to an LSN it never refers to it again (records
//!   are only ever added at new LSNs), so a set taken now is a superset of the live set
//!   at any later moment, below the LSNs appended since.
//! - Deliberately absent: purge tombstones and drop reports. The index holds no LSN for
//!   them; compaction keeps them by kind, forever.

use crate::codec::Lsn;
use crate::index::{Index, NO_LSN};
use crate::model::Timestamp;

impl Index {
    /// Pushes onto `out`, in no particular order, every LSN below `end` the index
    /// refers to.
    pub fn live_lsns_below(&self, end: Lsn, out: &mut Vec<u64>) {
        let mut push = |lsn: u64| {
            if lsn < end.0 {
                out.push(lsn);
            }
        };
        for &idx in self.by_id.values() {
            let entry = &self.runs[idx as usize];
            push(entry.started_lsn);
            if entry.finished_lsn != NO_LSN {
                push(entry.finished_lsn);
            }
            entry.events.iter().for_each(|&(_, lsn)| push(lsn));
        }
        for events in self.orphans.values() {
            events.iter().for_each(|&(_, lsn)| push(lsn));
        }
        for &(_, lsn) in self.calls.by_time.keys() {
            push(lsn);
        }
    }

    /// Live runs, oldest start first, each with its `started_at` and the LSNs of its
    /// records (start, latest finish, events): what retention by size walks.
    pub fn runs_oldest_first(&self) -> impl Iterator<Item = (Timestamp, Vec<Lsn>)> + '_ {
        self.by_time.iter().map(|&idx| {
            let entry = &self.runs[idx as usize];
            let mut lsns = vec![Lsn(entry.started_lsn)];
            if entry.finished_lsn != NO_LSN {
                lsns.push(Lsn(entry.finished_lsn));
            }
            lsns.extend(entry.events.iter().map(|&(_, lsn)| Lsn(lsn)));
            (entry.started_at(), lsns)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Lsn;
    use crate::codec::{Purge, Record};
    use crate::index::Index;
    use crate::model::{Run, RunEvent, Timestamp};

    #[test]
    fn purged_runs_and_their_events_are_not_live_orphans_and_later_runs_are() {
        let mut index = Index::new();
        let run = |id: &str, at| Run {
            id: id.into(),
            started_at: Timestamp::from_unix_nanos(at),
            ..Run::default()
        };
        let event = |id: &str, seq| RunEvent {
            run_id: id.into(),
            sequence: seq,
            ..RunEvent::default()
        };
        index.apply(Lsn(0), &Record::RunStarted(run("old", 1)));
        index.apply(Lsn(10), &Record::EventAppended(event("old", 1)));
        index.apply(Lsn(20), &Record::EventAppended(event("orphan", 1)));
        index.apply(Lsn(30), &Record::RunStarted(run("new", 9)));
        index.apply(
            Lsn(40),
            &Record::Purge(Purge {
                before: Timestamp::from_unix_nanos(5),
                purged_at: Timestamp::from_unix_nanos(50),
            }),
        );
        index.apply(Lsn(50), &Record::EventAppended(event("new", 1)));
        let mut live = Vec::new();
        index.live_lsns_below(Lsn(50), &mut live);
        live.sort_unstable();
        assert_eq!(live, vec![20, 30]);
        live.clear();
        index.live_lsns_below(Lsn(u64::MAX), &mut live);
        live.sort_unstable();
        assert_eq!(live, vec![20, 30, 50]);
        let runs: Vec<_> = index.runs_oldest_first().collect();
        assert_eq!(
            runs,
            vec![(Timestamp::from_unix_nanos(9), vec![Lsn(30), Lsn(50)])]
        );
    }
}
