//! A vector kept in shared chunks of a fixed size: a copy of it copies only the chunks'
//! pointers, and a chunk is copied the first time it is written while another copy
//! still holds it.
//!
//! Where it sits: the index's run table (`Index::runs`). A periodic checkpoint copies
//! the index under the log's lock; the run table was the largest part of that copy
//! (64 MB at a million runs).
//!
//! # Invariants
//! - Every shared chunk holds exactly `CHUNK` items; the items after them, fewer than
//!   `CHUNK`, are in `tail`, which each copy has of its own.
//! - Item `i` is `full[i / CHUNK][i % CHUNK]` below `full.len() * CHUNK`, and
//!   `tail[i - full.len() * CHUNK]` from there.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// Items per chunk: 4096 (256 KiB of 64-byte run entries).
const CHUNK_SHIFT: u32 = 12;
pub(crate) const CHUNK: usize = 1 << CHUNK_SHIFT;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunked<T> {
    /// Shared chunks of `CHUNK` items: fixed-size arrays behind thin pointers, so
    /// reaching an item is one load more than in a vector and one bounds check.
    full: Vec<Arc<[T; CHUNK]>>,
    tail: Vec<T>,
}

impl<T: Clone> Chunked<T> {
    pub(crate) fn new() -> Chunked<T> {
        Chunked {
            full: Vec::new(),
            tail: Vec::new(),
        }
    }

    fn full_len(&self) -> usize {
        self.full.len() << CHUNK_SHIFT
    }

    pub(crate) fn len(&self) -> usize {
        self.full_len() + self.tail.len()
    }

    pub(crate) fn push(&mut self, item: T) {
        self.tail.push(item);
        if self.tail.len() == CHUNK {
            let chunk = std::mem::replace(&mut self.tail, Vec::with_capacity(CHUNK));
            self.full.push(full_chunk(Arc::from(chunk)));
        }
    }

    /// Inserts `item` at `at` (at most the length), shifting the items after it. In the
    /// partial last chunk, where a sorted list's late items go, that moves at most
    /// `CHUNK` items; before it, everything is rebuilt.
    pub(crate) fn insert(&mut self, at: usize, item: T) {
        let full_len = self.full_len();
        if at >= full_len {
            self.tail.insert(at - full_len, item);
            if self.tail.len() == CHUNK {
                let chunk = std::mem::replace(&mut self.tail, Vec::with_capacity(CHUNK));
                self.full.push(full_chunk(Arc::from(chunk)));
            }
        } else {
            let mut items: Vec<T> = self.iter().cloned().collect();
            items.insert(at, item);
            *self = items.into_iter().collect();
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        let full_len = self.full_len();
        if i < full_len {
            Some(&self.full[i >> CHUNK_SHIFT][i % CHUNK])
        } else {
            self.tail.get(i - full_len)
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.parts().flatten()
    }

    /// The items, a chunk at a time.
    pub(crate) fn parts(&self) -> impl Iterator<Item = &[T]> {
        (self.full.iter().map(|chunk| &chunk[..])).chain(std::iter::once(&self.tail[..]))
    }

    /// Heap bytes of the items (chunks shared with copies counted in full).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.full.capacity() * std::mem::size_of::<Arc<[T; CHUNK]>>()
            + (self.full_len() + self.tail.capacity()) * std::mem::size_of::<T>()
    }
}

/// A chunk of exactly `CHUNK` items as the fixed-size array it is.
fn full_chunk<T>(chunk: Arc<[T]>) -> Arc<[T; CHUNK]> {
    chunk
        .try_into()
        .unwrap_or_else(|_| unreachable!("a full chunk holds CHUNK items"))
}

impl<T: Clone> Default for Chunked<T> {
    fn default() -> Chunked<T> {
        Chunked::new()
    }
}

impl<T: Clone> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Chunked<T> {
        let mut items = items.into_iter();
        let mut chunked = Chunked::new();
        loop {
            let chunk: Arc<[T]> = items.by_ref().take(CHUNK).collect();
            if chunk.len() < CHUNK {
                chunked.tail = chunk.to_vec();
                return chunked;
            }
            chunked.full.push(full_chunk(chunk));
        }
    }
}

impl<T: Clone> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        let full_len = self.full_len();
        if i < full_len {
            &self.full[i >> CHUNK_SHIFT][i % CHUNK]
        } else {
            &self.tail[i - full_len]
        }
    }
}

impl<T: Clone> IndexMut<usize> for Chunked<T> {
    /// The item, in a chunk of this copy's own (copied first if another copy holds it).
    fn index_mut(&mut self, i: usize) -> &mut T {
        let full_len = self.full_len();
        if i < full_len {
            let chunk = &mut self.full[i >> CHUNK_SHIFT];
            // A plain load; `get_mut` below makes the one atomic uniqueness check. The
            // count cannot rise meanwhile: new holders clone through `&self`.
            if Arc::strong_count(chunk) > 1 {
                unshare(chunk);
            }
            &mut Arc::get_mut(chunk).expect("a chunk of its own")[i % CHUNK]
        } else {
            &mut self.tail[i - full_len]
        }
    }
}

/// Gives `chunk` a copy of its own, built straight on the heap. Not `Arc::make_mut`:
/// its copy is built on the stack, and where it was inlined every write paid for
/// probing a stack frame of a whole chunk (256 KiB of run entries), shared or not:
/// that tripled the time to rebuild an index of a million runs.
#[cold]
#[inline(never)]
fn unshare<T: Clone>(chunk: &mut Arc<[T; CHUNK]>) {
    *chunk = full_chunk(chunk.iter().cloned().collect());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Pushes and writes, with copies taken along the way, against plain vectors:
        /// every copy keeps what it held when taken.
        #[test]
        fn copies_keep_their_items(
            ops in prop::collection::vec((0u8..4, any::<u32>(), any::<u16>()), 1..600)
        ) {
            let mut chunked = Chunked::new();
            let mut model = Vec::new();
            let mut copies = Vec::new();
            for (op, value, at) in ops {
                match op {
                    0 => {
                        for k in 0..(value % 64) {
                            chunked.push(value.wrapping_add(k));
                            model.push(value.wrapping_add(k));
                        }
                    }
                    1 if !model.is_empty() => {
                        let at = at as usize % model.len();
                        chunked[at] = value;
                        model[at] = value;
                    }
                    // Mostly near the end, as late events come; sometimes anywhere.
                    2 => {
                        let back = if value % 8 == 0 { at as usize } else { at as usize % 50 };
                        let at = model.len().saturating_sub(back);
                        chunked.insert(at, value);
                        model.insert(at, value);
                    }
                    _ => copies.push((chunked.clone(), model.clone())),
                }
                prop_assert_eq!(chunked.len(), model.len());
            }
            copies.push((chunked, model));
            for (chunked, model) in copies {
                prop_assert_eq!(chunked.iter().copied().collect::<Vec<_>>(), model.clone());
                for (i, v) in model.iter().enumerate() {
                    prop_assert_eq!(chunked.get(i), Some(v));
                    prop_assert_eq!(&chunked[i], v);
                }
                prop_assert_eq!(chunked.get(model.len()), None);
            }
        }
    }
}
