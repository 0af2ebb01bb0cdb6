//! `OrderedMap`: a map kept in key order that is cheap to grow in key order.
//!
//! Where it sits: under the call-event index (`Calls`), whose keys are `(ts, LSN)`, so
//! every key inserted is new (the LSN makes it unique). Calls arrive mostly in time
//! order, so a key past the last one is pushed onto a sorted vector (no search, no node
//! allocation). Calls recorded on threads of different ingest shards reach the index
//! out of order by up to a batch: while the committer is behind, one shard's batch of a
//! thousand calls is followed by another's from the same span of time. A key that
//! belongs among the vector's last [`NEAR_END`] entries waits in a short sorted list
//! (`pending`), which is merged into the vector when it is full or the vector has grown
//! well past it, so each such key moves a few entries on average instead of costing a
//! B-tree insert. An older key goes into a B-tree beside the vector. Reads merge the
//! three in key order.
//!
//! # Invariants
//! - `tail` and `pending` are strictly increasing; every key in `pending` or `late` is
//!   smaller than the last key of `tail`; no key is in two of them (keys are inserted
//!   once; debug builds check).
//! - While `pending` holds keys, `pending_from` is where its first key goes in `tail`,
//!   and `tail` has at most `2 * NEAR_END` entries past it, so a merge moves at most
//!   that many plus `PENDING_MAX`.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::RangeInclusive;

/// How far from the end of the sorted vector a late key still goes into it (through
/// `pending`). Tests use small sizes, so that short inputs take every path.
const NEAR_END: usize = if cfg!(test) { 16 } else { 4096 };
/// Late keys held in `pending` before they are merged into the vector.
const PENDING_MAX: usize = if cfg!(test) { 8 } else { 256 };

#[derive(Clone, Debug)]
pub(crate) struct OrderedMap<K, V> {
    /// Keys that arrived in order, and merged late ones.
    tail: Vec<(K, V)>,
    /// Keys that arrived a little late, waiting to be merged into `tail`.
    pending: Vec<(K, V)>,
    /// Where the first key of `pending` goes in `tail`.
    pending_from: usize,
    /// Keys that arrived well below the end of `tail`.
    late: BTreeMap<K, V>,
}

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        OrderedMap {
            tail: Vec::new(),
            pending: Vec::new(),
            pending_from: 0,
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
                    self.insert_pending(key, value);
                } else {
                    self.late.insert(key, value);
                }
            }
            _ => {
                debug_assert!(self.late.last_key_value().is_none_or(|(k, _)| *k < key));
                self.tail.push((key, value));
                if !self.pending.is_empty() && self.tail.len() - self.pending_from > 2 * NEAR_END {
                    self.merge_pending();
                }
            }
        }
    }

    /// Adds a key that goes among the last `NEAR_END` of `tail` to `pending`.
    fn insert_pending(&mut self, key: K, value: V) {
        let at = self.pending.partition_point(|(k, _)| *k < key);
        self.pending.insert(at, (key, value));
        if at == 0 {
            self.pending_from = self.tail.partition_point(|(k, _)| *k < key);
        }
        if self.pending.len() >= PENDING_MAX {
            self.merge_pending();
        }
    }

    /// Merges `pending` into `tail`: appended, then the two sorted runs from
    /// `pending_from` on merged by a stable sort, which finds the runs and merges them
    /// in one pass.
    fn merge_pending(&mut self) {
        let from = self.pending_from;
        self.tail.append(&mut self.pending);
        self.tail[from..].sort_by_key(|(k, _)| *k);
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        find(&self.tail, key)
            .or_else(|| find(&self.pending, key))
            .or_else(|| self.late.get(key))
    }

    pub fn len(&self) -> usize {
        self.tail.len() + self.pending.len() + self.late.len()
    }

    /// Every entry, smallest key first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let ascending = |a: &K, b: &K| a < b;
        merge(
            merge(pairs(&self.tail), pairs(&self.pending), ascending),
            self.late.iter(),
            ascending,
        )
    }

    /// The entries with keys in `range`, largest key first.
    pub fn range_rev(&self, range: RangeInclusive<K>) -> impl Iterator<Item = (&K, &V)> {
        let descending = |a: &K, b: &K| a > b;
        merge(
            merge(
                pairs(within(&self.tail, &range)).rev(),
                pairs(within(&self.pending, &range)).rev(),
                descending,
            ),
            self.late.range(range).rev(),
            descending,
        )
    }
}

/// The value of `key` in sorted `entries`.
fn find<'a, K: Ord, V>(entries: &'a [(K, V)], key: &K) -> Option<&'a V> {
    let at = entries.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
    Some(&entries[at].1)
}

/// The entries of sorted `entries` with keys in `range`.
fn within<'a, K: Ord, V>(entries: &'a [(K, V)], range: &RangeInclusive<K>) -> &'a [(K, V)] {
    let lo = entries.partition_point(|(k, _)| k < range.start());
    let hi = entries.partition_point(|(k, _)| k <= range.end()).max(lo);
    &entries[lo..hi]
}

/// `entries` as pairs of references.
fn pairs<K, V>(entries: &[(K, V)]) -> impl DoubleEndedIterator<Item = (&K, &V)> {
    entries.iter().map(|(k, v)| (k, v))
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

    impl<K: Ord + Copy + std::fmt::Debug, V> OrderedMap<K, V> {
        /// Checks the module's invariants.
        fn check(&self) {
            let rising = |entries: &[(K, V)]| entries.windows(2).all(|w| w[0].0 < w[1].0);
            assert!(rising(&self.tail), "tail in order");
            assert!(rising(&self.pending), "pending in order");
            let last = self.tail.last().map(|(k, _)| *k);
            let below_last = |k: &K| last.is_some_and(|last| *k < last);
            assert!(self.pending.iter().all(|(k, _)| below_last(k)));
            assert!(self.late.keys().all(below_last));
            if let Some((first, _)) = self.pending.first() {
                let from = self.tail.partition_point(|(k, _)| k < first);
                assert_eq!(self.pending_from, from, "where pending goes");
                assert!(
                    self.tail.len() - from <= 2 * NEAR_END,
                    "a merge stays short"
                );
            }
        }
    }

    proptest! {
        /// Any insert order of distinct keys reads back like a `BTreeMap` given the same
        /// inserts, and keeps the invariants after every insert.
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
                ours.check();
            }
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
    fn keys_a_little_late_wait_then_merge_and_older_ones_go_into_the_tree() {
        let mut map = OrderedMap::default();
        let n = 4 * NEAR_END as u64;
        for k in (0..2 * n).step_by(2) {
            map.insert(k, ());
        }
        // Odd keys among the last NEAR_END, one short of a merge: they wait.
        let near: Vec<u64> = (2 * n - 2 * NEAR_END as u64 + 1..2 * n)
            .step_by(2)
            .collect();
        for &k in &near[..PENDING_MAX - 1] {
            map.insert(k, ());
        }
        assert_eq!(
            map.pending.len(),
            PENDING_MAX - 1,
            "within the last {NEAR_END}: waiting"
        );
        assert!(map.late.is_empty());
        map.insert(near[PENDING_MAX - 1], ());
        assert!(map.pending.is_empty(), "a full list is merged");
        assert_eq!(map.tail.len() as u64, n + PENDING_MAX as u64);
        map.insert(1, ());
        assert_eq!(map.late.len(), 1, "far back: the tree");
        map.check();
    }

    #[test]
    fn waiting_keys_are_merged_once_the_vector_has_grown_past_them() {
        let mut map = OrderedMap::default();
        for k in (0..100u64).step_by(2) {
            map.insert(k, ());
        }
        map.insert(97, ());
        assert_eq!(map.pending.len(), 1);
        let mut k = 100;
        while !map.pending.is_empty() {
            map.insert(k, ());
            map.check();
            k += 2;
        }
        assert!(map.tail.len() - 1 - map.tail.partition_point(|(key, _)| *key < 97) > 2 * NEAR_END);
        assert_eq!(map.get(&97), Some(&()));
    }

    #[test]
    fn in_order_keys_never_wait_or_reach_the_tree() {
        let mut map = OrderedMap::default();
        for k in 0..1000u64 {
            map.insert(k, ());
        }
        assert!(map.late.is_empty() && map.pending.is_empty());
        assert_eq!(map.tail.len(), 1000);
    }
}
