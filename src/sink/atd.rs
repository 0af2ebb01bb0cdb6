//! `CallSink` as the ATD dispatch runtime's `AuditSink` (feature `atd-runtime`).
//!
//! Where it sits: an adapter at the edge of `sink`; the only file that names the
//! `atd_runtime` crate.
//!
//! # Invariants
//! - Every field our [`CallEvent`] has is carried over unchanged, the runtime's own
//!   `schema_version` included. `capability_provenance` has no place in the record
//!   model (SPEC §2.4) and is left out.
//! - An event whose `ts` is not RFC 3339 is still recorded, stamped with the time it
//!   reached the sink: losing a call is worse than an approximate time.
//! - The backpressure strategy reported to the runtime is `Drop`: the sink never
//!   blocks the dispatch path.

use atd_runtime::audit::{self as atd, BackpressureStrategy};

use super::CallSink;
use crate::model::{CallEvent, Outcome, Timestamp};

/// The record-model form of a runtime call event.
pub fn call_event_from_atd(event: &atd::CallEvent) -> CallEvent {
    CallEvent {
        ts: Timestamp::parse_rfc3339(&event.ts).unwrap_or_else(|_| Timestamp::now()),
        call_id: event.call_id.clone(),
        tool_id: event.tool_id.clone(),
        caller_id: event.caller_id.clone(),
        granted_capabilities: event.granted_capabilities.clone(),
        duration_ms: event.duration_ms,
        outcome: outcome_from_atd(&event.outcome),
        tier: event.tier.clone(),
        dry_run: event.dry_run,
        schema_version: event.schema_version,
        secrets_resolved: event.secrets_resolved,
        cursor_page: event.cursor_page,
    }
}

fn outcome_from_atd(outcome: &atd::Outcome) -> Outcome {
    match outcome {
        atd::Outcome::Success => Outcome::Success,
        atd::Outcome::ExecutionFailed { code, retryable } => Outcome::ExecutionFailed {
            code: code.clone(),
            retryable: *retryable,
        },
        atd::Outcome::InvalidArgs { message } => Outcome::InvalidArgs {
            message: message.clone(),
        },
        atd::Outcome::CapabilityDenied { missing } => Outcome::CapabilityDenied {
            missing: missing.clone(),
        },
        atd::Outcome::RateLimited { retry_after_ms } => Outcome::RateLimited {
            retry_after_ms: *retry_after_ms,
        },
        atd::Outcome::ToolNotFound => Outcome::ToolNotFound,
    }
}

impl atd::AuditSink for CallSink {
    fn on_call(&self, event: &atd::CallEvent) {
        let _ = CallSink::on_call(self, &call_event_from_atd(event));
    }

    fn drops(&self) -> u64 {
        CallSink::drops(self)
    }

    fn backpressure_strategy(&self) -> BackpressureStrategy {
        BackpressureStrategy::Drop
    }
}
