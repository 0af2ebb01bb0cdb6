//! The secondary indexes: what the store knows about every run, run event and call
//! event, in memory, without holding any row or payload.
//!
//! Where it sits: after the segment journal. Every record appended (and, at open, every
//! record recovered) is applied here with its LSN, in LSN order; the query layer asks
//! the index *which* LSNs answer a question and reads those records back from the
//! memory-mapped segments. At open, records are applied straight from their frames
//! through partial decodes (`keys`), reading only the fields held here.
//!
//! The layout is flat, so a run costs a fixed number of bytes and no heap allocation
//! of its own:
//! - Run ids and parent ids are interned together in one [`Names`] arena; per name the
//!   index holds the live run with that id (`id_run`) and the newest live run whose
//!   parent it is (`id_first_child`).
//! - Per run, a 64-byte [`RunEntry`] in `runs`: the LSN of its `RunStarted` record, the
//!   LSN of its latest `RunFinished` record, `started_at` / `finished_at` as `i64`, the
//!   status as a byte, `u32` numbers of its id, parent id, skill, caller and channel,
//!   the next older run with the same parent (children form a list, newest first), and
//!   the number of its `(sequence, LSN)` event list in `event_lists` (sorted by
//!   sequence).
//! - Runs are numbered by a [`RunIdx`] in the order they were started; that number is
//!   also the tie-break wherever two runs share a timestamp (the run started later
//!   sorts as newer).
//!
//! Time-ordered lists are `Vec<u32>`s sorted by `(started_at, RunIdx)` (or
//! `(finished_at, RunIdx)`): one over all runs, one per skill, caller and channel. Runs
//! mostly arrive in time order, so an insert is usually a push; a run started out of
//! order is inserted at its place. Listing newest first with an offset walks one list
//! backwards from the `until` bound; counting walks the `since..until` slice of the
//! most selective list. Nothing scans the log.
//!
//! # Invariants
//! - Applying is deterministic and never fails: a record the query API would refuse (a
//!   duplicate run id, a duplicate sequence or sequence 0, a finish for an unknown run
//!   or with a status that is not terminal, a payload that does not decode) is
//!   ignored, so replaying a log always rebuilds the same index, whoever wrote it.
//! - Every list holds exactly the live runs that belong in it, sorted by its key; every
//!   child list holds exactly the live runs with that parent id, newest first.
//! - A purged run is gone from every structure; its slot in `runs` and its interned id
//!   stay, dead, so numbers never shift (compaction may renumber later).
//! - Events of a run id that is not (or no longer) started are kept as orphans and
//!   move into the run when a run with that id starts (SPEC §3.4).
//! - Every `u32` number points into the table it names (checked on checkpoint load),
//!   and every walk of a child list is bounded by the number of runs.
//! - Deliberately absent: strings of the rows, payloads, inputs, outputs. Those are
//!   read from the log on query.

pub mod checkpoint;
mod chunked;
mod events;
mod flat;
mod keys;
mod live;
pub mod names;
mod ordered;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use crate::codec::{Lsn, Record, RecordKind};
use crate::error::{Error, Result};
use crate::limits::ID_BYTES_MAX;
use crate::model::{OutcomeKind, Status, Timestamp};
use chunked::Chunked;
pub use events::EventsRef;
pub(crate) use events::{EventLists, EventVec};
use flat::{Flat, Parts};
use names::NameHashState;
pub use names::Names;
use ordered::OrderedMap;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The number of a run in start order; the position of its entry in the index.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunIdx(pub u32);

/// Runs from which the consistency check walks each run list in two halves on two
/// threads.
pub(crate) const PARALLEL_CHECK_RUNS_MIN: usize = 100_000;

/// Half `half` (0 or 1) of `0..n`.
fn half_of(n: usize, half: usize) -> Range<usize> {
    [0..n / 2, n / 2..n][half].clone()
}

/// `a()` and `b()`, on two threads when `parallel`.
fn on_two<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> std::result::Result<A, String>,
    b: impl FnOnce() -> std::result::Result<B, String> + Send,
) -> (
    std::result::Result<A, String>,
    std::result::Result<B, String>,
) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let b = scope.spawn(b);
        let a = a();
        let b = b
            .join()
            .unwrap_or_else(|_| Err("the check's second thread panicked".into()));
        (a, b)
    })
}

/// An LSN that is not there (a run not finished yet).
pub(crate) const NO_LSN: u64 = u64::MAX;
/// A `u32` number that is not there (no parent, no event list, no run).
pub(crate) const NONE: u32 = u32::MAX;
const FLAG_ALIVE: u8 = 1;
const FLAG_TOP_LEVEL: u8 = 2;
const FLAG_FINISHED: u8 = 4;

/// What the index holds about one run.
///
/// Laid out as a checkpoint stores it (fields in this order, no padding the compiler
/// chose, 64 bytes), so that on a little-endian machine a loaded checkpoint's run table
/// is used where the file's map has it, not copied (`chunked.rs`).
#[derive(Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RunEntry {
    pub(crate) started_lsn: u64,
    /// `NO_LSN` when the run was never finished through a `RunFinished` record.
    pub(crate) finished_lsn: u64,
    pub(crate) started_at: i64,
    pub(crate) finished_at: i64,
    /// The run's id, a number in `Index::ids`.
    pub(crate) id: u32,
    /// The parent's id in `Index::ids`, or `NONE` for a top-level run.
    pub(crate) parent: u32,
    /// The next older live run with the same parent, or `NONE`.
    pub(crate) next_sibling: u32,
    pub(crate) skill: u32,
    pub(crate) caller: u32,
    pub(crate) channel: u32,
    /// The run's list in `Index::event_lists`, or `NONE` before its first event.
    pub(crate) events: u32,
    pub(crate) status: u8,
    pub(crate) flags: u8,
    /// Zero; makes the entry's 64 bytes all fields.
    pub(crate) pad: [u8; 2],
}

const _: () = assert!(std::mem::size_of::<RunEntry>() == 64);

impl chunked::InPlace for RunEntry {
    fn slice_in(bytes: &[u8]) -> Option<&[RunEntry]> {
        chunked::slice_of_le(bytes)
    }
}

impl RunEntry {
    /// The LSN of the `RunStarted` record.
    pub fn started_lsn(&self) -> Lsn {
        Lsn(self.started_lsn)
    }

    /// The LSN of the latest `RunFinished` record, if any.
    pub fn finished_lsn(&self) -> Option<Lsn> {
        (self.finished_lsn != NO_LSN).then_some(Lsn(self.finished_lsn))
    }

    /// The run's current status.
    pub fn status(&self) -> Status {
        Status::ALL[self.status as usize]
    }

    /// When the run started.
    pub fn started_at(&self) -> Timestamp {
        Timestamp::from_unix_nanos(self.started_at)
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.flags & FLAG_ALIVE != 0
    }

    fn is_finished(&self) -> bool {
        self.flags & FLAG_FINISHED != 0
    }
}

/// The refusal of a run entry whose numbers point past their tables.
pub(crate) const RUN_OUT_OF_RANGE: &str = "a run entry with a number out of range";
/// The refusal of a per-id table naming a run past the run table.
pub(crate) const ID_OUT_OF_RANGE: &str = "an id pointing past the run table";

/// What the numbers in a run entry must lie below: the sizes of the tables they name.
#[derive(Copy, Clone, Debug)]
pub(crate) struct RunBounds {
    runs: usize,
    ids: usize,
    skills: usize,
    callers: usize,
    channels: usize,
    event_lists: usize,
}

impl RunBounds {
    /// Whether `j` names a run, or none.
    pub(crate) fn run_or_none(&self, j: u32) -> bool {
        j == NONE || (j as usize) < self.runs
    }

    /// Whether every number in `entry` points into its table.
    pub(crate) fn hold(&self, entry: &RunEntry) -> bool {
        let below = |j: u32, n: usize| (j as usize) < n;
        (entry.status as usize) < Status::ALL.len()
            && below(entry.id, self.ids)
            && (entry.parent == NONE || below(entry.parent, self.ids))
            && self.run_or_none(entry.next_sibling)
            && below(entry.skill, self.skills)
            && below(entry.caller, self.callers)
            && below(entry.channel, self.channels)
            && (entry.events == NONE || below(entry.events, self.event_lists))
    }
}

/// The status byte of a dry run.
const DRY_RUN: u8 = {
    let mut i = 0;
    while !matches!(Status::ALL[i], Status::DryRun) {
        i += 1;
    }
    i as u8
};

fn status_byte(status: Status) -> u8 {
    Status::ALL
        .iter()
        .position(|s| *s == status)
        .expect("every status is in Status::ALL") as u8
}

/// Which runs a listing or count matches, with names resolved to interned ids.
///
/// `None` in an attribute means "any"; a name the index never saw cannot match and is
/// reported by [`Index::resolve`] returning `None`.
#[derive(Clone, Debug, Default)]
pub struct RunSelect<'a> {
    pub status: Option<Status>,
    pub skill_id: Option<&'a str>,
    pub caller_id: Option<&'a str>,
    pub channel_id: Option<&'a str>,
    pub top_level_only: bool,
    pub exclude_dry_run: bool,
    /// `started_at >= since`.
    pub since: Option<Timestamp>,
    /// `started_at < until`.
    pub until: Option<Timestamp>,
}

/// A [`RunSelect`] with names resolved.
#[derive(Clone, Debug)]
pub struct Resolved {
    status: Option<u8>,
    skill: Option<u32>,
    caller: Option<u32>,
    channel: Option<u32>,
    top_level_only: bool,
    exclude_dry_run: bool,
    since: i64,
    /// The latest `started_at` included: `until` is exclusive, and an absent `until`
    /// must still include a run started at `i64::MAX`.
    last: i64,
}

impl Resolved {
    /// Whether the skill, caller and channel asked for are the run's.
    fn matches_names(&self, entry: &RunEntry) -> bool {
        self.skill.is_none_or(|s| s == entry.skill)
            && self.caller.is_none_or(|c| c == entry.caller)
            && self.channel.is_none_or(|c| c == entry.channel)
    }

    fn matches(&self, entry: &RunEntry) -> bool {
        self.status.is_none_or(|s| s == entry.status)
            && self.matches_names(entry)
            && (!self.top_level_only || entry.flags & FLAG_TOP_LEVEL != 0)
            && (!self.exclude_dry_run || entry.status != DRY_RUN)
            && entry.started_at >= self.since
            && entry.started_at <= self.last
    }
}

/// What the index holds about one call event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallEntry {
    /// `NO_CALLER` when the call names no caller.
    pub(crate) caller: u32,
    pub(crate) tool: u32,
    pub(crate) kind: u8,
}

const NO_CALLER: u32 = u32::MAX;

/// Which call events a listing or count matches.
#[derive(Clone, Debug, Default)]
pub struct CallSelect<'a> {
    pub caller_id: Option<&'a str>,
    pub tool_id: Option<&'a str>,
    pub outcome: Option<OutcomeKind>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// The name last looked up in a table, with its number: records mostly name the run,
/// caller or tool of the record before them, so comparing with it usually saves
/// hashing the name. Names are only ever added to a table, so a number keeps its name.
/// The name is a copy, not read back from the table by number: `Names::name` cost the
/// committer about 60 instructions more per lookup (two lookups per event).
#[derive(Clone, Debug, Default)]
pub(crate) struct LastName {
    id: u32,
    /// Empty: none yet.
    name: Vec<u8>,
}

impl LastName {
    /// The number of `name`, if it is the last one.
    fn matches(&self, name: &str) -> Option<u32> {
        (!self.name.is_empty() && self.name == name.as_bytes()).then_some(self.id)
    }

    fn remember(&mut self, id: u32, name: &str) {
        if self.id != id || self.name.is_empty() {
            self.id = id;
            self.name.clear();
            self.name.extend_from_slice(name.as_bytes());
        }
    }

    /// The number of `name` in `names`, interning it if it is new.
    fn intern(&mut self, names: &mut Names, name: &str) -> u32 {
        if let Some(id) = self.matches(name) {
            return id;
        }
        let id = names.intern(name);
        self.remember(id, name);
        id
    }
}

/// The call events, keyed by `(ts, LSN)`: the LSN makes keys unique and orders equal
/// timestamps by arrival. Calls mostly arrive in time order, which `OrderedMap` makes a
/// push. `by_caller` and `by_tool` hold exactly the keys of `by_time` whose entry names
/// that caller or tool: only [`Calls::insert`] fills them, and nothing removes a call.
/// They are indexed by the name's number, which `Names` deals out densely from 0, so
/// finding a name's list is an index, not a hash lookup.
#[derive(Clone, Debug, Default)]
pub(crate) struct Calls {
    pub(crate) by_time: OrderedMap<(i64, u64), CallEntry>,
    by_caller: Vec<OrderedMap<(i64, u64), ()>>,
    by_tool: Vec<OrderedMap<(i64, u64), ()>>,
    pub(crate) callers: Names,
    pub(crate) tools: Names,
    last_caller: LastName,
    last_tool: LastName,
}

impl Calls {
    /// Adds one call event; `caller` and `tool` are numbers in `callers` and `tools`.
    pub(crate) fn insert(&mut self, key: (i64, u64), entry: CallEntry) {
        self.insert_name_keys(key, entry);
        self.by_time.insert(key, entry);
    }

    /// Adds `key` to the lists of the caller and the tool `entry` names.
    fn insert_name_keys(&mut self, key: (i64, u64), entry: CallEntry) {
        if entry.caller != NO_CALLER {
            keys_for(&mut self.by_caller, entry.caller).insert(key, ());
        }
        keys_for(&mut self.by_tool, entry.tool).insert(key, ());
    }

    /// Whether every number in `entry` points into its table.
    fn entry_in_range(&self, entry: &CallEntry) -> bool {
        (entry.kind as usize) < OutcomeKind::ALL.len()
            && (entry.caller == NO_CALLER || (entry.caller as usize) < self.callers.len())
            && (entry.tool as usize) < self.tools.len()
    }

    /// The calls a checkpoint holds, by time, with the names they number; the per-name
    /// lists are made from them. An entry numbering a name past its table (a damaged
    /// file, which the checksum then refuses) is reported, and no list is made for it,
    /// so a damaged number cannot make a list that large.
    pub(crate) fn from_loaded(
        by_time: OrderedMap<(i64, u64), CallEntry>,
        callers: Names,
        tools: Names,
    ) -> (Calls, std::result::Result<(), String>) {
        let mut calls = Calls {
            callers,
            tools,
            ..Calls::default()
        };
        let mut check = Ok(());
        for (&key, entry) in by_time.iter() {
            if calls.entry_in_range(entry) {
                calls.insert_name_keys(key, *entry);
            } else {
                check = Err("a call entry with a number out of range".to_owned());
            }
        }
        calls.by_time = by_time;
        (calls, check)
    }
}

/// The keys of name `id` in `lists`, made (with any missing below it) if new.
fn keys_for(
    lists: &mut Vec<OrderedMap<(i64, u64), ()>>,
    id: u32,
) -> &mut OrderedMap<(i64, u64), ()> {
    let id = id as usize;
    if lists.len() <= id {
        lists.resize_with(id + 1, OrderedMap::default);
    }
    &mut lists[id]
}

/// The in-memory indexes over one log.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Every run ever started, by [`RunIdx`]; purged runs stay as dead entries.
    pub(crate) runs: Chunked<RunEntry>,
    /// Run ids and parent ids.
    pub(crate) ids: Names,
    /// Per id: the live run with that id, or `NONE`.
    pub(crate) id_run: Chunked<u32>,
    /// Per id: the newest live run whose parent it is, or `NONE`.
    pub(crate) id_first_child: Chunked<u32>,
    /// The number of live runs.
    pub(crate) n_live: u32,
    /// `(sequence, LSN)` lists, sorted by sequence, of the runs that have events.
    pub(crate) event_lists: EventLists,
    /// Events whose run id (a number in `ids`) is not a live run.
    pub(crate) orphans: HashMap<u32, EventVec, NameHashState>,
    pub(crate) skills: Names,
    pub(crate) callers: Names,
    pub(crate) channels: Names,
    /// Live runs by `(started_at, RunIdx)`.
    pub(crate) by_time: Flat<u32>,
    /// Per interned skill, caller and channel: live runs by `(started_at, RunIdx)`.
    pub(crate) by_skill: Vec<Flat<u32>>,
    pub(crate) by_caller: Vec<Flat<u32>>,
    pub(crate) by_channel: Vec<Flat<u32>>,
    /// Live finished runs by `(finished_at, RunIdx)`.
    pub(crate) by_finish: Flat<u32>,
    /// Live dry runs by `(started_at, RunIdx)`: a count that leaves dry runs out (the
    /// default filter) subtracts these instead of checking every candidate's status.
    pub(crate) by_dry: Flat<u32>,
    pub(crate) calls: Calls,
    pub(crate) n_events: u64,
    /// The run of the last event applied.
    last_event_run: LastName,
}

fn list_for(lists: &mut Vec<Flat<u32>>, id: u32) -> &mut Flat<u32> {
    let id = id as usize;
    if lists.len() <= id {
        lists.resize_with(id + 1, Flat::default);
    }
    &mut lists[id]
}

/// The latest instant an exclusive `until` bound includes; `None` when it includes
/// nothing (`until` at the earliest instant).
fn inclusive_end(until: Option<Timestamp>) -> Option<i64> {
    match until {
        None => Some(i64::MAX),
        Some(until) => until.unix_nanos().checked_sub(1),
    }
}

/// Checks a run id before anything is written.
pub fn check_run_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidInput(format!("{what} is empty")));
    }
    if id.len() > ID_BYTES_MAX {
        return Err(Error::InvalidInput(format!(
            "{what} is {} bytes long, more than the limit of {ID_BYTES_MAX}",
            id.len()
        )));
    }
    Ok(())
}

/// Checks an event's sequence: a run's first is 1 (SPEC §2.3), so 0 is refused.
fn check_sequence(sequence: u64) -> Result<()> {
    if sequence == 0 {
        return Err(Error::InvalidInput(
            "event sequence is 0; a run's first event is sequence 1".into(),
        ));
    }
    Ok(())
}

/// Checks a finish's status: `finish_run` sets a terminal one (SPEC §3.3), so
/// `running` is refused.
fn check_terminal(status: Status) -> Result<()> {
    if !status.is_terminal() {
        return Err(Error::InvalidInput(format!(
            "a run cannot finish with status {status}: it is not terminal"
        )));
    }
    Ok(())
}

/// What the index takes of a `CallRecorded` payload, read without decoding the rest
/// (debug builds check the key the ingest committer passes along against it).
pub(crate) fn call_key(payload: &[u8]) -> Option<crate::codec::CallRef<'_>> {
    keys::call(payload).map(|key| crate::codec::CallRef {
        ts: key.ts,
        call_id: key.call_id,
        tool_id: key.tool_id,
        caller_id: key.caller_id,
        kind: key.outcome.kind,
    })
}

/// The run id and sequence of an `EventAppended` payload, read without decoding the
/// rest.
pub(crate) fn event_key(payload: &[u8]) -> Option<(&str, u64)> {
    keys::event(payload).map(|key| (key.run_id, key.sequence))
}

/// Refuses a call event with an empty or overlong call or tool id.
pub(crate) fn check_call(call_id: &str, tool_id: &str) -> Result<()> {
    check_run_id("call id", call_id)?;
    check_run_id("tool id", tool_id)
}

/// The fields of a `RunStarted` record the index holds.
struct Start<'a> {
    id: &'a str,
    skill_id: &'a str,
    caller_id: &'a str,
    channel_id: &'a str,
    parent_run_id: &'a str,
    started_at: i64,
    finished_at: Option<i64>,
    status: Status,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// The number of live runs.
    pub fn n_runs(&self) -> usize {
        self.n_live as usize
    }

    /// The number of events held (live runs and orphans).
    pub fn n_events(&self) -> u64 {
        self.n_events
    }

    /// Bytes of the event lists read in place from the checkpoint's view of its file
    /// (page cache, not heap; not in [`Index::heap_bytes_by_part`]).
    pub fn loaded_event_bytes(&self) -> usize {
        self.event_lists.loaded_bytes()
    }

    /// Bytes of the run table read in place from the checkpoint's view of its file
    /// (page cache, not heap; not in [`Index::heap_bytes_by_part`]).
    pub fn loaded_run_bytes(&self) -> usize {
        self.runs.in_place_bytes()
    }

    /// Bytes of the per-id tables and the run lists read in place from the
    /// checkpoint's view of its file (page cache, not heap; not in
    /// [`Index::heap_bytes_by_part`]).
    pub fn loaded_run_list_bytes(&self) -> usize {
        let per_id = [&self.id_run, &self.id_first_child].map(Chunked::in_place_bytes);
        let flat = [&self.by_time, &self.by_finish, &self.by_dry];
        let lists = [&self.by_skill, &self.by_caller, &self.by_channel];
        (flat.into_iter().chain(lists.into_iter().flatten()))
            .map(Flat::in_place_bytes)
            .chain(per_id)
            .sum()
    }

    /// Bytes of the name tables read in place from the checkpoint's view of its file
    /// (page cache, not heap; not in [`Index::heap_bytes_by_part`]).
    pub fn loaded_name_bytes(&self) -> usize {
        (self.name_tables())
            .map(|names| {
                names.bytes.in_place_bytes()
                    + names.ends.in_place_bytes()
                    + names.slots.in_place_bytes()
            })
            .sum()
    }

    /// Heap bytes reserved by each part of the index (capacities times element sizes),
    /// for memory measurements. Hash-map and B-tree overheads of the orphans and the
    /// call index are not included; their elements are.
    pub fn heap_bytes_by_part(&self) -> Vec<(&'static str, usize)> {
        fn u32s(list: &Flat<u32>) -> usize {
            list.heap_bytes()
        }
        fn lists(lists: &Vec<Flat<u32>>) -> usize {
            lists.capacity() * std::mem::size_of::<Flat<u32>>()
                + lists.iter().map(u32s).sum::<usize>()
        }
        fn names(names: &Names) -> usize {
            names.bytes.heap_bytes() + names.ends.heap_bytes() + names.slots.heap_bytes()
        }
        vec![
            ("runs (64-byte entries)", self.runs.heap_bytes()),
            ("run and parent ids: arena", self.ids.bytes.heap_bytes()),
            ("run and parent ids: ends", self.ids.ends.heap_bytes()),
            (
                "run and parent ids: hash slots",
                self.ids.slots.heap_bytes(),
            ),
            (
                "id -> live run, id -> first child",
                self.id_run.heap_bytes() + self.id_first_child.heap_bytes(),
            ),
            (
                "skill, caller, channel names",
                names(&self.skills) + names(&self.callers) + names(&self.channels),
            ),
            (
                "by_time, by_finish, by_dry",
                u32s(&self.by_time) + u32s(&self.by_finish) + u32s(&self.by_dry),
            ),
            (
                "by_skill, by_caller, by_channel",
                lists(&self.by_skill) + lists(&self.by_caller) + lists(&self.by_channel),
            ),
            ("event list headers", self.event_lists.heap_bytes().0),
            (
                "events",
                self.event_lists.heap_bytes().1
                    + self
                        .orphans
                        .values()
                        .map(EventVec::heap_bytes)
                        .sum::<usize>(),
            ),
            (
                "call names",
                names(&self.calls.callers) + names(&self.calls.tools),
            ),
        ]
    }

    /// Inserts `idx` into a list sorted by `key`, pushing when it belongs at the end.
    fn insert_sorted(list: &mut Flat<u32>, idx: u32, key: impl Fn(u32) -> (i64, u32)) {
        let new = key(idx);
        match list.last() {
            Some(&last) if key(last) > new => {
                let at = list.partition_point(|&j| key(j) < new);
                list.to_mut().insert(at, idx);
            }
            _ => list.push(idx),
        }
    }

    fn remove_sorted(list: &mut Flat<u32>, idx: u32, key: impl Fn(u32) -> (i64, u32)) {
        let old = key(idx);
        let at = list.partition_point(|&j| key(j) < old);
        assert_eq!(
            list.parts().get(at),
            Some(&idx),
            "a live run is in each of its lists"
        );
        list.to_mut().remove(at);
    }

    /// The live run with id `run_id`.
    fn live_run(&self, run_id: &str) -> Option<u32> {
        let id = self.ids.find_then(run_id, |id| {
            if let Some(idx) = self.id_run.get(id as usize) {
                crate::hint::prefetch(idx);
            }
        })?;
        let idx = self.id_run[id as usize];
        (idx != NONE).then_some(idx)
    }

    /// Interns a run or parent id, growing the per-id tables with it.
    fn intern_id(&mut self, id: &str) -> u32 {
        let n = self.id_run.len();
        let i = self.ids.intern(id);
        if i as usize == n {
            self.id_run.push(NONE);
            self.id_first_child.push(NONE);
        }
        debug_assert_eq!(self.id_run.len(), self.ids.len());
        i
    }

    /// Checks that every number in the index points where it may, so a decoded
    /// checkpoint can never make a lookup index out of bounds or a walk loop. That each
    /// event list is in sequence order is checked as the checkpoint is decoded.
    pub fn check_consistent(&self) -> std::result::Result<(), String> {
        self.check_consistent_from(PARALLEL_CHECK_RUNS_MIN)
    }

    /// [`Index::check_consistent`], walking the per-key lists on a second thread from
    /// `parallel_from` runs on.
    fn check_consistent_from(&self, parallel_from: usize) -> std::result::Result<(), String> {
        self.check_names_consistent()?;
        self.check_run_entries()?;
        self.check_runs_consistent(parallel_from)?;
        self.check_orphans_and_calls_consistent()
    }

    /// Every name table of [`Index::check_consistent`]. A checkpoint's load checks
    /// each as it decodes it ([`names::NamesCheck`]).
    pub(crate) fn check_names_consistent(&self) -> std::result::Result<(), String> {
        self.name_tables().try_for_each(Names::check_consistent)
    }

    /// Every name table, in the order a checkpoint stores them.
    pub(crate) fn name_tables(&self) -> impl Iterator<Item = &Names> {
        [
            &self.ids,
            &self.skills,
            &self.callers,
            &self.channels,
            &self.calls.callers,
            &self.calls.tools,
        ]
        .into_iter()
    }

    /// The part of [`Index::check_consistent`] that needs only what a checkpoint holds
    /// before its event lists, once the names, the run entries and the per-id tables
    /// are checked (a checkpoint's load checks those as it decodes them): the run
    /// lists. A checkpoint's load runs it while its event lists are still being
    /// decoded.
    pub(crate) fn check_runs_consistent(
        &self,
        parallel_from: usize,
    ) -> std::result::Result<(), String> {
        let n_runs = self.runs.len();
        let n_ids = self.ids.len();
        if self.id_run.len() != n_ids || self.id_first_child.len() != n_ids {
            return Err("per-id tables of the wrong length".into());
        }
        // Each run's place in `by_time`, which holds the live runs in start order: a
        // per-skill, caller or channel list is in start order exactly when the places
        // of its runs rise. Looking places up in this table, rather than start times in
        // the run table, touches a sixteenth of the memory. The walk of the start order
        // fills it, checks the order itself and counts the live dry runs.
        //
        // Each walk is cut in two halves, run on two threads at scale; the second half
        // starts from the key of the first's last item, so the two check it whole.
        let parallel = n_runs >= parallel_from;
        let place: Vec<AtomicU32> = std::iter::repeat_with(|| AtomicU32::new(NONE))
            .take(n_runs)
            .collect();
        let run_orders = |half: usize| {
            let n_live_dry = self.check_start_order(half, &place)?;
            self.check_finish_order(half).map(|()| n_live_dry)
        };
        let (first, second) = on_two(parallel, || run_orders(0), || run_orders(1));
        let n_live_dry = first? + second?;
        if self.by_time.len() != self.n_live as usize {
            return Err("the start order does not hold every live run".into());
        }
        let (first, second) = on_two(
            parallel,
            || self.check_key_lists(0, &place),
            || self.check_key_lists(1, &place),
        );
        first.and(second)?;
        self.check_dry_order(n_live_dry)
    }

    /// Half `half` (0 or 1) of the walk of the start order: each run in range, live,
    /// after the one before it; each one's place recorded in `place`. Returns the
    /// live dry runs counted.
    fn check_start_order(
        &self,
        half: usize,
        place: &[AtomicU32],
    ) -> std::result::Result<usize, String> {
        let key_of = |j: u32| self.runs.get(j as usize).map(|e| (e.started_at, j));
        let range = half_of(self.by_time.len(), half);
        let mut last = (range.start.checked_sub(1)).and_then(|at| key_of(self.by_time[at]));
        let mut n_live_dry = 0;
        for (at, &j) in range.clone().zip(self.by_time.parts().range(range).iter()) {
            let entry = match self.runs.get(j as usize) {
                Some(entry) if entry.is_alive() => entry,
                Some(_) => return Err("a run in the start order that is not live".into()),
                None => return Err("a run number past the run table".into()),
            };
            let key = Some((entry.started_at, j));
            if last >= key {
                return Err("a list out of order".into());
            }
            last = key;
            place[j as usize].store(at as u32, Relaxed);
            n_live_dry += usize::from(entry.status == DRY_RUN);
        }
        Ok(n_live_dry)
    }

    /// Half `half` of the walk of the finish order: each run in range, after the one
    /// before it.
    fn check_finish_order(&self, half: usize) -> std::result::Result<(), String> {
        let key_of = |j: u32| self.runs.get(j as usize).map(|e| (e.finished_at, j));
        let range = half_of(self.by_finish.len(), half);
        let mut last = (range.start.checked_sub(1)).and_then(|at| key_of(self.by_finish[at]));
        for &j in self.by_finish.parts().range(range).iter() {
            let key = Some(key_of(j).ok_or("a run number past the run table")?);
            if last >= key {
                return Err("a list out of order".into());
            }
            last = key;
        }
        Ok(())
    }

    /// Half `half` of each per-skill, caller and channel list: each run live, after
    /// the one before it in the start order (by its place there, from `place`).
    fn check_key_lists(&self, half: usize, place: &[AtomicU32]) -> std::result::Result<(), String> {
        let place_of = |j: u32| place.get(j as usize).map(|at| at.load(Relaxed));
        let lists = [&self.by_skill, &self.by_caller, &self.by_channel];
        for list in lists.into_iter().flatten() {
            let range = half_of(list.len(), half);
            let mut last = (range.start.checked_sub(1))
                .and_then(|i| place_of(list[i]))
                .filter(|&at| at != NONE);
            for &j in list.parts().range(range).iter() {
                let at = place_of(j).ok_or("a run number past the run table")?;
                if at == NONE {
                    return Err("a list naming a run that is not live".into());
                }
                if last >= Some(at) {
                    return Err("a list out of order".into());
                }
                last = Some(at);
            }
        }
        Ok(())
    }

    /// The dry-run list: exactly the `n_live_dry` live dry runs, in start order.
    fn check_dry_order(&self, n_live_dry: usize) -> std::result::Result<(), String> {
        let mut last = None;
        for &j in self.by_dry.iter() {
            let entry = self
                .runs
                .get(j as usize)
                .ok_or("a run number past the run table")?;
            if !(entry.is_alive() && entry.status == DRY_RUN) {
                return Err("the dry-run list disagrees with the runs".into());
            }
            let key = Some((entry.started_at, j));
            if last >= key {
                return Err("a list out of order".into());
            }
            last = key;
        }
        if n_live_dry != self.by_dry.len() {
            return Err("the dry-run list disagrees with the runs".into());
        }
        Ok(())
    }

    /// The rest of [`Index::check_consistent`]: the orphans' ids and the call entries.
    pub(crate) fn check_orphans_and_calls_consistent(&self) -> std::result::Result<(), String> {
        let n_ids = self.ids.len();
        if self.orphans.keys().any(|&id| id as usize >= n_ids) {
            return Err("an orphan id out of range".into());
        }
        let calls = &self.calls;
        if !calls.by_time.iter().all(|(_, c)| calls.entry_in_range(c)) {
            return Err("a call entry with a number out of range".into());
        }
        Ok(())
    }

    /// The bounds of the numbers in this index's run entries, were it to hold `n_runs`
    /// runs and `n_event_lists` event lists (what a checkpoint's load knows before it
    /// decodes those tables).
    pub(crate) fn run_bounds(&self, n_runs: usize, n_event_lists: usize) -> RunBounds {
        RunBounds {
            runs: n_runs,
            ids: self.ids.len(),
            skills: self.skills.len(),
            callers: self.callers.len(),
            channels: self.channels.len(),
            event_lists: n_event_lists,
        }
    }

    /// The run entries' numbers, the live count and the per-id tables: the part of
    /// [`Index::check_consistent`] a checkpoint's load does as it decodes them.
    fn check_run_entries(&self) -> std::result::Result<(), String> {
        let bounds = self.run_bounds(self.runs.len(), self.event_lists.len());
        let mut n_live = 0u32;
        for entry in self.runs.iter() {
            if !bounds.hold(entry) {
                return Err(RUN_OUT_OF_RANGE.into());
            }
            n_live += u32::from(entry.is_alive());
        }
        if n_live != self.n_live {
            return Err("the live run count disagrees with the runs".into());
        }
        if !self.id_run.iter().all(|&j| bounds.run_or_none(j))
            || !self.id_first_child.iter().all(|&j| bounds.run_or_none(j))
        {
            return Err(ID_OUT_OF_RANGE.into());
        }
        Ok(())
    }

    // ----- validation, before anything is written -----

    /// Checks any record as the query API would before writing it: a run start, a
    /// finish, an event or a call; other kinds need no check.
    pub fn check(&self, record: &Record) -> Result<()> {
        match record {
            Record::RunStarted(run) => self.check_start(&run.id),
            Record::RunFinished(finish) => self.check_finish(&finish.run_id, finish.stats.status),
            Record::EventAppended(event) => self.check_event(&event.run_id, event.sequence),
            Record::CallRecorded(call) => check_call(&call.call_id, &call.tool_id),
            Record::Purge(_) | Record::DropReport(_) => Ok(()),
        }
    }

    /// [`Index::check`] on a record's encoded payload, reading only the fields it
    /// checks. A payload that does not decode is refused.
    pub fn check_frame(&self, kind: RecordKind, payload: &[u8]) -> Result<()> {
        let undecodable = || Error::Encode(format!("a {kind:?} payload does not decode"));
        match kind {
            RecordKind::RunStarted => {
                self.check_start(keys::start(payload).ok_or_else(undecodable)?.id)
            }
            RecordKind::RunFinished => {
                let key = keys::finish(payload).ok_or_else(undecodable)?;
                self.check_finish(key.run_id, key.stats.status)
            }
            RecordKind::EventAppended => {
                let key = keys::event(payload).ok_or_else(undecodable)?;
                self.check_event(key.run_id, key.sequence)
            }
            RecordKind::CallRecorded => {
                let key = keys::call(payload).ok_or_else(undecodable)?;
                check_call(key.call_id, key.tool_id)
            }
            RecordKind::Purge | RecordKind::DropReport => Ok(()),
        }
    }

    /// Refuses a run `start_run` must not store: an empty or overlong id, or an id
    /// already live.
    pub fn check_start(&self, run_id: &str) -> Result<()> {
        check_run_id("run id", run_id)?;
        if self.live_run(run_id).is_some() {
            return Err(Error::Duplicate {
                what: "run",
                id: run_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Refuses a finish whose status is not terminal, or for a run that is not live.
    pub fn check_finish(&self, run_id: &str, status: Status) -> Result<()> {
        check_terminal(status)?;
        self.lookup(run_id).map(|_| ())
    }

    /// Refuses an event with an empty run id, sequence 0 (a run's first is 1) or a
    /// sequence its run already holds.
    pub fn check_event(&self, run_id: &str, sequence: u64) -> Result<()> {
        check_run_id("event run id", run_id)?;
        check_sequence(sequence)?;
        if self.events_of(run_id).holds(sequence) {
            return Err(Error::Duplicate {
                what: "run event",
                id: format!("{run_id}#{sequence}"),
            });
        }
        Ok(())
    }

    // ----- applying records -----

    /// Applies one record at `lsn`. Records the query API would refuse are ignored
    /// (see the module invariants); returns whether the record changed the index.
    pub fn apply(&mut self, lsn: Lsn, record: &Record) -> bool {
        match record {
            Record::RunStarted(run) => self.apply_start(
                lsn,
                &Start {
                    id: &run.id,
                    skill_id: &run.skill_id,
                    caller_id: &run.caller_id,
                    channel_id: &run.channel_id,
                    parent_run_id: &run.parent_run_id,
                    started_at: run.started_at.unix_nanos(),
                    finished_at: run.finished_at.map(Timestamp::unix_nanos),
                    status: run.status,
                },
            ),
            Record::RunFinished(finish) => {
                self.apply_finish(lsn, &finish.run_id, finish.stats.status, finish.finished_at)
            }
            Record::EventAppended(event) => self.apply_event(lsn, &event.run_id, event.sequence),
            Record::CallRecorded(call) => {
                self.apply_call(
                    lsn,
                    call.ts,
                    call.caller_id.as_deref(),
                    &call.tool_id,
                    call.outcome.kind(),
                );
                true
            }
            Record::Purge(purge) => {
                self.purge_before(purge.before);
                true
            }
            Record::DropReport(_) => false,
        }
    }

    /// Applies one record straight from a verified frame's payload, decoding only the
    /// fields the index holds. Same effect as [`Index::apply`] on the decoded record; a
    /// payload that does not decode is ignored.
    pub fn apply_frame(&mut self, lsn: Lsn, kind: RecordKind, payload: &[u8]) -> bool {
        match kind {
            RecordKind::RunStarted => keys::start(payload).is_some_and(|key| {
                self.apply_start(
                    lsn,
                    &Start {
                        id: key.id,
                        skill_id: key.skill_id,
                        caller_id: key.caller_id,
                        channel_id: key.channel_id,
                        parent_run_id: key.parent_run_id,
                        started_at: key.started_at.unix_nanos(),
                        finished_at: key.finished_at.map(Timestamp::unix_nanos),
                        status: key.status,
                    },
                )
            }),
            RecordKind::RunFinished => keys::finish(payload).is_some_and(|key| {
                self.apply_finish(lsn, key.run_id, key.stats.status, key.finished_at)
            }),
            RecordKind::EventAppended => keys::event(payload)
                .is_some_and(|key| self.apply_event(lsn, key.run_id, key.sequence)),
            RecordKind::CallRecorded => keys::call(payload).is_some_and(|key| {
                self.apply_call(lsn, key.ts, key.caller_id, key.tool_id, key.outcome.kind);
                true
            }),
            RecordKind::Purge => keys::purge(payload).is_some_and(|key| {
                self.purge_before(key.before);
                true
            }),
            RecordKind::DropReport => false,
        }
    }

    fn apply_start(&mut self, lsn: Lsn, run: &Start<'_>) -> bool {
        if check_run_id("run id", run.id).is_err() || self.live_run(run.id).is_some() {
            return false;
        }
        let idx = u32::try_from(self.runs.len())
            .ok()
            .filter(|&idx| idx != NONE)
            .expect("fewer than 2^32 - 1 runs");
        let id = self.intern_id(run.id);
        let events = match self.orphans.remove(&id) {
            Some(list) => self.event_lists.push(list),
            None => NONE,
        };
        let parent = if run.parent_run_id.is_empty() {
            NONE
        } else {
            self.intern_id(run.parent_run_id)
        };
        let mut flags = FLAG_ALIVE;
        if parent == NONE {
            flags |= FLAG_TOP_LEVEL;
        }
        if run.finished_at.is_some() {
            flags |= FLAG_FINISHED;
        }
        let entry = RunEntry {
            started_lsn: lsn.0,
            finished_lsn: NO_LSN,
            started_at: run.started_at,
            finished_at: run.finished_at.unwrap_or(0),
            id,
            parent,
            next_sibling: NONE,
            skill: self.skills.intern(run.skill_id),
            caller: self.callers.intern(run.caller_id),
            channel: self.channels.intern(run.channel_id),
            events,
            status: status_byte(run.status),
            flags,
            pad: [0; 2],
        };
        let (skill, caller, channel) = (entry.skill, entry.caller, entry.channel);
        let finished = entry.is_finished();
        self.runs.push(entry);
        self.id_run[id as usize] = idx;
        self.n_live += 1;
        if parent != NONE {
            self.link_child(parent, idx);
        }
        let runs = &self.runs;
        let key = |j: u32| (runs[j as usize].started_at, j);
        Self::insert_sorted(&mut self.by_time, idx, key);
        Self::insert_sorted(list_for(&mut self.by_skill, skill), idx, key);
        Self::insert_sorted(list_for(&mut self.by_caller, caller), idx, key);
        Self::insert_sorted(list_for(&mut self.by_channel, channel), idx, key);
        if finished {
            let fkey = |j: u32| (runs[j as usize].finished_at, j);
            Self::insert_sorted(&mut self.by_finish, idx, fkey);
        }
        if runs[idx as usize].status == DRY_RUN {
            Self::insert_sorted(&mut self.by_dry, idx, key);
        }
        true
    }

    /// Links run `idx` into the child list of `parent`, which is kept newest first by
    /// `(started_at, RunIdx)`: a run started in time order goes to the front.
    fn link_child(&mut self, parent: u32, idx: u32) {
        let key = |runs: &Chunked<RunEntry>, j: u32| (runs[j as usize].started_at, j);
        let new = key(&self.runs, idx);
        let mut prev = NONE;
        let mut cur = self.id_first_child[parent as usize];
        while cur != NONE && key(&self.runs, cur) > new {
            prev = cur;
            cur = self.runs[cur as usize].next_sibling;
        }
        self.runs[idx as usize].next_sibling = cur;
        if prev == NONE {
            self.id_first_child[parent as usize] = idx;
        } else {
            self.runs[prev as usize].next_sibling = idx;
        }
    }

    fn apply_finish(&mut self, lsn: Lsn, run_id: &str, status: Status, at: Timestamp) -> bool {
        if check_terminal(status).is_err() {
            return false;
        }
        let Some(idx) = self.live_run(run_id) else {
            return false;
        };
        if self.runs[idx as usize].is_finished() {
            let runs = &self.runs;
            Self::remove_sorted(&mut self.by_finish, idx, |j| {
                (runs[j as usize].finished_at, j)
            });
        }
        let entry = &mut self.runs[idx as usize];
        let was_dry = entry.status == DRY_RUN;
        entry.finished_lsn = lsn.0;
        entry.finished_at = at.unix_nanos();
        entry.status = status_byte(status);
        entry.flags |= FLAG_FINISHED;
        let runs = &self.runs;
        let key = |j: u32| (runs[j as usize].started_at, j);
        match (was_dry, status == Status::DryRun) {
            (false, true) => Self::insert_sorted(&mut self.by_dry, idx, key),
            (true, false) => Self::remove_sorted(&mut self.by_dry, idx, key),
            _ => {}
        }
        Self::insert_sorted(&mut self.by_finish, idx, |j| {
            (runs[j as usize].finished_at, j)
        });
        true
    }

    /// The number of `run_id` among the ids, trying the last event's first: the
    /// committer checks an event, then applies it, and a run's events mostly come
    /// together, so both usually skip the hash lookup.
    fn event_run_id(&self, run_id: &str) -> Option<u32> {
        match self.last_event_run.matches(run_id) {
            Some(id) => {
                debug_assert_eq!(self.ids.name(id), run_id.as_bytes());
                Some(id)
            }
            None => self.ids.find(run_id),
        }
    }

    pub(crate) fn apply_event(&mut self, lsn: Lsn, run_id: &str, sequence: u64) -> bool {
        if check_run_id("event run id", run_id).is_err() || check_sequence(sequence).is_err() {
            return false;
        }
        let id = self.event_run_id(run_id);
        let live = id.map(|id| {
            self.last_event_run.remember(id, run_id);
            self.id_run[id as usize]
        });
        let events = match live.filter(|&idx| idx != NONE) {
            Some(idx) => {
                let entry = &mut self.runs[idx as usize];
                if entry.events == NONE {
                    entry.events = self.event_lists.push(EventVec::default());
                }
                self.event_lists.get_mut(entry.events)
            }
            None => {
                let id = match id {
                    Some(id) => id,
                    None => self.intern_id(run_id),
                };
                self.orphans.entry(id).or_default()
            }
        };
        let added = events.insert(sequence, lsn.0);
        self.n_events += u64::from(added);
        added
    }

    pub(crate) fn apply_call(
        &mut self,
        lsn: Lsn,
        ts: Timestamp,
        caller: Option<&str>,
        tool: &str,
        kind: OutcomeKind,
    ) {
        let calls = &mut self.calls;
        let entry = CallEntry {
            caller: caller.map_or(NO_CALLER, |c| {
                calls.last_caller.intern(&mut calls.callers, c)
            }),
            tool: calls.last_tool.intern(&mut calls.tools, tool),
            kind: kind.index(),
        };
        calls.insert((ts.unix_nanos(), lsn.0), entry);
    }

    /// Removes every live run started before `before`, with its events; returns how
    /// many runs were removed.
    pub fn purge_before(&mut self, before: Timestamp) -> u64 {
        let before = before.unix_nanos();
        let n = self
            .by_time
            .partition_point(|&j| self.runs[j as usize].started_at < before);
        if n == 0 {
            return 0;
        }
        let purged: Vec<u32> = self.by_time.to_mut().drain(..n).collect();
        let runs = &self.runs;
        let keep = |j: &u32| runs[*j as usize].started_at >= before;
        for lists in [
            &mut self.by_skill,
            &mut self.by_caller,
            &mut self.by_channel,
        ] {
            for list in lists.iter_mut() {
                // Every list is sorted by started_at, so the purged runs are a prefix.
                let cut = list.partition_point(|j| !keep(j));
                if cut > 0 {
                    list.to_mut().drain(..cut);
                }
            }
        }
        if !self.by_finish.iter().all(keep) {
            self.by_finish.to_mut().retain(keep);
        }
        let cut = self.by_dry.partition_point(|j| !keep(j));
        if cut > 0 {
            self.by_dry.to_mut().drain(..cut);
        }
        for &idx in &purged {
            let entry = &mut self.runs[idx as usize];
            if entry.events != NONE {
                self.n_events -= self.event_lists.clear(entry.events) as u64;
                entry.events = NONE;
            }
            entry.flags &= !FLAG_ALIVE;
            entry.next_sibling = NONE;
            self.id_run[entry.id as usize] = NONE;
        }
        self.n_live -= purged.len() as u32;
        // The purged runs are the oldest of every child list; relinking the survivors
        // oldest first leaves each list newest first.
        self.id_first_child = std::iter::repeat_n(NONE, self.id_first_child.len()).collect();
        for &idx in self.by_time.iter() {
            let entry = &mut self.runs[idx as usize];
            if entry.parent != NONE {
                entry.next_sibling = self.id_first_child[entry.parent as usize];
                self.id_first_child[entry.parent as usize] = idx;
            }
        }
        purged.len() as u64
    }

    // ----- lookups -----

    /// The live run with this id.
    pub fn lookup(&self, run_id: &str) -> Result<&RunEntry> {
        self.live_run(run_id)
            .map(|idx| &self.runs[idx as usize])
            .ok_or_else(|| Error::NotFound {
                what: "run",
                id: run_id.to_owned(),
            })
    }

    /// The live run `entry` names as its parent, if there is one.
    pub fn parent_of(&self, entry: &RunEntry) -> Option<&RunEntry> {
        if entry.parent == NONE {
            return None;
        }
        match self.id_run[entry.parent as usize] {
            NONE => None,
            idx => Some(&self.runs[idx as usize]),
        }
    }

    /// The `(sequence, LSN)` pairs of a run id's events, sorted by sequence; empty when
    /// there are none.
    pub fn events_of(&self, run_id: &str) -> EventsRef<'_> {
        let Some(id) = self.event_run_id(run_id) else {
            return EventsRef::EMPTY;
        };
        match self.id_run[id as usize] {
            NONE => self
                .orphans
                .get(&id)
                .map_or(EventsRef::EMPTY, EventVec::as_ref),
            idx => match self.runs[idx as usize].events {
                NONE => EventsRef::EMPTY,
                list => self.event_lists.get(list),
            },
        }
    }

    /// Resolves names to interned ids; `None` when a named value was never seen, so
    /// nothing can match.
    pub fn resolve(&self, select: &RunSelect<'_>) -> Option<Resolved> {
        let named = |names: &Names, name: Option<&str>| match name {
            None => Some(None),
            Some(name) => names.find(name).map(Some),
        };
        Some(Resolved {
            status: select.status.map(status_byte),
            skill: named(&self.skills, select.skill_id)?,
            caller: named(&self.callers, select.caller_id)?,
            channel: named(&self.channels, select.channel_id)?,
            top_level_only: select.top_level_only,
            exclude_dry_run: select.exclude_dry_run,
            since: select.since.map_or(i64::MIN, Timestamp::unix_nanos),
            last: inclusive_end(select.until)?,
        })
    }

    /// The slice, sorted by `(started_at, RunIdx)`, of the most selective list that
    /// holds every run `select` can match, bounded to `since..until`.
    fn candidates(&self, select: &Resolved) -> Parts<'_, u32> {
        fn pick(lists: &[Flat<u32>], id: Option<u32>) -> Option<Parts<'_, u32>> {
            id.map(|id| lists.get(id as usize).map_or(Parts::EMPTY, Flat::parts))
        }
        let mut best = self.by_time.parts();
        for list in [
            pick(&self.by_skill, select.skill),
            pick(&self.by_caller, select.caller),
            pick(&self.by_channel, select.channel),
        ]
        .into_iter()
        .flatten()
        {
            if list.len() < best.len() {
                best = list;
            }
        }
        let start = best.partition_point(|&j| self.runs[j as usize].started_at < select.since);
        let end = best.partition_point(|&j| self.runs[j as usize].started_at <= select.last);
        best.range(start..end.max(start))
    }

    /// Matching runs, newest first (started_at descending, later start first on ties).
    pub fn runs_newest_first<'a>(
        &'a self,
        select: &'a Resolved,
    ) -> impl Iterator<Item = &'a RunEntry> + 'a {
        self.candidates(select)
            .iter()
            .rev()
            .map(|&j| &self.runs[j as usize])
            .filter(move |entry| select.matches(entry))
    }

    /// How many runs match.
    pub fn count_runs(&self, select: &Resolved) -> u64 {
        let candidates = self.candidates(select);
        let only_bounds = select.status.is_none()
            && !select.top_level_only
            && !select.exclude_dry_run
            && [select.skill, select.caller, select.channel]
                .iter()
                .filter(|id| id.is_some())
                .count()
                <= 1;
        if only_bounds {
            // The candidate slice is exactly the matches.
            return candidates.len() as u64;
        }
        if let Some(n) = self.count_leaving_out_dry_runs(select, candidates) {
            return n;
        }
        candidates
            .iter()
            .filter(|&&j| select.matches(&self.runs[j as usize]))
            .count() as u64
    }

    /// The count of the default filter (dry runs left out) and at most one name:
    /// the candidates less the dry runs among them, when there are fewer dry runs in
    /// the time bounds than candidates. `None` when the shortcut does not apply.
    fn count_leaving_out_dry_runs(
        &self,
        select: &Resolved,
        candidates: Parts<'_, u32>,
    ) -> Option<u64> {
        let names = [select.skill, select.caller, select.channel];
        let applies = select.status.is_none()
            && !select.top_level_only
            && select.exclude_dry_run
            && names.iter().filter(|id| id.is_some()).count() <= 1;
        if !applies {
            return None;
        }
        let runs = &self.runs;
        let start = self
            .by_dry
            .partition_point(|&j| runs[j as usize].started_at < select.since);
        let end = self
            .by_dry
            .partition_point(|&j| runs[j as usize].started_at <= select.last);
        let dry = self.by_dry.parts().range(start..end.max(start));
        if dry.len() >= candidates.len() {
            return None;
        }
        let n_dry = if names.iter().all(Option::is_none) {
            dry.len()
        } else {
            (dry.iter())
                .filter(|&&j| select.matches_names(&runs[j as usize]))
                .count()
        };
        Some((candidates.len() - n_dry) as u64)
    }

    /// Runs whose parent id is `parent_id`, oldest first.
    pub fn children_oldest_first(&self, parent_id: &str) -> impl Iterator<Item = &RunEntry> {
        let mut children = Vec::new();
        if let Some(parent) = self.ids.find(parent_id) {
            let mut cur = self.id_first_child[parent as usize];
            while cur != NONE {
                // A list holds each live run at most once: a longer walk is a loop.
                assert!(children.len() < self.runs.len(), "a child list loops");
                children.push(cur);
                cur = self.runs[cur as usize].next_sibling;
            }
        }
        children.into_iter().rev().map(|j| &self.runs[j as usize])
    }

    /// Finished runs with `finished_at < cutoff`, oldest finish first.
    pub fn finished_before(&self, cutoff: Timestamp) -> impl Iterator<Item = &RunEntry> {
        let end = self
            .by_finish
            .partition_point(|&j| self.runs[j as usize].finished_at < cutoff.unix_nanos());
        (self.by_finish.parts().range(0..end).iter()).map(|&j| &self.runs[j as usize])
    }

    /// The latest `started_at` of a skill's runs whose status passes `counts`.
    pub fn last_start_of_skill(
        &self,
        skill_id: &str,
        counts: impl Fn(Status) -> bool,
    ) -> Option<Timestamp> {
        let skill = self.skills.find(skill_id)?;
        self.by_skill
            .get(skill as usize)?
            .iter()
            .rev()
            .map(|&j| &self.runs[j as usize])
            .find(|entry| counts(entry.status()))
            .map(RunEntry::started_at)
    }

    /// LSNs of matching call events, newest first (ts descending, later arrival first
    /// on ties).
    pub fn calls_newest_first<'a>(
        &'a self,
        select: &CallSelect<'_>,
    ) -> Box<dyn Iterator<Item = Lsn> + 'a> {
        let calls = &self.calls;
        let caller = match select.caller_id {
            None => None,
            Some(name) => match calls.callers.find(name) {
                Some(id) => Some(id),
                None => return Box::new(std::iter::empty()),
            },
        };
        let tool = match select.tool_id {
            None => None,
            Some(name) => match calls.tools.find(name) {
                Some(id) => Some(id),
                None => return Box::new(std::iter::empty()),
            },
        };
        let kind = select.outcome.map(OutcomeKind::index);
        let since = select.since.map_or(i64::MIN, Timestamp::unix_nanos);
        let Some(last) = inclusive_end(select.until) else {
            return Box::new(std::iter::empty());
        };
        if since > last {
            return Box::new(std::iter::empty());
        }
        let range = (since, 0)..=(last, u64::MAX);
        // Walking the list of the one name asked for, every key matches: the entry
        // need not be looked up.
        let only_the_list = kind.is_none() && (caller.is_none() || tool.is_none());
        let matches = move |key: &(i64, u64)| {
            calls.by_time.get(key).is_some_and(|entry| {
                caller.is_none_or(|c| c == entry.caller)
                    && tool.is_none_or(|t| t == entry.tool)
                    && kind.is_none_or(|k| k == entry.kind)
            })
        };
        let keys: Box<dyn Iterator<Item = &(i64, u64)>> = match (caller, tool) {
            (Some(c), _) => match calls.by_caller.get(c as usize) {
                Some(keys) => Box::new(keys.range_rev(range).map(|(k, _)| k)),
                None => Box::new(std::iter::empty()),
            },
            (None, Some(t)) => match calls.by_tool.get(t as usize) {
                Some(keys) => Box::new(keys.range_rev(range).map(|(k, _)| k)),
                None => Box::new(std::iter::empty()),
            },
            (None, None) => Box::new(calls.by_time.range_rev(range).map(|(k, _)| k)),
        };
        if only_the_list {
            return Box::new(keys.map(|&(_, lsn)| Lsn(lsn)));
        }
        Box::new(keys.filter(move |k| matches(k)).map(|&(_, lsn)| Lsn(lsn)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Run, RunEvent};

    fn run(id: &str, skill: &str, at: i64) -> Run {
        Run {
            id: id.into(),
            skill_id: skill.into(),
            started_at: Timestamp::from_unix_nanos(at),
            ..Run::default()
        }
    }

    #[test]
    fn out_of_order_starts_are_listed_by_started_at_then_start_order() {
        let mut index = Index::new();
        index.apply(Lsn(0), &Record::RunStarted(run("a", "s", 30)));
        index.apply(Lsn(1), &Record::RunStarted(run("b", "s", 10)));
        index.apply(Lsn(2), &Record::RunStarted(run("c", "s", 30)));
        let select = index
            .resolve(&RunSelect {
                skill_id: Some("s"),
                ..RunSelect::default()
            })
            .unwrap();
        let order: Vec<u64> = index
            .runs_newest_first(&select)
            .map(|e| e.started_lsn)
            .collect();
        assert_eq!(order, vec![2, 0, 1]);
        assert_eq!(index.count_runs(&select), 3);
    }

    #[test]
    fn the_consistency_check_finds_a_bad_list_on_either_thread() {
        let mut index = Index::new();
        for (i, caller) in ["x", "y", "x", "x"].into_iter().enumerate() {
            let mut run = Run::new(format!("r{i}"), "s");
            run.caller_id = caller.into();
            run.started_at = Timestamp::from_unix_nanos(i as i64);
            index.apply(Lsn(i as u64 * 10), &Record::RunStarted(run));
        }
        // Each walk is cut in two halves: the damage below is at the cut or across it.
        for (i, at) in [(0, 3), (1, 1), (2, 2), (3, 4)] {
            let finish = crate::codec::RunFinished {
                run_id: format!("r{i}"),
                stats: crate::model::RunStats {
                    status: Status::Ok,
                    ..crate::model::RunStats::default()
                },
                finished_at: Timestamp::from_unix_nanos(at),
            };
            index.apply(Lsn(100 + i), &Record::RunFinished(finish));
        }
        for parallel_from in [0, usize::MAX] {
            assert_eq!(index.check_consistent_from(parallel_from), Ok(()));
            let mut swapped = index.clone();
            swapped.by_caller[0].to_mut().swap(0, 1);
            assert_eq!(
                swapped.check_consistent_from(parallel_from),
                Err("a list out of order".to_owned())
            );
            let mut past = index.clone();
            past.by_caller[0].to_mut().push(99);
            assert_eq!(
                past.check_consistent_from(parallel_from),
                Err("a run number past the run table".to_owned())
            );
            let mut dead = index.clone();
            dead.runs[3].flags &= !FLAG_ALIVE;
            dead.by_time.to_mut().retain(|&j| j != 3);
            dead.n_live -= 1;
            assert_eq!(
                dead.check_consistent_from(parallel_from),
                Err("a list naming a run that is not live".to_owned())
            );
            let mut missing = index.clone();
            missing.by_time.to_mut().retain(|&j| j != 3);
            assert_eq!(
                missing.check_consistent_from(parallel_from),
                Err("the start order does not hold every live run".to_owned())
            );
            let mut not_dry = index.clone();
            not_dry.by_dry.to_mut().push(0);
            assert_eq!(
                not_dry.check_consistent_from(parallel_from),
                Err("the dry-run list disagrees with the runs".to_owned())
            );
            let mut unsorted = index.clone();
            unsorted.by_time.to_mut().swap(1, 2);
            assert_eq!(
                unsorted.check_consistent_from(parallel_from),
                Err("a list out of order".to_owned())
            );
            let mut unfinished = index.clone();
            unfinished.by_finish.to_mut().swap(1, 2);
            assert_eq!(
                unfinished.check_consistent_from(parallel_from),
                Err("a list out of order".to_owned())
            );
            let mut twice = index.clone();
            let by_time = twice.by_time.to_mut();
            by_time[2] = by_time[1];
            by_time.sort_by_key(|&j| twice.runs[j as usize].started_at);
            assert_eq!(
                twice.check_consistent_from(parallel_from),
                Err("a list out of order".to_owned())
            );
        }
    }

    #[test]
    fn loaded_calls_numbering_a_name_past_its_table_are_refused_without_a_list() {
        let mut callers = Names::default();
        let mut tools = Names::default();
        let (caller, tool) = (callers.intern("caller-1"), tools.intern("tool-1"));
        let mut by_time = OrderedMap::default();
        by_time.insert(
            (1, 1),
            CallEntry {
                caller,
                tool,
                kind: 0,
            },
        );
        by_time.insert(
            (2, 2),
            CallEntry {
                caller: NO_CALLER,
                tool,
                kind: 0,
            },
        );
        let (calls, check) = Calls::from_loaded(by_time.clone(), callers.clone(), tools.clone());
        assert_eq!(check, Ok(()));
        assert_eq!((calls.by_caller.len(), calls.by_tool.len()), (1, 1));
        assert_eq!(calls.by_tool[0].len(), 2);
        // A damaged number, as a flipped bit in a checkpoint makes: reported, and no
        // list of a billion places made for it.
        by_time.insert(
            (3, 3),
            CallEntry {
                caller,
                tool: 1 << 30,
                kind: 0,
            },
        );
        let (calls, check) = Calls::from_loaded(by_time, callers, tools);
        assert!(check.is_err());
        assert_eq!(calls.by_tool.len(), 1);
        assert_eq!(
            calls.by_time.len(),
            3,
            "the entries stay, for the check to refuse"
        );
    }

    #[test]
    fn refused_records_are_ignored_on_apply() {
        let mut index = Index::new();
        assert!(index.apply(Lsn(0), &Record::RunStarted(run("a", "s", 1))));
        assert!(!index.apply(Lsn(1), &Record::RunStarted(run("a", "t", 2))));
        assert!(!index.apply(Lsn(2), &Record::RunStarted(run("", "t", 2))));
        let event = RunEvent {
            run_id: "a".into(),
            sequence: 1,
            ..RunEvent::default()
        };
        assert!(index.apply(Lsn(3), &Record::EventAppended(event.clone())));
        assert!(!index.apply(Lsn(4), &Record::EventAppended(event)));
        assert_eq!(index.events_of("a").to_vec(), [(1, 3)]);
        assert_eq!(index.lookup("a").unwrap().started_lsn(), Lsn(0));
    }

    #[test]
    fn events_of_interleaved_runs_and_orphans_are_checked_against_their_own_run() {
        // Checks and applies alternate between runs, so the last event's id, which both
        // try first, is often another run's.
        let mut index = Index::new();
        index.apply(Lsn(0), &Record::RunStarted(run("live", "s", 1)));
        let mut lsn = 1;
        for sequence in 1..=3 {
            for run_id in ["live", "orphan", "live-2"] {
                assert!(index.check_event(run_id, sequence).is_ok());
                assert!(index.apply_event(Lsn(lsn), run_id, sequence));
                lsn += 1;
                assert!(matches!(
                    index.check_event(run_id, sequence),
                    Err(Error::Duplicate { .. })
                ));
            }
        }
        assert!(index.check_event("live", 4).is_ok());
        assert!(index.check_event("never-seen", 1).is_ok());
        assert_eq!(index.events_of("live").to_vec(), [(1, 1), (2, 4), (3, 7)]);
        assert_eq!(index.events_of("orphan").to_vec(), [(1, 2), (2, 5), (3, 8)]);
        assert!(index.events_of("never-seen").is_empty());
        assert_eq!(index.orphans.len(), 2);
    }

    #[test]
    fn purge_removes_runs_from_every_list_and_orphans_move_into_a_new_start() {
        let mut index = Index::new();
        index.apply(Lsn(0), &Record::RunStarted(run("old", "s", 1)));
        index.apply(Lsn(1), &Record::RunStarted(run("new", "s", 5)));
        assert_eq!(index.purge_before(Timestamp::from_unix_nanos(5)), 1);
        assert!(index.lookup("old").is_err());
        let event = RunEvent {
            run_id: "old".into(),
            sequence: 7,
            ..RunEvent::default()
        };
        index.apply(Lsn(2), &Record::EventAppended(event));
        index.apply(Lsn(3), &Record::RunStarted(run("old", "s", 9)));
        assert_eq!(index.events_of("old").to_vec(), [(7, 2)]);
        assert_eq!(index.n_runs(), 2);
    }

    proptest::proptest! {
        /// Calls in any time order answer every filter like a plain filtered sort.
        #[test]
        fn calls_in_any_order_list_like_a_sorted_filter(
            calls in proptest::collection::vec(
                (0i64..40, proptest::option::of(0usize..3), 0usize..3, 0usize..6),
                0..60,
            ),
            since in proptest::option::of(0i64..40),
            until in proptest::option::of(0i64..40),
            caller in proptest::option::of(0usize..4),
            tool in proptest::option::of(0usize..4),
            outcome in proptest::option::of(0usize..6),
        ) {
            let names = ["a", "b", "c", "never"];
            let mut index = Index::new();
            for (lsn, &(ts, caller, tool, kind)) in calls.iter().enumerate() {
                index.apply_call(
                    Lsn(lsn as u64),
                    Timestamp::from_unix_nanos(ts),
                    caller.map(|c| names[c]),
                    names[tool],
                    OutcomeKind::ALL[kind],
                );
            }
            let select = CallSelect {
                caller_id: caller.map(|c| names[c]),
                tool_id: tool.map(|t| names[t]),
                outcome: outcome.map(|k| OutcomeKind::ALL[k]),
                since: since.map(Timestamp::from_unix_nanos),
                until: until.map(Timestamp::from_unix_nanos),
            };
            let got: Vec<Lsn> = index.calls_newest_first(&select).collect();
            let mut want: Vec<(i64, u64)> = (calls.iter().enumerate())
                .filter(|(_, (ts, c, t, k))| {
                    since.is_none_or(|s| *ts >= s)
                        && until.is_none_or(|u| *ts < u)
                        && caller.is_none_or(|want| *c == Some(want))
                        && tool.is_none_or(|want| *t == want)
                        && outcome.is_none_or(|want| *k == want)
                })
                .map(|(lsn, (ts, ..))| (*ts, lsn as u64))
                .collect();
            want.sort_unstable_by(|a, b| b.cmp(a));
            let want: Vec<Lsn> = want.into_iter().map(|(_, lsn)| Lsn(lsn)).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
