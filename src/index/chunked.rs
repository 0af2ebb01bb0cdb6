//! A vector kept in shared chunks of a fixed size: a copy of it copies only the chunks'
//! pointers, and a chunk is copied the first time it is written while another copy
//! still holds it.
//!
//! Where it sits: the index's run table (`Index::runs`). A periodic checkpoint copies
//! the index under the log's lock; the run table was the largest part of that copy
//! (64 MB at a million runs).
//!
//! # Invariants
//! - Every chunk but the last holds exactly `CHUNK` items; the last holds 1 to `CHUNK`.
//! - `len` is the sum of the chunks' lengths.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// Items per chunk: 4096 (256 KiB of 64-byte run entries).
const CHUNK_SHIFT: u32 = 12;
const CHUNK: usize = 1 << CHUNK_SHIFT;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T: Clone> Chunked<T> {
    pub(crate) fn new() -> Chunked<T> {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.len % CHUNK == 0 {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        let last = self.chunks.last_mut().expect("a chunk with room");
        Arc::make_mut(last).push(item);
        self.len += 1;
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        (i < self.len).then(|| &self.chunks[i >> CHUNK_SHIFT][i % CHUNK])
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.parts().flatten()
    }

    /// The items, a chunk at a time.
    pub(crate) fn parts(&self) -> impl Iterator<Item = &[T]> {
        self.chunks.iter().map(|chunk| chunk.as_slice())
    }

    /// Heap bytes of the items (chunks shared with copies counted in full).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Arc<Vec<T>>>()
            + (self.chunks.iter())
                .map(|chunk| chunk.capacity() * std::mem::size_of::<T>())
                .sum::<usize>()
    }
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
            let chunk: Vec<T> = items.by_ref().take(CHUNK).collect();
            let full = chunk.len() == CHUNK;
            if !chunk.is_empty() {
                chunked.len += chunk.len();
                chunked.chunks.push(Arc::new(chunk));
            }
            if !full {
                return chunked;
            }
        }
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        assert!(i < self.len, "index {i} past {} items", self.len);
        &self.chunks[i >> CHUNK_SHIFT][i % CHUNK]
    }
}

impl<T: Clone> IndexMut<usize> for Chunked<T> {
    /// The item, in a chunk of this copy's own (copied first if another copy holds it).
    fn index_mut(&mut self, i: usize) -> &mut T {
        assert!(i < self.len, "index {i} past {} items", self.len);
        &mut Arc::make_mut(&mut self.chunks[i >> CHUNK_SHIFT])[i % CHUNK]
    }
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
            ops in prop::collection::vec((0u8..3, any::<u32>(), any::<u16>()), 1..600)
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
