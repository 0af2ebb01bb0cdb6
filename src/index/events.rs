//! The runs' event lists: per run with events, its `(sequence, LSN)` pairs sorted by
//! sequence.
//!
//! Where it sits: [`super::Index::event_lists`], numbered by `RunEntry::events`.
//!
//! The lists a checkpoint holds stay where the checkpoint's read-only view of its file
//! has them, as the file stores them (little-endian pairs, or for a run of consecutive
//! sequences a dense list of 4-byte LSN offsets), and so does the table of where each
//! list is (one `u64` per list, read in place on a little-endian machine): loading a
//! million runs' events copies nothing and allocates nothing per list, and a copy of
//! the index (a periodic checkpoint takes one under the log's lock) shares the view. A
//! list gets memory of its own the first time it changes: a vector, or past 4096
//! events shared chunks ([`EventVec`]), so a copy of the index never copies a long run
//! whole either; its place in the table then names that copy, which copies the
//! table's chunk of 4096 places once.
//! [`EventsRef`] reads a list wherever it is.
//!
//! # Invariants
//! - Every list is sorted by sequence, with no sequence twice (the index keeps this; a
//!   checkpoint's pairs are checked as they are loaded, and a dense list's sequences
//!   rise by one by construction).
//! - A loaded list's place is where the load found a whole, well-formed list inside
//!   the view, whose file is never written once published (a newer checkpoint
//!   replaces it by rename; the view keeps the old one readable).

use std::sync::Arc;

use super::chunked::{CHUNK, Chunked};
use crate::vfs::ReadView;

/// One run's events: `(sequence, LSN)`.
pub(crate) type Events = Vec<(u64, u64)>;

/// Bytes of one stored pair: the sequence, then the LSN, little-endian.
pub(crate) const PAIR_BYTES: usize = 16;
/// Bytes of one event of a dense list: its LSN less the list's base, little-endian.
pub(crate) const OFFSET_BYTES: usize = 4;
/// Bytes before a dense list's offsets: its first sequence and its LSN base.
pub(crate) const DENSE_HEAD_BYTES: usize = 16;

fn word_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn pair_at(bytes: &[u8]) -> (u64, u64) {
    (word_at(bytes, 0), word_at(bytes, 8))
}

/// One run's events, sorted by sequence, wherever the index holds them.
#[derive(Copy, Clone, Debug)]
pub struct EventsRef<'a>(pub(crate) Stored<'a>);

/// Where a run's events are.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Stored<'a> {
    Own(&'a [(u64, u64)]),
    /// A long list, in shared chunks.
    Chunked(&'a Chunked<(u64, u64)>),
    /// `PAIR_BYTES` per pair, as a checkpoint stores them.
    Loaded(&'a [u8]),
    /// A list of consecutive sequences from `first`, as a checkpoint stores it: per
    /// event, `OFFSET_BYTES` of its LSN less `base`.
    Dense {
        first: u64,
        base: u64,
        offsets: &'a [u8],
    },
}

impl<'a> EventsRef<'a> {
    /// No events.
    pub(crate) const EMPTY: EventsRef<'static> = EventsRef(Stored::Own(&[]));

    pub fn len(&self) -> usize {
        match self.0 {
            Stored::Own(pairs) => pairs.len(),
            Stored::Chunked(pairs) => pairs.len(),
            Stored::Loaded(bytes) => bytes.len() / PAIR_BYTES,
            Stored::Dense { offsets, .. } => offsets.len() / OFFSET_BYTES,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pair `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<(u64, u64)> {
        match self.0 {
            Stored::Own(pairs) => pairs.get(i).copied(),
            Stored::Chunked(pairs) => pairs.get(i).copied(),
            Stored::Loaded(bytes) => bytes.get(i * PAIR_BYTES..(i + 1) * PAIR_BYTES).map(pair_at),
            Stored::Dense {
                first,
                base,
                offsets,
            } => offsets
                .get(i * OFFSET_BYTES..(i + 1) * OFFSET_BYTES)
                .map(|b| {
                    let offset = u32::from_le_bytes(b.try_into().expect("4 bytes"));
                    (first + i as u64, base + u64::from(offset))
                }),
        }
    }

    /// The first sequence and the lowest LSN, when the sequences are consecutive,
    /// every LSN is within `u32::MAX` of the lowest and there are two events or more:
    /// then a checkpoint stores the list in `OFFSET_BYTES` per event instead of
    /// `PAIR_BYTES`, which is smaller (see `Stored::Dense`).
    pub(crate) fn dense_form(&self) -> Option<(u64, u64)> {
        if let Stored::Dense { first, base, .. } = self.0 {
            return Some((first, base));
        }
        if self.len() < 2 {
            return None;
        }
        let (first, _) = self.get(0)?;
        let (mut low, mut high) = (u64::MAX, 0);
        for (i, (sequence, lsn)) in self.iter().enumerate() {
            if first.checked_add(i as u64) != Some(sequence) {
                return None;
            }
            (low, high) = (low.min(lsn), high.max(lsn));
        }
        (high - low <= u64::from(u32::MAX)).then_some((first, low))
    }

    /// The pair of the highest sequence. Read straight from the end where the list is
    /// in memory: every append to a run asks for it, twice.
    pub fn last(&self) -> Option<(u64, u64)> {
        match self.0 {
            Stored::Own(pairs) => pairs.last().copied(),
            Stored::Chunked(pairs) => pairs.last().copied(),
            Stored::Loaded(_) | Stored::Dense { .. } => {
                self.len().checked_sub(1).and_then(|i| self.get(i))
            }
        }
    }

    /// Where the pair of `sequence` is (`Ok`), or where it would go (`Err`). Events
    /// mostly arrive in sequence order, so one past the last needs no search.
    pub fn search(&self, sequence: u64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        if self.last().is_none_or(|(last, _)| last < sequence) {
            return Err(hi);
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (at, _) = self.get(mid).expect("below the length");
            match at.cmp(&sequence) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Whether a pair has this sequence.
    pub fn holds(&self, sequence: u64) -> bool {
        self.search(sequence).is_ok()
    }

    /// The pairs in sequence order.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = (u64, u64)> + ExactSizeIterator + 'a {
        (0..self.len()).map(move |i| self.get(i).expect("below the length"))
    }

    pub fn to_vec(self) -> Events {
        self.iter().collect()
    }
}

/// Events past this many in one list are kept in shared chunks.
const CHUNKED_FROM: usize = CHUNK;

/// One run's events in memory: a vector, or for a long run shared chunks, so a copy of
/// the index shares all but their last partial chunk instead of copying the run whole.
#[derive(Clone, Debug)]
pub(crate) enum EventVec {
    Small(Events),
    Long(Box<Chunked<(u64, u64)>>),
}

impl Default for EventVec {
    fn default() -> EventVec {
        EventVec::Small(Vec::new())
    }
}

impl From<Events> for EventVec {
    fn from(events: Events) -> EventVec {
        if events.len() > CHUNKED_FROM {
            EventVec::Long(Box::new(events.into_iter().collect()))
        } else {
            EventVec::Small(events)
        }
    }
}

impl EventVec {
    pub(crate) fn as_ref(&self) -> EventsRef<'_> {
        match self {
            EventVec::Small(events) => EventsRef(Stored::Own(events)),
            EventVec::Long(events) => EventsRef(Stored::Chunked(events)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_ref().len()
    }

    /// Adds `(sequence, lsn)` in sequence order; `false` (and nothing changed) when
    /// the sequence is already held.
    pub(crate) fn insert(&mut self, sequence: u64, lsn: u64) -> bool {
        let Err(at) = self.as_ref().search(sequence) else {
            return false;
        };
        match self {
            EventVec::Small(events) => {
                if events.len() == events.capacity() {
                    // Grow by a quarter rather than doubling: a run's events are the
                    // bulk of the index, and a typical run stops after a few dozen.
                    events.reserve_exact((events.len() / 4).max(4));
                }
                events.insert(at, (sequence, lsn));
                if events.len() > CHUNKED_FROM {
                    *self = EventVec::from(std::mem::take(events));
                }
            }
            EventVec::Long(events) => events.insert(at, (sequence, lsn)),
        }
        true
    }

    /// Heap bytes of the events.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            EventVec::Small(events) => events.capacity() * PAIR_BYTES,
            EventVec::Long(events) => events.heap_bytes(),
        }
    }
}

/// Every run's event list, numbered.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventLists {
    /// The view of the checkpoint the loaded lists are in.
    loaded: Option<Arc<ReadView>>,
    /// Per list the checkpoint held (lists `0..at.len()`): the file offset in
    /// `loaded` of its count (see [`loaded_list`]), or, once it has changed,
    /// `COPIED | k` for `copied[k]`. Read in place from the checkpoint too, so a
    /// load allocates nothing per list.
    at: Chunked<u64>,
    /// The loaded lists that have changed since the load.
    copied: Chunked<EventVec>,
    /// The lists made since the load (all of them, in an index never loaded): list
    /// `at.len() + k` is `made[k]`.
    made: Chunked<EventVec>,
}

/// The bit of a list's place in [`EventLists::at`] that marks it copied; a file
/// offset never has it.
const COPIED: u64 = 1 << 63;

impl super::chunked::InPlace for EventVec {}

/// The bit of a stored list's count that marks it dense (see [`Stored::Dense`]).
pub(crate) const DENSE_COUNT: u64 = 1 << 63;

/// Bytes a stored list of `len` events takes, its count included.
fn stored_bytes(len: usize, dense: bool) -> usize {
    8 + if dense {
        DENSE_HEAD_BYTES + len * OFFSET_BYTES
    } else {
        len * PAIR_BYTES
    }
}

/// The list stored from byte `at` of `bytes`: its count, then its pairs or its dense
/// form. Panics if the list does not fit; a checkpoint's load checks every list
/// before it hands out its place.
fn loaded_list(bytes: &[u8], at: usize) -> EventsRef<'_> {
    let count = word_at(bytes, at);
    let len = (count & !DENSE_COUNT) as usize;
    let body = at + 8;
    EventsRef(if count & DENSE_COUNT != 0 {
        let offsets = body + DENSE_HEAD_BYTES;
        Stored::Dense {
            first: word_at(bytes, body),
            base: word_at(bytes, body + 8),
            offsets: &bytes[offsets..offsets + len * OFFSET_BYTES],
        }
    } else {
        Stored::Loaded(&bytes[body..body + len * PAIR_BYTES])
    })
}

impl EventLists {
    /// Lists held by `view`: list `i` is stored from file offset `at[i]`, each of which
    /// the caller has checked holds a whole list inside the view.
    pub(crate) fn from_loaded(view: Arc<ReadView>, at: Chunked<u64>) -> EventLists {
        debug_assert!(at.iter().all(|&at| at & COPIED == 0));
        EventLists {
            loaded: Some(view),
            at,
            ..EventLists::default()
        }
    }

    /// The number of lists.
    pub(crate) fn len(&self) -> usize {
        self.at.len() + self.made.len()
    }

    /// Adds a list; returns its number.
    pub(crate) fn push(&mut self, events: EventVec) -> u32 {
        let at = u32::try_from(self.len()).expect("fewer than 2^32 lists");
        self.made.push(events);
        at
    }

    /// List `i`.
    pub(crate) fn get(&self, i: u32) -> EventsRef<'_> {
        let i = i as usize;
        match self.at.get(i) {
            Some(&at) => self.loaded_or_copied(at),
            None => self.made[i - self.at.len()].as_ref(),
        }
    }

    /// The loaded list whose place is `at`.
    fn loaded_or_copied(&self, at: u64) -> EventsRef<'_> {
        if at & COPIED != 0 {
            return self.copied[(at & !COPIED) as usize].as_ref();
        }
        let view = self.loaded.as_ref().expect("loaded lists have a view");
        loaded_list(view, at as usize)
    }

    /// List `i`, to change: a loaded list is first copied into memory of its own, with
    /// room for a few more events.
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut EventVec {
        let i = i as usize;
        let Some(&at) = self.at.get(i) else {
            let n_loaded = self.at.len();
            return &mut self.made[i - n_loaded];
        };
        let k = if at & COPIED != 0 {
            (at & !COPIED) as usize
        } else {
            let loaded = self.get(i as u32);
            let len = loaded.len();
            let mut events = Vec::with_capacity(len + (len / 4).max(4));
            events.extend(loaded.iter());
            self.copy(i, EventVec::from(events))
        };
        &mut self.copied[k]
    }

    /// Puts `events` in place of loaded list `i`; returns its place in `copied`.
    fn copy(&mut self, i: usize, events: EventVec) -> usize {
        let k = self.copied.len();
        self.copied.push(events);
        self.at[i] = COPIED | k as u64;
        k
    }

    /// Empties list `i`; returns how many events it held.
    pub(crate) fn clear(&mut self, i: u32) -> usize {
        let len = self.get(i).len();
        match self.at.get(i as usize) {
            Some(&at) if at & COPIED == 0 => {
                self.copy(i as usize, EventVec::default());
            }
            _ => *self.get_mut(i) = EventVec::default(),
        }
        len
    }

    /// Every list, in number order (a chunk of places at a time, not looked up one by
    /// one).
    pub(crate) fn iter(&self) -> impl Iterator<Item = EventsRef<'_>> {
        let loaded = self.at.iter().map(|&at| self.loaded_or_copied(at));
        loaded.chain(self.made.iter().map(EventVec::as_ref))
    }

    /// Heap bytes of the tables of lists, and of the events in vectors of their own
    /// (loaded lists are in the checkpoint's pages: see [`EventLists::loaded_bytes`]).
    pub(crate) fn heap_bytes(&self) -> (usize, usize) {
        let own = (self.copied.iter().chain(self.made.iter()))
            .map(EventVec::heap_bytes)
            .sum();
        let tables = self.at.heap_bytes() + self.copied.heap_bytes() + self.made.heap_bytes();
        (tables, own)
    }

    /// Where each loaded list is, or `COPIED | k` for one since copied.
    #[cfg(test)]
    pub(crate) fn places(&self) -> &Chunked<u64> {
        &self.at
    }

    /// Bytes of the loaded lists and of the table of their places, in the
    /// checkpoint's view.
    pub(crate) fn loaded_bytes(&self) -> usize {
        self.at.in_place_bytes() + self.loaded_list_bytes()
    }

    /// Bytes of the loaded lists, in the checkpoint's view.
    fn loaded_list_bytes(&self) -> usize {
        (self.at.iter())
            .filter(|&&at| at & COPIED == 0)
            .map(|&at| {
                let view = self.loaded.as_ref().expect("loaded lists have a view");
                let events = loaded_list(view, at as usize);
                let dense = matches!(events.0, Stored::Dense { .. });
                stored_bytes(events.len(), dense)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view of `skip` bytes of something else, then `lists` stored as pairs, and
    /// where each list is.
    fn view_of(lists: &[&[(u64, u64)]], skip: usize) -> (Arc<ReadView>, Chunked<u64>) {
        let mut bytes = vec![0xee; skip];
        let mut at = Chunked::new();
        for pairs in lists {
            at.push(bytes.len() as u64);
            bytes.extend_from_slice(&(pairs.len() as u64).to_le_bytes());
            for (seq, lsn) in pairs.iter() {
                bytes.extend_from_slice(&seq.to_le_bytes());
                bytes.extend_from_slice(&lsn.to_le_bytes());
            }
        }
        (Arc::new(ReadView::Owned(bytes)), at)
    }

    fn all(lists: &EventLists) -> Vec<Events> {
        lists.iter().map(|events| events.to_vec()).collect()
    }

    #[test]
    fn loaded_lists_read_back_and_change_on_a_copy_of_their_own() {
        // Three lists after 5 bytes of something else: two pairs, none, one.
        let (view, at) = view_of(&[&[(1, 10), (2, 20)], &[], &[(5, 50)]], 5);
        let mut lists = EventLists::from_loaded(view, at);
        lists.push(vec![(7, 70)].into());
        assert_eq!(lists.len(), 4);
        assert_eq!(
            all(&lists),
            [vec![(1, 10), (2, 20)], vec![], vec![(5, 50)], vec![(7, 70)]]
        );
        let copy = lists.clone();
        assert!(lists.get_mut(0).insert(3, 30));
        assert_eq!(lists.get(0).to_vec(), [(1, 10), (2, 20), (3, 30)]);
        assert_eq!(
            copy.get(0).to_vec(),
            [(1, 10), (2, 20)],
            "a copy keeps its lists"
        );
        assert_eq!(
            lists.get(2).to_vec(),
            [(5, 50)],
            "other loaded lists are untouched"
        );
        assert_eq!(
            lists.heap_bytes().1,
            7 * PAIR_BYTES,
            "two own lists: room for 6 and 1"
        );
        assert_eq!(
            lists.loaded_bytes(),
            8 + 8 + PAIR_BYTES,
            "two counts, a pair"
        );
        assert_eq!(lists.clear(2), 1);
        assert_eq!(lists.clear(0), 3);
        assert_eq!(lists.clear(3), 1);
        assert_eq!(lists.clear(1), 0);
        assert!(lists.iter().all(|events| events.is_empty()));
        assert_eq!(lists.loaded_bytes(), 0);
        assert_eq!(copy.get(2).to_vec(), [(5, 50)]);
        assert_eq!(copy.get(3).to_vec(), [(7, 70)]);
    }

    #[test]
    fn a_loaded_list_answers_as_its_own_vector_would() {
        let pairs: Events = (0..50).map(|i| (3 * i + 1, 100 + i)).collect();
        let (view, at) = view_of(&[&pairs], 3);
        let lists = EventLists::from_loaded(view, at);
        for events in [lists.get(0), EventsRef(Stored::Own(&pairs))] {
            assert_eq!(events.len(), 50);
            assert_eq!(events.last(), Some((148, 149)));
            assert_eq!(events.get(7), Some((22, 107)));
            assert_eq!(events.get(50), None);
            assert_eq!(events.iter().next_back(), Some((148, 149)));
            for sequence in 0..160 {
                assert_eq!(events.holds(sequence), sequence % 3 == 1 && sequence < 150);
            }
        }
        assert!(!EventsRef::EMPTY.holds(0));
    }

    #[test]
    fn a_dense_list_answers_as_its_own_vector_would() {
        // Sequences 7..57, LSNs out of order, the highest u32::MAX above the lowest.
        let base = 1 << 40;
        let pairs: Events = (0..50u64)
            .map(|i| (7 + i, base + (i * 7919) % 50 * 1000))
            .chain([(57, base + u64::from(u32::MAX))])
            .collect();
        let own = EventsRef(Stored::Own(&pairs));
        assert_eq!(own.dense_form(), Some((7, base)));
        let mut bytes = vec![0xee; 5];
        bytes.extend_from_slice(&(pairs.len() as u64 | DENSE_COUNT).to_le_bytes());
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&base.to_le_bytes());
        for &(_, lsn) in &pairs {
            bytes.extend_from_slice(&((lsn - base) as u32).to_le_bytes());
        }
        assert_eq!(stored_bytes(pairs.len(), true), bytes.len() - 5);
        let at = [5].into_iter().collect();
        let mut lists = EventLists::from_loaded(Arc::new(ReadView::Owned(bytes)), at);
        let dense = lists.get(0);
        assert!(matches!(dense.0, Stored::Dense { .. }));
        assert_eq!(dense.to_vec(), pairs);
        assert_eq!(dense.dense_form(), Some((7, base)));
        assert_eq!(dense.get(51), None);
        for sequence in 0..70 {
            assert_eq!(dense.holds(sequence), (7..=57).contains(&sequence));
            assert_eq!(dense.search(sequence), own.search(sequence));
        }
        assert_eq!(lists.loaded_bytes(), 8 + 16 + 51 * 4);
        assert!(lists.get_mut(0).insert(58, 5));
        assert_eq!(lists.get(0).len(), 52);
        assert_eq!(lists.get(0).get(50), Some((57, base + u64::from(u32::MAX))));
        assert_eq!(lists.get(0).get(51), Some((58, 5)));
    }

    #[test]
    fn only_consecutive_sequences_within_a_u32_of_lsns_have_a_dense_form() {
        let form = |pairs: &[(u64, u64)]| EventsRef(Stored::Own(pairs)).dense_form();
        assert_eq!(form(&[]), None);
        assert_eq!(form(&[(4, 9)]), None, "one pair is smaller as it is");
        assert_eq!(form(&[(4, 9), (5, 8)]), Some((4, 8)));
        assert_eq!(form(&[(1, 30), (2, 10), (3, 20)]), Some((1, 10)));
        assert_eq!(form(&[(1, 30), (3, 10)]), None, "a gap");
        assert_eq!(form(&[(2, 20), (1, 10)]), None, "out of order");
        assert_eq!(form(&[(1, 0), (1, 0), (3, 0)]), None, "a repeat");
        let wide = u64::from(u32::MAX) + 1;
        assert_eq!(form(&[(1, 0), (2, wide)]), None, "LSNs too far apart");
        assert_eq!(form(&[(1, 0), (2, wide - 1)]), Some((1, 0)));
    }

    proptest::proptest! {
        /// Events inserted mostly in order, some late and some repeated, past the length
        /// at which a list goes into chunks: the same answers as a sorted map, and a
        /// copy taken along the way keeps what it held.
        #[test]
        fn an_event_vector_keeps_sequence_order_as_a_map_does(
            n in 1usize..9000,
            late in proptest::collection::vec((0usize..9000, 0u64..64), 0..200),
            copy_at in 0usize..9000,
        ) {
            use std::collections::BTreeMap;
            let mut events = EventVec::default();
            let mut model = BTreeMap::new();
            let mut copy = None;
            let late: BTreeMap<usize, u64> = late.into_iter().collect();
            for i in 0..n {
                // Every third sequence is left out, to come late (or never).
                let sequence = (i as u64) * 3;
                let fresh = !model.contains_key(&sequence);
                proptest::prop_assert_eq!(events.insert(sequence, i as u64), fresh);
                model.entry(sequence).or_insert(i as u64);
                if let Some(&back) = late.get(&i) {
                    let late_sequence = (sequence.saturating_sub(back * 3)) + 1;
                    let fresh = !model.contains_key(&late_sequence);
                    proptest::prop_assert_eq!(events.insert(late_sequence, 7), fresh);
                    model.entry(late_sequence).or_insert(7);
                    // The same sequence again is refused.
                    proptest::prop_assert!(!events.insert(late_sequence, 8));
                }
                if i == copy_at {
                    copy = Some((events.clone(), model.clone()));
                }
            }
            let as_vec = |model: &BTreeMap<u64, u64>| model.iter().map(|(&s, &l)| (s, l)).collect::<Events>();
            proptest::prop_assert_eq!(events.as_ref().to_vec(), as_vec(&model));
            proptest::prop_assert_eq!(matches!(events, EventVec::Long(_)), model.len() > CHUNKED_FROM);
            if let Some((copy, model)) = copy {
                proptest::prop_assert_eq!(copy.as_ref().to_vec(), as_vec(&model));
            }
        }
    }
}
