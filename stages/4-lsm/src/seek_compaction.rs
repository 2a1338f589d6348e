//! Seek compaction: a table that reads keep passing through is merged into the level below.
//!
//! Size is not the only cost of a tree's shape. After a burst of overwrites, a key's newest
//! version may sit in an L0 table or on L5 while its old one sits on L6: every table whose
//! key range holds the key is a place a `get` must ask (a filter probe, often a block) and a
//! place a cursor must position itself and step through, old versions included. No level
//! is over its target, so size-driven compaction leaves that shape alone, and reads pay for
//! it until the next write burst happens to rewrite it.
//!
//! LevelDB's answer is to let reads ask for compactions. Each table gets a budget of
//! **allowed seeks** when it is opened: one per [`BYTES_PER_SEEK`] of its size, at least
//! [`MIN_ALLOWED_SEEKS`] (LevelDB's reasoning: one wasted seek costs about what compacting
//! 16 KiB costs, so a table read past that often has cost more than merging it away). A
//! read that finds two or more tables holding its key in their ranges charges one seek to
//! the first of them, the newest ([`crate::version::Version::charge_read`]); the charge
//! that spends a table's last seek makes it a **seek compaction** candidate, and the
//! compaction thread, once no level is over its target, merges it into the level below
//! ([`crate::compaction::leveled::pick`]: an L0 candidate takes all of L0 with it, as every
//! L0 compaction does). The merged tables are new, with fresh budgets, and a key's versions
//! end up in fewer places: after enough reads, a store that is only read converges on its
//! last level.
//!
//! What charges, here:
//! * a `get` that the memtables did not answer (every one, as LevelDB's `Get` does);
//! * a cursor's `seek`, which positions a cursor in every table holding the target;
//! * a cursor walking on, once every [`CURSOR_SAMPLE_BYTES`] of keys and values it returns
//!   (LevelDB's read sampling in `DBIter`, with a fixed period rather than a random one).
//!
//! Compactions themselves never charge, and size-tiered compaction has no seek compactions
//! (its runs are merged by count and size). `seek_compaction=false` turns it off.
//!
//! The cost is write amplification spent on reads' behalf: a store read once after a write
//! burst rewrites the overlapping tables once more. The measured gain is in chapter 4b.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

/// Table bytes per allowed seek (LevelDB's 16 KiB).
pub const BYTES_PER_SEEK: u64 = 16 << 10;

/// The fewest seeks a table is allowed, however small (LevelDB's 100).
pub const MIN_ALLOWED_SEEKS: i64 = 100;

/// A cursor charges one seek per this many bytes of keys and values it returns.
pub const CURSOR_SAMPLE_BYTES: u64 = 1 << 20;

/// A table's budget of seeks before it asks for a compaction.
#[derive(Debug)]
pub struct SeekBudget {
    left: AtomicI64,
}

impl SeekBudget {
    /// The budget of a table of `size` bytes: `size / BYTES_PER_SEEK`, at least
    /// [`MIN_ALLOWED_SEEKS`].
    pub fn for_size(size: u64) -> SeekBudget {
        let seeks = i64::try_from(size / BYTES_PER_SEEK).unwrap_or(i64::MAX);
        SeekBudget {
            left: AtomicI64::new(seeks.max(MIN_ALLOWED_SEEKS)),
        }
    }

    /// Spends one seek; true for the charge that spent the last one (exactly one charge
    /// returns true, however many threads charge at once).
    pub fn charge(&self) -> bool {
        self.left.fetch_sub(1, Relaxed) == 1
    }

    /// True once every allowed seek is spent.
    pub fn exhausted(&self) -> bool {
        self.left.load(Relaxed) <= 0
    }

    /// The seeks left (negative once charges went on past the last one).
    pub fn left(&self) -> i64 {
        self.left.load(Relaxed)
    }
}

/// Rung by a read that spent a table's last seek; the next reader to take a snapshot wakes
/// the compaction thread (it holds the lock the thread waits under, so no wake-up is lost).
#[derive(Debug, Default)]
pub struct SeekAlarm {
    rung: AtomicBool,
}

impl SeekAlarm {
    /// Notes that a table ran out of seeks.
    pub fn ring(&self) {
        self.rung.store(true, Relaxed);
    }

    /// True if rung since the last call; clears it.
    pub fn take(&self) -> bool {
        self.rung.load(Relaxed) && self.rung.swap(false, Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_one_seek_per_16_kib_and_at_least_100() {
        assert_eq!(SeekBudget::for_size(0).left(), 100);
        assert_eq!(SeekBudget::for_size(100 * (16 << 10)).left(), 100);
        assert_eq!(SeekBudget::for_size(2 << 20).left(), 128);
    }

    #[test]
    fn only_the_charge_that_spends_the_last_seek_reports_it() {
        let budget = SeekBudget::for_size(0);
        let reported: Vec<bool> = (0..102).map(|_| budget.charge()).collect();
        assert_eq!(reported.iter().filter(|&&r| r).count(), 1);
        assert!(reported[99]);
        assert!(budget.exhausted());
    }

    #[test]
    fn the_alarm_is_taken_once() {
        let alarm = SeekAlarm::default();
        assert!(!alarm.take());
        alarm.ring();
        alarm.ring();
        assert!(alarm.take());
        assert!(!alarm.take());
    }
}
