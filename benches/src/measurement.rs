//! [`Measurement`]: the figures of one engine on one workload, one row of the report.
//!
//! This is also the schema of `kvbench --json`: an array of these objects, field names as
//! below, `null` for a figure that does not apply (no latency for `compact`, no read
//! amplification for a workload without `get`s, no peak memory off Linux).
//!
//! Amplifications are the changes in the engine's [`kv_shared::Stats`] over the timed part
//! of the workload: write amplification = disk bytes written / user bytes written, read
//! amplification = disk reads by `get` / `get` calls; space amplification is taken after the
//! workload (bytes on disk / live bytes).

use std::collections::BTreeMap;

use serde::Serialize;

/// The figures of one engine on one workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measurement {
    /// The engine's label: its spec as written (`sstable[search=linear]`).
    pub engine: String,
    /// The engine's registry name (`sstable`).
    pub engine_name: String,
    /// Every documented option with the value used, `name=value` space separated.
    pub settings: String,
    /// The workload's name.
    pub workload: String,
    /// The key-space size (`--num`).
    pub num: u64,
    /// Bytes per key.
    pub key_size: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Entries the timed part handled (written, read or deleted; for `recovery`, keys
    /// recovered): what `ops_per_sec` counts.
    pub ops: u64,
    /// Wall-clock seconds of the timed part.
    pub elapsed_secs: f64,
    /// True when the time limit stopped the workload before it finished; `ops` says how far
    /// it got.
    pub time_limited: bool,
    /// `ops` per second.
    pub ops_per_sec: Option<f64>,
    /// Median latency of one operation, in microseconds.
    pub p50_us: Option<f64>,
    /// 99th-percentile latency, in microseconds.
    pub p99_us: Option<f64>,
    /// 99.9th-percentile latency, in microseconds.
    pub p999_us: Option<f64>,
    /// Disk bytes written per user byte written, over the workload.
    pub write_amp: Option<f64>,
    /// Disk reads per `get`, over the workload; `None` (JSON `null`) when the workload made
    /// no `get`s or the engine cannot count its disk reads (see [`Self::read_amp_unknown`]).
    pub read_amp: Option<f64>,
    /// True when the workload made `get`s but the engine cannot count the disk reads they
    /// did (`extra["read_amp_unknown"] == 1`: sled, redb): the report prints `n/a` rather
    /// than a read amplification of 0.
    pub read_amp_unknown: bool,
    /// Bytes on disk per live byte, after the workload.
    pub space_amp: Option<f64>,
    /// Peak resident memory of the process during the workload, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Resident memory after the workload, in bytes.
    pub rss_bytes: Option<u64>,
    /// Bytes the engine says it wrote during the workload.
    pub disk_bytes_written: u64,
    /// Bytes the operating system says the process wrote during the workload (`wchar`).
    pub os_bytes_written: Option<u64>,
    /// True when those two differ by more than 5 % (see [`crate::memory::io_mismatch`]).
    /// Never set for an engine whose own figure is the OS's
    /// (`extra["disk_bytes_written_from_os"] == 1`: fjall, sled, redb), for which the
    /// check compares the OS's count with itself, read at another moment.
    pub io_mismatch: bool,
    /// Bytes on disk after the workload.
    pub disk_bytes: u64,
    /// Files in the store after the workload.
    pub file_count: u64,
    /// Live keys after the workload.
    pub live_keys: u64,
    /// `readwhilewriting`: the writer thread's puts per second.
    pub write_ops_per_sec: Option<f64>,
    /// `recovery`: milliseconds to open the store after a clean close.
    pub open_ms: Option<f64>,
    /// `recovery`: milliseconds to open a store of `num` keys whose writer was killed.
    pub open_after_kill_ms: Option<f64>,
    /// `recovery`: live keys in the store opened after the kill. Fewer than `num` is an
    /// error, except for an engine that is not durable against a kill as configured
    /// ([`crate::peers::Peer::survives_kill`] false: sled, redb), for which it is a note.
    pub live_keys_after_kill: Option<u64>,
    /// `bulkload`: the disk's sequential write bandwidth in MB/s (10^6 bytes), measured once
    /// per run in the stores' directory ([`crate::disk_bandwidth`]).
    pub disk_mb_per_sec: Option<f64>,
    /// `bulkload`: the load's key and value bytes per second, in MB/s (10^6 bytes).
    pub mb_per_sec: Option<f64>,
    /// `bulkload`: `mb_per_sec / disk_mb_per_sec`, the fraction of the disk's sequential
    /// write bandwidth the load reached.
    pub disk_fraction: Option<f64>,
    /// The engine's own counters after the workload ([`kv_shared::Stats::extra`]).
    pub extra: BTreeMap<String, u64>,
    /// What went wrong, when the engine failed the workload or gave a wrong answer; the
    /// figures are then incomplete.
    pub error: Option<String>,
    // The memory budget (`kvbench --budget`, see `crate::budget`), filled in by the
    // `kvbench` command line; empty or `null` for rows made otherwise.
    /// `matched` (every engine configured from one memory budget) or `own` (each engine's
    /// own defaults).
    pub budget_mode: String,
    /// The budget's cache bytes (`--cache-bytes`), in `matched` mode.
    pub budget_cache_bytes: Option<u64>,
    /// The budget's write-buffer bytes (`--write-buffer-bytes`), in `matched` mode.
    pub budget_write_buffer_bytes: Option<u64>,
    /// What the budget set on this engine and why, or why it does not apply; empty in `own`
    /// mode.
    pub budget_settings: String,
}

impl Measurement {
    /// The report's note on a `bulkload` row: the load's share of the disk's bandwidth,
    /// `62% of disk 475 MB/s`; `None` for a row without one.
    pub fn disk_note(&self) -> Option<String> {
        let fraction = self.disk_fraction?;
        let disk = self.disk_mb_per_sec?;
        Some(format!("{:.0}% of disk {disk:.0} MB/s", fraction * 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_load_row_notes_its_share_of_the_disk() {
        let mut row = Measurement::default();
        assert_eq!(row.disk_note(), None);
        row.disk_mb_per_sec = Some(475.2);
        row.mb_per_sec = Some(294.6);
        row.disk_fraction = Some(294.6 / 475.2);
        assert_eq!(row.disk_note().unwrap(), "62% of disk 475 MB/s");
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["disk_mb_per_sec"], 475.2);
        assert_eq!(json["mb_per_sec"], 294.6);
        assert!(json["disk_fraction"].as_f64().unwrap() > 0.6);
    }
}
