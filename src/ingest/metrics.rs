//! Drop accounting and the counters behind [`super::Recorder::metrics`].
//!
//! Where it sits: shared between producers (which count drops) and the committer (which
//! counts what it wrote and turns drop counts into in-band `DropReport` records).
//!
//! # Invariants
//! - The accept path touches none of these counters: what was accepted is derived as
//!   "taken by the committer + still in the queue", so producers share no counter line.
//! - Every counter only grows. Each sits on its own cache line (`CachePadded`) so a
//!   burst of drops of one reason does not slow the others or the committer.
//! - A drop is counted exactly once, by the thread that decided it: a producer for
//!   queue full, after shutdown and refused views; the committer for what the log
//!   refused or failed to write.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use crate::model::{DropReason, Timestamp};

/// Events not written, by reason (serialized with the snake_case reason names).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DropCounts {
    pub queue_full: u64,
    pub oversized: u64,
    pub after_shutdown: u64,
    pub rejected: u64,
    pub io_failure: u64,
}

impl DropCounts {
    /// The count of one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueFull => self.queue_full,
            DropReason::Oversized => self.oversized,
            DropReason::AfterShutdown => self.after_shutdown,
            DropReason::Rejected => self.rejected,
            DropReason::IoFailure => self.io_failure,
        }
    }

    /// All reasons together.
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.get(*r)).sum()
    }

    fn set(&mut self, reason: DropReason, n: u64) {
        *match reason {
            DropReason::QueueFull => &mut self.queue_full,
            DropReason::Oversized => &mut self.oversized,
            DropReason::AfterShutdown => &mut self.after_shutdown,
            DropReason::Rejected => &mut self.rejected,
            DropReason::IoFailure => &mut self.io_failure,
        } = n;
    }
}

/// A snapshot of a recorder's work, readable at any time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Records accepted by `record_*` calls (taken by the committer or still queued).
    pub enqueued: u64,
    /// Of those, how many took the slow (allocating) path.
    pub slow_path: u64,
    /// Records the log acknowledged (drop reports not included).
    pub written: u64,
    /// Records not written, by reason.
    pub dropped: DropCounts,
    /// In-band `DropReport` records written.
    pub drop_reports_written: u64,
    /// Frame bytes appended to the log since it was opened.
    pub bytes_appended: u64,
    /// Segment files of the log.
    pub segments: u64,
    /// fsyncs the log has issued since it was opened.
    pub fsyncs: u64,
    /// Records waiting in the queue now (every shard).
    pub queue_len: u64,
    /// Bytes of the queue's rings in use now (records with their headers).
    pub queue_bytes: u64,
    /// Bytes the queue's rings hold, every shard together.
    pub queue_capacity_bytes: u64,
    /// The most ring bytes in use (every shard) the committer has seen: the bytes one
    /// batch took, or, while batches stop at their limit, the bytes in use when the
    /// next one starts.
    pub queue_high_water_bytes: u64,
    /// The last error the log returned, if any.
    pub last_error: Option<String>,
}

/// One reason's counter and the span of drops not yet reported in-band.
#[derive(Debug, Default)]
struct ReasonCounter {
    n_dropped: AtomicU64,
    /// Unix nanoseconds of the first drop not yet reported; 0 when none is pending.
    span_first: AtomicI64,
    span_last: AtomicI64,
}

/// A span of drops of one reason, for a `DropReport`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct DropSpan {
    pub reason: DropReason,
    pub n_dropped: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

/// The counters shared by producers and the committer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    reasons: [CachePadded<ReasonCounter>; 5],
    /// Written only by the committer (or by whoever holds it after it stopped).
    pub taken: CachePadded<AtomicU64>,
    /// Records taken whose fate is decided: written, or dropped by the committer.
    pub settled: AtomicU64,
    pub slow_path: AtomicU64,
    pub written: AtomicU64,
    pub drop_reports_written: AtomicU64,
    pub high_water: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

fn reason_idx(reason: DropReason) -> usize {
    let idx = reason as usize;
    debug_assert_eq!(DropReason::ALL[idx], reason);
    idx
}

impl Counters {
    /// Counts `n` drops of `reason`, at `at`.
    pub fn drop_n(&self, reason: DropReason, n: u64, at: Timestamp) {
        if n == 0 {
            return;
        }
        let counter = &self.reasons[reason_idx(reason)];
        // Zero marks "no pending span"; an event at exactly the epoch is nudged off it.
        let nanos = at.unix_nanos().max(1);
        let _ = counter
            .span_first
            .compare_exchange(0, nanos, Ordering::AcqRel, Ordering::Relaxed);
        counter.span_last.fetch_max(nanos, Ordering::AcqRel);
        counter.n_dropped.fetch_add(n, Ordering::AcqRel);
    }

    /// Counts one drop of `reason`, now.
    pub fn drop_one(&self, reason: DropReason) {
        self.drop_n(reason, 1, Timestamp::now());
    }

    /// Every reason's count.
    pub fn dropped(&self) -> DropCounts {
        let mut counts = DropCounts::default();
        for reason in DropReason::ALL {
            let n = self.reasons[reason_idx(reason)]
                .n_dropped
                .load(Ordering::Acquire);
            counts.set(reason, n);
        }
        counts
    }

    /// The drops counted since `reported`, as spans to report; advances `reported`.
    ///
    /// A drop racing with this call may land its count in this span and its time in the
    /// next (or the reverse): spans are exact in count over time, approximate at edges.
    pub fn take_spans(&self, reported: &mut DropCounts) -> Vec<DropSpan> {
        let mut spans = Vec::new();
        for reason in DropReason::ALL {
            let counter = &self.reasons[reason_idx(reason)];
            let n = counter.n_dropped.load(Ordering::Acquire);
            let before = reported.get(reason);
            debug_assert!(n >= before, "drop counters only grow");
            if n == before {
                continue;
            }
            let last = counter.span_last.load(Ordering::Acquire);
            let first = match counter.span_first.swap(0, Ordering::AcqRel) {
                0 => last,
                first => first,
            };
            spans.push(DropSpan {
                reason,
                n_dropped: n - before,
                first_at: Timestamp::from_unix_nanos(first),
                last_at: Timestamp::from_unix_nanos(last.max(first)),
            });
            reported.set(reason, n);
        }
        spans
    }

    /// Remembers the last error the log returned.
    pub fn set_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_each_drop_once_and_name_its_reason() {
        let counters = Counters::default();
        let mut reported = DropCounts::default();
        counters.drop_n(DropReason::QueueFull, 2, Timestamp::from_unix_millis(10));
        counters.drop_n(DropReason::QueueFull, 1, Timestamp::from_unix_millis(30));
        counters.drop_n(DropReason::Rejected, 1, Timestamp::from_unix_millis(20));
        let spans = counters.take_spans(&mut reported);
        assert_eq!(
            spans,
            vec![
                DropSpan {
                    reason: DropReason::QueueFull,
                    n_dropped: 3,
                    first_at: Timestamp::from_unix_millis(10),
                    last_at: Timestamp::from_unix_millis(30),
                },
                DropSpan {
                    reason: DropReason::Rejected,
                    n_dropped: 1,
                    first_at: Timestamp::from_unix_millis(20),
                    last_at: Timestamp::from_unix_millis(20),
                },
            ]
        );
        assert!(counters.take_spans(&mut reported).is_empty());
        assert_eq!(counters.dropped().total(), 4);
        counters.drop_n(DropReason::QueueFull, 1, Timestamp::from_unix_millis(40));
        let spans = counters.take_spans(&mut reported);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].n_dropped, 1);
        assert_eq!(spans[0].first_at, Timestamp::from_unix_millis(40));
    }
}
