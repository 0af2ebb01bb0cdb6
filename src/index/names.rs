//! Interned names: every distinct string stored once in one byte arena, numbered
//! densely in first-seen order, and found through an open-addressing hash table of
//! those numbers, each tagged with the high half of its name's hash.
//!
//! Where it sits: inside the index. Run ids, parent ids, skills, callers, channels and
//! tools are interned here, so the index holds a `u32` wherever a row holds a string,
//! and a name costs its bytes, a 4-byte end offset and about two 8-byte table slots,
//! with no per-name heap allocation. A probe compares a name's bytes only when the tag
//! in the slot matches: each name read for nothing is a cache miss or two at random in
//! the arena, and looking up a new name in a table three quarters full passes about
//! seven names before it finds a free slot.
//!
//! The ends and the slots are kept in chunks (`chunked.rs`), and the bytes in an
//! `Arena` of two parts: a copy of the index shares them rather than copying them, and
//! a table loaded from a checkpoint is read where the file's view has it, a chunk of
//! slots or ends copied the first time it is written and new names' bytes appended to
//! the arena's own part. A probe walks the slots a chunk at a time.
//!
//! # Invariants
//! - Names are only ever added: a number, once given, names the same bytes for the
//!   life of the index (a purged run's id stays interned).
//! - `slots` is empty or a power of two long, holds every name number exactly once,
//!   and keeps at least a quarter of its slots empty, so every probe sequence ends.
//! - A slot holds a name's number in its low 32 bits and the high 32 bits of that
//!   name's hash above it; a free slot is all ones, which no slot in use can be, as no
//!   name has the number `u32::MAX`.
//! - The hash is keyed by a per-index random `seed`, so the slots a name lands in
//!   cannot be predicted from outside the process (nor from a different store).
//! - Deliberately absent: removal. Names of purged runs stay until compaction.

use super::chunked::Chunked;
use super::flat::Flat;

/// A number no name has.
const NO_NAME: u32 = u32::MAX;
/// A slot holding no name.
const EMPTY_SLOT: u64 = u64::MAX;

/// The high 32 bits of a hash or of a slot: the tag a slot keeps of its name's hash.
fn tag(bits: u64) -> u64 {
    bits >> 32
}

/// The slot of name `number`, whose hash is `hash`.
fn slot(hash: u64, number: u32) -> u64 {
    tag(hash) << 32 | u64::from(number)
}

/// Interned strings with dense `u32` numbers.
#[derive(Clone, Debug)]
pub struct Names {
    pub(crate) seed: u64,
    /// Every name's bytes, back to back.
    pub(crate) bytes: Arena,
    /// `ends[i]` is the offset just past name `i` in `bytes`.
    pub(crate) ends: Chunked<u32>,
    /// Linear-probing table of name numbers, each tagged with its hash's high half
    /// (see [`slot`]); `EMPTY_SLOT` where free.
    pub(crate) slots: Chunked<u64>,
}

/// The names' bytes: those a loaded checkpoint holds, read where its view has them,
/// then the bytes of the names added since, of its own. No name spans the two: the
/// loaded names end where the loaded bytes do.
pub(crate) type Arena = Flat<u8>;

impl Default for Names {
    fn default() -> Names {
        Names::with_seed(random_seed())
    }
}

fn random_seed() -> u64 {
    // A fixed seed only weakens the hash against chosen ids; it is never wrong.
    getrandom::u64().unwrap_or(0x9E37_79B9_7F4A_7C15)
}

fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

const K0: u64 = 0xA076_1D64_78BD_642F;
const K1: u64 = 0xE703_7ED1_A0B4_28DB;

fn hash(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ fold(bytes.len() as u64 ^ K0, K1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        h = fold(h ^ word, K0);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = fold(h ^ u64::from_le_bytes(word), K0);
    }
    fold(h, K1)
}

/// Builds [`NameHasher`]s: the names' hash for the hash maps on the committer's path
/// (the index's orphan events by id number, the committer's per-run order state by run
/// id), where SipHash cost more than the rest of a lookup. Seeded at random like the
/// name table, for the same reason.
#[derive(Clone, Debug)]
pub(crate) struct NameHashState {
    seed: u64,
}

impl Default for NameHashState {
    fn default() -> NameHashState {
        NameHashState {
            seed: random_seed(),
        }
    }
}

impl std::hash::BuildHasher for NameHashState {
    type Hasher = NameHasher;
    fn build_hasher(&self) -> NameHasher {
        NameHasher(self.seed)
    }
}

/// The names' hash as a [`std::hash::Hasher`]: a byte string goes through [`hash`],
/// a number is folded in directly.
#[derive(Clone, Debug)]
pub(crate) struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash(self.0, bytes);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = fold(self.0 ^ v, K0);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Names {
    /// No names, hashing with `seed`.
    pub fn with_seed(seed: u64) -> Names {
        Names {
            seed,
            bytes: Arena::default(),
            ends: Chunked::new(),
            slots: Chunked::new(),
        }
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no name was interned.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of name `i`.
    pub fn name(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.bytes.run(start..self.ends[i] as usize)
    }

    /// The slot holding `name`, whose hash is `hash`, or the free slot where it would go.
    /// `candidate` is called with the number of each name whose hash tag matches,
    /// before its bytes are compared.
    fn slot_of(&self, hash: u64, name: &[u8], candidate: impl Fn(u32)) -> Result<usize, usize> {
        debug_assert!(self.slots.len().is_power_of_two());
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        // A chunk of the table at a time: a probe rarely leaves the one it starts in.
        loop {
            let (part, first) = self.slots.part_at(at);
            for (at, &s) in (at..).zip(&part[at - first..]) {
                if s == EMPTY_SLOT {
                    return Err(at);
                }
                if tag(s) == tag(hash) {
                    candidate(s as u32);
                    if self.name(s as u32) == name {
                        return Ok(at);
                    }
                }
            }
            at = (first + part.len()) & mask;
        }
    }

    /// The number of `name`, if it was interned.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.find_then(name, |_| ())
    }

    /// [`Names::find`], calling `candidate` with the number of each name that may be
    /// `name` before its bytes are compared: a caller about to look the number up
    /// elsewhere can start loading that memory while the bytes load (almost always
    /// the first candidate is the name).
    #[inline]
    pub fn find_then(&self, name: &str, candidate: impl Fn(u32)) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let name = name.as_bytes();
        let at = self.slot_of(hash(self.seed, name), name, candidate).ok()?;
        Some(self.slots[at] as u32)
    }

    /// The number of `name`, interning it if it is new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if (self.len() + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let name = name.as_bytes();
        let hash = hash(self.seed, name);
        match self.slot_of(hash, name, |_| ()) {
            Ok(at) => self.slots[at] as u32,
            Err(at) => {
                let i = u32::try_from(self.len())
                    .ok()
                    .filter(|&i| i != NO_NAME)
                    .expect("fewer than 2^32 - 1 names");
                self.bytes.extend_from_slice(name);
                let end = u32::try_from(self.bytes.len()).expect("names fit in 4 GiB");
                self.ends.push(end);
                self.slots[at] = slot(hash, i);
                i
            }
        }
    }

    fn grow(&mut self) {
        let n_slots = (self.slots.len() * 2).max(16);
        // Filled as a plain vector, then cut into chunks.
        let mut slots = vec![EMPTY_SLOT; n_slots];
        let mask = n_slots - 1;
        for i in 0..self.len() as u32 {
            let hash = hash(self.seed, self.name(i));
            let mut at = hash as usize & mask;
            while slots[at] != EMPTY_SLOT {
                at = (at + 1) & mask;
            }
            slots[at] = slot(hash, i);
        }
        self.slots = slots.into_iter().collect();
    }

    /// Checks what a decoded checkpoint must hold for lookups to stay in bounds and
    /// terminate (see the module invariants).
    pub fn check_consistent(&self) -> Result<(), String> {
        let mut check = NamesCheck::default();
        for part in self.bytes.parts().slices() {
            check.bytes(part);
        }
        self.ends.iter().for_each(|&end| check.end(end));
        check.start_slots();
        self.slots.iter().for_each(|&s| check.slot(s));
        check.finish(self)
    }
}

/// [`Names::check_consistent`] taken a part at a time, as a checkpoint's load decodes
/// a name table: the bytes, then the ends, then the slots, each fed while it is still
/// in cache, so the check needs no pass of its own over the table.
#[derive(Debug)]
pub(crate) struct NamesCheck {
    ascii: bool,
    ends_rise: bool,
    last_end: u32,
    n_names: usize,
    /// Which name numbers a slot has held so far.
    seen: Vec<bool>,
    /// Whether a slot held a number out of range, or one already seen.
    slot_bad: bool,
}

impl Default for NamesCheck {
    fn default() -> NamesCheck {
        NamesCheck {
            ascii: true,
            ends_rise: true,
            last_end: 0,
            n_names: 0,
            seen: Vec::new(),
            slot_bad: false,
        }
    }
}

impl NamesCheck {
    /// Some of the arena's bytes, in order.
    #[inline]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.ascii &= bytes.is_ascii();
    }

    /// The next name's end.
    #[inline]
    pub(crate) fn end(&mut self, end: u32) {
        self.ends_rise &= end >= self.last_end;
        self.last_end = end;
        self.n_names += 1;
    }

    /// Called once every end is fed, before the first slot.
    pub(crate) fn start_slots(&mut self) {
        self.seen = vec![false; self.n_names];
    }

    /// The next slot of the table.
    #[inline]
    pub(crate) fn slot(&mut self, s: u64) {
        if s == EMPTY_SLOT {
            return;
        }
        // A slot in use with the number `NO_NAME` is out of range here too.
        match self.seen.get_mut(s as u32 as usize) {
            Some(seen) => {
                self.slot_bad |= *seen;
                *seen = true;
            }
            None => self.slot_bad = true,
        }
    }

    /// The verdict on `names`, the table fed.
    pub(crate) fn finish(self, names: &Names) -> Result<(), String> {
        let n = names.len();
        debug_assert_eq!(n, self.n_names, "every end was fed");
        let arena_ends = self.last_end as usize == names.bytes.len();
        if !self.ends_rise || !arena_ends {
            return Err("name offsets out of order or past the arena".into());
        }
        if !(names.slots.is_empty() && n == 0)
            && (!names.slots.len().is_power_of_two() || n * 4 > names.slots.len() * 3)
        {
            return Err("a name table of a bad size".into());
        }
        if self.slot_bad {
            return Err("a name table slot out of range or repeated".into());
        }
        if self.seen.iter().any(|s| !s) {
            return Err("a name missing from the name table".into());
        }
        // All ASCII (the usual case, checked at memory speed) makes every name UTF-8.
        if !self.ascii && (0..n as u32).any(|i| std::str::from_utf8(names.name(i)).is_err()) {
            return Err("a name that is not UTF-8".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_in_first_seen_order_and_found_again() {
        let mut names = Names::with_seed(7);
        let n = 10_000u32;
        for i in 0..n {
            assert_eq!(names.intern(&format!("name-{i}")), i);
        }
        assert_eq!(names.intern("name-17"), 17);
        for i in 0..n {
            assert_eq!(names.find(&format!("name-{i}")), Some(i));
            assert_eq!(names.name(i), format!("name-{i}").as_bytes());
        }
        assert_eq!(names.find("name-x"), None);
        assert_eq!(names.intern(""), n);
        assert_eq!(names.find(""), Some(n));
        names.check_consistent().unwrap();
    }

    #[test]
    fn names_that_are_not_utf8_are_found_even_when_their_arena_is() {
        let mut names = Names::with_seed(7);
        names.intern("x");
        names.intern("é");
        names.intern("名前");
        assert_eq!(names.check_consistent(), Ok(()));
        // "xé" cut inside the "é": the arena is still UTF-8, its first two names not.
        names.ends[0] = 2;
        assert_eq!(
            names.check_consistent(),
            Err("a name that is not UTF-8".to_owned())
        );
    }
}
