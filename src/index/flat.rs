//! An array of the index read in place from a checkpoint, then grown at its end: the
//! sorted run lists (the start, finish and dry-run orders and the per-skill, caller
//! and channel lists) and each name table's bytes (`names::Arena`).
//!
//! Where it sits: fields of [`super::Index`] and [`super::Names`]; made by a
//! checkpoint's load (`checkpoint.rs`), read by the queries as [`Parts`] and by the
//! name tables a name at a time ([`Flat::run`]), written by `apply`.
//!
//! A loaded list stays a view of the checkpoint's pages, and runs added at its end
//! (a new run is usually the newest) go to a vector of its own after it: a load of a
//! million runs makes none of the lists' 24 MB, a copy of a loaded index shares them,
//! and the first runs started after a load copy nothing. Any other change (a run
//! started out of time order, a finish or purge taking runs out) copies the list out
//! whole, once. A query reads a list, or a range of it, as two slices ([`Parts`]),
//! since a page of runs is a range of one.
//!
//! # Invariants
//! - A view lies inside its file's view, aligned for `T` (checked when it is made),
//!   and that file is never written once published.

use std::ops::{Index, Range};
use std::sync::Arc;

use super::chunked::InPlace;
use crate::vfs::ReadView;

#[derive(Clone)]
pub(crate) enum Flat<T> {
    Own(Vec<T>),
    /// `len` items from byte `at` of `view`, as the file stores them, then `more`.
    InPlace {
        view: Arc<ReadView>,
        at: usize,
        len: usize,
        more: Vec<T>,
    },
}

impl<T: Copy + InPlace> Flat<T> {
    /// The `n` items stored from byte `at` of `view`, if they are inside it and the
    /// machine and their alignment let them be read where they are.
    pub(crate) fn in_place(view: &Arc<ReadView>, at: usize, n: usize) -> Option<Flat<T>> {
        let bytes = view.get(at..at.checked_add(n.checked_mul(size_of::<T>())?)?)?;
        T::slice_in(bytes)?;
        Some(Flat::InPlace {
            view: Arc::clone(view),
            at,
            len: n,
            more: Vec::new(),
        })
    }

    /// The items, as the loaded part and the part of its own.
    #[inline]
    pub(crate) fn parts(&self) -> Parts<'_, T> {
        match self {
            Flat::Own(items) => Parts {
                head: items,
                tail: &[],
            },
            Flat::InPlace {
                view,
                at,
                len,
                more,
            } => {
                let bytes = &view[*at..*at + len * size_of::<T>()];
                Parts {
                    head: T::slice_in(bytes).expect("checked when the view was made"),
                    tail: more,
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.parts().len()
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.parts().iter()
    }

    pub(crate) fn last(&self) -> Option<&T> {
        self.parts().last()
    }

    /// See [`Parts::partition_point`].
    pub(crate) fn partition_point(&self, pred: impl FnMut(&T) -> bool) -> usize {
        self.parts().partition_point(pred)
    }

    /// Adds `item` at the end, without copying a loaded part.
    pub(crate) fn push(&mut self, item: T) {
        match self {
            Flat::Own(own) | Flat::InPlace { more: own, .. } => own.push(item),
        }
    }

    /// Adds `items` at the end, without copying a loaded part.
    pub(crate) fn extend_from_slice(&mut self, items: &[T]) {
        match self {
            Flat::Own(own) | Flat::InPlace { more: own, .. } => own.extend_from_slice(items),
        }
    }

    /// The items in `range`, which lies on one side of the loaded part's end.
    #[inline]
    pub(crate) fn run(&self, range: Range<usize>) -> &[T] {
        let Parts { head, tail } = self.parts();
        match range.start.checked_sub(head.len()) {
            Some(start) => &tail[start..range.end - head.len()],
            None => &head[range],
        }
    }

    /// The items, to change anywhere: copied out of the view first if they are in it.
    pub(crate) fn to_mut(&mut self) -> &mut Vec<T> {
        if let Flat::InPlace { .. } = self {
            *self = Flat::Own(self.iter().copied().collect());
        }
        match self {
            Flat::Own(items) => items,
            Flat::InPlace { .. } => unreachable!("copied out above"),
        }
    }

    /// Heap bytes of the items (none of those still in the view).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Flat::Own(items) | Flat::InPlace { more: items, .. } => {
                items.capacity() * size_of::<T>()
            }
        }
    }

    /// Bytes of the items read in place from the view.
    pub(crate) fn in_place_bytes(&self) -> usize {
        match self {
            Flat::Own(_) => 0,
            Flat::InPlace { len, .. } => len * size_of::<T>(),
        }
    }
}

impl<T: Copy + InPlace> Index<usize> for Flat<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        match self {
            Flat::Own(items) => &items[i],
            Flat::InPlace { len, more, .. } if i >= *len => &more[i - len],
            Flat::InPlace { .. } => &self.parts().head[i],
        }
    }
}

impl<T> Default for Flat<T> {
    fn default() -> Flat<T> {
        Flat::Own(Vec::new())
    }
}

impl<T> From<Vec<T>> for Flat<T> {
    fn from(items: Vec<T>) -> Flat<T> {
        Flat::Own(items)
    }
}

impl<T: Copy + InPlace + PartialEq> PartialEq for Flat<T> {
    fn eq(&self, other: &Flat<T>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: Copy + InPlace + std::fmt::Debug> std::fmt::Debug for Flat<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A list, or a range of one, as two slices: the items of `head`, then those of
/// `tail`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Parts<'a, T> {
    head: &'a [T],
    tail: &'a [T],
}

impl<'a, T> Parts<'a, T> {
    /// No items.
    pub(crate) const EMPTY: Parts<'a, T> = Parts {
        head: &[],
        tail: &[],
    };

    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    pub(crate) fn last(&self) -> Option<&'a T> {
        self.tail.last().or(self.head.last())
    }

    pub(crate) fn get(&self, i: usize) -> Option<&'a T> {
        match i.checked_sub(self.head.len()) {
            None => self.head.get(i),
            Some(i) => self.tail.get(i),
        }
    }

    pub(crate) fn iter(self) -> impl DoubleEndedIterator<Item = &'a T> + 'a {
        self.head.iter().chain(self.tail)
    }

    /// The index of the first item for which `pred` is false, the items being
    /// partitioned by it (as [`slice::partition_point`]).
    pub(crate) fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        match self.head.last() {
            Some(last) if !pred(last) => self.head.partition_point(pred),
            _ => self.head.len() + self.tail.partition_point(pred),
        }
    }

    /// The items in `range` (empty where it is).
    pub(crate) fn range(&self, range: Range<usize>) -> Parts<'a, T> {
        let n = self.head.len();
        let start = range.start.min(self.len());
        let end = range.end.clamp(start, self.len());
        Parts {
            head: &self.head[start.min(n)..end.min(n)],
            tail: &self.tail[start.saturating_sub(n)..end.saturating_sub(n)],
        }
    }

    /// The two slices, in order.
    pub(crate) fn slices(&self) -> [&'a [T]; 2] {
        [self.head, self.tail]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(items: &[u32]) -> (Arc<ReadView>, Option<Flat<u32>>) {
        let mut bytes = vec![0xee; 8];
        bytes.extend(items.iter().flat_map(|v| v.to_le_bytes()));
        let view = Arc::new(ReadView::Owned(bytes));
        let flat = Flat::<u32>::in_place(&view, 8, items.len());
        assert_eq!(flat.is_some(), cfg!(target_endian = "little"));
        (view, flat)
    }

    #[test]
    fn a_list_in_place_takes_pushes_after_it_and_is_copied_on_any_other_write() {
        let items: Vec<u32> = (0..100).map(|i| i * 3).collect();
        let (view, Some(mut flat)) = loaded(&items) else {
            return;
        };
        assert!(
            Flat::<u32>::in_place(&view, 8, 101).is_none(),
            "past the end"
        );
        assert!(Flat::<u32>::in_place(&view, usize::MAX, 2).is_none());
        let copy = flat.clone();
        flat.push(300);
        flat.push(303);
        assert_eq!((flat.len(), flat[100], flat[1]), (102, 300, 3));
        assert_eq!(flat.in_place_bytes(), 400, "pushes leave the view in place");
        assert!(flat.iter().copied().eq((0..102).map(|i| i * 3)));
        flat.to_mut().insert(11, 31);
        assert_eq!((flat.len(), flat[11], flat[102]), (103, 31, 303));
        assert_eq!(flat.in_place_bytes(), 0);
        assert!(copy.iter().eq(items.iter()), "a copy keeps the view");
        assert_eq!(copy.in_place_bytes(), 400);
        assert_eq!(&view[8..12], &0u32.to_le_bytes(), "the view is not written");
    }

    proptest::proptest! {
        /// A list in two parts answers every range, search and walk as one vector.
        #[test]
        fn two_parts_answer_as_one_vector(
            n_loaded in 0usize..40,
            n_more in 0usize..40,
            start in 0usize..90,
            end in 0usize..90,
            cut in 0u32..300,
        ) {
            let all: Vec<u32> = (0..(n_loaded + n_more) as u32).map(|i| i * 3).collect();
            let (_view, flat) = loaded(&all[..n_loaded]);
            let Some(mut flat) = flat else { return Ok(()) };
            for &item in &all[n_loaded..] {
                flat.push(item);
            }
            let parts = flat.parts();
            proptest::prop_assert_eq!(parts.len(), all.len());
            proptest::prop_assert_eq!(parts.last(), all.last());
            proptest::prop_assert_eq!(parts.get(start), all.get(start));
            proptest::prop_assert_eq!(
                parts.partition_point(|&v| v < cut),
                all.partition_point(|&v| v < cut)
            );
            let (s, e) = (start.min(all.len()), end.clamp(start.min(all.len()), all.len()));
            let range = parts.range(start..end);
            proptest::prop_assert!(range.iter().eq(all[s..e].iter()));
            proptest::prop_assert!(range.iter().rev().eq(all[s..e].iter().rev()));
            proptest::prop_assert_eq!(range.len(), e - s);
            proptest::prop_assert_eq!(range.slices().concat(), &all[s..e]);
        }
    }
}
