//! Arbitrary records and damaged payloads, for the property tests that hold the
//! hand-written readers (`codec::decode`, `index::keys`) to serde.

use proptest::prelude::*;

use crate::codec::{Record, RunFinished};
use crate::model::{
    CallEvent, Outcome, Payload, Run, RunEvent, RunStats, Status, Timestamp, Value,
};

/// The msgpack payload of a record.
pub(crate) fn payload(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    record.encode_payload(&mut out).unwrap();
    out
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_-]{0,12}",
        "\\PC{0,40}",
        // Past the fixstr and str8 lengths.
        "[a-z]{200,300}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Payload> {
    prop::collection::btree_map(text(), value(), 0..5).prop_map(|m| m.into_iter().collect())
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<i64>().prop_map(Timestamp::from_unix_nanos)
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn stats() -> impl Strategy<Value = RunStats> {
    (
        status(),
        text(),
        text(),
        any::<u64>(),
        any::<f64>(),
        any::<(u64, u64, u64)>(),
    )
        .prop_map(
            |(status, output, error, tool_calls, runtime_seconds, tokens)| RunStats {
                status,
                output,
                error,
                tool_calls,
                runtime_seconds,
                input_tokens: tokens.0,
                output_tokens: tokens.1,
                thinking_tokens: tokens.2,
            },
        )
}

fn run() -> impl Strategy<Value = Run> {
    (
        (text(), text(), text(), text(), text()),
        object(),
        timestamp(),
        prop::option::of(timestamp()),
        stats(),
    )
        .prop_map(|(ids, inputs, started_at, finished_at, stats)| {
            let (id, skill_id, caller_id, channel_id, parent_run_id) = ids;
            let mut run = Run {
                id,
                skill_id,
                caller_id,
                channel_id,
                inputs,
                started_at,
                parent_run_id,
                ..Run::default()
            };
            run.apply_finish(&stats, started_at);
            run.finished_at = finished_at;
            run
        })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Success),
        (text(), any::<bool>())
            .prop_map(|(code, retryable)| Outcome::ExecutionFailed { code, retryable }),
        text().prop_map(|message| Outcome::InvalidArgs { message }),
        prop::collection::vec(text(), 0..4)
            .prop_map(|missing| Outcome::CapabilityDenied { missing }),
        prop::option::of(any::<u64>())
            .prop_map(|retry_after_ms| Outcome::RateLimited { retry_after_ms }),
        Just(Outcome::ToolNotFound),
    ]
}

fn call() -> impl Strategy<Value = CallEvent> {
    (
        (timestamp(), text(), text(), prop::option::of(text())),
        prop::collection::vec(text(), 0..4),
        (any::<u64>(), outcome(), text(), any::<bool>()),
        (any::<u32>(), any::<bool>(), prop::option::of(any::<u32>())),
    )
        .prop_map(|(ids, granted_capabilities, middle, last)| CallEvent {
            ts: ids.0,
            call_id: ids.1,
            tool_id: ids.2,
            caller_id: ids.3,
            granted_capabilities,
            duration_ms: middle.0,
            outcome: middle.1,
            tier: middle.2,
            dry_run: middle.3,
            schema_version: last.0,
            secrets_resolved: last.1,
            cursor_page: last.2,
        })
}

pub(crate) fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        run().prop_map(Record::RunStarted),
        (text(), stats(), timestamp()).prop_map(|(run_id, stats, finished_at)| {
            Record::RunFinished(RunFinished {
                run_id,
                stats,
                finished_at,
            })
        }),
        (text(), any::<u64>(), text(), object(), timestamp()).prop_map(
            |(run_id, sequence, event_type, payload, created_at)| {
                Record::EventAppended(RunEvent {
                    run_id,
                    sequence,
                    event_type,
                    payload,
                    created_at,
                })
            }
        ),
        call().prop_map(Record::CallRecorded),
    ]
}

/// A change to a payload: cut it, overwrite a byte, or put bytes in.
#[derive(Clone, Debug)]
enum Damage {
    Cut(usize),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Set(at, byte)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..4))
            .prop_map(|(at, bytes)| Damage::Insert(at, bytes)),
    ]
}

/// A record and its payload with one to three damages applied.
pub(crate) fn damaged_payload() -> impl Strategy<Value = (Record, Vec<u8>)> {
    (record(), prop::collection::vec(damage(), 1..4)).prop_map(|(record, damages)| {
        let mut bytes = payload(&record);
        for damage in damages {
            match damage {
                Damage::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
                Damage::Set(at, byte) if !bytes.is_empty() => {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
                Damage::Set(..) => {}
                Damage::Insert(at, more) => {
                    let at = at % (bytes.len() + 1);
                    bytes.splice(at..at, more);
                }
            }
        }
        (record, bytes)
    })
}

/// How a payload's map is rearranged: its entries put in another order, and maybe one
/// left out, one given twice, or a key of no field added. A map value (a finish's
/// stats) is rearranged the same way.
#[derive(Clone, Debug)]
pub(crate) struct Rearrange {
    /// Sort keys for the entries, by position.
    order: Vec<u32>,
    left_out: Option<usize>,
    twice: Option<usize>,
    unknown_key: bool,
}

impl Rearrange {
    /// Whether the map keeps every entry once and nothing else: only its order changes.
    pub(crate) fn keeps_the_entries(&self) -> bool {
        self.left_out.is_none() && self.twice.is_none() && !self.unknown_key
    }
}

/// A record and its payload with the payload's map rearranged.
pub(crate) fn rearranged_payload() -> impl Strategy<Value = (Record, Rearrange, Vec<u8>)> {
    let rearrange = (
        prop::collection::vec(any::<u32>(), 24),
        prop::option::weighted(0.2, any::<usize>()),
        prop::option::weighted(0.2, any::<usize>()),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(order, left_out, twice, unknown_key)| Rearrange {
            order,
            left_out,
            twice,
            unknown_key,
        });
    (record(), rearrange).prop_map(|(record, how)| {
        let bytes = rearranged(&payload(&record), &how);
        (record, how, bytes)
    })
}

/// The map at the start of `bytes`, rearranged as `how` says.
fn rearranged(bytes: &[u8], how: &Rearrange) -> Vec<u8> {
    let mut map = crate::codec::msgpack::MsgpackMap::new(bytes).expect("a payload is a map");
    let mut entries = Vec::new();
    while let Some(key) = map.next_key().expect("a key") {
        let value = map.raw().expect("a value").bytes();
        let value = if key == b"stats" {
            rearranged(value, how)
        } else {
            value.to_vec()
        };
        entries.push((key.to_vec(), value));
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&entry_idx| how.order[entry_idx % how.order.len()]);
    let mut entries: Vec<_> = order.into_iter().map(|i| entries[i].clone()).collect();
    if let (Some(at), false) = (how.left_out, entries.is_empty()) {
        entries.remove(at % entries.len());
    }
    if let (Some(at), false) = (how.twice, entries.is_empty()) {
        let entry = entries[at % entries.len()].clone();
        entries.push(entry);
    }
    if how.unknown_key {
        entries.push((b"no_such_field".to_vec(), vec![0xc0]));
    }
    let mut out = Vec::new();
    let n = u32::try_from(entries.len()).expect("a few entries");
    rmp::encode::write_map_len(&mut out, n).expect("into a Vec");
    for (key, value) in entries {
        let len = u32::try_from(key.len()).expect("a short key");
        rmp::encode::write_str_len(&mut out, len).expect("into a Vec");
        out.extend_from_slice(&key);
        out.extend_from_slice(&value);
    }
    out
}
