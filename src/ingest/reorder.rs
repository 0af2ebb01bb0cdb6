//! Per-run sequence order: the committer's hold-back buffer.
//!
//! Where it sits: inside the committer, between popping records and appending them.
//! Producers on several threads may enqueue events of one run out of sequence order
//! (thread A takes sequence 5, thread B takes 6 and enqueues first). The committer holds
//! an event back until the events before it in its run have been written, so the log
//! stores each run's events in sequence order.
//!
//! # Invariants
//! - An event whose predecessor has been written (or that starts a run, sequence 1)
//!   passes straight through; only events behind a gap wait.
//! - A wait is bounded in time (`window`, after which the gap is taken as a drop and
//!   skipped) and in memory (at most `INGEST_REORDER_HELD_MAX` events held, at most
//!   `INGEST_REORDER_RUNS_MAX` runs remembered): nothing accepted is ever discarded here,
//!   only released early.
//! - A run's finish releases everything held for it first, and forgets the run.
//! - Records that are not events pass straight through, in order.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::codec::Record;
use crate::index::names::NameHashState;
use crate::limits;

/// What the buffer needs to know of a record to order it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Order<'a> {
    Event { run_id: &'a str, sequence: u64 },
    Finish { run_id: &'a str },
    Other,
}

/// A record the buffer can order.
pub(crate) trait Sequenced {
    fn order(&self) -> Order<'_>;
}

impl<T: Sequenced> Sequenced for Box<T> {
    fn order(&self) -> Order<'_> {
        (**self).order()
    }
}

impl Sequenced for Record {
    fn order(&self) -> Order<'_> {
        match self {
            Record::EventAppended(event) => Order::Event {
                run_id: &event.run_id,
                sequence: event.sequence,
            },
            Record::RunFinished(finish) => Order::Finish {
                run_id: &finish.run_id,
            },
            _ => Order::Other,
        }
    }
}

#[derive(Debug)]
struct RunOrder<T> {
    /// The run's id, its key in `Reorder::by_id`.
    run_id: String,
    /// The sequence the run's next written event should have.
    next_seq: u64,
    /// Events behind a gap, by sequence, with when they arrived.
    held: BTreeMap<u64, (T, Instant)>,
}

/// The hold-back buffer.
#[derive(Debug)]
pub(crate) struct Reorder<T> {
    /// The runs remembered, in no particular order.
    runs: Vec<RunOrder<T>>,
    /// Where each run is in `runs`.
    by_id: HashMap<String, usize, NameHashState>,
    /// Where the run of the last event pushed was in `runs`: a run's events mostly come
    /// together, so comparing its id with this run's usually saves the hash lookup. Any
    /// number is safe here.
    last_run_idx: usize,
    n_held: usize,
    window: Duration,
}

impl<T: Sequenced> Reorder<T> {
    pub fn new(window: Duration) -> Reorder<T> {
        Reorder {
            runs: Vec::new(),
            by_id: HashMap::default(),
            last_run_idx: 0,
            n_held: 0,
            window,
        }
    }

    /// Events held now.
    #[cfg(test)]
    pub fn n_held(&self) -> usize {
        self.n_held
    }

    /// Whether any event is held.
    pub fn is_holding(&self) -> bool {
        self.n_held > 0
    }

    /// Where the run `run_id` is in `runs`, if it is remembered.
    fn find(&mut self, run_id: &str) -> Option<usize> {
        let last = self.last_run_idx;
        if self.runs.get(last).is_some_and(|run| run.run_id == run_id) {
            return Some(last);
        }
        let run_idx = *self.by_id.get(run_id)?;
        self.last_run_idx = run_idx;
        Some(run_idx)
    }

    /// Remembers a new run, expecting its sequence 1; returns where it is.
    fn remember(&mut self, run_id: &str) -> usize {
        if self.runs.len() >= limits::INGEST_REORDER_RUNS_MAX {
            // Forget runs with nothing held; their later events wait at most one window.
            self.runs.retain(|run| !run.held.is_empty());
            self.by_id.clear();
            for (run_idx, run) in self.runs.iter().enumerate() {
                self.by_id.insert(run.run_id.clone(), run_idx);
            }
        }
        let run_idx = self.runs.len();
        self.runs.push(RunOrder {
            run_id: run_id.to_owned(),
            next_seq: 1,
            held: BTreeMap::new(),
        });
        self.by_id.insert(run_id.to_owned(), run_idx);
        self.last_run_idx = run_idx;
        run_idx
    }

    /// Forgets the run `run_id`, returning its state if it was remembered.
    fn forget(&mut self, run_id: &str) -> Option<RunOrder<T>> {
        let run_idx = self.by_id.remove(run_id)?;
        let run = self.runs.swap_remove(run_idx);
        if let Some(moved) = self.runs.get(run_idx) {
            *self
                .by_id
                .get_mut(&moved.run_id)
                .expect("every remembered run is indexed") = run_idx;
        }
        Some(run)
    }

    /// Takes one record; pushes to `out` whatever can be written now.
    pub fn push(&mut self, record: T, now: Instant, out: &mut Vec<T>) {
        match record.order() {
            Order::Event { run_id, sequence } => {
                let seq = sequence;
                let run_idx = match self.find(run_id) {
                    Some(run_idx) => {
                        // The common case, an event right after its predecessor.
                        let run = &mut self.runs[run_idx];
                        if seq == run.next_seq && run.held.is_empty() {
                            run.next_seq = seq + 1;
                            out.push(record);
                            return;
                        }
                        run_idx
                    }
                    None => self.remember(run_id),
                };
                let run = &mut self.runs[run_idx];
                if seq == run.next_seq {
                    out.push(record);
                    run.next_seq = seq + 1;
                    self.n_held -= release_consecutive(run, out);
                } else if seq < run.next_seq {
                    // Late (its gap was skipped) or a duplicate: written as it comes; the
                    // log does not hide it.
                    out.push(record);
                } else if let Entry::Vacant(slot) = run.held.entry(seq) {
                    slot.insert((record, now));
                    self.n_held += 1;
                    if self.n_held > limits::INGEST_REORDER_HELD_MAX {
                        self.release_all(out);
                    }
                } else {
                    // A second event with a held sequence: the gap is given up on. The
                    // held events up to that sequence go out in order, the first with it
                    // among them, then the second (which the log then refuses).
                    self.n_held -= release_through(run, seq, out);
                    out.push(record);
                    self.n_held -= release_consecutive(run, out);
                }
            }
            Order::Finish { run_id } => {
                if let Some(mut run) = self.forget(run_id) {
                    self.n_held -= release_held(&mut run, out);
                }
                out.push(record);
            }
            Order::Other => out.push(record),
        }
    }

    /// Releases events that waited longer than the window, skipping their gaps.
    pub fn release_expired(&mut self, now: Instant, out: &mut Vec<T>) {
        if self.n_held == 0 {
            return;
        }
        for run in &mut self.runs {
            while let Some((&seq, (_, arrived))) = run.held.first_key_value() {
                if now.duration_since(*arrived) < self.window {
                    break;
                }
                let (record, _) = run.held.remove(&seq).expect("first key exists");
                out.push(record);
                run.next_seq = seq + 1;
                self.n_held -= 1 + release_consecutive(run, out);
            }
        }
    }

    /// Releases everything held, in sequence order within each run (flush, close).
    pub fn release_all(&mut self, out: &mut Vec<T>) {
        if self.n_held == 0 {
            return;
        }
        for run in &mut self.runs {
            self.n_held -= release_held(run, out);
        }
        debug_assert_eq!(self.n_held, 0);
    }
}

/// Releases the held events that follow `next_seq` without a gap; returns how many.
fn release_consecutive<T>(run: &mut RunOrder<T>, out: &mut Vec<T>) -> usize {
    let mut n = 0;
    while let Some((record, _)) = run.held.remove(&run.next_seq) {
        out.push(record);
        run.next_seq += 1;
        n += 1;
    }
    n
}

/// Releases the held events of a run up to sequence `last`, in order, skipping gaps;
/// returns how many.
fn release_through<T>(run: &mut RunOrder<T>, last: u64, out: &mut Vec<T>) -> usize {
    let mut n = 0;
    while let Some(entry) = run.held.first_entry() {
        if *entry.key() > last {
            break;
        }
        let seq = *entry.key();
        out.push(entry.remove().0);
        run.next_seq = seq + 1;
        n += 1;
    }
    n
}

/// Releases every held event of a run in order, skipping gaps; returns how many.
fn release_held<T>(run: &mut RunOrder<T>, out: &mut Vec<T>) -> usize {
    release_through(run, u64::MAX, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunEvent;

    fn ev(run: &str, seq: u64) -> Record {
        Record::EventAppended(RunEvent {
            run_id: run.into(),
            sequence: seq,
            ..RunEvent::default()
        })
    }

    fn finish(run: &str) -> Record {
        Record::RunFinished(crate::codec::RunFinished {
            run_id: run.into(),
            stats: crate::model::RunStats::default(),
            finished_at: crate::model::Timestamp::EPOCH,
        })
    }

    /// Run ids and sequences, owned, to compare with [`seqs`].
    fn owned(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
        (expected.iter())
            .map(|&(run, seq)| (run.to_string(), seq))
            .collect()
    }

    fn seqs(out: &[Record]) -> Vec<(String, u64)> {
        out.iter()
            .map(|r| match r {
                Record::EventAppended(e) => (e.run_id.clone(), e.sequence),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn events_behind_a_gap_wait_for_it_and_others_pass() {
        let mut r = Reorder::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        for record in [ev("a", 1), ev("a", 3), ev("b", 1), ev("a", 4), ev("a", 2)] {
            r.push(record, now, &mut out);
        }
        assert_eq!(
            seqs(&out),
            owned(&[("a", 1), ("b", 1), ("a", 2), ("a", 3), ("a", 4)])
        );
        assert_eq!(r.n_held(), 0);
    }

    #[test]
    fn a_gap_older_than_the_window_is_skipped() {
        let mut r = Reorder::new(Duration::from_millis(5));
        let then = Instant::now();
        let mut out = Vec::new();
        r.push(ev("a", 1), then, &mut out);
        r.push(ev("a", 3), then, &mut out);
        r.push(ev("a", 4), then, &mut out);
        r.release_expired(then, &mut out);
        assert_eq!(out.len(), 1, "nothing expired yet");
        r.release_expired(then + Duration::from_millis(5), &mut out);
        assert_eq!(
            seqs(&out).iter().map(|s| s.1).collect::<Vec<_>>(),
            [1, 3, 4]
        );
        // The skipped event, arriving late, is still written.
        r.push(ev("a", 2), then, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(r.n_held(), 0);
    }

    #[test]
    fn a_finish_forgets_its_run_and_the_others_keep_their_state() {
        let mut r = Reorder::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        // "a" is remembered first, so forgetting it moves the last run into its place.
        for record in [ev("a", 1), ev("b", 1), ev("c", 1), ev("c", 3), ev("a", 3)] {
            r.push(record, now, &mut out);
        }
        assert_eq!(r.n_held(), 2);
        r.push(finish("a"), now, &mut out);
        assert_eq!(r.n_held(), 1, "a's held event went out before its finish");
        out.clear();
        for record in [ev("b", 2), ev("c", 2), ev("b", 3), ev("a", 1)] {
            r.push(record, now, &mut out);
        }
        assert_eq!(
            seqs(&out),
            owned(&[("b", 2), ("c", 2), ("c", 3), ("b", 3), ("a", 1)])
        );
        assert_eq!(r.n_held(), 0);
    }

    #[test]
    fn past_the_run_limit_only_runs_holding_events_are_remembered() {
        let mut r = Reorder::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        r.push(ev("held", 2), now, &mut out);
        for run_idx in 1..limits::INGEST_REORDER_RUNS_MAX {
            r.push(ev(&format!("run-{run_idx}"), 1), now, &mut out);
        }
        assert_eq!(r.runs.len(), limits::INGEST_REORDER_RUNS_MAX);
        assert_eq!(out.len(), limits::INGEST_REORDER_RUNS_MAX - 1);
        out.clear();
        // One run too many: the idle ones are forgotten, the holding one kept.
        r.push(ev("new", 1), now, &mut out);
        assert_eq!(r.runs.len(), 2);
        assert_eq!(r.by_id.len(), 2);
        r.push(ev("held", 1), now, &mut out);
        // A forgotten run starts again from sequence 1: its next event waits.
        r.push(ev("run-7", 2), now, &mut out);
        assert_eq!(seqs(&out), owned(&[("new", 1), ("held", 1), ("held", 2)]));
        assert_eq!(r.n_held(), 1);
    }

    #[test]
    fn a_second_event_with_a_held_sequence_goes_out_after_the_events_before_it() {
        let mut r = Reorder::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        // Behind the gap at 1: 2, 3 and 5 wait. A second 3 gives the gap up: 2, the
        // first 3 and then the second go out, in that order; 5 still waits for 4.
        for record in [ev("a", 2), ev("a", 3), ev("a", 5), ev("a", 3)] {
            r.push(record, now, &mut out);
        }
        assert_eq!(seqs(&out), owned(&[("a", 2), ("a", 3), ("a", 3)]));
        assert_eq!(r.n_held(), 1);
        r.push(ev("a", 4), now, &mut out);
        assert_eq!(seqs(&out)[3..], owned(&[("a", 4), ("a", 5)]));
        assert_eq!(r.n_held(), 0);
    }

    #[test]
    fn release_all_empties_the_buffer_in_run_order() {
        let mut r = Reorder::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        for record in [ev("a", 5), ev("a", 3), ev("b", 2)] {
            r.push(record, now, &mut out);
        }
        assert!(out.is_empty());
        r.release_all(&mut out);
        let mut a: Vec<u64> = seqs(&out)
            .into_iter()
            .filter(|(run, _)| run == "a")
            .map(|(_, s)| s)
            .collect();
        assert_eq!(a, [3, 5]);
        a.clear();
        assert_eq!(r.n_held(), 0);
    }
}
