//! Borrowed views of the record kinds: one walker per kind reads every field of a
//! msgpack payload into a view that borrows from the payload.
//!
//! Where it sits: over `codec::msgpack`, under both hand-written readers. The index
//! (`index::keys`) takes the few fields it holds from a view while replaying a log; the
//! query path (`codec::decode`) turns a view into the owned model type. A string is
//! kept as its bytes ([`Str`]), checked as UTF-8 only when a caller reads it, and a
//! JSON-like map or a list of strings as the raw bytes of its value ([`Raw`]), decoded
//! only by a caller that wants it: a view is built without touching the heap, and
//! what the index does not take costs it no more than stepping over it.
//!
//! A field absent from the payload is `None` in the view: the caller applies the
//! default or refuses the record, as the model's serde attributes say.
//!
//! # Invariants
//! - Every field is read with the type serde reads it as (a string's UTF-8 and a raw
//!   value's contents when the caller reads them); a repeated field, a value of
//!   another type or damaged bytes make the walker answer `None`, and the caller hands
//!   the payload to serde.
//! - Unknown fields are stepped over, as serde ignores them. An outcome's keys of no
//!   variant are stepped over too, and recorded in [`OutcomeView::has_other_field`]
//!   for the decoder, which leaves such an outcome to serde.
//! - A walker reads one map and leaves the bytes after it to its caller: the decoder
//!   refuses trailing bytes, the index does not look at them.
//! - Nothing here allocates and nothing recurses (see `codec::msgpack`).
//! - The walkers of a run, its stats and a call event first expect each key in the
//!   order the encoder writes them (one comparison per key) and, at the first
//!   difference, walk the map again from its start in whatever order: the two answer
//!   alike (proptested with rearranged maps in `codec::decode`).

use crate::codec::msgpack::{MsgpackMap, Raw, Str, first_time};
use crate::model::{OutcomeKind, Status, Timestamp};

/// A `RunStarted` payload (a [`Run`](crate::model::Run)); every field is optional.
#[derive(Debug, Default)]
pub(crate) struct RunView<'a> {
    pub id: Option<Str<'a>>,
    pub skill_id: Option<Str<'a>>,
    pub caller_id: Option<Str<'a>>,
    pub channel_id: Option<Str<'a>>,
    pub inputs: Option<Raw<'a>>,
    pub started_at: Option<Timestamp>,
    /// `Some(None)` for an explicit nil.
    pub finished_at: Option<Option<Timestamp>>,
    pub status: Option<Status>,
    pub output: Option<Str<'a>>,
    pub error: Option<Str<'a>>,
    pub tool_calls_count: Option<u64>,
    pub runtime_seconds: Option<f64>,
    pub parent_run_id: Option<Str<'a>>,
    pub total_input_tokens: Option<u64>,
    pub total_output_tokens: Option<u64>,
    pub total_thinking_tokens: Option<u64>,
}

impl<'a> RunView<'a> {
    /// Reads the entries of a run's map.
    #[inline]
    pub(crate) fn read(map: &mut MsgpackMap<'a>) -> Option<Self> {
        in_order_or(map, Self::read_in_order, Self::read_any_order)
    }

    /// Reads the entries of a run's map, in whatever order.
    fn read_any_order(map: &mut MsgpackMap<'a>) -> Option<Self> {
        let mut view = RunView::default();
        while let Some(name) = map.next_key()? {
            match name {
                b"id" => first_time(&mut view.id, map.str_raw())?,
                b"skill_id" => first_time(&mut view.skill_id, map.str_raw())?,
                b"caller_id" => first_time(&mut view.caller_id, map.str_raw())?,
                b"channel_id" => first_time(&mut view.channel_id, map.str_raw())?,
                b"inputs" => first_time(&mut view.inputs, map.raw())?,
                b"started_at" => first_time(&mut view.started_at, map.timestamp())?,
                b"finished_at" => {
                    first_time(&mut view.finished_at, map.nullable(MsgpackMap::timestamp))?;
                }
                b"status" => first_time(&mut view.status, map.status())?,
                b"output" => first_time(&mut view.output, map.str_raw())?,
                b"error" => first_time(&mut view.error, map.str_raw())?,
                b"tool_calls_count" => first_time(&mut view.tool_calls_count, map.u64())?,
                b"runtime_seconds" => first_time(&mut view.runtime_seconds, map.f64())?,
                b"parent_run_id" => first_time(&mut view.parent_run_id, map.str_raw())?,
                b"total_input_tokens" => first_time(&mut view.total_input_tokens, map.u64())?,
                b"total_output_tokens" => first_time(&mut view.total_output_tokens, map.u64())?,
                b"total_thinking_tokens" => {
                    first_time(&mut view.total_thinking_tokens, map.u64())?;
                }
                _ => map.skip()?,
            }
        }
        Some(view)
    }
}

/// Reads `map` with `in_order` (a walker for the keys in the encoder's order) from a
/// copy of it, or, if that refuses, with `general` from where `map` was: a record read
/// back is almost always in the encoder's order, but any order of the same keys is the
/// same record.
#[inline(always)]
fn in_order_or<'a, T>(
    map: &mut MsgpackMap<'a>,
    in_order: impl FnOnce(&mut MsgpackMap<'a>) -> Option<T>,
    general: impl FnOnce(&mut MsgpackMap<'a>) -> Option<T>,
) -> Option<T> {
    let mut ahead = map.clone();
    match in_order(&mut ahead) {
        Some(view) => {
            *map = ahead;
            Some(view)
        }
        None => general(map),
    }
}

/// For a key the encoder leaves out when it has no value: `Some(None)` if the next key
/// is not `name`, else the value `read` reads after it (`None` if it does not read).
#[inline(always)]
fn if_next<'a, T>(
    map: &mut MsgpackMap<'a>,
    name: &[u8],
    read: impl FnOnce(&mut MsgpackMap<'a>) -> Option<T>,
) -> Option<Option<T>> {
    let mut ahead = map.clone();
    if ahead.key_is(name).is_none() {
        return Some(None);
    }
    *map = ahead;
    read(map).map(Some)
}

impl<'a> RunView<'a> {
    /// Reads a run's map whose keys come in the order the encoder writes them (the
    /// model's field order), each once, `finished_at` only if set: one comparison per
    /// key, where the general reader finds each key among all of them. `None` at the
    /// first difference (another order, a missing or unknown key, a value of another
    /// type), and the caller reads the map the general way.
    fn read_in_order(map: &mut MsgpackMap<'a>) -> Option<Self> {
        map.key_is(b"id")?;
        let id = map.str_raw()?;
        map.key_is(b"skill_id")?;
        let skill_id = map.str_raw()?;
        map.key_is(b"caller_id")?;
        let caller_id = map.str_raw()?;
        map.key_is(b"channel_id")?;
        let channel_id = map.str_raw()?;
        map.key_is(b"inputs")?;
        let inputs = map.raw()?;
        map.key_is(b"started_at")?;
        let started_at = map.timestamp()?;
        let finished_at = if_next(map, b"finished_at", |map| {
            map.nullable(MsgpackMap::timestamp)
        })?;
        map.key_is(b"status")?;
        let status = map.status()?;
        map.key_is(b"output")?;
        let output = map.str_raw()?;
        map.key_is(b"error")?;
        let error = map.str_raw()?;
        map.key_is(b"tool_calls_count")?;
        let tool_calls_count = map.u64()?;
        map.key_is(b"runtime_seconds")?;
        let runtime_seconds = map.f64()?;
        map.key_is(b"parent_run_id")?;
        let parent_run_id = map.str_raw()?;
        map.key_is(b"total_input_tokens")?;
        let total_input_tokens = map.u64()?;
        map.key_is(b"total_output_tokens")?;
        let total_output_tokens = map.u64()?;
        map.key_is(b"total_thinking_tokens")?;
        let total_thinking_tokens = map.u64()?;
        map.next_key()?.is_none().then_some(RunView {
            id: Some(id),
            skill_id: Some(skill_id),
            caller_id: Some(caller_id),
            channel_id: Some(channel_id),
            inputs: Some(inputs),
            started_at: Some(started_at),
            finished_at,
            status: Some(status),
            output: Some(output),
            error: Some(error),
            tool_calls_count: Some(tool_calls_count),
            runtime_seconds: Some(runtime_seconds),
            parent_run_id: Some(parent_run_id),
            total_input_tokens: Some(total_input_tokens),
            total_output_tokens: Some(total_output_tokens),
            total_thinking_tokens: Some(total_thinking_tokens),
        })
    }
}

/// The stats of a `RunFinished` payload (a [`RunStats`](crate::model::RunStats)).
#[derive(Debug, Default)]
pub(crate) struct StatsView<'a> {
    pub status: Option<Status>,
    pub output: Option<Str<'a>>,
    pub error: Option<Str<'a>>,
    pub tool_calls: Option<u64>,
    pub runtime_seconds: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub thinking_tokens: Option<u64>,
}

impl<'a> StatsView<'a> {
    /// Reads the entries of a stats map.
    #[inline]
    pub(crate) fn read(map: &mut MsgpackMap<'a>) -> Option<Self> {
        in_order_or(map, Self::read_in_order, Self::read_any_order)
    }

    /// Reads a stats map whose keys come in the order the encoder writes them, as
    /// [`RunView`]'s does.
    fn read_in_order(map: &mut MsgpackMap<'a>) -> Option<Self> {
        map.key_is(b"status")?;
        let status = map.status()?;
        map.key_is(b"output")?;
        let output = map.str_raw()?;
        map.key_is(b"error")?;
        let error = map.str_raw()?;
        map.key_is(b"tool_calls")?;
        let tool_calls = map.u64()?;
        map.key_is(b"runtime_seconds")?;
        let runtime_seconds = map.f64()?;
        map.key_is(b"input_tokens")?;
        let input_tokens = map.u64()?;
        map.key_is(b"output_tokens")?;
        let output_tokens = map.u64()?;
        map.key_is(b"thinking_tokens")?;
        let thinking_tokens = map.u64()?;
        map.next_key()?.is_none().then_some(StatsView {
            status: Some(status),
            output: Some(output),
            error: Some(error),
            tool_calls: Some(tool_calls),
            runtime_seconds: Some(runtime_seconds),
            input_tokens: Some(input_tokens),
            output_tokens: Some(output_tokens),
            thinking_tokens: Some(thinking_tokens),
        })
    }

    /// Reads the entries of a stats map, in whatever order.
    fn read_any_order(map: &mut MsgpackMap<'a>) -> Option<Self> {
        let mut view = StatsView::default();
        while let Some(name) = map.next_key()? {
            match name {
                b"status" => first_time(&mut view.status, map.status())?,
                b"output" => first_time(&mut view.output, map.str_raw())?,
                b"error" => first_time(&mut view.error, map.str_raw())?,
                b"tool_calls" => first_time(&mut view.tool_calls, map.u64())?,
                b"runtime_seconds" => first_time(&mut view.runtime_seconds, map.f64())?,
                b"input_tokens" => first_time(&mut view.input_tokens, map.u64())?,
                b"output_tokens" => first_time(&mut view.output_tokens, map.u64())?,
                b"thinking_tokens" => first_time(&mut view.thinking_tokens, map.u64())?,
                _ => map.skip()?,
            }
        }
        Some(view)
    }
}

/// A `RunFinished` payload. All three fields are required by the record.
#[derive(Debug, Default)]
pub(crate) struct FinishView<'a> {
    pub run_id: Option<Str<'a>>,
    pub stats: Option<StatsView<'a>>,
    pub finished_at: Option<Timestamp>,
}

impl<'a> FinishView<'a> {
    /// Reads the entries of a finish's map.
    #[inline]
    pub(crate) fn read(map: &mut MsgpackMap<'a>) -> Option<Self> {
        let mut view = FinishView::default();
        while let Some(name) = map.next_key()? {
            match name {
                b"run_id" => first_time(&mut view.run_id, map.str_raw())?,
                b"stats" => first_time(&mut view.stats, map.with_map(StatsView::read))?,
                b"finished_at" => first_time(&mut view.finished_at, map.timestamp())?,
                _ => map.skip()?,
            }
        }
        Some(view)
    }
}

/// An `EventAppended` payload (a [`RunEvent`](crate::model::RunEvent)).
#[derive(Debug, Default)]
pub(crate) struct EventView<'a> {
    pub run_id: Option<Str<'a>>,
    pub sequence: Option<u64>,
    pub event_type: Option<Str<'a>>,
    pub payload: Option<Raw<'a>>,
    pub created_at: Option<Timestamp>,
}

impl<'a> EventView<'a> {
    /// Reads the entries of an event's map.
    #[inline]
    pub(crate) fn read(map: &mut MsgpackMap<'a>) -> Option<Self> {
        let mut view = EventView::default();
        while let Some(name) = map.next_key()? {
            match name {
                b"run_id" => first_time(&mut view.run_id, map.str_raw())?,
                b"sequence" => first_time(&mut view.sequence, map.u64())?,
                b"event_type" => first_time(&mut view.event_type, map.str_raw())?,
                b"payload" => first_time(&mut view.payload, map.raw())?,
                b"created_at" => first_time(&mut view.created_at, map.timestamp())?,
                _ => map.skip()?,
            }
        }
        Some(view)
    }
}

/// A `CallRecorded` payload (a [`CallEvent`](crate::model::CallEvent)). `ts`,
/// `call_id`, `tool_id` and `outcome` are required by the record.
#[derive(Debug, Default)]
pub(crate) struct CallView<'a> {
    pub ts: Option<Timestamp>,
    pub call_id: Option<Str<'a>>,
    pub tool_id: Option<Str<'a>>,
    /// `Some(None)` for an explicit nil.
    pub caller_id: Option<Option<Str<'a>>>,
    /// An array of strings.
    pub granted_capabilities: Option<Raw<'a>>,
    pub duration_ms: Option<u64>,
    pub outcome: Option<OutcomeView<'a>>,
    pub tier: Option<Str<'a>>,
    pub dry_run: Option<bool>,
    pub schema_version: Option<u32>,
    pub secrets_resolved: Option<bool>,
    /// `Some(None)` for an explicit nil.
    pub cursor_page: Option<Option<u32>>,
}

impl<'a> CallView<'a> {
    /// Reads the entries of a call event's map.
    #[inline]
    pub(crate) fn read(map: &mut MsgpackMap<'a>) -> Option<Self> {
        in_order_or(map, Self::read_in_order, Self::read_any_order)
    }

    /// Reads a call event's map whose keys come in the order the encoder writes them,
    /// as [`RunView`]'s does; the outcome's own map is read the general way.
    fn read_in_order(map: &mut MsgpackMap<'a>) -> Option<Self> {
        map.key_is(b"ts")?;
        let ts = map.timestamp()?;
        map.key_is(b"call_id")?;
        let call_id = map.str_raw()?;
        map.key_is(b"tool_id")?;
        let tool_id = map.str_raw()?;
        let caller_id = if_next(map, b"caller_id", |map| map.nullable(MsgpackMap::str_raw))?;
        map.key_is(b"granted_capabilities")?;
        let granted_capabilities = map.raw()?;
        map.key_is(b"duration_ms")?;
        let duration_ms = map.u64()?;
        map.key_is(b"outcome")?;
        let outcome = map.with_map(OutcomeView::read)?;
        map.key_is(b"tier")?;
        let tier = map.str_raw()?;
        map.key_is(b"dry_run")?;
        let dry_run = map.bool()?;
        map.key_is(b"schema_version")?;
        let schema_version = map.u32()?;
        map.key_is(b"secrets_resolved")?;
        let secrets_resolved = map.bool()?;
        let cursor_page = if_next(map, b"cursor_page", |map| map.nullable(MsgpackMap::u32))?;
        map.next_key()?.is_none().then_some(CallView {
            ts: Some(ts),
            call_id: Some(call_id),
            tool_id: Some(tool_id),
            caller_id,
            granted_capabilities: Some(granted_capabilities),
            duration_ms: Some(duration_ms),
            outcome: Some(outcome),
            tier: Some(tier),
            dry_run: Some(dry_run),
            schema_version: Some(schema_version),
            secrets_resolved: Some(secrets_resolved),
            cursor_page,
        })
    }

    /// Reads the entries of a call event's map, in whatever order.
    fn read_any_order(map: &mut MsgpackMap<'a>) -> Option<Self> {
        let mut view = CallView::default();
        while let Some(name) = map.next_key()? {
            match name {
                b"ts" => first_time(&mut view.ts, map.timestamp())?,
                b"call_id" => first_time(&mut view.call_id, map.str_raw())?,
                b"tool_id" => first_time(&mut view.tool_id, map.str_raw())?,
                b"caller_id" => first_time(&mut view.caller_id, map.nullable(MsgpackMap::str_raw))?,
                b"granted_capabilities" => {
                    first_time(&mut view.granted_capabilities, map.raw())?;
                }
                b"duration_ms" => first_time(&mut view.duration_ms, map.u64())?,
                b"outcome" => first_time(&mut view.outcome, map.with_map(OutcomeView::read))?,
                b"tier" => first_time(&mut view.tier, map.str_raw())?,
                b"dry_run" => first_time(&mut view.dry_run, map.bool())?,
                b"schema_version" => first_time(&mut view.schema_version, map.u32())?,
                b"secrets_resolved" => first_time(&mut view.secrets_resolved, map.bool())?,
                b"cursor_page" => {
                    first_time(&mut view.cursor_page, map.nullable(MsgpackMap::u32))?;
                }
                _ => map.skip()?,
            }
        }
        Some(view)
    }
}

/// An outcome map (an [`Outcome`](crate::model::Outcome)): its `kind` tag and the
/// fields of every variant, which of them belong with the tag left to the caller.
#[derive(Debug, Default)]
pub(crate) struct OutcomeView<'a> {
    pub kind: Option<OutcomeKind>,
    pub code: Option<Str<'a>>,
    pub retryable: Option<bool>,
    pub message: Option<Str<'a>>,
    /// An array of strings.
    pub missing: Option<Raw<'a>>,
    /// `Some(None)` for an explicit nil.
    pub retry_after_ms: Option<Option<u64>>,
    /// Whether a key of no variant was stepped over.
    pub has_other_field: bool,
}

impl<'a> OutcomeView<'a> {
    /// Reads the entries of an outcome's map.
    #[inline]
    pub(crate) fn read(map: &mut MsgpackMap<'a>) -> Option<Self> {
        let mut view = OutcomeView::default();
        while let Some(name) = map.next_key()? {
            match name {
                b"kind" => first_time(&mut view.kind, map.outcome_kind())?,
                b"code" => first_time(&mut view.code, map.str_raw())?,
                b"retryable" => first_time(&mut view.retryable, map.bool())?,
                b"message" => first_time(&mut view.message, map.str_raw())?,
                b"missing" => first_time(&mut view.missing, map.raw())?,
                b"retry_after_ms" => {
                    first_time(&mut view.retry_after_ms, map.nullable(MsgpackMap::u64))?;
                }
                _ => {
                    view.has_other_field = true;
                    map.skip()?;
                }
            }
        }
        Some(view)
    }
}

/// A string field, empty when absent; `None` when its bytes are not UTF-8.
#[inline]
pub(crate) fn text(field: Option<Str<'_>>) -> Option<&str> {
    field.map_or(Some(""), Str::to_str)
}

/// Reads the map a payload starts with by `read` (one of the views' `read`), leaving
/// any bytes after it unread.
#[inline]
pub(crate) fn walk<'a, T>(
    payload: &'a [u8],
    read: impl FnOnce(&mut MsgpackMap<'a>) -> Option<T>,
) -> Option<T> {
    read(&mut MsgpackMap::new(payload)?)
}
