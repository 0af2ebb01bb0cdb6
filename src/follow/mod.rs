//! Live follow: new records as they are written, in process or from another process.
//!
//! Where it sits: at the end of the flow, beside the index. Two followers, for two
//! situations:
//! - [`Subscription`] (`live.rs`): in the process that holds the [`AuditLog`]. The log
//!   publishes every acknowledged record to the subscriptions whose [`Follow`] selects
//!   it, through a bounded queue each, never waiting for them.
//! - [`StoreFollower`] (`store.rs`): in any process, without the store's lock. It polls
//!   the segment files and verifies every frame as recovery does, so it can follow a
//!   store another process is writing (`auditlog tail -f`).
//!
//! # Invariants
//! - Neither follower can slow or stop the writer: a subscription is fed by a
//!   non-blocking push, and the store follower only reads files.
//! - Neither returns a record that was not written: a subscription receives only
//!   acknowledged records, the store follower only frames that verify.
//!
//! [`AuditLog`]: crate::AuditLog

mod live;
mod store;

pub(crate) use live::Followers;
pub use live::{Follow, Followed, RecvError, Subscription};
pub use store::{FollowStart, StoreFollower};
