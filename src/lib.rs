//! auditlog: an embedded audit log engine for dispatch servers.
//!
//! Records runs, run events and dispatch call events into a segmented, checksummed,
//! memory-mapped append log with crash recovery and configurable durability.
//!
//! ```no_run
//! use auditlog::{AuditLog, Config, Durability, Record, model::Run};
//!
//! let log = AuditLog::open(Config::new("./auditlog-data").durability(Durability::EveryBatch))?;
//! let lsn = log.append(&Record::RunStarted(Run::new("run-1", "summarize")))?;
//! log.flush()?;
//! assert!(matches!(log.read(lsn)?, Record::RunStarted(_)));
//! log.close()?;
//! # Ok::<(), auditlog::Error>(())
//! ```
//!
//! See `docs/ARCHITECTURE.md` for how the pieces fit and `docs/format.md` for the
//! bytes on disk.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub mod codec;
pub mod compaction;
mod config;
mod error;
#[cfg(feature = "export")]
pub mod export;
pub mod follow;
mod hint;
pub mod index;
pub mod ingest;
pub mod limits;
mod log;
pub mod model;
pub mod query;
pub mod segment;
pub mod session;
pub mod sink;
pub mod vfs;
pub mod writer;

pub use codec::{Lsn, Record, SegmentId};
pub use compaction::{CompactionReport, RetentionReport};
pub use config::{Config, Durability, RecoveryMode, Retention};
pub use error::{CorruptionKind, Error, Result};
pub use follow::{Follow, Followed, StoreFollower, Subscription};
pub use index::checkpoint::CheckpointUse;
pub use ingest::{IngestConfig, Recorded, Recorder};
pub use log::AuditLog;
pub use query::{CallFilter, RunFilter, Storage};
pub use segment::RecoveryReport;
pub use segment::hook::SealedSegmentInfo;
pub use session::{Iteration, Session, replay};
pub use sink::CallSink;
pub use writer::{CloseOutcome, RunWriter, StepObservation, TokenUsage, ToolCall};
