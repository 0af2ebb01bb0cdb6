//! `OrderedMap`: a map kept in key order that is cheap to grow in key order.
//!
//! Where it sits: under the call-event index (`Calls`), whose keys are `(ts, LSN)`.
//! Calls arrive mostly in time order, so a key past the last one is pushed onto a sorted
//! vector (no search, no node allocation); a key that arrives out of order goes into a
//! B-tree beside it, so no insert ever costs more than a B-tree insert. Reads merge the
//! two in key order.
//!
//! # Invariants
//! - `tail` is strictly increasing; every key in `late` is smaller than the last key of
//!   `tail`, and no key is in both.
//! - Inserting a key already present replaces its value, as `BTreeMap::insert` does.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::RangeInclusive;

#[derive(Clone, Debug)]
pub(crate) struct OrderedMap<K, V> {
    /// Keys that arrived in order.
    tail: Vec<(K, V)>,
    /// Keys that arrived below the last one of `tail`.
    late: BTreeMap<K, V>,
}

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        OrderedMap {
            tail: Vec::new(),
            late: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy, V> OrderedMap<K, V> {
    /// Inserts or replaces the value of `key`.
    pub fn insert(&mut self, key: K, value: V) {
        match self.tail.last() {
            Some((last, _)) if *last >= key => {
                match self.tail.binary_search_by(|(k, _)| k.cmp(&key)) {
                    Ok(at) => self.tail[at].1 = value,
                    Err(_) => {
                        self.late.insert(key, value);
                    }
                }
            }
            _ => {
                debug_assert!(self.late.last_key_value().is_none_or(|(k, _)| *k < key));
                self.tail.push((key, value));
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        match self.tail.binary_search_by(|(k, _)| k.cmp(key)) {
            Ok(at) => Some(&self.tail[at].1),
            Err(_) => self.late.get(key),
        }
    }

    pub fn len(&self) -> usize {
        self.tail.len() + self.late.len()
    }

    /// Every entry, smallest key first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        merge(
            self.tail.iter().map(|(k, v)| (k, v)),
            self.late.iter(),
            |a, b| a < b,
        )
    }

    /// The entries with keys in `range`, largest key first.
    pub fn range_rev(&self, range: RangeInclusive<K>) -> impl Iterator<Item = (&K, &V)> {
        let lo = self.tail.partition_point(|(k, _)| k < range.start());
        let hi = self.tail.partition_point(|(k, _)| k <= range.end()).max(lo);
        merge(
            self.tail[lo..hi].iter().rev().map(|(k, v)| (k, v)),
            self.late.range(range).rev(),
            |a, b| a > b,
        )
    }
}

/// Merges two iterators, each already in the order `first` defines.
fn merge<'a, K: 'a, V: 'a>(
    a: impl Iterator<Item = (&'a K, &'a V)>,
    b: impl Iterator<Item = (&'a K, &'a V)>,
    first: fn(&K, &K) -> bool,
) -> impl Iterator<Item = (&'a K, &'a V)> {
    Merge {
        a: a.peekable(),
        b: b.peekable(),
        first,
    }
}

struct Merge<A: Iterator, B: Iterator, K> {
    a: Peekable<A>,
    b: Peekable<B>,
    first: fn(&K, &K) -> bool,
}

impl<'a, K: 'a, V: 'a, A, B> Iterator for Merge<A, B, K>
where
    A: Iterator<Item = (&'a K, &'a V)>,
    B: Iterator<Item = (&'a K, &'a V)>,
{
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (Some((ka, _)), Some((kb, _))) => (self.first)(ka, kb),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if take_a { self.a.next() } else { self.b.next() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any insert order reads back like a `BTreeMap` given the same inserts.
        #[test]
        fn reads_like_a_btree_map(
            inserts in prop::collection::vec((0u32..64, any::<u8>()), 0..200),
            lo in 0u32..70,
            len in 0u32..70,
        ) {
            let mut ours = OrderedMap::default();
            let mut model = BTreeMap::new();
            for &(k, v) in &inserts {
                ours.insert(k, v);
                model.insert(k, v);
            }
            prop_assert_eq!(ours.len(), model.len());
            prop_assert!(ours.iter().eq(model.iter()));
            let range = lo..=lo.saturating_add(len);
            prop_assert!(ours.range_rev(range.clone()).eq(model.range(range).rev()));
            for k in 0..70 {
                prop_assert_eq!(ours.get(&k), model.get(&k));
            }
        }
    }

    #[test]
    fn in_order_keys_never_reach_the_tree() {
        let mut map = OrderedMap::default();
        for k in 0..1000u64 {
            map.insert(k, ());
        }
        map.insert(500, ());
        assert!(map.late.is_empty(), "a repeated key replaces in place");
        map.insert(0, ());
        assert!(map.late.is_empty());
        assert_eq!(map.tail.len(), 1000);
    }
}
