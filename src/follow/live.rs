//! In-process subscriptions: a [`Subscription`] receives the new records of one run, one
//! session or the whole log as the log acknowledges them.
//!
//! Where it sits: after the append. `AuditLog` publishes a batch here once it is
//! written and settled (durability mode applied), under the log's lock, so every
//! subscription sees records in LSN order. The ingest committer reaches it through
//! `AuditLog::append_each`, like every other writer.
//!
//! ```text
//! append ─▶ journal ─▶ index ─▶ settle ─▶ publish ─try_push─▶ ArrayQueue ─▶ Subscription::recv
//!                                           (log lock held)    (one per subscription, bounded)
//! ```
//!
//! # Invariants
//! - Only acknowledged records are published: a record the log refused (a duplicate run
//!   or sequence through `append_each`, an oversized record, a failed write or sync)
//!   never reaches a follower.
//! - Publishing never blocks and never waits for a follower: one `try_push` per
//!   matching subscription into its bounded queue. A full queue loses the record for
//!   that subscription only; its `missed` count grows and the next record it receives
//!   carries the gap (`missed_before`).
//! - With no subscription, publishing is one `is_empty` check on a vector the log's
//!   lock already guards: no atomic, no allocation.
//! - A matching record is cloned once into an `Arc`, whatever the number of
//!   subscriptions; each one costs an `Arc` increment and a push, plus one `unpark`
//!   per batch (an atomic swap, a wake-up only if the follower sleeps in `recv`).
//! - Dropping a [`Subscription`] ends it at once (it no longer counts in
//!   `AuditLog::n_followers`); its queue is freed at the next publish or subscribe.
//! - Closing the log ends every subscription: `recv` returns what is queued, then
//!   `None`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::sync::{Parker, Unparker};

use crate::codec::{Lsn, Record};
use crate::error::{Error, Result};
use crate::limits::{FOLLOW_CAPACITY_MAX, FOLLOW_SUBSCRIPTIONS_MAX};

/// Which records a subscription receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Follow {
    /// The start, events and finish of one run (not of its child runs).
    Run(String),
    /// The events of one iteration session (SPEC §5): session events are recorded as run
    /// events under the session id.
    Session(String),
    /// Every record: runs, events, calls, purges and drop reports.
    All,
}

impl Follow {
    /// Whether `record` is one this filter selects.
    pub fn matches(&self, record: &Record) -> bool {
        match self {
            Follow::All => true,
            Follow::Run(id) => match record {
                Record::RunStarted(run) => run.id == *id,
                Record::RunFinished(finish) => finish.run_id == *id,
                Record::EventAppended(event) => event.run_id == *id,
                Record::CallRecorded(_) | Record::Purge(_) | Record::DropReport(_) => false,
            },
            Follow::Session(id) => {
                matches!(record, Record::EventAppended(event) if event.run_id == *id)
            }
        }
    }
}

/// One record a subscription received.
#[derive(Clone, Debug, PartialEq)]
pub struct Followed {
    pub lsn: Lsn,
    /// Shared with the other subscriptions that received it.
    pub record: Arc<Record>,
    /// Records of this subscription's filter lost (queue full) just before this one.
    pub missed_before: u64,
}

/// Why a timed receive returned nothing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived in time.
    Timeout,
    /// The log was closed and everything queued has been received.
    Ended,
}

/// What the log and a subscription share.
#[derive(Debug)]
struct Feed {
    follow: Follow,
    queue: ArrayQueue<Followed>,
    /// Records lost because the queue was full; only grows.
    missed: AtomicU64,
    /// Set by `Subscription::drop`: publish forgets the feed.
    dropped: AtomicBool,
    /// Set when the log closes: nothing more will be published.
    ended: AtomicBool,
    unparker: Unparker,
}

/// A feed as the log holds it.
#[derive(Debug)]
struct Registered {
    feed: Arc<Feed>,
    /// Records lost since the last one delivered: carried by the next one.
    gap: u64,
    /// Something was pushed in the current batch: wake the follower once after it.
    pushed: bool,
}

/// The log's subscriptions; guarded by the log's lock.
#[derive(Debug, Default)]
pub(crate) struct Followers {
    feeds: Vec<Registered>,
}

impl Followers {
    /// Registers a subscription with a queue of `capacity` records.
    pub(crate) fn subscribe(&mut self, follow: Follow, capacity: usize) -> Result<Subscription> {
        if !(1..=FOLLOW_CAPACITY_MAX).contains(&capacity) {
            return Err(Error::InvalidConfig(format!(
                "a subscription's capacity {capacity} is outside 1..={FOLLOW_CAPACITY_MAX}"
            )));
        }
        self.forget_dropped();
        if self.feeds.len() >= FOLLOW_SUBSCRIPTIONS_MAX {
            return Err(Error::InvalidConfig(format!(
                "the log already feeds {FOLLOW_SUBSCRIPTIONS_MAX} subscriptions, the most it may"
            )));
        }
        let parker = Parker::new();
        let feed = Arc::new(Feed {
            follow,
            queue: ArrayQueue::new(capacity),
            missed: AtomicU64::new(0),
            dropped: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            unparker: parker.unparker().clone(),
        });
        self.feeds.push(Registered {
            feed: Arc::clone(&feed),
            gap: 0,
            pushed: false,
        });
        Ok(Subscription { feed, parker })
    }

    /// Whether no subscription was ever made or every one was forgotten: publishing
    /// would do nothing.
    pub(crate) fn is_idle(&self) -> bool {
        self.feeds.is_empty()
    }

    /// Subscriptions not dropped.
    pub(crate) fn n_live(&self) -> usize {
        self.feeds
            .iter()
            .filter(|r| !r.feed.dropped.load(Ordering::Relaxed))
            .count()
    }

    fn forget_dropped(&mut self) {
        self.feeds
            .retain(|r| !r.feed.dropped.load(Ordering::Relaxed));
    }

    /// Hands acknowledged records, in LSN order, to every subscription that selects
    /// them; never blocks.
    #[inline]
    pub(crate) fn publish<'r>(
        &mut self,
        acknowledged: impl IntoIterator<Item = (Lsn, &'r Record)>,
    ) {
        if self.feeds.is_empty() {
            return;
        }
        self.publish_to_feeds(acknowledged);
    }

    #[cold]
    fn publish_to_feeds<'r>(&mut self, acknowledged: impl IntoIterator<Item = (Lsn, &'r Record)>) {
        self.forget_dropped();
        for (lsn, record) in acknowledged {
            let mut shared: Option<Arc<Record>> = None;
            for registered in &mut self.feeds {
                let feed = &*registered.feed;
                if !feed.follow.matches(record) {
                    continue;
                }
                // Only this thread (holding the log's lock) pushes, so a queue that is
                // not full now has room for the push below.
                let delivered = !feed.queue.is_full() && {
                    let record = shared.get_or_insert_with(|| Arc::new(record.clone()));
                    feed.queue
                        .push(Followed {
                            lsn,
                            record: Arc::clone(record),
                            missed_before: registered.gap,
                        })
                        .is_ok()
                };
                if delivered {
                    registered.gap = 0;
                    registered.pushed = true;
                } else {
                    registered.gap += 1;
                    feed.missed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for registered in &mut self.feeds {
            if std::mem::take(&mut registered.pushed) {
                registered.feed.unparker.unpark();
            }
        }
    }

    /// Ends every subscription: the log is closing.
    pub(crate) fn end_all(&mut self) {
        for registered in self.feeds.drain(..) {
            registered.feed.ended.store(true, Ordering::Release);
            registered.feed.unparker.unpark();
        }
    }
}

/// A live follower of a log: receives the records its [`Follow`] selects, from the
/// moment it was made, as the log acknowledges them.
///
/// Bounded and lossy: when the follower falls `capacity` records behind, newer records
/// are not queued for it and are counted in [`Subscription::missed`]; the appending
/// thread never waits for it. `Send`, not `Sync`: one thread receives.
#[derive(Debug)]
pub struct Subscription {
    feed: Arc<Feed>,
    parker: Parker,
}

impl Subscription {
    /// The next record if one is queued; never blocks.
    pub fn try_recv(&self) -> Option<Followed> {
        self.feed.queue.pop()
    }

    /// Waits for the next record; `None` once the log is closed and everything queued
    /// was received.
    pub fn recv(&self) -> Option<Followed> {
        loop {
            match self.recv_timeout(Duration::from_secs(3600)) {
                Ok(followed) => return Some(followed),
                Err(RecvError::Ended) => return None,
                Err(RecvError::Timeout) => {}
            }
        }
    }

    /// Waits at most `timeout` for the next record.
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<Followed, RecvError> {
        let deadline = Instant::now() + timeout;
        loop {
            // The end flag is read before the queue: a record published before the log
            // ended is still received.
            let ended = self.feed.ended.load(Ordering::Acquire);
            if let Some(followed) = self.feed.queue.pop() {
                return Ok(followed);
            }
            if ended {
                return Err(RecvError::Ended);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RecvError::Timeout);
            }
            // A push after the pop above unparks this parker, so the park returns at
            // once (the unpark token is kept when nobody is parked).
            self.parker.park_timeout(deadline - now);
        }
    }

    /// Records this subscription's filter selected that it lost because its queue was
    /// full. Each received record tells how many were lost just before it.
    pub fn missed(&self) -> u64 {
        self.feed.missed.load(Ordering::Relaxed)
    }

    /// Records queued now.
    pub fn len(&self) -> usize {
        self.feed.queue.len()
    }

    /// Whether no record is queued now.
    pub fn is_empty(&self) -> bool {
        self.feed.queue.is_empty()
    }

    /// The most records the queue holds.
    pub fn capacity(&self) -> usize {
        self.feed.queue.capacity()
    }

    /// What this subscription follows.
    pub fn follow(&self) -> &Follow {
        &self.feed.follow
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.dropped.store(true, Ordering::Relaxed);
    }
}

// A subscription is handed to the thread that follows.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Subscription>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Run, RunEvent};

    fn event(run_id: &str, sequence: u64) -> Record {
        Record::EventAppended(RunEvent {
            run_id: run_id.into(),
            sequence,
            event_type: "step".into(),
            ..RunEvent::default()
        })
    }

    #[test]
    fn filters_select_their_records() {
        let start = Record::RunStarted(Run::new("r", "s"));
        assert!(Follow::Run("r".into()).matches(&start));
        assert!(!Follow::Session("r".into()).matches(&start));
        assert!(Follow::Session("r".into()).matches(&event("r", 1)));
        assert!(!Follow::Run("r".into()).matches(&event("r2", 1)));
        assert!(Follow::All.matches(&event("x", 1)));
    }

    #[test]
    fn a_full_queue_counts_the_gap_and_the_next_record_carries_it() {
        let mut followers = Followers::default();
        let sub = followers.subscribe(Follow::All, 2).unwrap();
        let records: Vec<Record> = (1..=5).map(|s| event("r", s)).collect();
        followers.publish(records.iter().enumerate().map(|(i, r)| (Lsn(i as u64), r)));
        assert_eq!(sub.missed(), 3);
        assert_eq!(sub.try_recv().unwrap().missed_before, 0);
        assert_eq!(sub.try_recv().unwrap().lsn, Lsn(1));
        followers.publish([(Lsn(9), &records[0])]);
        let next = sub.try_recv().unwrap();
        assert_eq!((next.lsn, next.missed_before), (Lsn(9), 3));
        assert_eq!(sub.try_recv(), None);
    }

    #[test]
    fn a_dropped_subscription_is_forgotten_and_an_ended_one_says_so() {
        let mut followers = Followers::default();
        let kept = followers.subscribe(Follow::All, 4).unwrap();
        drop(followers.subscribe(Follow::All, 4).unwrap());
        assert_eq!(followers.n_live(), 1);
        followers.publish([(Lsn(0), &event("r", 1))]);
        assert_eq!(followers.feeds.len(), 1);
        followers.end_all();
        assert!(kept.recv().is_some());
        assert_eq!(kept.recv(), None);
        assert_eq!(
            kept.recv_timeout(Duration::from_millis(1)),
            Err(RecvError::Ended)
        );
        assert!(followers.subscribe(Follow::All, 0).is_err());
    }
}
