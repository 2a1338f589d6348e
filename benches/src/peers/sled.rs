//! [`Sled`]: the [sled] embedded database (version 0.34) as a [`kv_shared::Engine`] (a
//! [`PeerEngine`] over [`SledStore`]).
//!
//! sled is a lock-free B+tree whose pages live in a log-structured store: updates append
//! page fragments to an in-memory log buffer, a background thread writes the buffer to its
//! file, and a page cache keeps hot pages in memory. It has no bloom filters and no
//! manual compaction: its segments are cleaned in the background.
//!
//! ## Settings
//!
//! | setting | value | why |
//! |---|---|---|
//! | durability of `put`/`delete` | the write lands in sled's in-memory log buffer; sled's flusher writes it to the OS and fsyncs every 500 ms (`flush_every_ms`, sled's default; settable) | **a kill of the process loses up to the last ~500 ms of acknowledged writes**: sled cannot hand each write to the OS without an fsync, and an fsync per write is what the comparison avoids |
//! | `write` (a batch) | one `sled::Batch` through `apply_batch`: applied under sled's own lock, recovered whole or not at all | |
//! | cursors and scans | sled has no snapshots: the adapter builds them from an undo log ([`super::sled_snapshot`]), walked by a [`RangeCursor`] | while a cursor or scan is open, every write first reads the old value of each key it writes |
//! | `sync` | `Db::flush`: writes the log buffer and fsyncs | |
//! | `compact` | nothing (sled has no manual compaction; it cleans segments by itself) | |
//! | bloom filters | none (a B+tree has no use for them) | |
//! | compression | none (sled built without its `compression` feature) | |
//! | page cache | `cache_bytes`, default 1 GiB (sled's default) | |
//!
//! ## Files
//!
//! `DIR/ENGINE` and `DIR/LOCK` (the course's marker and lock), and sled's own files under
//! `DIR/sled/` (`db`, `conf`, `snap.*`, and `blobs/` for large values).
//!
//! ## Statistics
//!
//! `disk_bytes_written` is the process's `wchar` growth since open (see [`super`]), which
//! includes sled's background flushes. `get_disk_reads` is not known: sled does not count
//! the reads its page cache misses cause, so it is 0 with `extra["read_amp_unknown"] = 1`.
//!
//! ## Limits
//!
//! sled takes keys and values of any size that fits in memory (values over its blob
//! threshold go to their own files under `blobs/`); the course's limits are checked before
//! calling it.
//!
//! [sled]: https://docs.rs/sled/0.34

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_shared::{BoxCursor, Direction, KeyRange, OptionDoc, Options, Result, WriteBatch};
use sled::IVec;

use super::adapter::{PeerEngine, PeerStore, peer_error};
use super::counters::ReadCounting;
use super::range_cursor::{Bounds, RangeCursor, RangeSource, Walk, directed};
use super::sled_snapshot::{SnapshotWalk, Snapshots, UndoLog};

/// sled as a course [`kv_shared::Engine`].
pub type Sled = PeerEngine<SledStore>;

/// How long `open` tries again while sled's own file lock is still held.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A sled database (its default tree): the calls [`Sled`] makes.
pub struct SledStore {
    db: sled::Db,
    /// The live snapshots, whose undo logs the writes keep.
    snapshots: Snapshots,
    files: Arc<Path>,
}

/// The settings sled takes.
pub struct SledSettings {
    /// `cache_bytes`: the page cache's capacity.
    cache_bytes: u64,
    /// `flush_every_ms`: how often sled's flusher runs (0: never).
    flush_every_ms: u64,
}

impl SledStore {
    /// Runs `write`, which changes `keys`, keeping the live snapshots' undo logs.
    fn write_keys<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        write: impl FnOnce() -> sled::Result<()>,
    ) -> Result<()> {
        self.snapshots
            .write(&self.db, keys, write)
            .map_err(|e| peer_error(&self.files, e))
    }
}

impl PeerStore for SledStore {
    const NAME: &'static str = "sled";
    const FORMAT_VERSION: u32 = 34;
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc {
            name: "cache_bytes",
            default: "1G",
            doc: "page cache capacity (sled's cache_capacity)",
        },
        OptionDoc {
            name: "flush_every_ms",
            default: "500",
            doc: "how often sled's flusher writes and fsyncs its log buffer, 0 for never (only `sync`)",
        },
    ];
    const READS: ReadCounting = ReadCounting::Unknown;

    type Settings = SledSettings;

    fn settings(options: &Options) -> Result<SledSettings> {
        Ok(SledSettings {
            cache_bytes: options.get_or("cache_bytes", 1 << 30)?,
            flush_every_ms: options.get_or("flush_every_ms", 500)?,
        })
    }

    fn open(files: &Path, settings: SledSettings) -> Result<Self> {
        let every = settings.flush_every_ms;
        let config = sled::Config::new()
            .path(files)
            .cache_capacity(settings.cache_bytes)
            .flush_every_ms((every > 0).then_some(every));
        // The course's `LOCK` is held, so no other engine has this store open. But sled
        // releases its own file lock when its last background task for the store ends (a
        // write, or a file truncation and its fsync), which can be a while after the
        // previous `Db` was dropped on a busy machine: a refused lock is tried again.
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e)) if is_lock_refused(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                opened => break opened.map_err(|e| peer_error(files, e))?,
            }
        };
        Ok(SledStore {
            db,
            snapshots: Snapshots::default(),
            files: Arc::from(files),
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write_keys([key], || self.db.insert(key, value).map(drop))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.write_keys([key], || self.db.remove(key).map(drop))
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        // A sled batch keeps the last op on each key, as the course's batches mean.
        let mut sled_batch = sled::Batch::default();
        for op in batch.iter() {
            match op.value {
                Some(value) => sled_batch.insert(op.key, value),
                None => sled_batch.remove(op.key),
            }
        }
        let keys = batch.iter().map(|op| op.key);
        self.write_keys(keys, || self.db.apply_batch(sled_batch))
    }

    fn get(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, u64)> {
        let value = self.db.get(key).map_err(|e| peer_error(&self.files, e))?;
        Ok((value.map(|v| v.to_vec()), 0))
    }

    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        let view = SledView {
            tree: (*self.db).clone(),
            log: self.snapshots.take(),
            files: self.files.clone(),
        };
        Ok(Box::new(RangeCursor::within(view, range.clone())))
    }

    fn sync(&self) -> Result<()> {
        self.db.flush().map_err(|e| peer_error(&self.files, e))?;
        Ok(())
    }

    /// sled has no manual compaction: nothing to do.
    fn compact(&self) -> Result<()> {
        Ok(())
    }
}

/// True for sled's error when another handle holds its file lock. sled 0.34 reports it as
/// an error of kind `Other` whose message names the lock (its `Config::try_lock`).
fn is_lock_refused(error: &std::io::Error) -> bool {
    error.to_string().starts_with("could not acquire lock")
}

/// What a sled cursor reads: the tree as it is, and its snapshot's undo log.
struct SledView {
    tree: sled::Tree,
    log: Arc<UndoLog>,
    files: Arc<Path>,
}

impl RangeSource for SledView {
    type Key = IVec;
    type Value = IVec;

    fn walk(&self, bounds: Bounds<'_>, direction: Direction) -> Result<Walk<IVec, IVec>> {
        let files = self.files.clone();
        let range = self.tree.range::<&[u8], _>(bounds);
        let live = directed(
            range.map(move |pair| pair.map_err(|e| peer_error(&files, e))),
            direction,
        );
        let walk = SnapshotWalk::new(live, self.log.clone(), bounds, direction);
        Ok(Box::new(walk))
    }
}
