//! A flat array of the index, read in place from a checkpoint until it is first
//! written: the per-id tables and the sorted run lists.
//!
//! Where it sits: fields of [`super::Index`]; made by a checkpoint's load
//! (`checkpoint.rs`), read as a slice by the queries, written by `apply`.
//!
//! Unlike the run table ([`super::chunked::Chunked`]) these arrays are read as plain
//! slices (ranges of a sorted list answer a page of a query), so a loaded one is not
//! cut into chunks: the whole array stays a view of the checkpoint's pages until the
//! first write to it copies it out, once. A load of a million runs then makes none
//! of their 32 MB, and a copy of a loaded index shares them; the first run started
//! after the load pays for copying the tables it changes (4 MB each at a million
//! runs).
//!
//! # Invariants
//! - A view lies inside its file's view, aligned for `T` (checked when it is made),
//!   and that file is never written once published.

use std::ops::Deref;
use std::sync::Arc;

use super::chunked::InPlace;
use crate::vfs::ReadView;

#[derive(Clone)]
pub(crate) enum Flat<T> {
    Own(Vec<T>),
    /// `len` items from byte `at` of `view`, as the file stores them.
    InPlace {
        view: Arc<ReadView>,
        at: usize,
        len: usize,
    },
}

impl<T: Clone + InPlace> Flat<T> {
    /// The `n` items stored from byte `at` of `view`, if they are inside it and the
    /// machine and their alignment let them be read where they are.
    pub(crate) fn in_place(view: &Arc<ReadView>, at: usize, n: usize) -> Option<Flat<T>> {
        let bytes = view.get(at..at.checked_add(n.checked_mul(size_of::<T>())?)?)?;
        T::slice_in(bytes)?;
        Some(Flat::InPlace {
            view: Arc::clone(view),
            at,
            len: n,
        })
    }

    /// The items, to change: copied out of the view first if they are in it.
    pub(crate) fn to_mut(&mut self) -> &mut Vec<T> {
        if let Flat::InPlace { .. } = self {
            *self = Flat::Own(self.to_vec());
        }
        match self {
            Flat::Own(items) => items,
            Flat::InPlace { .. } => unreachable!("copied out above"),
        }
    }

    /// Heap bytes of the items (none while they are in the view).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Flat::Own(items) => items.capacity() * size_of::<T>(),
            Flat::InPlace { .. } => 0,
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

impl<T: InPlace> Deref for Flat<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Flat::Own(items) => items,
            Flat::InPlace { view, at, len } => {
                let bytes = &view[*at..*at + len * size_of::<T>()];
                T::slice_in(bytes).expect("checked when the view was made")
            }
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

impl<T: InPlace + PartialEq> PartialEq for Flat<T> {
    fn eq(&self, other: &Flat<T>) -> bool {
        self[..] == other[..]
    }
}

impl<T: InPlace + std::fmt::Debug> std::fmt::Debug for Flat<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self[..].fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_in_place_reads_as_its_copy_and_is_copied_on_its_first_write() {
        let items: Vec<u32> = (0..100).map(|i| i * 3).collect();
        let mut bytes = vec![0xee; 8];
        bytes.extend(items.iter().flat_map(|v| v.to_le_bytes()));
        let view = Arc::new(ReadView::Owned(bytes));
        assert!(
            Flat::<u32>::in_place(&view, 8, 101).is_none(),
            "past the end"
        );
        assert!(Flat::<u32>::in_place(&view, usize::MAX, 2).is_none());
        let in_place = Flat::<u32>::in_place(&view, 8, 100);
        assert_eq!(in_place.is_some(), cfg!(target_endian = "little"));
        let Some(mut flat) = in_place else {
            return;
        };
        assert_eq!(&flat[..], &items[..]);
        assert_eq!(flat.partition_point(|&v| v < 31), 11);
        assert_eq!((flat.heap_bytes(), flat.in_place_bytes()), (0, 400));
        let copy = flat.clone();
        flat.to_mut().insert(11, 31);
        assert_eq!(flat.len(), 101);
        assert_eq!(flat[11], 31);
        assert_eq!(flat.in_place_bytes(), 0);
        assert!(flat.heap_bytes() >= 404);
        assert_eq!(&copy[..], &items[..], "a copy keeps the view");
        assert_eq!(copy.in_place_bytes(), 400);
        assert_eq!(&view[8..12], &0u32.to_le_bytes(), "the view is not written");
    }
}
