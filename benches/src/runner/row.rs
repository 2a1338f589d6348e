//! Turning a workload's [`Outcome`] and the engine's statistics before and after it into
//! one [`Measurement`] row: rates, latency percentiles, and the amplification figures.

use kv_shared::Stats;

use super::Outcome;
use crate::measurement::Measurement;
use crate::memory;

/// A workload's outcome with what was read around it.
pub(super) struct Measured {
    /// What the timed part produced.
    pub(super) outcome: Outcome,
    /// The engine's stats before the timed part.
    pub(super) before: Stats,
    /// The engine's stats after it.
    pub(super) after: Stats,
    /// Bytes the OS counted the process writing during it.
    pub(super) os_written: Option<u64>,
    /// Peak resident memory during it.
    pub(super) peak: Option<u64>,
}

/// Fills `row`'s figures from `measured`: everything but the names and sizes it already
/// holds.
pub(super) fn fill_row(row: &mut Measurement, measured: Measured) {
    let Measured {
        outcome,
        before,
        after,
        os_written,
        peak,
    } = measured;
    let (before, after) = (&before, &after);
    let secs = outcome.elapsed.as_secs_f64();
    row.ops = outcome.entries.unwrap_or(0);
    row.elapsed_secs = secs;
    row.time_limited = outcome.limited;
    row.ops_per_sec = outcome
        .entries
        .filter(|_| secs > 0.0)
        .map(|n| n as f64 / secs);
    if let Some(latency) = &outcome.latency {
        row.p50_us = latency.quantile_us(0.5);
        row.p99_us = latency.quantile_us(0.99);
        row.p999_us = latency.quantile_us(0.999);
    }
    let delta = |f: fn(&Stats) -> u64| f(after).saturating_sub(f(before));
    if outcome.reopened {
        // The counters restarted at the reopen: report what the open itself wrote.
        row.disk_bytes_written = after.disk_bytes_written;
    } else {
        row.disk_bytes_written = delta(|s| s.disk_bytes_written);
        row.write_amp = ratio(row.disk_bytes_written, delta(|s| s.user_bytes_written));
        row.read_amp = ratio(delta(|s| s.get_disk_reads), delta(|s| s.gets));
        if row.read_amp.is_some() && flag(after, "read_amp_unknown") {
            // The engine cannot count its disk reads: its 0 would read as "no reads".
            row.read_amp = None;
            row.read_amp_unknown = true;
        }
        row.os_bytes_written = os_written;
        // An engine whose figure is the OS's own count has nothing to be checked against.
        row.io_mismatch = !flag(after, "disk_bytes_written_from_os")
            && os_written.is_some_and(|os| memory::io_mismatch(row.disk_bytes_written, os));
    }
    row.space_amp = after.space_amp();
    row.peak_rss_bytes = peak;
    row.disk_bytes = after.disk_bytes;
    row.file_count = after.file_count;
    row.live_keys = after.live_keys;
    row.write_ops_per_sec = outcome.write_ops_per_sec;
    row.mb_per_sec = outcome.mb_per_sec;
    row.disk_mb_per_sec = outcome.disk_mb_per_sec;
    row.disk_fraction = outcome
        .mb_per_sec
        .zip(outcome.disk_mb_per_sec)
        .map(|(load, disk)| load / disk);
    row.open_ms = outcome.open_ms;
    row.open_after_kill_ms = outcome.open_after_kill_ms;
    row.live_keys_after_kill = outcome.live_keys_after_kill;
    row.extra = after.extra.clone();
    row.error = outcome.wrong;
}

/// True when the engine sets `extra[name]` to 1 (see [`kv_shared::Stats::extra`]).
fn flag(stats: &Stats, name: &str) -> bool {
    stats.extra.get(name) == Some(&1)
}

/// `num / den`, or `None` when `den` is 0.
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}
