//! A vector kept in shared chunks of a fixed size: a copy of it copies only the chunks'
//! pointers, and a chunk is copied the first time it is written while another copy
//! still holds it. A chunk may also be read in place from a file's map, and is then
//! copied the first time it is written.
//!
//! Where it sits: the index's run table (`Index::runs`). A periodic checkpoint copies
//! the index under the log's lock; the run table was the largest part of that copy
//! (64 MB at a million runs). A loaded checkpoint's run table stays in the checkpoint
//! file's map, where decoding it took a sixth of the load and as much fresh memory.
//!
//! # Invariants
//! - Every shared chunk holds exactly `CHUNK` items; the items after them, fewer than
//!   `CHUNK`, are in `tail`, which each copy has of its own.
//! - Item `i` is `full[i / CHUNK][i % CHUNK]` below `full.len() * CHUNK`, and
//!   `tail[i - full.len() * CHUNK]` from there.
//! - A chunk in place was checked to cast to `CHUNK` items when it was made, and the
//!   view it is in never changes (a published checkpoint file is never written again),
//!   so the cast succeeds at every read.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

use zerocopy::FromBytes;

use crate::vfs::ReadView;

/// Items that can be read in place, from bytes as a file stores them.
pub(crate) trait InPlace: Sized {
    /// `bytes` as the items they hold, if they can be read as such where they are:
    /// `None` by default, and wherever the size, the alignment or the machine's byte
    /// order does not allow it.
    fn slice_in(bytes: &[u8]) -> Option<&[Self]> {
        let _ = bytes;
        None
    }

    /// `bytes` as `CHUNK` items, if they can be read as such where they are.
    #[inline]
    fn chunk_in(bytes: &[u8]) -> Option<&[Self; CHUNK]> {
        Self::slice_in(bytes)?.try_into().ok()
    }
}

/// `bytes` as the little-endian `T`s they hold, on a little-endian machine.
pub(crate) fn slice_of_le<T>(bytes: &[u8]) -> Option<&[T]>
where
    T: zerocopy::FromBytes + zerocopy::Immutable + zerocopy::KnownLayout,
{
    if cfg!(target_endian = "big") {
        return None;
    }
    <[T]>::ref_from_bytes(bytes).ok()
}

/// Bytes read in place are the bytes.
impl InPlace for u8 {
    fn slice_in(bytes: &[u8]) -> Option<&[u8]> {
        Some(bytes)
    }
}

impl InPlace for u32 {
    fn slice_in(bytes: &[u8]) -> Option<&[u32]> {
        slice_of_le(bytes)
    }
}

impl InPlace for u64 {
    fn slice_in(bytes: &[u8]) -> Option<&[u64]> {
        slice_of_le(bytes)
    }
}

/// An event list's pairs are never read in place (a checkpoint stores them otherwise).
impl InPlace for (u64, u64) {}

/// A full chunk: of its own (maybe shared with copies), or in place in a view.
#[derive(Clone)]
enum Chunk<T> {
    Own(Arc<[T; CHUNK]>),
    /// `CHUNK` items in `view` from byte `at`.
    InPlace {
        view: Arc<ReadView>,
        at: usize,
    },
}

impl<T: InPlace> Chunk<T> {
    #[inline]
    fn items(&self) -> &[T; CHUNK] {
        match self {
            Chunk::Own(items) => items,
            Chunk::InPlace { view, at } => {
                let bytes = &view[*at..*at + CHUNK * std::mem::size_of::<T>()];
                T::chunk_in(bytes).expect("checked when the chunk was made")
            }
        }
    }
}

impl<T> std::fmt::Debug for Chunk<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chunk::Own(_) => f.write_str("Own"),
            Chunk::InPlace { at, .. } => write!(f, "InPlace(at {at})"),
        }
    }
}

/// Items per chunk: 4096 (256 KiB of 64-byte run entries).
const CHUNK_SHIFT: u32 = 12;
pub(crate) const CHUNK: usize = 1 << CHUNK_SHIFT;

#[derive(Clone, Debug)]
pub(crate) struct Chunked<T> {
    /// Shared chunks of `CHUNK` items: fixed-size arrays behind thin pointers, so
    /// reaching an item is one load and a branch more than in a vector and one bounds
    /// check.
    full: Vec<Chunk<T>>,
    tail: Vec<T>,
}

impl<T: Clone + InPlace> Chunked<T> {
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

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn push(&mut self, item: T) {
        self.tail.push(item);
        if self.tail.len() == CHUNK {
            let chunk = std::mem::replace(&mut self.tail, Vec::with_capacity(CHUNK));
            self.full.push(Chunk::Own(full_chunk(Arc::from(chunk))));
        }
    }

    /// `n` items read in place from `view`, the first at byte `at`, but for the last
    /// `n % CHUNK`, which are copied into the tail; `None` unless every chunk can be
    /// read in place ([`InPlace::chunk_in`]).
    pub(crate) fn in_place(view: &Arc<ReadView>, at: usize, n: usize) -> Option<Chunked<T>> {
        let chunk_bytes = CHUNK * std::mem::size_of::<T>();
        let n_full = n / CHUNK;
        let mut full = Vec::with_capacity(n_full);
        for k in 0..n_full {
            let start = at + k * chunk_bytes;
            T::chunk_in(view.get(start..start + chunk_bytes)?)?;
            full.push(Chunk::InPlace {
                view: Arc::clone(view),
                at: start,
            });
        }
        let start = at + n_full * chunk_bytes;
        let rest = view.get(start..start + (n % CHUNK) * std::mem::size_of::<T>())?;
        let tail = T::slice_in(rest)?.to_vec();
        Some(Chunked { full, tail })
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
                self.full.push(Chunk::Own(full_chunk(Arc::from(chunk))));
            }
        } else {
            let mut items: Vec<T> = self.iter().cloned().collect();
            items.insert(at, item);
            *self = items.into_iter().collect();
        }
    }

    /// The last item.
    pub(crate) fn last(&self) -> Option<&T> {
        match self.tail.last() {
            Some(item) => Some(item),
            None => self.full.last().and_then(|chunk| chunk.items().last()),
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        let full_len = self.full_len();
        if i < full_len {
            Some(&self.full[i >> CHUNK_SHIFT].items()[i % CHUNK])
        } else {
            self.tail.get(i - full_len)
        }
    }

    /// The items of the chunk (or the tail) that holds item `i`, and the index of the
    /// first of them.
    #[inline]
    pub(crate) fn part_at(&self, i: usize) -> (&[T], usize) {
        let full_len = self.full_len();
        if i < full_len {
            (&self.full[i >> CHUNK_SHIFT].items()[..], i & !(CHUNK - 1))
        } else {
            (&self.tail[..], full_len)
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.parts().flatten()
    }

    /// The items, a chunk at a time.
    pub(crate) fn parts(&self) -> impl Iterator<Item = &[T]> {
        (self.full.iter().map(|chunk| &chunk.items()[..])).chain(std::iter::once(&self.tail[..]))
    }

    /// Heap bytes of the items (chunks shared with copies counted in full; chunks in
    /// place in a file's map not at all).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.full.capacity() * std::mem::size_of::<Chunk<T>>()
            + (self.full_len() + self.tail.capacity()) * std::mem::size_of::<T>()
            - self.in_place_bytes()
    }

    /// Bytes of the items read in place from a file's map.
    pub(crate) fn in_place_bytes(&self) -> usize {
        let n_in_place = (self.full.iter())
            .filter(|chunk| matches!(chunk, Chunk::InPlace { .. }))
            .count();
        n_in_place * CHUNK * std::mem::size_of::<T>()
    }
}

/// A chunk of exactly `CHUNK` items as the fixed-size array it is.
fn full_chunk<T>(chunk: Arc<[T]>) -> Arc<[T; CHUNK]> {
    chunk
        .try_into()
        .unwrap_or_else(|_| unreachable!("a full chunk holds CHUNK items"))
}

impl<T: Clone + InPlace + PartialEq> PartialEq for Chunked<T> {
    /// Equal items, wherever they are kept.
    fn eq(&self, other: &Chunked<T>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: Clone + InPlace + Eq> Eq for Chunked<T> {}

impl<T: Clone + InPlace> Default for Chunked<T> {
    fn default() -> Chunked<T> {
        Chunked::new()
    }
}

impl<T: Clone + InPlace> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Chunked<T> {
        let mut items = items.into_iter();
        let mut chunked = Chunked::new();
        loop {
            let chunk: Arc<[T]> = items.by_ref().take(CHUNK).collect();
            if chunk.len() < CHUNK {
                chunked.tail = chunk.to_vec();
                return chunked;
            }
            chunked.full.push(Chunk::Own(full_chunk(chunk)));
        }
    }
}

impl<T: Clone + InPlace> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        let full_len = self.full_len();
        if i < full_len {
            &self.full[i >> CHUNK_SHIFT].items()[i % CHUNK]
        } else {
            &self.tail[i - full_len]
        }
    }
}

impl<T: Clone + InPlace> IndexMut<usize> for Chunked<T> {
    /// The item, in a chunk of this copy's own (copied first if another copy holds it,
    /// or if it is in place in a file's map).
    fn index_mut(&mut self, i: usize) -> &mut T {
        let full_len = self.full_len();
        if i < full_len {
            let chunk = &mut self.full[i >> CHUNK_SHIFT];
            // A plain load; `get_mut` below makes the one atomic uniqueness check. The
            // count cannot rise meanwhile: new holders clone through `&self`.
            if !matches!(chunk, Chunk::Own(own) if Arc::strong_count(own) == 1) {
                unshare(chunk);
            }
            let Chunk::Own(own) = chunk else {
                unreachable!("a chunk of its own")
            };
            &mut Arc::get_mut(own).expect("a chunk of its own")[i % CHUNK]
        } else {
            &mut self.tail[i - full_len]
        }
    }
}

/// Gives `chunk` a copy of its own, built straight on the heap. Not
/// `Arc::make_mut`: its copy is built on the stack, and where it was inlined every
/// write paid for probing a stack frame of a whole chunk (256 KiB of run entries),
/// shared or not: that tripled the time to rebuild an index of a million runs.
#[cold]
#[inline(never)]
fn unshare<T: Clone + InPlace>(chunk: &mut Chunk<T>) {
    *chunk = Chunk::Own(full_chunk(chunk.items().iter().cloned().collect()));
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
            n_in_place in prop_oneof![Just(0usize), 0..2 * CHUNK + 50],
            ops in prop::collection::vec((0u8..4, any::<u32>(), any::<u16>()), 1..600)
        ) {
            // Items from a view first, as a loaded checkpoint's runs are, 4 bytes in.
            let mut model: Vec<u32> = (0..n_in_place as u32).map(|i| i * 3).collect();
            let mut bytes = vec![0xff; 4];
            bytes.extend(model.iter().flat_map(|v| v.to_le_bytes()));
            bytes.extend([0xff; 4]);
            let view = Arc::new(ReadView::Owned(bytes));
            let mut chunked = Chunked::in_place(&view, 4, model.len()).expect("aligned");
            prop_assert_eq!(chunked.in_place_bytes(), n_in_place / CHUNK * CHUNK * 4);
            let mut copies = vec![(chunked.clone(), model.clone())];
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
                prop_assert_eq!(chunked.last(), model.last());
            }
            // The view is only ever read.
            let in_view = view[4..4 + 4 * n_in_place].chunks_exact(4);
            prop_assert!(in_view.enumerate().all(|(i, b)| b == (i as u32 * 3).to_le_bytes()));
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
