//! How a log is opened: directory, durability, sizes, recovery strictness, storage layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::compaction::Policy;

use crate::error::{Error, Result};
use crate::limits;
use crate::segment::hook::{SealHook, SealedSegmentInfo};
use crate::vfs::{OsVfs, Vfs};

/// When appended records become durable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Records are handed to the OS; only `flush()`, segment rolls and close sync.
    /// A process crash loses nothing handed over; a power loss may.
    None,
    /// Appends share fsyncs: an append syncs when the oldest unsynced record is at
    /// least `interval_ms` old, so while appends keep coming nothing waits longer than
    /// about the interval. An idle tail is synced by the next append, `flush`, a
    /// segment roll or close (a committer with its own timer syncs it on time).
    GroupCommit { interval_ms: u64 },
    /// Every append call is synced before it returns.
    EveryBatch,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::GroupCommit {
            interval_ms: limits::GROUP_COMMIT_INTERVAL_MS_DEFAULT,
        }
    }
}

/// What open does when it finds corruption inside the log.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Open, skip the damaged ranges and list them in the recovery report.
    #[default]
    Report,
    /// Refuse to open, naming the first damaged range.
    Strict,
}

/// How much history to keep; applied by the background worker (and by
/// [`AuditLog::apply_retention`](crate::AuditLog::apply_retention)).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Purge runs started longer ago than this.
    pub max_age: Option<Duration>,
    /// Purge the oldest runs until the live records (estimated from their frame sizes)
    /// fit in this many bytes, then compact.
    pub max_total_bytes: Option<u64>,
}

/// Everything needed to open a log.
#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub durability: Durability,
    /// Size of a segment file; the active segment is preallocated to it.
    pub segment_bytes: u64,
    /// Largest encoded record; larger ones are refused with nothing written.
    pub record_bytes_max: usize,
    pub recovery: RecoveryMode,
    /// The storage layer; tests swap in a fault-injecting one.
    pub vfs: Arc<dyn Vfs>,
    /// Write the index checkpoint after this many records, once the log has also grown
    /// by `limits::CHECKPOINT_LOG_GROWTH` times the last checkpoint's size since it (so
    /// checkpoints write at most that fraction of the log's bytes); 0 writes it only on
    /// close. Periodic checkpoints are written on a thread of their own.
    pub checkpoint_every_records: u64,
    /// Run compaction and retention on a background thread every this many ms; `None`
    /// runs them only when asked (`compact`, `apply_retention`).
    pub compaction_interval_ms: Option<u64>,
    /// What compaction rewrites.
    pub compaction_policy: Policy,
    pub retention: Retention,
    /// Verify every frame at open even below a valid checkpoint's coverage. Off by
    /// default: there, open verifies only segment headers and each frame is verified
    /// when read. Strict recovery always verifies every frame.
    pub verify_all_at_open: bool,
    /// Map every page of the sealed segments into the process at open, so the first
    /// query to read each page does not take a page fault for it. Off by default: it
    /// adds about 0.16 s per GB of segments to open (measured in docs/benchmarks.md),
    /// and it only changes first reads; a long-running process reaches the same state
    /// as its queries touch the log.
    pub prefault_segments: bool,
    /// Fault the sealed segments found at open into the process on a thread of their
    /// own (`auditlog-warmer`, newest segment first), and meanwhile read the parts not
    /// yet faulted in with positioned reads: a first read just after an open then costs
    /// about 1 µs more rather than a 4 µs page fault. On by default. It warms at most
    /// `limits::WARM_SEGMENTS_MAX` segments and `limits::WARM_BYTES_MAX` bytes, keeps
    /// their files open until they are warm, keeps its thread busy for 6–50 ms per GB
    /// of segments after open (measured in docs/benchmarks.md), and maps them into the
    /// process, as queries reading them would. It reads nothing from disk: a segment
    /// not all in the page cache is read through its map, as without warming. Moot with
    /// `prefault_segments`.
    pub warm_segments: bool,
    /// Told about every segment sealed by a roll or by close, with its path, size and
    /// SHA-256, so a shipper can move sealed segments off the machine.
    pub on_segment_sealed: Option<SealHook>,
}

impl Config {
    /// The defaults for a store in `dir`.
    pub fn new(dir: impl AsRef<Path>) -> Config {
        Config {
            dir: dir.as_ref().to_path_buf(),
            durability: Durability::default(),
            segment_bytes: limits::SEGMENT_BYTES_DEFAULT,
            record_bytes_max: limits::RECORD_BYTES_MAX_DEFAULT,
            recovery: RecoveryMode::default(),
            vfs: Arc::new(OsVfs),
            checkpoint_every_records: limits::CHECKPOINT_EVERY_RECORDS_DEFAULT,
            compaction_interval_ms: None,
            compaction_policy: Policy::default(),
            retention: Retention::default(),
            verify_all_at_open: false,
            prefault_segments: false,
            warm_segments: true,
            on_segment_sealed: None,
        }
    }

    /// Sets the durability mode.
    pub fn durability(mut self, durability: Durability) -> Config {
        self.durability = durability;
        self
    }

    /// Sets the segment size.
    pub fn segment_bytes(mut self, bytes: u64) -> Config {
        self.segment_bytes = bytes;
        self
    }

    /// Sets the record size limit.
    pub fn record_bytes_max(mut self, bytes: usize) -> Config {
        self.record_bytes_max = bytes;
        self
    }

    /// Sets what open does about corruption.
    pub fn recovery(mut self, mode: RecoveryMode) -> Config {
        self.recovery = mode;
        self
    }

    /// Sets the storage layer.
    pub fn vfs(mut self, vfs: Arc<dyn Vfs>) -> Config {
        self.vfs = vfs;
        self
    }

    /// Sets how many records are appended between index checkpoints (0: only on close);
    /// see [`Config::checkpoint_every_records`](Config#structfield.checkpoint_every_records).
    pub fn checkpoint_every_records(mut self, n_records: u64) -> Config {
        self.checkpoint_every_records = n_records;
        self
    }

    /// Runs compaction and retention on a background thread every `interval_ms`.
    pub fn background_compaction(mut self, interval_ms: u64) -> Config {
        self.compaction_interval_ms = Some(interval_ms);
        self
    }

    /// Sets what compaction rewrites.
    pub fn compaction_policy(mut self, policy: Policy) -> Config {
        self.compaction_policy = policy;
        self
    }

    /// Sets the retention policy.
    pub fn retention(mut self, retention: Retention) -> Config {
        self.retention = retention;
        self
    }

    /// Sets whether open verifies every frame even below a checkpoint's coverage.
    pub fn verify_all_at_open(mut self, verify: bool) -> Config {
        self.verify_all_at_open = verify;
        self
    }

    /// Sets whether open maps every page of the sealed segments in at once.
    pub fn prefault_segments(mut self, prefault: bool) -> Config {
        self.prefault_segments = prefault;
        self
    }

    /// Sets whether the sealed segments found at open are faulted in in the background.
    pub fn warm_segments(mut self, warm: bool) -> Config {
        self.warm_segments = warm;
        self
    }

    /// Registers a callback run for every segment sealed by a roll or by close, after
    /// the file is synced, with its path, size and SHA-256 digest. It runs on the
    /// appending thread under the log's lock: keep it quick (send the info to a channel)
    /// and do not call into the log from it. Only the last registered callback is kept.
    pub fn on_segment_sealed(
        mut self,
        hook: Arc<dyn Fn(&SealedSegmentInfo) + Send + Sync>,
    ) -> Config {
        self.on_segment_sealed = Some(SealHook(hook));
        self
    }

    /// Checks every value against the bounds in `limits`.
    pub fn validate(&self) -> Result<()> {
        let invalid = |why: String| Err(Error::InvalidConfig(why));
        if !(limits::RECORD_BYTES_MAX_FLOOR..=limits::RECORD_BYTES_MAX_CEILING)
            .contains(&self.record_bytes_max)
        {
            return invalid(format!(
                "record_bytes_max {} is outside {}..={}",
                self.record_bytes_max,
                limits::RECORD_BYTES_MAX_FLOOR,
                limits::RECORD_BYTES_MAX_CEILING
            ));
        }
        if !(limits::SEGMENT_BYTES_MIN..=limits::SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return invalid(format!(
                "segment_bytes {} is outside {}..={}",
                self.segment_bytes,
                limits::SEGMENT_BYTES_MIN,
                limits::SEGMENT_BYTES_MAX
            ));
        }
        let largest_frame = limits::SEGMENT_HEADER_BYTES
            + limits::FRAME_HEADER_BYTES
            + self.record_bytes_max as u64;
        if largest_frame > self.segment_bytes {
            return invalid(format!(
                "segment_bytes {} cannot hold one record of record_bytes_max {} (needs {largest_frame})",
                self.segment_bytes, self.record_bytes_max
            ));
        }
        if let Durability::GroupCommit { interval_ms } = self.durability {
            if interval_ms == 0 || interval_ms > limits::GROUP_COMMIT_INTERVAL_MS_MAX {
                return invalid(format!(
                    "group commit interval {interval_ms} ms is outside 1..={}",
                    limits::GROUP_COMMIT_INTERVAL_MS_MAX
                ));
            }
        }
        if let Some(interval_ms) = self.compaction_interval_ms {
            if !(limits::COMPACTION_INTERVAL_MS_MIN..=limits::COMPACTION_INTERVAL_MS_MAX)
                .contains(&interval_ms)
            {
                return invalid(format!(
                    "compaction interval {interval_ms} ms is outside {}..={}",
                    limits::COMPACTION_INTERVAL_MS_MIN,
                    limits::COMPACTION_INTERVAL_MS_MAX
                ));
            }
        }
        let share = self.compaction_policy.removable_share_min;
        if !(0.0..=1.0).contains(&share) {
            return invalid(format!(
                "compaction removable share {share} is outside 0..=1"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_enforced() {
        Config::new("x").validate().unwrap();
        assert!(Config::new("x").record_bytes_max(10).validate().is_err());
        assert!(Config::new("x").segment_bytes(1).validate().is_err());
        assert!(
            Config::new("x")
                .segment_bytes(8 << 10)
                .record_bytes_max(1 << 20)
                .validate()
                .is_err()
        );
        assert!(
            Config::new("x")
                .durability(Durability::GroupCommit { interval_ms: 0 })
                .validate()
                .is_err()
        );
    }
}
