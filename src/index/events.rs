//! The runs' event lists: per run with events, its `(sequence, LSN)` pairs sorted by
//! sequence.
//!
//! Where it sits: [`super::Index::event_lists`], numbered by `RunEntry::events`.
//!
//! The lists a checkpoint holds stay where the checkpoint's read-only view of its file
//! has them, as the little-endian pairs the file stores: loading a million runs' events
//! copies nothing and allocates nothing for them, and a copy of the index (a periodic
//! checkpoint takes one under the log's lock) shares the view. A list gets memory of its
//! own the first time it changes: a vector, or past 4096 events shared chunks
//! ([`EventVec`]), so a copy of the index never copies a long run whole either.
//! [`EventsRef`] reads a list wherever it is.
//!
//! # Invariants
//! - Every list is sorted by sequence, with no sequence twice (the index keeps this; a
//!   checkpoint's lists are checked as they are loaded).
//! - A loaded span lies inside the view, whose file is never written once published
//!   (a newer checkpoint replaces it by rename; the view keeps the old one readable).

use std::sync::Arc;

use super::chunked::{CHUNK, Chunked};
use crate::vfs::ReadView;

/// One run's events: `(sequence, LSN)`.
pub(crate) type Events = Vec<(u64, u64)>;

/// Bytes of one stored pair: the sequence, then the LSN, little-endian.
pub(crate) const PAIR_BYTES: usize = 16;

fn pair_at(bytes: &[u8]) -> (u64, u64) {
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    (word(0), word(8))
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
}

impl<'a> EventsRef<'a> {
    /// No events.
    pub(crate) const EMPTY: EventsRef<'static> = EventsRef(Stored::Own(&[]));

    pub fn len(&self) -> usize {
        match self.0 {
            Stored::Own(pairs) => pairs.len(),
            Stored::Chunked(pairs) => pairs.len(),
            Stored::Loaded(bytes) => bytes.len() / PAIR_BYTES,
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
        }
    }

    /// The pair of the highest sequence.
    pub fn last(&self) -> Option<(u64, u64)> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
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

#[derive(Clone, Debug, Default)]
pub(crate) struct EventLists {
    /// The view of the checkpoint the loaded lists are in.
    loaded: Option<Arc<ReadView>>,
    /// In shared chunks, so a copy of the index copies only the chunks it writes.
    lists: Chunked<List>,
}

#[derive(Clone, Debug)]
enum List {
    /// `len` pairs from byte `start` of the loaded view.
    Loaded {
        start: usize,
        len: usize,
    },
    Own(EventVec),
}

impl EventLists {
    /// Lists held by `view`: list `i` is `spans[i].1` pairs from byte `spans[i].0`.
    pub(crate) fn from_loaded(view: Arc<ReadView>, spans: &[(usize, usize)]) -> EventLists {
        let lists = (spans.iter())
            .map(|&(start, len)| {
                assert!(
                    start + len * PAIR_BYTES <= view.len(),
                    "a loaded span lies inside the view"
                );
                List::Loaded { start, len }
            })
            .collect();
        EventLists {
            loaded: Some(view),
            lists,
        }
    }

    /// The number of lists.
    pub(crate) fn len(&self) -> usize {
        self.lists.len()
    }

    /// Adds a list; returns its number.
    pub(crate) fn push(&mut self, events: EventVec) -> u32 {
        let at = u32::try_from(self.lists.len()).expect("fewer than 2^32 lists");
        self.lists.push(List::Own(events));
        at
    }

    /// List `i`.
    pub(crate) fn get(&self, i: u32) -> EventsRef<'_> {
        match &self.lists[i as usize] {
            List::Loaded { start, len } => {
                let view = self.loaded.as_ref().expect("loaded lists have a view");
                EventsRef(Stored::Loaded(&view[*start..*start + *len * PAIR_BYTES]))
            }
            List::Own(events) => events.as_ref(),
        }
    }

    /// List `i`, to change: a loaded list is first copied into memory of its own, with
    /// room for a few more events.
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut EventVec {
        if let List::Loaded { len, .. } = self.lists[i as usize] {
            let mut events = Vec::with_capacity(len + (len / 4).max(4));
            events.extend(self.get(i).iter());
            self.lists[i as usize] = List::Own(EventVec::from(events));
        }
        match &mut self.lists[i as usize] {
            List::Own(events) => events,
            List::Loaded { .. } => unreachable!("made its own above"),
        }
    }

    /// Empties list `i`; returns how many events it held.
    pub(crate) fn clear(&mut self, i: u32) -> usize {
        let list = std::mem::replace(&mut self.lists[i as usize], List::Own(EventVec::default()));
        match list {
            List::Loaded { len, .. } => len,
            List::Own(events) => events.len(),
        }
    }

    /// Every list, in number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = EventsRef<'_>> {
        (0..self.lists.len() as u32).map(|i| self.get(i))
    }

    /// Heap bytes of the list headers, and of the events in vectors of their own
    /// (loaded lists are in the checkpoint's pages: see [`EventLists::loaded_bytes`]).
    pub(crate) fn heap_bytes(&self) -> (usize, usize) {
        let own: usize = (self.lists.iter())
            .map(|list| match list {
                List::Loaded { .. } => 0,
                List::Own(events) => events.heap_bytes(),
            })
            .sum();
        (self.lists.heap_bytes(), own)
    }

    /// Bytes of the loaded lists, in the checkpoint's view.
    pub(crate) fn loaded_bytes(&self) -> usize {
        (self.lists.iter())
            .map(|list| match list {
                List::Loaded { len, .. } => len * PAIR_BYTES,
                List::Own(_) => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_of(pairs: &[(u64, u64)], skip: usize) -> Arc<ReadView> {
        let mut bytes = vec![0xee; skip];
        for (seq, lsn) in pairs {
            bytes.extend_from_slice(&seq.to_le_bytes());
            bytes.extend_from_slice(&lsn.to_le_bytes());
        }
        Arc::new(ReadView::Owned(bytes))
    }

    fn all(lists: &EventLists) -> Vec<Events> {
        lists.iter().map(|events| events.to_vec()).collect()
    }

    #[test]
    fn loaded_lists_read_back_and_change_on_a_copy_of_their_own() {
        // Three lists after 5 bytes of something else: two pairs, none, one.
        let view = view_of(&[(1, 10), (2, 20), (5, 50)], 5);
        let mut lists = EventLists::from_loaded(view, &[(5, 2), (37, 0), (37, 1)]);
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
        assert_eq!(lists.loaded_bytes(), PAIR_BYTES);
        assert_eq!(lists.clear(2), 1);
        assert_eq!(lists.clear(0), 3);
        assert!(lists.get(2).is_empty());
        assert_eq!(copy.get(2).to_vec(), [(5, 50)]);
    }

    #[test]
    fn a_loaded_list_answers_as_its_own_vector_would() {
        let pairs: Events = (0..50).map(|i| (3 * i + 1, 100 + i)).collect();
        let view = view_of(&pairs, 3);
        let lists = EventLists::from_loaded(view, &[(3, pairs.len())]);
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
