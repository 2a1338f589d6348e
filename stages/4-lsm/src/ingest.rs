//! Bulk loads by table ingestion: a load's pairs written straight into tables, which join
//! the tree in one manifest edit.
//!
//! Loading a million pairs with `put` writes each byte to the WAL, inserts it in a memtable,
//! flushes it to L0, and compaction then rewrites it once per level on its way down. A load
//! knows all of its pairs at once, so it can skip every one of those steps: sort the pairs,
//! write them as tables of the tree's own format ([`crate::table`]), and add the tables to
//! the tree in one version edit, on the deepest level they may go to, where no compaction
//! ever has to move them again. This is RocksDB's `IngestExternalFile` (with the tables
//! written by the engine itself rather than by an `SstFileWriter`), and fjall's ingestion.
//!
//! ## The steps
//!
//! 1. **Sort** ([`stage`]). The input goes through [`kv_shared::external_sort::sorted_input`]:
//!    a sorted input is checked as it streams (a key out of order is
//!    [`Error::InvalidArgument`]), an unsorted one is sorted by an external merge sort in the
//!    scratch directory, using at most the engine's `memtable_bytes` option of memory (the
//!    memory a load may take is the memory a memtable may take). Either way equal keys
//!    collapse to the last one, as if the pairs had been `put` in order.
//! 2. **Write tables** ([`write_tables`]), in the scratch directory, each cut at
//!    `table_bytes` as compaction cuts its outputs, every entry a put with **one** sequence
//!    number for the whole load ([`load_seq`], below). Three threads share the work, so that
//!    the processors and the disk work at the same time: the caller's reads the input (and
//!    checks or sorts it) and hands the pairs over in batches, a second builds the tables,
//!    a third syncs each finished table while the next one is built. No lock is held:
//!    readers and writers go on as before.
//! 3. **Flush** every memtable that holds anything (always, not only a memtable whose keys
//!    overlap the load: see "Sequence numbers" for why).
//! 4. **Commit**, under the engine's writer lock, with compactions held off
//!    (`engine/load.rs`): flush what was written meanwhile, give the tables fresh file
//!    numbers and rename them into the store ([`publish`]), sync the directory, choose the
//!    level ([`pick_level`]), and append **one** version edit adding every table, with the
//!    load's sequence number as the last one used. The synced edit is the commit point. The
//!    new version and the new sequence number then become visible together, in one step
//!    under the state lock.
//! 5. **Clean up**: the scratch directory is emptied ([`Scratch`]'s `Drop`).
//!
//! ## Where the tables go: the deepest free level
//!
//! [`pick_level`] takes the deepest level L such that no table on any level from L0 to L
//! overlaps the load's key range `[smallest, largest]`; if L0 or L1 already overlaps it, L0.
//! Two things make that right:
//!
//! * **Newer above older.** A `get` stops at the first level that holds its key, and every
//!   version of a loaded key already in the tree sits in a table that overlaps the range,
//!   that is on a level below L (the memtables were flushed in step 3). The loaded pairs have
//!   the highest sequence number in the tree, so every read order (level by level for `get`,
//!   by sequence number for cursors and compactions) agrees that they win.
//! * **The level's own rule.** L1 to L6 must hold disjoint, sorted tables; the load's tables
//!   are disjoint from one another (each holds a stretch of unique, ascending keys) and,
//!   by the choice of L, from every table on L.
//!
//! On an empty store, or a load into a key range the store does not use yet, L is L6, the
//! last level: the tables are never rewritten by a compaction, and the load's write
//! amplification is 1. On L0 (the range overlaps L0 or L1) the load is an ordinary newest
//! L0 run. L0 is read newest first **by file number**; the tables take their numbers at the
//! commit, after every flush, so they are the newest. Several tables of one load on L0
//! share one sequence number, which no reader minds: their ranges are disjoint, so no key
//! is in two of them, and the order between them never decides anything.
//!
//! ## Sequence numbers
//!
//! Every entry of a table carries its sequence number, so the load must choose it before
//! its first table is written, while writes go on. It must still be **greater than every
//! sequence number in the tree at the commit**, those of writes made during the load
//! included, or a value written during the load would sit below an older loaded one.
//! [`load_seq`] therefore takes the last sequence number when the tables are started plus
//! [`SEQ_HEADROOM`] (2^32); at the commit, if fewer than that many writes came in between
//! (else the load fails, nothing changed), the counter jumps to it: the next write takes the
//! one after. The numbers skipped are never used.
//!
//! Recovery checks that the sequence numbers of the WALs run on, without a gap, from the
//! manifest's last one ([`crate::recovery`]). A jump is a gap, so the commit flushes every
//! memtable first (writers waiting), and the WALs to replay after it hold only writes made
//! after the commit, numbered from the load's number on. And a load that never commits
//! leaves no gap at all: the counter jumps only in the commit.
//!
//! ## Atomicity, and what a crash leaves
//!
//! The manifest edit that adds the tables is one record, synced: recovery replays it whole
//! or not at all. Every file it names is synced before it is written (each table, then the
//! store directory after the renames). So a crash leaves the store as it was before the
//! load, or with all of it:
//!
//! | crash during | what is on disk | the next open |
//! |---|---|---|
//! | sorting, writing tables | runs and tables in `ingest-tmp/` | empties `ingest-tmp/`: the store as before |
//! | the flushes | ordinary flushes, whole or not recorded | as after any flush: the same data |
//! | the renames, before the edit | tables in the store no manifest names | deletes them as orphans: the store as before |
//! | the edit's append | a torn last record | ignores it ([`crate::manifest`]): the store as before |
//! | after the edit | the edit, synced | the whole load |
//!
//! A load that fails without a crash leaves the store as it found it: an error of the
//! input, a key out of order or a failed table write come before anything in the store
//! changed, and the scratch directory is emptied. An error in the commit before the
//! manifest append (a rename, a table that does not open) deletes the renamed tables. A
//! failed append is treated as a background failure (task `"load"`, see the engine's
//! documentation): the manifest may or may not hold the edit, so the engine stops taking
//! writes, and reopening decides.
//!
//! ## Readers
//!
//! The tables join the tree by one version swap, and the sequence number jumps in that same
//! step: a reader sees the whole load or none of it. A cursor opened before holds its own
//! version and sequence number, so it never sees the load.
//!
//! ## The scratch directory
//!
//! `DIR/ingest-tmp/` ([`file_names::INGEST_DIR`]) holds the external sort's runs and the
//! tables being written. It is emptied after every load, successful or not, and by recovery
//! (after a crash). The directory itself stays, empty: the file layer
//! ([`kv_shared::FileSystem`]) has no call to remove a directory. Loads into one store run
//! one at a time (they share it).
//!
//! ## Against RocksDB
//!
//! RocksDB ingests files written elsewhere and stops writes for the whole ingestion; when the
//! files overlap nothing it may give them sequence number 0, and otherwise it records one
//! global sequence number for each file beside its entries. Here the engine writes the
//! tables itself, while writes go on, so the number goes into each entry and is chosen ahead
//! with headroom; writers wait only for the commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender};

use kv_shared::external_sort::sorted_input;
use kv_shared::{Error, FileRef, Fs, LoadInput, LoadOrder, LoadReport, Result};

use crate::block_cache::BlockCache;
use crate::file_names;
use crate::key::MAX_SEQ;
use crate::options::LsmOptions;
use crate::table::Table;
use crate::table::table_builder::TableBuilder;
use crate::version::{NUM_LEVELS, TableFile, Version};
use crate::version_edit::TableMeta;

/// How far above the last sequence number a load numbers its pairs: the writes that may
/// commit while its tables are written (see the module documentation).
pub const SEQ_HEADROOM: u64 = 1 << 32;

/// The store's scratch directory for one load, emptied when dropped.
#[derive(Debug)]
pub struct Scratch {
    fs: Fs,
    path: PathBuf,
}

impl Scratch {
    /// Creates the scratch directory of the store in `dir` (if missing) and empties it.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn create(fs: &Fs, dir: &Path) -> Result<Scratch> {
        let path = dir.join(file_names::INGEST_DIR);
        fs.create_dir_all(&path)?;
        clear_scratch(fs, dir)?;
        Ok(Scratch {
            fs: fs.clone(),
            path,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of staged table `number`.
    fn table(&self, number: u64) -> PathBuf {
        self.path.join(file_names::table(number))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: what stays is removed by the next load or the next open.
        if let Some(dir) = self.path.parent() {
            let _ = clear_scratch(&self.fs, dir);
        }
    }
}

/// Removes every file in the scratch directory of the store in `dir`, if it exists.
/// Returns how many there were.
///
/// # Errors
/// [`Error::Io`].
pub fn clear_scratch(fs: &Fs, dir: &Path) -> Result<u64> {
    let path = dir.join(file_names::INGEST_DIR);
    let names = match fs.list(&path) {
        Ok(names) => names,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    for name in &names {
        fs.remove_if_exists(&path.join(name))?;
    }
    Ok(names.len() as u64)
}

/// The sequence number of every pair of a load whose tables are started when the last
/// sequence number used is `last_seq`: [`SEQ_HEADROOM`] above it.
///
/// # Errors
/// [`Error::InvalidArgument`] when that passes [`MAX_SEQ`] (sequence numbers used up).
pub fn load_seq(last_seq: u64) -> Result<u64> {
    last_seq
        .checked_add(SEQ_HEADROOM)
        .filter(|&seq| seq <= MAX_SEQ)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "bulk load: sequence number {last_seq} leaves no room for a load's \
                 headroom of {SEQ_HEADROOM} below the limit {MAX_SEQ}"
            ))
        })
}

/// A load's tables, written and synced in the scratch directory, not yet in the store.
#[derive(Debug)]
pub struct Staged {
    /// The tables in key order, numbered from 1 within the scratch directory.
    pub tables: Vec<TableMeta>,
    /// The sequence number of every entry.
    pub seq: u64,
}

impl Staged {
    /// The smallest and largest key of the load (`None` for an empty load).
    pub fn key_range(&self) -> Option<(&[u8], &[u8])> {
        let first = self.tables.first()?;
        let last = self.tables.last()?;
        Some((&first.smallest, &last.largest))
    }

    /// Bytes of the tables.
    pub fn bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.size).sum()
    }
}

/// Steps 1 and 2: sorts `input` (promised `order`) in `scratch` within `memtable_bytes`,
/// and writes it as tables there, every entry numbered `seq`. Counts the input into
/// `report`.
///
/// # Errors
/// An error of the input; [`Error::InvalidArgument`] for a key out of order in a sorted
/// input; [`Error::KeyTooLarge`], [`Error::ValueTooLarge`]; [`Error::Io`]. The scratch
/// directory may then hold partial files ([`Scratch`] removes them).
pub fn stage(
    fs: &Fs,
    scratch: &Scratch,
    input: LoadInput<'_>,
    order: LoadOrder,
    seq: u64,
    options: &LsmOptions,
    report: &mut LoadReport,
) -> Result<Staged> {
    let memory = options.memtable_bytes;
    let pairs = sorted_input(input, order, fs, scratch.path(), memory, report)?;
    let tables = write_tables(fs, scratch, pairs, seq, options)?;
    Ok(Staged { tables, seq })
}

/// Pairs handed from the thread that reads a load's input to the thread that builds its
/// tables, at a time.
pub const HANDOFF_PAIRS: usize = 4096;

/// Batches of [`HANDOFF_PAIRS`] waiting for the building thread, at most: what bounds the
/// memory between the two threads (a few megabytes for small pairs).
pub const HANDOFF_DEPTH: usize = 4;

/// A batch of pairs on its way to the building thread, copied end to end into one buffer:
/// the input's own allocations are freed on the thread that made them. (Handed over one
/// by one, each pair's two allocations were freed by the other thread, and glibc's
/// allocator then locks the arena they came from against the thread allocating in it:
/// measured, the load ran at three fifths of its single-threaded speed.)
#[derive(Debug, Default)]
struct Batch {
    /// Every key and value, end to end.
    bytes: Vec<u8>,
    /// Per pair, where its key ends and where its value ends in `bytes`.
    ends: Vec<(usize, usize)>,
}

impl Batch {
    /// An empty batch with room for [`HANDOFF_PAIRS`] pairs.
    fn new() -> Batch {
        Batch {
            bytes: Vec::new(),
            ends: Vec::with_capacity(HANDOFF_PAIRS),
        }
    }

    /// Copies a pair in.
    fn push(&mut self, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.ends.push((key_end, self.bytes.len()));
    }

    /// The pairs, in order.
    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(_, end)| end));
        starts.zip(&self.ends).map(|(start, &(key_end, end))| {
            (&self.bytes[start..key_end], &self.bytes[key_end..end])
        })
    }
}

/// Writes `pairs` (ascending, unique keys) into tables in `scratch`, each started anew once
/// the one before reaches `table_bytes`, every entry a put numbered `seq`.
///
/// Three threads, a pipeline: this one reads `pairs` (whose making, checking or merging is
/// work of its own) and hands them on in batches (`hand_off`); a second builds the
/// tables (`build_tables`: blocks, filter, index, the writes); a third syncs each finished
/// table (`sync_tables`) while the next is built. Syncing each table before starting the
/// next would leave the disk or the processor idle at a time, and building on the reading
/// thread would leave the second processor idle. Every table is synced before this returns.
///
/// # Errors
/// The first error of `pairs`; [`Error::Io`] (a failed sync included); [`Error::Corruption`]
/// for keys not strictly ascending (which `pairs` promises).
pub fn write_tables(
    fs: &Fs,
    scratch: &Scratch,
    pairs: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    seq: u64,
    options: &LsmOptions,
) -> Result<Vec<TableMeta>> {
    std::thread::scope(|scope| {
        let (finished, to_sync) = std::sync::mpsc::channel::<FileRef>();
        let syncer = scope.spawn(move || sync_tables(to_sync));
        let (batches, to_build) = std::sync::mpsc::sync_channel::<Batch>(HANDOFF_DEPTH);
        let builder =
            scope.spawn(move || build_tables(fs, scratch, to_build, seq, options, &finished));
        let read = hand_off(pairs, &batches);
        drop(batches);
        let built = joined("builder", builder);
        let synced = joined("syncer", syncer);
        read?;
        let tables = built?;
        synced?;
        Ok(tables)
    })
}

/// What the load's thread `name` returned, or an error if it panicked.
fn joined<T>(name: &str, thread: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    thread.join().unwrap_or_else(|_| {
        Err(Error::background(
            "ingest",
            format!("the table {name} panicked"),
        ))
    })
}

/// Reads `pairs` into batches of [`HANDOFF_PAIRS`] and sends each to the building thread,
/// which holds at most [`HANDOFF_DEPTH`] of them waiting. Stops at the input's first error,
/// which it returns, or when the building thread has stopped (on an error of its own, which
/// it reports).
fn hand_off(
    pairs: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>,
    batches: &SyncSender<Batch>,
) -> Result<()> {
    let mut batch = Batch::new();
    for pair in pairs {
        let (key, value) = pair?;
        batch.push(&key, &value);
        if batch.ends.len() == HANDOFF_PAIRS
            && batches
                .send(std::mem::replace(&mut batch, Batch::new()))
                .is_err()
        {
            return Ok(());
        }
    }
    if !batch.ends.is_empty() {
        let _ = batches.send(batch);
    }
    Ok(())
}

/// Builds the tables of [`write_tables`] from the batches that arrive, handing each finished
/// file to `finished`.
fn build_tables(
    fs: &Fs,
    scratch: &Scratch,
    batches: Receiver<Batch>,
    seq: u64,
    options: &LsmOptions,
    finished: &Sender<FileRef>,
) -> Result<Vec<TableMeta>> {
    let mut tables = Vec::new();
    let mut builder: Option<TableBuilder> = None;
    for batch in batches {
        for (key, value) in batch.pairs() {
            let table = match &mut builder {
                Some(table) => table,
                None => {
                    let number = tables.len() as u64 + 1;
                    let path = scratch.table(number);
                    builder.insert(TableBuilder::create(fs, &path, number, options)?)
                }
            };
            table.add(key, seq, Some(value))?;
            if table.estimated_size() >= options.table_bytes
                && let Some(full) = builder.take()
            {
                tables.push(finish_table(full, finished)?);
            }
        }
    }
    if let Some(last) = builder {
        tables.push(finish_table(last, finished)?);
    }
    Ok(tables)
}

/// Finishes `table` and hands its file to the syncing thread.
fn finish_table(table: TableBuilder, finished: &Sender<FileRef>) -> Result<TableMeta> {
    let (meta, file) = table.finish_unsynced()?;
    // A closed channel means the syncer stopped on an error, which `write_tables` reports;
    // the file is then left unsynced, and the load fails.
    let _ = finished.send(file);
    Ok(meta)
}

/// Syncs every file that arrives on `files`, in order, until the sender is dropped; stops
/// at the first failure (a failed sync is final: the load fails).
///
/// # Errors
/// The first failed sync.
fn sync_tables(files: Receiver<FileRef>) -> Result<()> {
    for file in files {
        file.sync()?;
    }
    Ok(())
}

/// The level a load over `[smallest, largest]` goes to: the deepest level L such that no
/// table on L0..=L overlaps it; L0 when L0 or L1 does (see the module documentation).
pub fn pick_level(version: &Version, smallest: &[u8], largest: &[u8]) -> usize {
    let overlapped = |level: usize| {
        version
            .level(level)
            .iter()
            .any(|t| t.meta.overlaps(smallest, largest))
    };
    if overlapped(0) {
        return 0;
    }
    (1..NUM_LEVELS)
        .find(|&level| overlapped(level))
        .map_or(NUM_LEVELS - 1, |level| level - 1)
}

/// Moves the staged tables into the store in `dir`: each takes a number from `next_number`
/// and is renamed to its name, then the directory is synced and the tables are opened.
/// On an error the tables already renamed are removed again (they are in no manifest).
///
/// # Errors
/// [`Error::Io`]; [`Error::Corruption`] for a table that does not open.
pub fn publish(
    fs: &Fs,
    dir: &Path,
    scratch: &Scratch,
    staged: &Staged,
    mut next_number: impl FnMut() -> u64,
    cache: &Arc<BlockCache>,
) -> Result<Vec<Arc<TableFile>>> {
    let mut renamed = Vec::new();
    let moved = (|| {
        for meta in &staged.tables {
            let number = next_number();
            let path = dir.join(file_names::table(number));
            fs.rename(&scratch.table(meta.number), &path)?;
            renamed.push((number, path, meta));
        }
        fs.sync_dir(dir)?;
        renamed
            .iter()
            .map(|(number, path, meta)| {
                let table = Table::open(fs, path, *number, cache.clone())?;
                let meta = TableMeta {
                    number: *number,
                    ..(*meta).clone()
                };
                Ok(Arc::new(TableFile::new(meta, table, fs.clone())))
            })
            .collect::<Result<Vec<_>>>()
    })();
    if moved.is_err() {
        for (_, path, _) in &renamed {
            let _ = fs.remove_if_exists(path);
        }
    }
    moved
}

/// The report's line on how the pairs went in: `"3 tables ingested into L6 (memtable
/// flushed first)"`.
pub fn describe(tables: usize, level: usize, flushed: bool) -> String {
    let noun = if tables == 1 { "table" } else { "tables" };
    let flush = if flushed {
        " (memtable flushed first)"
    } else {
        ""
    };
    format!("{tables} {noun} ingested into L{level}{flush}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version with one table per `(level, smallest, largest)`, opened from real files.
    fn version(tables: &[(usize, &str, &str)]) -> (tempfile::TempDir, Version) {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let options = LsmOptions::parse(&kv_shared::Options::new()).unwrap();
        let cache = Arc::new(BlockCache::new(0));
        let mut levels = vec![Vec::new(); NUM_LEVELS];
        for (i, &(level, smallest, largest)) in tables.iter().enumerate() {
            let number = i as u64 + 1;
            let path = tmp.path().join(file_names::table(number));
            let mut builder = TableBuilder::create(&fs, &path, number, &options).unwrap();
            builder.add(smallest.as_bytes(), 1, Some(b"v")).unwrap();
            if largest != smallest {
                builder.add(largest.as_bytes(), 1, Some(b"v")).unwrap();
            }
            let meta: TableMeta = builder.finish().unwrap();
            let table = Table::open(&fs, &path, number, cache.clone()).unwrap();
            levels[level].push(Arc::new(TableFile::new(meta, table, fs.clone())));
        }
        (tmp, Version::from_levels(levels))
    }

    #[test]
    fn the_deepest_level_free_down_to_it() {
        let (_tmp, empty) = version(&[]);
        assert_eq!(pick_level(&empty, b"a", b"z"), NUM_LEVELS - 1);

        let (_tmp, v) = version(&[(6, "m", "n"), (3, "a", "b")]);
        assert_eq!(pick_level(&v, b"c", b"d"), 6, "overlaps nothing");
        assert_eq!(pick_level(&v, b"c", b"m"), 5, "L6 overlaps at one end");
        assert_eq!(pick_level(&v, b"b", b"c"), 2, "L3 overlaps");
        assert_eq!(
            pick_level(&v, b"0", b"z"),
            2,
            "the shallowest overlap decides"
        );

        let (_tmp, v) = version(&[(1, "a", "c"), (6, "x", "y")]);
        assert_eq!(pick_level(&v, b"b", b"b"), 0, "L1 overlaps: L0");
        let (_tmp, v) = version(&[(0, "a", "c")]);
        assert_eq!(pick_level(&v, b"c", b"d"), 0, "L0 overlaps");
        assert_eq!(pick_level(&v, b"d", b"e"), 6, "L0 elsewhere");
    }

    #[test]
    fn headroom_is_checked_against_the_limit() {
        assert_eq!(load_seq(7).unwrap(), 7 + SEQ_HEADROOM);
        assert!(load_seq(MAX_SEQ - SEQ_HEADROOM).is_ok());
        assert!(matches!(
            load_seq(MAX_SEQ - SEQ_HEADROOM + 1),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn the_method_line() {
        assert_eq!(describe(1, 6, false), "1 table ingested into L6");
        assert_eq!(
            describe(3, 0, true),
            "3 tables ingested into L0 (memtable flushed first)"
        );
    }

    #[test]
    fn a_batch_gives_back_its_pairs_empty_ones_included() {
        let pairs: [(&[u8], &[u8]); 4] = [(b"a", b"1"), (b"bb", b""), (b"", b"333"), (b"d", b"4")];
        let mut batch = Batch::new();
        for (key, value) in pairs {
            batch.push(key, value);
        }
        assert_eq!(batch.pairs().collect::<Vec<_>>(), pairs);
    }
}
