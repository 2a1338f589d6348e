//! The disk's sequential write bandwidth: the yardstick the `bulkload` workload is held
//! against.
//!
//! A bulk load that ingests sorted tables should write each byte about once, in long
//! sequential runs, and end with one sync: at best it runs as fast as the disk can take
//! bytes. So besides its own MB/s, a `bulkload` row says what fraction of the disk's
//! sequential write bandwidth it reached ("62% of disk 475 MB/s"): near 100 % means the
//! engine is disk-bound and has little left to gain; far below means the time goes into
//! the engine's own work (a log record and a memtable insert per pair, a flush, compactions
//! rewriting the same bytes).
//!
//! [`measure`] finds the bandwidth the simple way: write one file of [`probe_bytes`] in
//! [`CHUNK`]-byte `write` calls, `fdatasync` it, and divide the bytes by the time both took.
//! Two choices make the figure honest:
//!
//! * **The sync is inside the timing.** A `write` returns when the bytes are in the
//!   operating system's page cache, not on the disk; timed alone, it measures memory
//!   copies, gigabytes per second. `fdatasync` (std's [`std::fs::File::sync_data`]) returns
//!   only when the data has reached stable storage, which is also where a bulk load ends
//!   (its contract ends with a sync). `fdatasync` rather than `fsync`: it skips the
//!   metadata a reader does not need (the modification time), as a load's own syncs may.
//! * **The file is large.** At least [`MIN_PROBE_BYTES`] (256 MiB), and as large as the
//!   load's own key and value bytes up to [`MAX_PROBE_BYTES`] (1 GiB). A small file fits in
//!   the disk's own write cache and in the page cache's dirty allowance, and its fixed costs
//!   (the file's creation, one journal commit, the device's flush) weigh on the figure; a
//!   file the size of the load meets the same limits the load meets. The cap keeps the probe
//!   to a few seconds on a slow disk.
//!
//! The file holds a pseudo-random pattern, not zeros, so a file system that compresses or
//! deduplicates cannot shrink the work. It is created in the directory the stores live in
//! (`kvbench --dir`), so the figure is that of the disk the engines write to, and removed
//! afterwards, whether the measurement succeeded or not. `kvbench` measures once per run,
//! before the first `bulkload` row, untimed.
//!
//! The figure is one sample, and a disk's speed varies: on a virtual machine, whose "disk"
//! may be a file the host caches, three `dd ... conv=fdatasync` runs in a row, of 128, 256
//! and 512 MiB, gave 305, 541 and 557 MB/s. A fraction over 100 % says that the probe met a slower moment of the disk than
//! the load did, not that the load beat the disk; compare engines within one run, against
//! the same probe.
//!
//! Megabytes here and in the report are 10^6 bytes.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use kv_shared::{Error, Result};

/// Bytes per `write` call of the probe.
pub const CHUNK: usize = 1 << 20;

/// The smallest probe file [`probe_bytes`] chooses: 256 MiB.
pub const MIN_PROBE_BYTES: u64 = 256 << 20;

/// The largest probe file [`probe_bytes`] chooses: 1 GiB.
pub const MAX_PROBE_BYTES: u64 = 1 << 30;

/// The name of the probe file inside the measured directory.
pub const PROBE_FILE: &str = "disk-bandwidth.probe";

/// The probe size for a load of `load_bytes` key and value bytes: the load's size, but at
/// least [`MIN_PROBE_BYTES`] and at most [`MAX_PROBE_BYTES`].
pub fn probe_bytes(load_bytes: u64) -> u64 {
    load_bytes.clamp(MIN_PROBE_BYTES, MAX_PROBE_BYTES)
}

/// One measurement of the disk's sequential write bandwidth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskBandwidth {
    /// Bytes written and synced.
    pub bytes: u64,
    /// Time from the first `write` to the end of the `fdatasync`.
    pub elapsed: Duration,
}

impl DiskBandwidth {
    /// The bandwidth in megabytes (10^6 bytes) per second; `None` when no time was measured.
    pub fn mb_per_sec(&self) -> Option<f64> {
        let secs = self.elapsed.as_secs_f64();
        (secs > 0.0).then(|| self.bytes as f64 / 1e6 / secs)
    }
}

/// Writes `bytes` bytes to a new file [`PROBE_FILE`] in `dir`, in [`CHUNK`]-byte writes,
/// `fdatasync`s it, and removes it; returns the bytes and the time the writes and the sync
/// took together. See the module documentation.
///
/// # Errors
/// [`Error::Io`] creating, writing, syncing or removing the file (a file left by an earlier
/// run that was killed is replaced, not an error).
pub fn measure(dir: &Path, bytes: u64) -> Result<DiskBandwidth> {
    let path = dir.join(PROBE_FILE);
    let result = write_and_sync(&path, bytes);
    let removed = std::fs::remove_file(&path).map_err(|e| Error::io(&path, e));
    let measured = result?;
    removed?;
    settle(dir)?;
    Ok(measured)
}

/// Waits until everything written to, and removed from, the file system that holds `dir`
/// is on the disk: `syncfs`, which writes back every dirty page of that file system (not
/// only this process's) and commits its journal. Two things left pending would otherwise
/// land on whatever is timed next. On a file system mounted with `discard` (as this
/// project's machine is), the commit tells the device to discard every freed block:
/// measured here, the engine whose `bulkload` came right after the probe's gigabyte was
/// removed loaded a quarter to a third slower than the same engine a moment later. And
/// pages dirtied before the run (a build's gigabyte of binaries, the engine before) are
/// written back by kernel threads that take one of this machine's two cores. `kvbench`
/// settles before its first engine starts, after the probe, and after every store it removes.
///
/// # Errors
/// [`Error::Io`] opening `dir` or syncing its file system.
pub fn settle(dir: &Path) -> Result<()> {
    let io = |e| Error::io(dir, e);
    let file = std::fs::File::open(dir).map_err(io)?;
    rustix::fs::syncfs(&file).map_err(|e| io(e.into()))
}

/// The timed part of [`measure`]: creates `path`, writes `bytes` bytes, syncs them.
fn write_and_sync(path: &Path, bytes: u64) -> Result<DiskBandwidth> {
    let io = |e| Error::io(path, e);
    let mut file = std::fs::File::create(path).map_err(io)?;
    let chunk = pattern(CHUNK);
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        file.write_all(&chunk[..n]).map_err(io)?;
        left -= n as u64;
    }
    file.sync_data().map_err(io)?;
    Ok(DiskBandwidth {
        bytes,
        elapsed: start.elapsed(),
    })
}

/// `len` pseudo-random bytes (a xorshift sequence): nothing a file system could compress.
fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_size_follows_the_load_within_its_bounds() {
        assert_eq!(probe_bytes(0), MIN_PROBE_BYTES);
        assert_eq!(probe_bytes(300 << 20), 300 << 20);
        assert_eq!(probe_bytes(5 << 30), MAX_PROBE_BYTES);
    }

    #[test]
    fn a_tiny_probe_writes_syncs_and_removes_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        // A leftover probe of a killed run is replaced.
        std::fs::write(tmp.path().join(PROBE_FILE), b"old").unwrap();
        let bytes = CHUNK as u64 * 2 + 12_345;
        let measured = measure(tmp.path(), bytes).unwrap();
        assert_eq!(measured.bytes, bytes);
        assert!(measured.elapsed > Duration::ZERO);
        assert!(measured.mb_per_sec().unwrap() > 0.0);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        let missing = measure(&tmp.path().join("no-such-dir"), 10).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }), "{missing}");
    }

    #[test]
    fn the_pattern_is_not_compressible_by_repetition() {
        let bytes = pattern(4096);
        let distinct: std::collections::BTreeSet<u8> = bytes.iter().copied().collect();
        assert!(distinct.len() > 200, "{}", distinct.len());
        assert_ne!(bytes[..2048], bytes[2048..]);
        let rate = DiskBandwidth {
            bytes: 2_000_000,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(rate.mb_per_sec(), Some(1.0));
    }
}
