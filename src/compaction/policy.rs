//! The compaction policy: a pure function from segment statistics to a choice.
//!
//! No I/O and no clock, so every rule is a unit test.
//!
//! # Invariants
//! - Nothing is chosen that has nothing removable.
//! - A segment is deleted only when it keeps no frame and it is not the newest sealed
//!   segment (whose end LSN is where the log continues at the next open: it is
//!   rewritten, possibly to no frame at all, so its footer keeps that end).
//! - Choices come oldest first; the active segment is never in the input.

use crate::codec::Lsn;

/// What a walk of one sealed segment found, against a snapshot of the live set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentStats {
    pub base: Lsn,
    /// Bytes of the file.
    pub len_bytes: u64,
    /// Frames that must stay (live, kept by kind, or a dead run start still pinned).
    pub n_kept_frames: u64,
    pub kept_bytes: u64,
    /// Dead frames this pass may drop.
    pub n_removable_frames: u64,
    pub removable_bytes: u64,
    /// The newest sealed segment.
    pub newest: bool,
}

/// What to do with one segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// It keeps no frame: remove the file.
    Delete,
    /// Copy the kept frames into a sparse segment and swap it in.
    Rewrite,
}

/// One decision.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub base: Lsn,
    pub action: Action,
}

/// The knobs of the policy.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Policy {
    /// Rewrite a segment once at least this share of its bytes is removable.
    pub removable_share_min: f64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            removable_share_min: crate::limits::COMPACTION_REMOVABLE_SHARE_MIN_DEFAULT,
        }
    }
}

/// Decides what to compact, oldest first.
pub fn choose(stats: &[SegmentStats], policy: &Policy) -> Vec<Choice> {
    debug_assert!(stats.windows(2).all(|w| w[0].base < w[1].base));
    stats
        .iter()
        .filter(|s| s.n_removable_frames > 0)
        .filter_map(|s| {
            let action = if s.n_kept_frames == 0 && !s.newest {
                Action::Delete
            } else if s.removable_bytes as f64 >= policy.removable_share_min * s.len_bytes as f64 {
                Action::Rewrite
            } else {
                return None;
            };
            Some(Choice {
                base: s.base,
                action,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: u64, kept: u64, removable: u64, newest: bool) -> SegmentStats {
        SegmentStats {
            base: Lsn(base),
            len_bytes: 128 + kept + removable,
            n_kept_frames: kept / 100,
            kept_bytes: kept,
            n_removable_frames: removable / 100,
            removable_bytes: removable,
            newest,
        }
    }

    #[test]
    fn dead_segments_go_mostly_dead_ones_are_rewritten_mostly_live_ones_stay() {
        let policy = Policy {
            removable_share_min: 0.25,
        };
        let stats = [
            seg(0, 0, 1000, false),
            seg(2000, 500, 500, false),
            seg(4000, 900, 100, false),
            seg(6000, 1000, 0, false),
            seg(8000, 0, 1000, true),
        ];
        assert_eq!(
            choose(&stats, &policy),
            vec![
                Choice {
                    base: Lsn(0),
                    action: Action::Delete
                },
                Choice {
                    base: Lsn(2000),
                    action: Action::Rewrite
                },
                // The newest sealed segment keeps its end LSN: rewritten, not deleted.
                Choice {
                    base: Lsn(8000),
                    action: Action::Rewrite
                },
            ]
        );
    }

    #[test]
    fn nothing_removable_means_nothing_chosen_whatever_the_threshold() {
        let policy = Policy {
            removable_share_min: 0.0,
        };
        assert!(choose(&[seg(0, 1000, 0, false), seg(2000, 0, 0, true)], &policy).is_empty());
    }
}
