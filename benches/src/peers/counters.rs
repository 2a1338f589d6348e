//! [`PeerCounters`]: the figures a peer adapter counts itself, and how they become
//! [`Stats`].
//!
//! A stage counts its own bytes through [`kv_shared::Fs`]; a peer does its I/O in its own
//! code, so its adapter counts what it can see from outside: the user bytes of every accepted
//! `put`, `delete` and batch, the `get` calls and (where the peer exposes it) the disk reads those
//! calls did, and the growth of the process's `wchar` (bytes handed to `write` calls, read
//! from `/proc/self/io` by [`crate::memory::os_bytes_written`]) since the store was opened.
//! [`PeerCounters::stats`] adds the figures that describe the store as it is now: live keys
//! and bytes from a full scan, and the directory's size and file count.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use kv_shared::{Result, Stats, WriteBatch};

use super::dir_usage::dir_usage;

/// Counters shared by the peer adapters. All methods take `&self` (relaxed atomics): the
/// figures are totals, read by `stats()`, and no ordering between them is promised.
#[derive(Debug)]
pub struct PeerCounters {
    user_bytes_written: AtomicU64,
    gets: AtomicU64,
    get_disk_reads: AtomicU64,
    os_bytes_at_open: Option<u64>,
}

/// Where an adapter's `get_disk_reads` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCounting {
    /// The adapter counts the disk reads of its gets with [`PeerCounters::count_get`].
    Counted,
    /// The peer does not say: `get_disk_reads` stays 0 and `extra["read_amp_unknown"]` is 1.
    Unknown,
}

/// Where an adapter's `disk_bytes_written` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCounting {
    /// The peer's own statistics, passed to [`PeerCounters::stats`].
    Peer(u64),
    /// The growth of the process's `wchar` since open; `extra["disk_bytes_written_from_os"]`
    /// is 1.
    ProcessIo,
}

impl PeerCounters {
    /// Counters starting now: zero, with the process's `wchar` as the baseline.
    pub fn start() -> Self {
        PeerCounters {
            user_bytes_written: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            get_disk_reads: AtomicU64::new(0),
            os_bytes_at_open: crate::memory::os_bytes_written(),
        }
    }

    /// Counts an accepted `put`: its key and value bytes.
    pub fn count_put(&self, key: &[u8], value: &[u8]) {
        self.user_bytes_written
            .fetch_add((key.len() + value.len()) as u64, Relaxed);
    }

    /// Counts an accepted `delete`: its key bytes.
    pub fn count_delete(&self, key: &[u8]) {
        self.user_bytes_written.fetch_add(key.len() as u64, Relaxed);
    }

    /// Counts an accepted batch: the key and value bytes of every op, as its puts and
    /// deletes would count them one by one.
    pub fn count_batch(&self, batch: &WriteBatch) {
        let bytes: usize = batch
            .iter()
            .map(|op| op.key.len() + op.value.map_or(0, <[u8]>::len))
            .sum();
        self.user_bytes_written.fetch_add(bytes as u64, Relaxed);
    }

    /// Counts one `get` that did `disk_reads` reads from files.
    pub fn count_get(&self, disk_reads: u64) {
        self.gets.fetch_add(1, Relaxed);
        if disk_reads > 0 {
            self.get_disk_reads.fetch_add(disk_reads, Relaxed);
        }
    }

    /// Bytes this process has handed to `write` calls since these counters started (0 where
    /// `/proc/self/io` cannot be read).
    pub fn os_bytes_written_since_start(&self) -> u64 {
        match (self.os_bytes_at_open, crate::memory::os_bytes_written()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => 0,
        }
    }

    /// The [`Stats`] of a peer whose files are under `dir` and whose live pairs `live`
    /// yields (a full scan, in any order).
    ///
    /// # Errors
    /// The scan's error; [`kv_shared::Error::Io`] reading the directory.
    pub fn stats(
        &self,
        dir: &Path,
        live: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
        writes: WriteCounting,
        reads: ReadCounting,
    ) -> Result<Stats> {
        let mut stats = Stats {
            user_bytes_written: self.user_bytes_written.load(Relaxed),
            gets: self.gets.load(Relaxed),
            get_disk_reads: self.get_disk_reads.load(Relaxed),
            ..Stats::default()
        };
        for pair in live {
            let (key, value) = pair?;
            stats.live_keys += 1;
            stats.live_data_bytes += (key.len() + value.len()) as u64;
        }
        (stats.disk_bytes, stats.file_count) = dir_usage(dir)?;
        stats.disk_bytes_written = match writes {
            WriteCounting::Peer(bytes) => bytes,
            WriteCounting::ProcessIo => {
                stats.extra.insert("disk_bytes_written_from_os".into(), 1);
                self.os_bytes_written_since_start()
            }
        };
        if reads == ReadCounting::Unknown {
            stats.get_disk_reads = 0;
            stats.extra.insert("read_amp_unknown".into(), 1);
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_user_bytes_gets_and_live_data() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::fs::write(tmp.path().join("sub").join("b"), [0u8; 28]).unwrap();
        let counters = PeerCounters::start();
        counters.count_put(b"key", b"value");
        counters.count_delete(b"gone");
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"vv").unwrap();
        batch.delete(b"gone").unwrap();
        counters.count_batch(&batch);
        counters.count_get(2);
        counters.count_get(0);
        let live = vec![
            Ok((b"k1".to_vec(), b"v".to_vec())),
            Ok((b"k22".to_vec(), Vec::new())),
        ];
        let stats = counters
            .stats(
                tmp.path(),
                live.into_iter(),
                WriteCounting::Peer(77),
                ReadCounting::Counted,
            )
            .unwrap();
        assert_eq!(stats.user_bytes_written, 3 + 5 + 4 + (1 + 2 + 4));
        assert_eq!((stats.gets, stats.get_disk_reads), (2, 2));
        assert_eq!((stats.live_keys, stats.live_data_bytes), (2, 6));
        assert_eq!((stats.disk_bytes, stats.file_count), (128, 2));
        assert_eq!(stats.disk_bytes_written, 77);
        assert!(stats.extra.is_empty());

        let unknown = counters
            .stats(
                tmp.path(),
                std::iter::empty(),
                WriteCounting::ProcessIo,
                ReadCounting::Unknown,
            )
            .unwrap();
        assert_eq!(unknown.get_disk_reads, 0);
        assert_eq!(unknown.extra.get("read_amp_unknown"), Some(&1));
        assert_eq!(unknown.extra.get("disk_bytes_written_from_os"), Some(&1));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn process_writes_are_counted_from_the_start() {
        let counters = PeerCounters::start();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), vec![7u8; 64 * 1024]).unwrap();
        assert!(counters.os_bytes_written_since_start() >= 64 * 1024);
    }

    #[test]
    fn a_failing_scan_fails_stats() {
        let tmp = tempfile::tempdir().unwrap();
        let counters = PeerCounters::start();
        let live = vec![Err(kv_shared::Error::InvalidArgument("broken".into()))];
        assert!(
            counters
                .stats(
                    tmp.path(),
                    live.into_iter(),
                    WriteCounting::ProcessIo,
                    ReadCounting::Counted
                )
                .is_err()
        );
    }
}
