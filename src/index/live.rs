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
use crate::index::{EventsRef, Index, NONE, RunEntry};
use crate::model::Timestamp;

impl Index {
    /// The `(sequence, LSN)` list of a run's events (empty before its first event).
    fn run_events(&self, entry: &RunEntry) -> EventsRef<'_> {
        match entry.events {
            NONE => EventsRef::EMPTY,
            list => self.event_lists.get(list),
        }
    }

    /// The LSNs of a live run's records: its start, latest finish and events.
    fn run_lsns<'a>(&'a self, entry: &'a RunEntry) -> impl Iterator<Item = u64> + 'a {
        std::iter::once(entry.started_lsn)
            .chain(entry.finished_lsn().map(|lsn| lsn.0))
            .chain(self.run_events(entry).iter().map(|(_, lsn)| lsn))
    }

    /// Pushes onto `out`, in no particular order, every LSN below `end` the index
    /// refers to.
    pub fn live_lsns_below(&self, end: Lsn, out: &mut Vec<u64>) {
        let live_runs = self.by_time.iter().map(|&idx| &self.runs[idx as usize]);
        let run_lsns = live_runs.flat_map(|entry| self.run_lsns(entry));
        let orphan_lsns = (self.orphans.values())
            .flat_map(|events| events.as_ref().iter())
            .map(|(_, lsn)| lsn);
        let call_lsns = self.calls.by_time.iter().map(|(&(_, lsn), _)| lsn);
        out.extend(
            run_lsns
                .chain(orphan_lsns)
                .chain(call_lsns)
                .filter(|&lsn| lsn < end.0),
        );
    }

    /// Live runs, oldest start first, each with its `started_at` and the LSNs of its
    /// records (start, latest finish, events): what retention by size walks.
    pub fn runs_oldest_first(&self) -> impl Iterator<Item = (Timestamp, Vec<Lsn>)> + '_ {
        self.by_time.iter().map(|&idx| {
            let entry = &self.runs[idx as usize];
            (entry.started_at(), self.run_lsns(entry).map(Lsn).collect())
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
