//! A borrowed msgpack reader: the primitives under the record walkers of `codec::view`,
//! which the index's key reads (`index::keys`) and the query path's full reads
//! (`codec::decode`) share.
//!
//! Where it sits: under the record codec, beside serde. A record payload is a msgpack
//! map with field names; [`MsgpackMap`] walks one map a key and a value at a time and
//! reads each value as the type the caller expects, or keeps it for later: a string's
//! bytes ([`Str`], checked as UTF-8 when read) or a whole value's bytes ([`Raw`]). Every read returns `None` for
//! anything it does not expect (another type, a length past the end, a reserved
//! marker), and a caller gives a payload it cannot read to serde, which is the
//! reference.
//!
//! # Invariants
//! - No read goes past the bytes at hand; a length read from the payload is checked
//!   against the bytes left before anything is sliced or allocated.
//! - [`MsgpackMap::skip`] never recurses: it counts the values still to step over.
//!   [`MsgpackMap::object`] recurses, at most [`VALUE_DEPTH_MAX`] levels deep.
//! - Nothing here allocates except the readers of owned values (`string`, `object`,
//!   and [`Raw`]'s readers), which build what they return, within the payload's size.

use serde_json::{Map, Number, Value};

use crate::limits::VALUE_DEPTH_MAX;
use crate::model::{OutcomeKind, Status, Timestamp};

/// Reads the entries of one msgpack map, in order.
///
/// The readers a record walker calls for every field (`str_raw`, `raw`, `u64`,
/// `timestamp` and what they call) are `#[inline(always)]`: left to the compiler they
/// stayed calls, which cost a log replay without a checkpoint about 5%.
#[derive(Clone, Debug)]
pub(crate) struct MsgpackMap<'a> {
    bytes: &'a [u8],
    n_left: usize,
}

impl<'a> MsgpackMap<'a> {
    /// The map at the start of `bytes`, if there is one.
    pub(crate) fn new(bytes: &'a [u8]) -> Option<MsgpackMap<'a>> {
        let mut map = MsgpackMap { bytes, n_left: 0 };
        map.n_left = map.map_len()?;
        Some(map)
    }

    /// Whether every entry was read and no byte follows the map.
    pub(crate) fn is_done(&self) -> bool {
        self.n_left == 0 && self.bytes.is_empty()
    }

    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    /// A big-endian unsigned number of `n` bytes (1, 2, 4 or 8).
    #[inline]
    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    /// A count of items that follow, refused when it exceeds the bytes left (every
    /// item takes at least one byte), so a damaged count cannot make a caller
    /// allocate or loop beyond the payload.
    #[inline]
    fn count(&self, n: u64, bytes_per_item: usize) -> Option<usize> {
        let n = usize::try_from(n).ok()?;
        (n.checked_mul(bytes_per_item)? <= self.bytes.len()).then_some(n)
    }

    /// The header of a map value: its number of entries.
    #[inline]
    fn map_len(&mut self) -> Option<usize> {
        let tag = self.byte()?;
        let n = match tag {
            0x80..=0x8f => u64::from(tag & 0x0f),
            0xde => self.be(2)?,
            0xdf => self.be(4)?,
            _ => return None,
        };
        self.count(n, 2)
    }

    /// The header of an array value: its number of items.
    #[inline]
    pub(crate) fn array_len(&mut self) -> Option<usize> {
        let tag = self.byte()?;
        let n = match tag {
            0x90..=0x9f => u64::from(tag & 0x0f),
            0xdc => self.be(2)?,
            0xdd => self.be(4)?,
            _ => return None,
        };
        self.count(n, 1)
    }

    /// The next key: `Some(None)` after the last one, `None` when the bytes are not
    /// a key.
    #[inline]
    pub(crate) fn next_key(&mut self) -> Option<Option<&'a [u8]>> {
        if self.n_left == 0 {
            return Some(None);
        }
        self.n_left -= 1;
        self.str_bytes().map(Some)
    }

    /// Moves past the next key if it is `name`; `None` (the map left where it was read
    /// to) if it is another or there is none.
    #[inline(always)]
    pub(crate) fn key_is(&mut self, name: &[u8]) -> Option<()> {
        (self.next_key()?? == name).then_some(())
    }

    /// Reads the map value at the current position with `read`, which must read all
    /// of its entries, and moves past it.
    #[inline]
    pub(crate) fn with_map<T>(
        &mut self,
        read: impl FnOnce(&mut MsgpackMap<'a>) -> Option<T>,
    ) -> Option<T> {
        let mut inner = MsgpackMap::new(self.bytes)?;
        let value = read(&mut inner)?;
        if inner.n_left != 0 {
            return None;
        }
        self.bytes = inner.bytes;
        Some(value)
    }

    #[inline(always)]
    fn str_bytes(&mut self) -> Option<&'a [u8]> {
        let tag = self.byte()?;
        let len = match tag {
            0xa0..=0xbf => usize::from(tag & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return None,
        };
        self.take(len)
    }

    #[inline]
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        self.str_raw()?.to_str()
    }

    /// A string whose bytes are checked as UTF-8 only when it is read
    /// ([`Str::to_str`]), so a walker steps over the strings its caller never reads
    /// as cheaply as a skip.
    #[inline(always)]
    pub(crate) fn str_raw(&mut self) -> Option<Str<'a>> {
        self.str_bytes().map(Str)
    }

    #[inline]
    pub(crate) fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    /// An integer as `i128`, so every msgpack integer fits and range checks are exact.
    #[inline(always)]
    pub(crate) fn int(&mut self) -> Option<i128> {
        let tag = self.byte()?;
        self.int_after(tag)
    }

    #[inline(always)]
    fn int_after(&mut self, tag: u8) -> Option<i128> {
        Some(match tag {
            0x00..=0x7f => i128::from(tag),
            0xe0..=0xff => i128::from(tag as i8),
            0xcc => i128::from(self.be(1)?),
            0xcd => i128::from(self.be(2)?),
            0xce => i128::from(self.be(4)?),
            0xcf => i128::from(self.be(8)?),
            0xd0 => i128::from(self.be(1)? as u8 as i8),
            0xd1 => i128::from(self.be(2)? as u16 as i16),
            0xd2 => i128::from(self.be(4)? as u32 as i32),
            0xd3 => i128::from(self.be(8)? as i64),
            _ => return None,
        })
    }

    #[inline(always)]
    pub(crate) fn u64(&mut self) -> Option<u64> {
        u64::try_from(self.int()?).ok()
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.int()?).ok()
    }

    #[inline(always)]
    pub(crate) fn timestamp(&mut self) -> Option<Timestamp> {
        i64::try_from(self.int()?)
            .ok()
            .map(Timestamp::from_unix_nanos)
    }

    /// A run status by its snake_case name.
    #[inline]
    pub(crate) fn status(&mut self) -> Option<Status> {
        let name = self.str_bytes()?;
        Status::ALL
            .into_iter()
            .find(|status| status.as_str().as_bytes() == name)
    }

    /// An outcome kind by its snake_case name.
    #[inline]
    pub(crate) fn outcome_kind(&mut self) -> Option<OutcomeKind> {
        let name = self.str_bytes()?;
        OutcomeKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().as_bytes() == name)
    }

    #[inline]
    pub(crate) fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0xc2 => Some(false),
            0xc3 => Some(true),
            _ => None,
        }
    }

    /// A float, or an integer read as one (as serde reads an `f64`).
    #[inline]
    pub(crate) fn f64(&mut self) -> Option<f64> {
        let tag = self.byte()?;
        match tag {
            0xca => Some(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Some(f64::from_bits(self.be(8)?)),
            _ => self.int_after(tag).map(|n| n as f64),
        }
    }

    /// A nil as `None`, anything else read with `read` (as serde reads an `Option`).
    #[inline]
    pub(crate) fn nullable<T>(
        &mut self,
        read: impl FnOnce(&mut MsgpackMap<'a>) -> Option<T>,
    ) -> Option<Option<T>> {
        if self.bytes.first() == Some(&0xc0) {
            self.byte()?;
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    /// Steps over one value and keeps its bytes, to be read later or never.
    #[inline(always)]
    pub(crate) fn raw(&mut self) -> Option<Raw<'a>> {
        let start = self.bytes;
        self.skip()?;
        Some(Raw(&start[..start.len() - self.bytes.len()]))
    }

    /// An array of strings.
    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.array_len()?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.string()?);
        }
        Some(items)
    }

    /// A map of strings to JSON-like values (run inputs, event payloads), read as
    /// serde reads a `serde_json::Map` from msgpack. `None` for what serde would
    /// refuse or read differently (binary, extension types, keys that are not
    /// strings) and for nesting deeper than [`VALUE_DEPTH_MAX`].
    pub(crate) fn object(&mut self) -> Option<Map<String, Value>> {
        self.object_at(VALUE_DEPTH_MAX)
    }

    /// One JSON-like value, at most `depth_left` arrays and maps deep.
    fn value_at(&mut self, depth_left: usize) -> Option<Value> {
        let tag = *self.bytes.first()?;
        Some(match tag {
            0xc0 => {
                self.byte()?;
                Value::Null
            }
            0xc2 | 0xc3 => Value::Bool(self.bool()?),
            0xca | 0xcb => Number::from_f64(self.f64()?).map_or(Value::Null, Value::Number),
            0xa0..=0xbf | 0xd9..=0xdb => Value::String(self.string()?),
            0x90..=0x9f | 0xdc | 0xdd => {
                let depth_left = depth_left.checked_sub(1)?;
                let n = self.array_len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value_at(depth_left)?);
                }
                Value::Array(items)
            }
            0x80..=0x8f | 0xde | 0xdf => Value::Object(self.object_at(depth_left)?),
            _ => {
                let n = self.int()?;
                match (u64::try_from(n), i64::try_from(n)) {
                    (Ok(n), _) => Value::from(n),
                    (_, Ok(n)) => Value::from(n),
                    _ => return None,
                }
            }
        })
    }

    fn object_at(&mut self, depth_left: usize) -> Option<Map<String, Value>> {
        let depth_left = depth_left.checked_sub(1)?;
        let n = self.map_len()?;
        let mut map = Map::new();
        for _ in 0..n {
            let key = self.string()?;
            let value = self.value_at(depth_left)?;
            map.insert(key, value);
        }
        Some(map)
    }

    /// Steps over one value of any type and depth, without recursion.
    pub(crate) fn skip(&mut self) -> Option<()> {
        let mut n_values = 1usize;
        while n_values > 0 {
            n_values -= 1;
            let tag = self.byte()?;
            let (n_bytes, n_items) = match tag {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * usize::from(tag & 0x0f)),
                0x90..=0x9f => (0, usize::from(tag & 0x0f)),
                0xa0..=0xbf => (usize::from(tag & 0x1f), 0),
                0xc4 | 0xd9 => (self.be(1)? as usize, 0),
                0xc5 | 0xda => (self.be(2)? as usize, 0),
                0xc6 | 0xdb => (self.be(4)? as usize, 0),
                0xc7 => (self.be(1)? as usize + 1, 0),
                0xc8 => (self.be(2)? as usize + 1, 0),
                0xc9 => (self.be(4)? as usize + 1, 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, self.be(2)? as usize),
                0xdd => (0, self.be(4)? as usize),
                0xde => (0, 2 * self.be(2)? as usize),
                0xdf => (0, 2 * self.be(4)? as usize),
                0xc1 => return None,
            };
            self.take(n_bytes)?;
            // Every item takes at least one byte: a count beyond the bytes left is
            // damage, refused before it can make the loop long.
            n_values = n_values.checked_add(n_items)?;
            if n_values > self.bytes.len() {
                return None;
            }
        }
        Some(())
    }
}

/// The bytes of a string value, not yet checked as UTF-8.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Str<'a>(&'a [u8]);

impl<'a> Str<'a> {
    /// The string; `None` when its bytes are not UTF-8.
    #[inline]
    pub(crate) fn to_str(self) -> Option<&'a str> {
        // Most names and ids are ASCII: the inlined word-at-a-time check answers them
        // without the general validator's call.
        if self.0.is_ascii() {
            // SAFETY: every ASCII byte sequence is valid UTF-8.
            return Some(unsafe { std::str::from_utf8_unchecked(self.0) });
        }
        std::str::from_utf8(self.0).ok()
    }
}

/// The bytes of one whole value, as [`MsgpackMap::raw`] stepped over them.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Raw<'a>(&'a [u8]);

impl<'a> Raw<'a> {
    /// The value's bytes, as they are in the payload.
    #[cfg(test)]
    pub(crate) fn bytes(self) -> &'a [u8] {
        self.0
    }

    /// Reads the value with `read`, which must read all of it.
    fn read<T>(self, read: impl FnOnce(&mut MsgpackMap<'a>) -> Option<T>) -> Option<T> {
        let mut value = MsgpackMap {
            bytes: self.0,
            n_left: 0,
        };
        let read = read(&mut value)?;
        // `skip` and the readers agree on where a value ends; a read that stops
        // elsewhere is a bug in one of them.
        debug_assert!(value.bytes.is_empty(), "a read ended inside a raw value");
        Some(read)
    }

    /// The value as a map of strings to JSON-like values ([`MsgpackMap::object`]).
    pub(crate) fn object(self) -> Option<Map<String, Value>> {
        self.read(MsgpackMap::object)
    }

    /// The value as an array of strings.
    pub(crate) fn strings(self) -> Option<Vec<String>> {
        self.read(MsgpackMap::strings)
    }
}

/// Stores the value of a field read for the first time; `None` when the field was
/// read before (serde refuses a repeated field) or its value did not read.
#[inline]
pub(crate) fn first_time<T>(field: &mut Option<T>, value: Option<T>) -> Option<()> {
    if field.is_some() {
        return None;
    }
    *field = Some(value?);
    Some(())
}
