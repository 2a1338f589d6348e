//! [`Sled`]: the [sled] embedded database (version 0.34) as a [`kv_shared::Engine`].
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

use std::path::{Path, PathBuf};

use kv_shared::{
    Engine, KeyRange, MAX_KEY_LEN, OptionDoc, Options, Result, ScanIter, Stats, StoreDir,
    check_key, check_key_value,
};

use super::counters::{PeerCounters, ReadCounting, WriteCounting};
use super::scan_bounds::{borrowed, empty_scan};
use super::{open_store, peer_error};

/// A sled database (its default tree) behind the course's [`Engine`] contract.
pub struct Sled {
    // Field order is drop order: the database (whose drop flushes and releases sled's
    // lock) before the store directory's lock.
    db: sled::Db,
    counters: PeerCounters,
    files: PathBuf,
    store: StoreDir,
}

impl Engine for Sled {
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

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let cache_bytes: u64 = options.get_or("cache_bytes", 1 << 30)?;
        let flush_every_ms: u64 = options.get_or("flush_every_ms", 500)?;
        let (store, files) = open_store::<Self>(dir, options)?;
        let counters = PeerCounters::start();
        let db = sled::Config::new()
            .path(&files)
            .cache_capacity(cache_bytes)
            .flush_every_ms((flush_every_ms > 0).then_some(flush_every_ms))
            .open()
            .map_err(|e| peer_error(&files, e))?;
        Ok(Sled {
            db,
            counters,
            files,
            store,
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        self.db
            .insert(key, value)
            .map_err(|e| peer_error(&self.files, e))?;
        self.counters.count_put(key, value);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.counters.count_get(0);
        if key.len() > MAX_KEY_LEN {
            return Ok(None);
        }
        let value = self.db.get(key).map_err(|e| peer_error(&self.files, e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.db
            .remove(key)
            .map_err(|e| peer_error(&self.files, e))?;
        self.counters.count_delete(key);
        Ok(())
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        if range.is_empty() {
            return Ok(empty_scan());
        }
        let bounds = borrowed(&range);
        let files = &self.files;
        Ok(Box::new(self.db.range::<&[u8], _>(bounds).map(
            move |pair| {
                let (key, value) = pair.map_err(|e| peer_error(files, e))?;
                Ok((key.to_vec(), value.to_vec()))
            },
        )))
    }

    fn sync(&self) -> Result<()> {
        self.db.flush().map_err(|e| peer_error(&self.files, e))?;
        Ok(())
    }

    /// sled has no manual compaction: nothing to do.
    fn compact(&self) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Result<Stats> {
        self.counters.stats(
            self.store.path(),
            self.scan(KeyRange::all())?,
            WriteCounting::ProcessIo,
            ReadCounting::Unknown,
        )
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}
