//! Event shapes: an event type and its payload keys, registered once and named by a
//! number, so that recording an event of that shape copies only its run id, sequence,
//! time and values.
//!
//! Where it sits: [`super::Recorder::shape`] registers a shape in the recorder's
//! [`ShapeTable`] and returns an [`EventShape`]; [`super::Recorder::record_shaped`]
//! writes the shape's number into the slot (`slot.rs`) in place of the event type and
//! the keys; the committer looks the number up in its [`ShapeCache`] to write the
//! record (`transcode.rs`). This is what NanoLog and fmtlog do with a log statement's
//! static part: the strings that are the same in every call are not copied per call.
//! What reaches the log is the same record `record_event` writes for the same event.
//!
//! # Invariants
//! - A shape's number is its index in the table, and a table only grows: a number once
//!   handed out names the same shape for the recorder's life.
//! - A shape's keys are distinct, at most [`limits::INGEST_SHAPE_FIELDS_MAX`], and its
//!   strings take at most [`limits::INGEST_SHAPE_BYTES_MAX`] bytes; a table holds at
//!   most [`limits::INGEST_SHAPES_MAX`] shapes. Registering the same shape again returns
//!   the number it has.
//! - A shape is in the table before its handle exists, and a record naming it is
//!   published after that (the table's lock, then the ring's release store), so the
//!   committer finds every number a slot holds.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};
use crate::limits;

/// A registered event shape: an event type and its payload keys, in the order
/// [`super::Recorder::record_shaped`] takes the values. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventShape {
    id: u32,
    def: Arc<ShapeDef>,
    /// The table it belongs to, to refuse it on another recorder.
    table: Arc<ShapeTable>,
}

impl EventShape {
    /// The event type of every event of this shape.
    pub fn event_type(&self) -> &str {
        &self.def.event_type
    }

    /// The payload keys, in the order of the values.
    pub fn keys(&self) -> &[String] {
        &self.def.keys
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Whether the shape was registered in `table`.
    pub(crate) fn belongs_to(&self, table: &Arc<ShapeTable>) -> bool {
        Arc::ptr_eq(&self.table, table)
    }
}

/// Two handles are equal when they name the same shape of the same recorder.
impl PartialEq for EventShape {
    fn eq(&self, other: &EventShape) -> bool {
        self.id == other.id && Arc::ptr_eq(&self.table, &other.table)
    }
}

impl Eq for EventShape {}

/// What the committer needs of a shape.
#[derive(Debug)]
pub(crate) struct ShapeDef {
    pub event_type: String,
    pub keys: Vec<String>,
    /// The keys' indexes in byte order of the keys: the payload map's order.
    pub order: Vec<u8>,
    /// The most bytes the shape's type and keys take in a payload: their bytes and a
    /// msgpack header of at most 3 bytes each (they are under 64 KiB).
    pub payload_bytes: usize,
}

impl ShapeDef {
    fn new(event_type: &str, keys: &[&str]) -> Result<ShapeDef> {
        if keys.len() > limits::INGEST_SHAPE_FIELDS_MAX {
            return Err(Error::InvalidInput(format!(
                "an event shape has {} keys; at most {} are allowed",
                keys.len(),
                limits::INGEST_SHAPE_FIELDS_MAX
            )));
        }
        let string_bytes = event_type.len() + keys.iter().map(|k| k.len()).sum::<usize>();
        if string_bytes > limits::INGEST_SHAPE_BYTES_MAX {
            return Err(Error::InvalidInput(format!(
                "an event shape's type and keys take {string_bytes} bytes; at most {} are \
                 allowed",
                limits::INGEST_SHAPE_BYTES_MAX
            )));
        }
        let mut order: Vec<u8> = (0..keys.len())
            .map(|i| u8::try_from(i).expect("at most INGEST_SHAPE_FIELDS_MAX keys"))
            .collect();
        order.sort_by_key(|&i| keys[usize::from(i)]);
        if let Some(pair) = order
            .windows(2)
            .find(|pair| keys[usize::from(pair[0])] == keys[usize::from(pair[1])])
        {
            return Err(Error::InvalidInput(format!(
                "an event shape names the key {:?} twice",
                keys[usize::from(pair[0])]
            )));
        }
        Ok(ShapeDef {
            event_type: event_type.to_owned(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            order,
            payload_bytes: string_bytes + 3 * (keys.len() + 1),
        })
    }
}

/// The shapes of one recorder.
#[derive(Debug, Default)]
pub(crate) struct ShapeTable {
    inner: RwLock<Shapes>,
}

#[derive(Debug, Default)]
struct Shapes {
    defs: Vec<Arc<ShapeDef>>,
    /// The numbers of the shapes whose type and keys have this hash ([`name_hash`]).
    by_hash: HashMap<u64, Vec<u32>>,
}

impl Shapes {
    /// The number of the shape with this type and keys, if registered.
    fn find(&self, hash: u64, event_type: &str, keys: &[&str]) -> Option<u32> {
        let ids = self.by_hash.get(&hash)?;
        ids.iter().copied().find(|&id| {
            let def = &self.defs[id as usize];
            def.event_type == event_type && def.keys[..] == *keys
        })
    }
}

/// A hash of a shape's type and keys, from borrowed strings, so that finding a shape
/// registered before allocates nothing.
fn name_hash(event_type: &str, keys: &[&str]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    event_type.hash(&mut hasher);
    keys.hash(&mut hasher);
    hasher.finish()
}

impl ShapeTable {
    /// Registers a shape, or finds the one registered with the same type and keys (under
    /// the read lock, allocating nothing).
    pub fn register(self: &Arc<Self>, event_type: &str, keys: &[&str]) -> Result<EventShape> {
        let hash = name_hash(event_type, keys);
        {
            let shapes = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if let Some(id) = shapes.find(hash, event_type, keys) {
                return Ok(self.handle(id, Arc::clone(&shapes.defs[id as usize])));
            }
        }
        let def = ShapeDef::new(event_type, keys)?;
        let mut shapes = self.inner.write().unwrap_or_else(|e| e.into_inner());
        // Another thread may have registered it in between.
        if let Some(id) = shapes.find(hash, event_type, keys) {
            return Ok(self.handle(id, Arc::clone(&shapes.defs[id as usize])));
        }
        if shapes.defs.len() >= limits::INGEST_SHAPES_MAX {
            return Err(Error::InvalidInput(format!(
                "this recorder has {} event shapes, the most it may have",
                limits::INGEST_SHAPES_MAX
            )));
        }
        let id = u32::try_from(shapes.defs.len()).expect("at most INGEST_SHAPES_MAX shapes");
        let def = Arc::new(def);
        shapes.defs.push(Arc::clone(&def));
        shapes.by_hash.entry(hash).or_default().push(id);
        Ok(self.handle(id, def))
    }

    fn handle(self: &Arc<Self>, id: u32, def: Arc<ShapeDef>) -> EventShape {
        EventShape {
            id,
            def,
            table: Arc::clone(self),
        }
    }
}

/// The committer's copy of the shapes it has met, refreshed from the table when a
/// slot names a number it has not seen: the table's lock is taken once per new shape,
/// not per record.
#[derive(Debug)]
pub(crate) struct ShapeCache {
    table: Arc<ShapeTable>,
    seen: Vec<Arc<ShapeDef>>,
}

impl ShapeCache {
    pub fn new(table: Arc<ShapeTable>) -> ShapeCache {
        ShapeCache {
            table,
            seen: Vec::new(),
        }
    }

    /// The shape numbered `id`, if the table has it.
    pub fn get(&mut self, id: u32) -> Option<&ShapeDef> {
        let id = id as usize;
        if id >= self.seen.len() {
            let shapes = self.table.inner.read().unwrap_or_else(|e| e.into_inner());
            let known = self.seen.len();
            self.seen.extend(shapes.defs[known..].iter().cloned());
        }
        self.seen.get(id).map(|def| &**def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_is_numbered_once_and_found_by_the_committer() {
        let table = Arc::new(ShapeTable::default());
        let mut cache = ShapeCache::new(Arc::clone(&table));
        assert!(cache.get(0).is_none());
        let a = table.register("tool_call", &["tool", "ok"]).unwrap();
        let b = table.register("tool_call", &["ok", "tool"]).unwrap();
        let again = table.register("tool_call", &["tool", "ok"]).unwrap();
        assert_eq!((a.id(), b.id(), again.id()), (0, 1, 0));
        assert_eq!(cache.get(1).unwrap().keys, ["ok", "tool"]);
        assert_eq!(cache.get(0).unwrap().order, [1, 0]);
        assert!(cache.get(2).is_none());
        assert!(a.belongs_to(&table));
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert!(!a.belongs_to(&Arc::new(ShapeTable::default())));
    }

    #[test]
    fn a_bad_shape_is_refused_with_a_reason() {
        let table = Arc::new(ShapeTable::default());
        let repeated = table.register("t", &["a", "b", "a"]).unwrap_err();
        assert!(repeated.to_string().contains("\"a\" twice"), "{repeated}");
        let keys: Vec<String> = (0..=limits::INGEST_SHAPE_FIELDS_MAX)
            .map(|i| format!("k{i}"))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let many = table.register("t", &keys).unwrap_err();
        assert!(many.to_string().contains("keys"), "{many}");
        let long = "k".repeat(limits::INGEST_SHAPE_BYTES_MAX);
        let long = table.register("t", &[&long]).unwrap_err();
        assert!(long.to_string().contains("bytes"), "{long}");
        // Nothing refused took a number.
        assert_eq!(table.register("t", &[]).unwrap().id(), 0);
    }

    #[test]
    fn a_table_holds_at_most_its_limit() {
        let table = Arc::new(ShapeTable::default());
        for i in 0..limits::INGEST_SHAPES_MAX {
            table.register(&format!("t{i}"), &[]).unwrap();
        }
        let full = table.register("one more", &[]).unwrap_err();
        assert!(full.to_string().contains("the most"), "{full}");
        assert_eq!(
            table.register("t7", &[]).unwrap().id(),
            7,
            "a known shape is still found"
        );
    }
}
