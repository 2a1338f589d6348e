//! Compaction: merging sorted tables into fewer, newer ones, and what to drop on the way.
//!
//! *What* to merge is a policy, chosen by the `compaction` option; *how* is shared:
//!
//! | file | what |
//! |---|---|
//! | [`leveled`] | the default policy: levels of growing target size; one small piece of a level merged into the overlapping piece of the next |
//! | [`tiered`] | size-tiered: a handful of sorted runs; whole runs of similar size merged |
//! | [`plan`] | what a policy chooses: a [`Compaction`], tables taken from one or more levels, shallower (newer) first, and the one level where the result goes |
//! | [`merge`] | carrying it out: the merge, trivial moves, and which tombstones may go |
//! | this file | asking the configured policy: [`pick`], [`full`], [`rewrites_per_byte`] |

use crate::counters::Counters;
use crate::options::{CompactionStyle, LsmOptions};
use crate::version::{NUM_LEVELS, Version};

pub mod leveled;
pub mod merge;
pub mod plan;
#[cfg(test)]
pub(crate) mod testing;
pub mod tiered;

pub use merge::{Context, Outcome, run};
pub use plan::Compaction;

/// The compaction the configured policy wants next, if any. `pointers[n]` is the largest
/// key of the last compaction from level n (leveled's round-robin; tiered ignores it).
pub fn pick(version: &Version, options: &LsmOptions, pointers: &[Vec<u8>]) -> Option<Compaction> {
    match options.compaction {
        CompactionStyle::Leveled => leveled::pick(version, options, pointers),
        CompactionStyle::Tiered => tiered::pick(version, options),
    }
}

/// The steps of a manual full compaction, one at a time: the next compaction to run, given
/// the current version and `step`, the number of steps already run; `None` when done.
/// Leveled compacts each level in turn into the one below (`step` is the level); tiered
/// merges every run into one on the last level in a single step.
pub fn full(version: &Version, options: &LsmOptions, step: usize) -> Option<Compaction> {
    match options.compaction {
        CompactionStyle::Leveled if step < NUM_LEVELS - 1 => leveled::whole_level(version, step),
        CompactionStyle::Leveled => None,
        CompactionStyle::Tiered if step == 0 => tiered::merge_all(version),
        CompactionStyle::Tiered => None,
    }
}

/// The theoretical number of times compaction rewrites each byte written, for the tree's
/// current shape and the configured policy ([`leveled::rewrites_per_byte`],
/// [`tiered::rewrites_per_byte`]). `flushed_table_bytes` is the mean size of a flushed
/// table.
pub fn rewrites_per_byte(version: &Version, options: &LsmOptions, flushed_table_bytes: f64) -> f64 {
    match options.compaction {
        CompactionStyle::Leveled => {
            leveled::rewrites_per_byte(version, options, flushed_table_bytes)
        }
        CompactionStyle::Tiered => tiered::rewrites_per_byte(version, options, flushed_table_bytes),
    }
}

/// The write amplification theory predicts for the tree's current shape, from the bytes
/// written since open (`None` before any user byte): the WAL's and the flushes' bytes per
/// user byte as measured (they are format costs: framing, per-entry overhead, index and
/// filter), and compaction's as the policy's theory for the current level sizes
/// ([`rewrites_per_byte`]):
///
/// `theory = wal + flush × (1 + rewrites_per_byte)`
///
/// where `wal` counts every byte written (`disk_bytes_written`) that is neither a flush's
/// nor a compaction's (WAL records, and the manifest's few).
pub fn write_amp_theory(
    version: &Version,
    options: &LsmOptions,
    counters: &Counters,
    disk_bytes_written: u64,
) -> Option<f64> {
    let user = Counters::get(&counters.user_bytes_written);
    if user == 0 {
        return None;
    }
    let flushed = Counters::get(&counters.flush_bytes_written);
    let compacted = Counters::get(&counters.compaction_bytes_written);
    let wal = disk_bytes_written.saturating_sub(flushed + compacted);
    let flushes = Counters::get(&counters.flushes);
    let flushed_table_bytes = if flushes == 0 {
        options.memtable_bytes as f64
    } else {
        flushed as f64 / flushes as f64
    };
    let rewrites = rewrites_per_byte(version, options, flushed_table_bytes);
    Some((wal as f64 + flushed as f64 * (1.0 + rewrites)) / user as f64)
}
