//! [`PeerEngine`]: the one [`Engine`] implementation every peer adapter shares, over the
//! small [`PeerStore`] trait each peer implements with its own calls.
//!
//! What is the same for every peer lives here, once:
//!
//! * the course's store directory: the `LOCK` file and the `ENGINE` marker naming the peer,
//!   with the peer's own files in `DIR/<name>/` ([`PeerEngine::open`]);
//! * the course's limits, checked before the peer is called (a key or value over them is
//!   refused with the course's error, and a `get` of an over-long key is `None`);
//! * the counters the statistics come from ([`PeerCounters`]), counted once a call has
//!   succeeded;
//! * scans as walks of a cursor ([`CursorIter`]) bounded by their range, and the answer to
//!   an empty range, so that no peer is asked for an inverted one;
//! * `close` as a `sync` before the peer is dropped;
//! * bulk loads ([`Engine::load`], see [`kv_shared::bulk`]): an input in any order goes in
//!   by batches ([`kv_shared::bulk::load_in_batches`], through the engine's `write`); an
//!   input promised sorted becomes [`SortedPairs`] (each pair checked against the limits and
//!   against the one before it, counted, and equal neighbours collapsed to the last) and
//!   goes to [`PeerStore::load_sorted`], which a peer with an ingestion of its own (fjall,
//!   RocksDB) overrides, and which by default writes the same batches.
//!
//! A [`PeerStore`] is left with what differs: how the peer reads its settings and opens its
//! files, writes, reads, hands out a snapshot cursor, syncs and compacts, ingests sorted
//! pairs if it can, and which figures of its own it adds to the statistics.

use std::path::Path;

use kv_shared::bulk::{LOAD_BATCH, check_sorted, count_pair};
use kv_shared::{
    BoxCursor, CursorIter, Direction, Engine, Error, Fs, KeyRange, LoadInput, LoadOrder,
    LoadReport, MAX_KEY_LEN, OptionDoc, Options, Result, ScanIter, Stats, StoreDir, WriteBatch,
    check_key, check_key_value,
};

use super::counters::{PeerCounters, ReadCounting, WriteCounting};

/// One peer's own calls, which [`PeerEngine`] turns into a course [`Engine`]. Every method
/// is called with arguments within the course's limits, and every range is non-empty.
pub trait PeerStore: Send + Sync + Sized + 'static {
    /// The engine name, as for [`Engine::NAME`].
    const NAME: &'static str;
    /// The peer's major version, recorded in the marker file ([`Engine::FORMAT_VERSION`]).
    const FORMAT_VERSION: u32;
    /// The options it takes ([`Engine::OPTIONS`]).
    const OPTIONS: &'static [OptionDoc];
    /// Whether its `get`s say how many blocks they read from files.
    const READS: ReadCounting;

    /// The settings read from the options, checked before any file is touched.
    type Settings;

    /// Reads and checks the settings (the option names are already known to be valid).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a value the peer cannot take.
    fn settings(options: &Options) -> Result<Self::Settings>;

    /// Opens (creating if needed) the peer's own files in `files`.
    ///
    /// # Errors
    /// The peer's error, as [`Error::Io`] or [`Error::Corruption`].
    fn open(files: &Path, settings: Self::Settings) -> Result<Self>;

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// The peer's error.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes `key`.
    ///
    /// # Errors
    /// The peer's error.
    fn delete(&self, key: &[u8]) -> Result<()>;

    /// Applies every op of `batch` (not empty) atomically, with the peer's own batch.
    ///
    /// # Errors
    /// The peer's error; nothing of the batch is applied.
    fn write(&self, batch: &WriteBatch) -> Result<()>;

    /// The value of `key`, and the blocks the peer read from files to find it (0 when it
    /// does not say, see [`PeerStore::READS`]).
    ///
    /// # Errors
    /// The peer's error.
    fn get(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, u64)>;

    /// A cursor over a snapshot of every key.
    ///
    /// # Errors
    /// The peer's error.
    fn cursor(&self) -> Result<BoxCursor<'_>> {
        self.range_cursor(&KeyRange::all())
    }

    /// A cursor over a snapshot of the keys in `range`, for a scan of it: the peer may stop
    /// reading at the range's ends.
    ///
    /// # Errors
    /// The peer's error.
    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>>;

    /// Makes every change so far durable against power loss.
    ///
    /// # Errors
    /// The peer's error.
    fn sync(&self) -> Result<()>;

    /// Runs the peer's compaction (or nothing, for a peer without one).
    ///
    /// # Errors
    /// The peer's error.
    fn compact(&self) -> Result<()>;

    /// Writes the peer's memtable out to a table now and returns `true`; a peer without a
    /// memtable (sled, redb) does nothing and returns `false`, the default.
    ///
    /// # Errors
    /// The peer's error.
    fn flush(&self) -> Result<bool> {
        Ok(false)
    }

    /// Bulk-loads `pairs` (ascending, no key twice, within the limits): when it returns
    /// `Ok`, every pair is durable against power loss. Returns the report of
    /// [`SortedPairs::report`], with the tables the load added and a line on how.
    ///
    /// The default is the course's default load: [`WriteBatch`]es of
    /// [`LOAD_BATCH`] pairs through [`PeerStore::write`], then [`PeerStore::sync`]; each batch
    /// is atomic, the load is not. A peer that can write sorted tables itself and add them to
    /// the store in one step (fjall, RocksDB) overrides it.
    ///
    /// # Errors
    /// An error of the input (a pair over a limit or out of order included), or the peer's.
    fn load_sorted(&self, pairs: &mut SortedPairs<'_>) -> Result<LoadReport> {
        let mut batch = WriteBatch::new();
        let mut batches = 0u64;
        for pair in pairs.by_ref() {
            let (key, value) = pair?;
            batch.put(&key, &value)?;
            if batch.len() == LOAD_BATCH {
                self.write(&batch)?;
                batch.clear();
                batches += 1;
            }
        }
        if !batch.is_empty() {
            self.write(&batch)?;
            batches += 1;
        }
        self.sync()?;
        let method = format!("{batches} batches of up to {LOAD_BATCH} pairs, then sync");
        Ok(pairs.report(0, method))
    }

    /// The peer's own figures for the statistics, read once per `stats` call.
    fn figures(&self) -> PeerFigures {
        PeerFigures::default()
    }
}

/// What a peer adds to its [`Stats`]: where `disk_bytes_written` comes from, and entries
/// for `extra`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFigures {
    /// The source of `disk_bytes_written`.
    pub written: WriteCounting,
    /// Entries added to [`Stats::extra`].
    pub extra: Vec<(&'static str, u64)>,
}

impl Default for PeerFigures {
    fn default() -> Self {
        PeerFigures {
            written: WriteCounting::ProcessIo,
            extra: Vec::new(),
        }
    }
}

/// A peer behind the course's [`Engine`] contract; see the module documentation.
pub struct PeerEngine<S> {
    // Field order is drop order: the peer (whose drop stops its threads and releases its own
    // lock) before the store directory's lock.
    peer: S,
    counters: PeerCounters,
    store: StoreDir,
}

impl<S: PeerStore> PeerEngine<S> {
    /// The pairs of `range` in `direction`, through a cursor bounded by it.
    fn walk(&self, range: KeyRange, direction: Direction) -> Result<ScanIter<'_>> {
        if range.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let cursor = self.peer.range_cursor(&range)?;
        Ok(Box::new(CursorIter::new(cursor, range, direction)))
    }
}

impl<S: PeerStore> Engine for PeerEngine<S> {
    const NAME: &'static str = S::NAME;
    const FORMAT_VERSION: u32 = S::FORMAT_VERSION;
    const OPTIONS: &'static [OptionDoc] = S::OPTIONS;

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(S::NAME, S::OPTIONS)?;
        let settings = S::settings(options)?;
        let fs = Fs::new(options.file_system());
        let store = StoreDir::open(&fs, dir, S::NAME, S::FORMAT_VERSION)?;
        let counters = PeerCounters::start();
        let peer = S::open(&store.join(S::NAME), settings)?;
        Ok(PeerEngine {
            peer,
            counters,
            store,
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        self.peer.put(key, value)?;
        self.counters.count_put(key, value);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.len() > MAX_KEY_LEN {
            // No such key can have been written.
            self.counters.count_get(0);
            return Ok(None);
        }
        let (value, disk_reads) = self.peer.get(key)?;
        self.counters.count_get(disk_reads);
        Ok(value)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.peer.delete(key)?;
        self.counters.count_delete(key);
        Ok(())
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        // A batch's ops were checked against the limits as they were added.
        if batch.is_empty() {
            return Ok(());
        }
        self.peer.write(batch)?;
        self.counters.count_batch(batch);
        Ok(())
    }

    fn cursor(&self) -> Result<BoxCursor<'_>> {
        self.peer.cursor()
    }

    /// The peer's own iterator, bounded by `range` (none for an empty range: some peers
    /// refuse inverted bounds).
    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        if range.is_empty() {
            return self.peer.cursor();
        }
        self.peer.range_cursor(range)
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        self.walk(range, Direction::Forward)
    }

    fn scan_rev(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        self.walk(range, Direction::Reverse)
    }

    fn sync(&self) -> Result<()> {
        self.peer.sync()
    }

    fn compact(&self) -> Result<()> {
        self.peer.compact()
    }

    fn flush(&self) -> Result<bool> {
        self.peer.flush()
    }

    fn stats(&self) -> Result<Stats> {
        let figures = self.peer.figures();
        let live = self.scan(KeyRange::all())?;
        let mut stats = self
            .counters
            .stats(self.store.path(), live, figures.written, S::READS)?;
        for (name, value) in figures.extra {
            stats.extra.insert(name.to_string(), value);
        }
        Ok(stats)
    }

    fn load(&self, input: LoadInput<'_>, order: LoadOrder) -> Result<LoadReport> {
        match order {
            LoadOrder::Sorted => {
                let mut pairs = SortedPairs::new(input, &self.counters);
                self.peer.load_sorted(&mut pairs)
            }
            // The batches go through `Engine::write`, which counts them.
            LoadOrder::Unsorted => kv_shared::bulk::load_in_batches(self, input),
        }
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}

/// The pairs of a bulk load promised sorted, as a peer's [`PeerStore::load_sorted`] takes
/// them: in ascending order with no key twice, each within the course's limits.
///
/// Every input pair is checked against the limits ([`count_pair`]) and against the key
/// before it ([`check_sorted`]: a step back is [`Error::InvalidArgument`]), and counted in
/// the load's report and in the engine's user bytes. A key that comes several times in a row
/// comes out once, with its **last** value (the contract's "the last pair wins"): the
/// ingestion APIs of fjall and RocksDB refuse a key equal to the one before it. The first
/// error ends the pairs.
pub struct SortedPairs<'a> {
    input: LoadInput<'a>,
    counters: &'a PeerCounters,
    report: LoadReport,
    /// The last pair read, held back until a pair with another key shows it is the last of
    /// its key.
    held: Option<(Vec<u8>, Vec<u8>)>,
    /// The input ended or failed: nothing more is read from it.
    ended: bool,
}

impl<'a> SortedPairs<'a> {
    /// The pairs of `input`, counted in `counters` as they are read.
    pub fn new(input: LoadInput<'a>, counters: &'a PeerCounters) -> Self {
        SortedPairs {
            input,
            counters,
            report: LoadReport::default(),
            held: None,
            ended: false,
        }
    }

    /// The load's report so far: the input pairs read and their bytes (duplicates
    /// included), with `files_added` and `method` as given.
    pub fn report(&self, files_added: u64, method: String) -> LoadReport {
        LoadReport {
            files_added,
            method,
            ..self.report.clone()
        }
    }

    /// Ends the pairs with `error`: nothing more is read, and the pair held back is
    /// dropped.
    fn fail(&mut self, error: Error) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        self.ended = true;
        self.held = None;
        Some(Err(error))
    }

    /// Checks and counts one input pair.
    fn accept(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        count_pair(&mut self.report, key, value)?;
        let previous = self.held.as_ref().map(|(k, _)| k.as_slice());
        check_sorted(previous, key, self.report.pairs)?;
        self.counters.count_put(key, value);
        Ok(())
    }
}

impl Iterator for SortedPairs<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.ended {
            let (key, value) = match self.input.next() {
                None => {
                    self.ended = true;
                    break;
                }
                Some(Ok(pair)) => pair,
                Some(Err(e)) => return self.fail(e),
            };
            if let Err(e) = self.accept(&key, &value) {
                return self.fail(e);
            }
            match self.held.replace((key, value)) {
                Some(done) if self.held.as_ref().is_some_and(|(k, _)| *k != done.0) => {
                    return Some(Ok(done));
                }
                _ => {}
            }
        }
        self.held.take().map(Ok)
    }
}

/// The settings fjall and RocksDB share, under the stages' option names: memtable and block
/// sizes, bloom filter bits per key, and block cache capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LsmSettings {
    /// `memtable_bytes`: the memtable's size before it is flushed (positive).
    pub memtable_bytes: u64,
    /// `block_bytes`: the data block size.
    pub block_bytes: u32,
    /// `bloom_bits_per_key`: 0 for no filters.
    pub bloom_bits: f64,
    /// `cache_bytes`: the block cache's capacity.
    pub cache_bytes: u64,
}

impl LsmSettings {
    /// Reads the four options with the defaults both peers have (64 MiB memtable, 4 KiB
    /// blocks, 10 bits per key, 32 MiB cache), and checks them: positive sizes, and a number
    /// of bits per key that is finite and not negative.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `engine` and the value.
    pub fn parse(engine: &str, options: &Options) -> Result<Self> {
        let settings = LsmSettings {
            memtable_bytes: options.get_or("memtable_bytes", 64 << 20)?,
            block_bytes: options.get_or("block_bytes", 4 << 10)?,
            bloom_bits: options.get_or("bloom_bits_per_key", 10.0)?,
            cache_bytes: options.get_or("cache_bytes", 32 << 20)?,
        };
        let bits = settings.bloom_bits;
        let problem = if settings.memtable_bytes == 0 || settings.block_bytes == 0 {
            "memtable_bytes and block_bytes must be positive".to_string()
        } else if !(bits.is_finite() && bits >= 0.0) {
            format!("bloom_bits_per_key must be a number >= 0, got {bits}")
        } else {
            return Ok(settings);
        };
        Err(Error::InvalidArgument(format!("{engine}: {problem}")))
    }
}

/// Wraps a peer's own error as [`Error::Io`] on `path`, keeping its message.
#[cfg(feature = "peers")]
pub fn peer_error(path: &Path, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::io(path, std::io::Error::other(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs = Vec<Result<(Vec<u8>, Vec<u8>)>>;

    /// Runs `input` through [`SortedPairs`]: what came out, and the report.
    fn sorted(input: Pairs) -> (Pairs, LoadReport) {
        let counters = PeerCounters::start();
        let mut input = input.into_iter();
        let mut pairs = SortedPairs::new(&mut input, &counters);
        let out: Vec<_> = pairs.by_ref().collect();
        (out, pairs.report(2, "how".into()))
    }

    fn pair(key: &str, value: &str) -> Result<(Vec<u8>, Vec<u8>)> {
        Ok((key.as_bytes().to_vec(), value.as_bytes().to_vec()))
    }

    #[test]
    fn sorted_pairs_keep_the_last_of_equal_keys_and_count_every_one() {
        let input = vec![
            pair("", "e"),
            pair("a", "1"),
            pair("b", "1"),
            pair("b", "22"),
            pair("c", "1"),
        ];
        let (out, report) = sorted(input);
        let out: Vec<_> = out.into_iter().map(Result::unwrap).collect();
        let expected: Vec<_> = [("", "e"), ("a", "1"), ("b", "22"), ("c", "1")]
            .iter()
            .map(|(k, v)| pair(k, v).unwrap())
            .collect();
        assert_eq!(out, expected);
        assert_eq!((report.pairs, report.bytes), (5, 1 + 2 + 2 + 3 + 2));
        assert_eq!((report.files_added, report.method.as_str()), (2, "how"));
        let (out, report) = sorted(Vec::new());
        assert!(out.is_empty() && report.pairs == 0);
    }

    #[test]
    fn sorted_pairs_end_at_the_first_bad_pair() {
        // A step back: the pair held before it is not handed out after the error.
        let (out, _) = sorted(vec![
            pair("a", "1"),
            pair("c", "1"),
            pair("b", "1"),
            pair("d", "1"),
        ]);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].as_ref().unwrap(), &pair("a", "1").unwrap());
        assert!(matches!(&out[1], Err(Error::InvalidArgument(m)) if m.contains("pair 3")));
        let long = vec![b'k'; MAX_KEY_LEN + 1];
        let (out, report) = sorted(vec![pair("a", "1"), Ok((long, Vec::new()))]);
        assert!(
            matches!(out[..], [Err(Error::KeyTooLarge { .. })]),
            "{out:?}"
        );
        assert_eq!(report.pairs, 1);
        let failing = Err(Error::InvalidArgument("input broke".into()));
        let (out, _) = sorted(vec![pair("a", "1"), failing, pair("b", "1")]);
        assert!(matches!(&out[..], [Err(Error::InvalidArgument(m))] if m == "input broke"));
    }

    #[test]
    fn lsm_settings_have_defaults_and_refuse_bad_values() {
        let defaults = LsmSettings::parse("p", &Options::new()).unwrap();
        assert_eq!(
            defaults,
            LsmSettings {
                memtable_bytes: 64 << 20,
                block_bytes: 4096,
                bloom_bits: 10.0,
                cache_bytes: 32 << 20,
            }
        );
        let error = |name: &str, value: &str| {
            let options = Options::new().set(name, value);
            LsmSettings::parse("p", &options).unwrap_err().to_string()
        };
        let positive = "p: memtable_bytes and block_bytes must be positive";
        assert!(error("block_bytes", "0").contains(positive));
        assert!(error("memtable_bytes", "0").contains(positive));
        let bits = "p: bloom_bits_per_key must be a number >= 0, got -1";
        assert!(error("bloom_bits_per_key", "-1").contains(bits));
        assert!(error("bloom_bits_per_key", "inf").contains("got inf"));
        let set = Options::new()
            .set("block_bytes", "1K")
            .set("bloom_bits_per_key", "0");
        let settings = LsmSettings::parse("p", &set).unwrap();
        assert_eq!((settings.block_bytes, settings.bloom_bits), (1024, 0.0));
    }
}
