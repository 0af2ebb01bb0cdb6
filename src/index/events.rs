//! The runs' event lists: per run with events, its `(sequence, LSN)` pairs sorted by
//! sequence.
//!
//! Where it sits: [`super::Index::event_lists`], numbered by `RunEntry::events`.
//!
//! The lists a checkpoint holds are loaded back to back into one shared array, each
//! list a span of it; a list gets a vector of its own the first time it changes. So a
//! checkpoint of a million runs loads with one allocation for their events instead of a
//! million, and a copy of the index (a periodic checkpoint takes one under the log's
//! lock) shares that array instead of copying it.
//!
//! # Invariants
//! - Every list is sorted by sequence, with no sequence twice (the index keeps this; a
//!   checkpoint's lists are checked as they are loaded).
//! - A loaded span lies inside the shared array, which nothing changes once loaded.

use std::sync::Arc;

use super::chunked::Chunked;

/// One run's events: `(sequence, LSN)`.
pub(crate) type Events = Vec<(u64, u64)>;

#[derive(Clone, Debug, Default)]
pub(crate) struct EventLists {
    /// The lists loaded from a checkpoint, back to back.
    loaded: Arc<Events>,
    /// In shared chunks, so a copy of the index copies only the chunks it writes.
    lists: Chunked<List>,
}

#[derive(Clone, Debug)]
enum List {
    /// `loaded[start..start + len]`.
    Loaded {
        start: usize,
        len: usize,
    },
    Own(Events),
}

impl EventLists {
    /// Lists loaded back to back into `loaded`, `lens[i]` pairs for list `i`.
    pub(crate) fn from_loaded(loaded: Events, lens: &[usize]) -> EventLists {
        let mut start = 0;
        let lists = lens
            .iter()
            .map(|&len| {
                let list = List::Loaded { start, len };
                start += len;
                list
            })
            .collect();
        assert_eq!(start, loaded.len(), "the spans cover the loaded lists");
        EventLists {
            loaded: Arc::new(loaded),
            lists,
        }
    }

    /// The number of lists.
    pub(crate) fn len(&self) -> usize {
        self.lists.len()
    }

    /// Adds a list; returns its number.
    pub(crate) fn push(&mut self, events: Events) -> u32 {
        let at = u32::try_from(self.lists.len()).expect("fewer than 2^32 lists");
        self.lists.push(List::Own(events));
        at
    }

    /// List `i`.
    pub(crate) fn get(&self, i: u32) -> &[(u64, u64)] {
        match &self.lists[i as usize] {
            List::Loaded { start, len } => &self.loaded[*start..*start + *len],
            List::Own(events) => events,
        }
    }

    /// List `i`, to change: a loaded list is first copied into a vector of its own, with
    /// room for a few more events.
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut Events {
        let loaded = &self.loaded;
        let list = &mut self.lists[i as usize];
        if let List::Loaded { start, len } = *list {
            let mut events = Vec::with_capacity(len + (len / 4).max(4));
            events.extend_from_slice(&loaded[start..start + len]);
            *list = List::Own(events);
        }
        match list {
            List::Own(events) => events,
            List::Loaded { .. } => unreachable!("made its own above"),
        }
    }

    /// Empties list `i`; returns how many events it held.
    pub(crate) fn clear(&mut self, i: u32) -> usize {
        let list = std::mem::replace(&mut self.lists[i as usize], List::Own(Vec::new()));
        match list {
            List::Loaded { len, .. } => len,
            List::Own(events) => events.len(),
        }
    }

    /// Every list, in number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[(u64, u64)]> {
        (0..self.lists.len() as u32).map(|i| self.get(i))
    }

    /// Heap bytes of the list headers, and of the events (the loaded array counted
    /// once, however many copies of the index share it).
    pub(crate) fn heap_bytes(&self) -> (usize, usize) {
        let own: usize = self
            .lists
            .iter()
            .map(|list| match list {
                List::Loaded { .. } => 0,
                List::Own(events) => events.capacity() * 16,
            })
            .sum();
        (self.lists.heap_bytes(), self.loaded.capacity() * 16 + own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_lists_read_back_and_change_on_a_copy_of_their_own() {
        let mut lists = EventLists::from_loaded(vec![(1, 10), (2, 20), (5, 50)], &[2, 0, 1]);
        lists.push(vec![(7, 70)]);
        assert_eq!(lists.len(), 4);
        let all: Vec<&[(u64, u64)]> = lists.iter().collect();
        assert_eq!(all, [&[(1, 10), (2, 20)][..], &[], &[(5, 50)], &[(7, 70)]]);
        let copy = lists.clone();
        lists.get_mut(0).push((3, 30));
        assert_eq!(lists.get(0), [(1, 10), (2, 20), (3, 30)]);
        assert_eq!(copy.get(0), [(1, 10), (2, 20)], "a copy keeps its lists");
        assert_eq!(lists.get(2), [(5, 50)], "other loaded lists are untouched");
        assert_eq!(lists.clear(2), 1);
        assert_eq!(lists.clear(0), 3);
        assert_eq!(lists.get(2), []);
        assert_eq!(copy.get(2), [(5, 50)]);
    }
}
