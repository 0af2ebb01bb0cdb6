//! The journal's sealed segments, ordered by base LSN, found by LSN with a binary
//! search over a plain vector of their bases.
//!
//! Where it sits: inside [`super::Journal`]. Every read of a sealed frame starts by
//! finding its segment, twice when the read path prefetches it first; a search of a
//! few dozen contiguous `u64`s costs a fraction of a B-tree's walk (whose nodes also
//! hold the segments' `Arc`s). Changes (a seal, a compaction's swap or removal) are
//! rare, so they may shift the vectors.
//!
//! # Invariants
//! - `bases[i] == segments[i].header.base_lsn`, strictly increasing.

use std::sync::Arc;

use super::SealedSegment;
use crate::codec::Lsn;

#[derive(Debug, Default)]
pub(crate) struct SealedSegments {
    bases: Vec<Lsn>,
    segments: Vec<Arc<SealedSegment>>,
}

impl SealedSegments {
    /// Adds `segment`, replacing the one with the same base LSN if there is one.
    pub fn insert(&mut self, segment: Arc<SealedSegment>) {
        let base = segment.header.base_lsn;
        match self.bases.binary_search(&base) {
            Ok(at) => self.segments[at] = segment,
            Err(at) => {
                self.bases.insert(at, base);
                self.segments.insert(at, segment);
            }
        }
    }

    /// Removes the segment with this base LSN, if there is one.
    pub fn remove(&mut self, base: Lsn) -> Option<Arc<SealedSegment>> {
        let at = self.bases.binary_search(&base).ok()?;
        self.bases.remove(at);
        Some(self.segments.remove(at))
    }

    /// The segment with this base LSN.
    pub fn get(&self, base: Lsn) -> Option<&Arc<SealedSegment>> {
        let at = self.bases.binary_search(&base).ok()?;
        Some(&self.segments[at])
    }

    /// The segment with the greatest base LSN at or below `lsn`: the only one that
    /// can hold the frame at `lsn`.
    #[inline]
    pub fn holding(&self, lsn: Lsn) -> Option<&Arc<SealedSegment>> {
        let after = self.bases.partition_point(|&base| base <= lsn);
        after.checked_sub(1).map(|at| &self.segments[at])
    }

    /// The base LSN of the newest segment.
    pub fn last_base(&self) -> Option<Lsn> {
        self.bases.last().copied()
    }

    /// The segments, oldest first.
    pub fn values(&self) -> std::slice::Iter<'_, Arc<SealedSegment>> {
        self.segments.iter()
    }

    /// The segments, oldest first, to change in place (their base LSNs stay).
    pub fn values_mut(&mut self) -> std::slice::IterMut<'_, Arc<SealedSegment>> {
        self.segments.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;
    use crate::codec::SegmentId;
    use crate::segment::header::SegmentHeader;
    use crate::vfs::ReadView;

    /// A segment holding nothing, at `base`, whose id tells copies apart.
    fn segment(base: u64, id: u64) -> Arc<SealedSegment> {
        let header = SegmentHeader::new(SegmentId(id), Lsn(base)).unwrap();
        Arc::new(SealedSegment {
            path: PathBuf::from(format!("{base}.seg")),
            ctx: header.frame_context(),
            header,
            view: ReadView::Owned(Vec::new()),
            extents: Vec::new(),
            sparse: None,
            scanned: true,
            warmth: None,
        })
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..64).prop_map(|b| Op::Insert(b * 100)),
            (0u64..64).prop_map(|b| Op::Remove(b * 100)),
        ]
    }

    proptest! {
        /// Against a `BTreeMap` of the same segments: every lookup by LSN, by base and
        /// in order finds the same segment after any inserts, replacements and removals.
        #[test]
        fn finds_what_a_btree_map_finds(ops in prop::collection::vec(op(), 0..80)) {
            let mut set = SealedSegments::default();
            let mut model: BTreeMap<Lsn, Arc<SealedSegment>> = BTreeMap::new();
            for (id, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(base) => {
                        let s = segment(base, id as u64);
                        set.insert(s.clone());
                        model.insert(Lsn(base), s);
                    }
                    Op::Remove(base) => {
                        let removed = set.remove(Lsn(base));
                        let expected = model.remove(&Lsn(base));
                        prop_assert_eq!(removed.is_some(), expected.is_some());
                    }
                }
                prop_assert_eq!(set.len(), model.len());
                prop_assert_eq!(set.last_base(), model.keys().next_back().copied());
                for lsn in (0..6500).step_by(50) {
                    let found = set.holding(Lsn(lsn));
                    let expected = model.range(..=Lsn(lsn)).next_back().map(|(_, s)| s);
                    prop_assert_eq!(found.map(Arc::as_ptr), expected.map(Arc::as_ptr));
                    let exact = set.get(Lsn(lsn)).map(Arc::as_ptr);
                    prop_assert_eq!(exact, model.get(&Lsn(lsn)).map(Arc::as_ptr));
                }
                let order: Vec<_> = set.values().map(Arc::as_ptr).collect();
                let expected: Vec<_> = model.values().map(Arc::as_ptr).collect();
                prop_assert_eq!(order, expected);
            }
        }
    }
}
