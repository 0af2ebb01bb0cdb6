//! `OrderedMap`: a map kept in key order that is cheap to grow in key order.
//!
//! Where it sits: under the call-event index (`Calls`), whose keys are `(ts, LSN)`, so
//! every key inserted is new (the LSN makes it unique). Calls arrive mostly in time
//! order, so a key past the last one is pushed onto a sorted vector (no search, no node
//! allocation). A key that belongs among the vector's last [`NEAR_END`] entries (calls
//! recorded on threads of different ingest shards reach the index a little out of
//! order) is inserted there, moving at most that many entries. An older key goes into a
//! B-tree beside the vector, without searching the vector first, so no insert costs
//! more than a B-tree insert. Reads merge the two in key order.
//!
//! # Invariants
//! - `tail` is strictly increasing; every key in `late` is smaller than the last key of
//!   `tail`, and no key is in both (keys are inserted once; debug builds check).

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::RangeInclusive;

/// How far from the end of the sorted vector a late key is still inserted into it.
const NEAR_END: usize = 64;

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
    /// Inserts `key`, which is not in the map yet.
    pub fn insert(&mut self, key: K, value: V) {
        debug_assert!(self.get(&key).is_none(), "a key is inserted once");
        match self.tail.last() {
            Some((last, _)) if *last > key => {
                let near = self.tail.len().saturating_sub(NEAR_END);
                if self.tail[near].0 < key {
                    let at = near + self.tail[near..].partition_point(|(k, _)| *k < key);
                    self.tail.insert(at, (key, value));
                } else {
                    self.late.insert(key, value);
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

    /// Distinct keys in any order, mostly rising (as calls arrive) or shuffled.
    fn insert_orders() -> impl Strategy<Value = Vec<u32>> {
        (
            prop::collection::btree_set(0u32..400, 0..300),
            any::<bool>(),
        )
            .prop_flat_map(|(keys, rising)| {
                let keys: Vec<u32> = keys.into_iter().collect();
                let n = keys.len();
                // Rising: swap a few neighbours at most a window apart.
                (
                    Just(keys),
                    Just(rising),
                    prop::collection::vec((0..n.max(1), 0..100usize), 0..40),
                )
                    .prop_map(move |(mut keys, rising, swaps)| {
                        if keys.is_empty() {
                            return keys;
                        }
                        if rising {
                            for (i, d) in swaps {
                                let j = (i + d).min(n.saturating_sub(1));
                                keys.swap(i.min(j), j);
                            }
                        } else {
                            keys.reverse();
                            for (i, d) in swaps {
                                keys.swap(i, (i * 7 + d) % n);
                            }
                        }
                        keys
                    })
            })
    }

    proptest! {
        /// Any insert order of distinct keys reads back like a `BTreeMap` given the same
        /// inserts.
        #[test]
        fn reads_like_a_btree_map(
            inserts in insert_orders(),
            lo in 0u32..410,
            len in 0u32..410,
        ) {
            let mut ours = OrderedMap::default();
            let mut model = BTreeMap::new();
            for &k in &inserts {
                ours.insert(k, k as u8);
                model.insert(k, k as u8);
            }
            prop_assert!(ours.tail.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert_eq!(ours.len(), model.len());
            prop_assert!(ours.iter().eq(model.iter()));
            let range = lo..=lo.saturating_add(len);
            prop_assert!(ours.range_rev(range.clone()).eq(model.range(range).rev()));
            for k in 0..410 {
                prop_assert_eq!(ours.get(&k), model.get(&k));
            }
        }
    }

    #[test]
    fn keys_a_little_late_go_into_the_vector_and_older_ones_into_the_tree() {
        let mut map = OrderedMap::default();
        for k in (0..2000u64).step_by(2) {
            map.insert(k, ());
        }
        for k in (2000 - 2 * NEAR_END as u64 + 1..2000).step_by(2) {
            map.insert(k, ());
        }
        assert!(
            map.late.is_empty(),
            "within the last {NEAR_END}: the vector"
        );
        map.insert(1, ());
        assert_eq!(map.late.len(), 1, "far back: the tree");
        assert!(map.tail.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn in_order_keys_never_reach_the_tree() {
        let mut map = OrderedMap::default();
        for k in 0..1000u64 {
            map.insert(k, ());
        }
        assert!(map.late.is_empty());
        assert_eq!(map.tail.len(), 1000);
    }
}
