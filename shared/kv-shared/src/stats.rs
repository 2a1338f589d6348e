//! [`Stats`]: what every engine reports about itself, measured the same way.
//!
//! The three amplification figures the course compares stage by stage come from here:
//!
//! * **write amplification** = bytes written to disk / user bytes written,
//! * **space amplification** = bytes on disk / live data bytes,
//! * **read amplification** = disk reads done by `get` / number of `get` calls.
//!
//! Byte counters count since the engine was opened; sizes (`live_*`, `disk_bytes`,
//! `file_count`) describe the store as it is now.

use std::collections::BTreeMap;

use serde::Serialize;

/// A snapshot of an engine's counters and sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Key and value bytes of every accepted `put` and `delete` (a delete counts its key).
    pub user_bytes_written: u64,
    /// Bytes appended to any file by the engine (logs, tables, hints, merges, compaction).
    pub disk_bytes_written: u64,
    /// Number of live keys.
    pub live_keys: u64,
    /// Key plus value bytes of every live key.
    pub live_data_bytes: u64,
    /// Total size of the files in the store directory.
    pub disk_bytes: u64,
    /// Number of files in the store directory.
    pub file_count: u64,
    /// Calls to `get`.
    pub gets: u64,
    /// Disk reads (positioned read calls) done by those `get` calls.
    pub get_disk_reads: u64,
    /// Engine-specific counters (merges, flushes, compaction bytes, stall time, ...).
    pub extra: BTreeMap<String, u64>,
}

impl Stats {
    /// Bytes written to disk per user byte written; `None` before any write.
    pub fn write_amp(&self) -> Option<f64> {
        ratio(self.disk_bytes_written, self.user_bytes_written)
    }

    /// Bytes on disk per live byte; `None` for an empty store.
    pub fn space_amp(&self) -> Option<f64> {
        ratio(self.disk_bytes, self.live_data_bytes)
    }

    /// Disk reads per `get`; `None` before any `get`.
    pub fn read_amp(&self) -> Option<f64> {
        ratio(self.get_disk_reads, self.gets)
    }

    /// One line, `name=value` pairs, as `kv stats` and the shell print it.
    pub fn one_line(&self) -> String {
        let mut line = format!(
            "user_bytes_written={} disk_bytes_written={} live_keys={} live_data_bytes={} disk_bytes={} file_count={} gets={} get_disk_reads={}",
            self.user_bytes_written,
            self.disk_bytes_written,
            self.live_keys,
            self.live_data_bytes,
            self.disk_bytes,
            self.file_count,
            self.gets,
            self.get_disk_reads,
        );
        for (name, value) in &self.extra {
            line.push_str(&format!(" {name}={value}"));
        }
        line
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}
