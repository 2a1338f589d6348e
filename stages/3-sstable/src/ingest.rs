//! Bulk loads by table ingestion: what [`crate::SstableStore`] does for
//! [`kv_shared::Engine::load`].
//!
//! Putting a million pairs one `put` at a time writes each of them twice before it is at
//! rest, once into the WAL and once into the table its memtable becomes, and spends a lock,
//! a log record and a memtable insert on every pair. A load does neither: it streams the
//! pairs, sorted, straight into new tables with the same [`TableBuilder`] a flush uses, and
//! then adds those tables to the store all at once (RocksDB calls this ingesting external
//! files). Each byte is written once, in its final place.
//!
//! ## Loaded pairs are the newest: the flush first, and the WAL numbers
//!
//! A load behaves as if its pairs were `put` after everything already in the store: a
//! later `get` returns the loaded value, even for a key deleted just before the load. Two
//! things decide what is newer in this stage, and the load has to fit both:
//!
//! * **Reads** look in the memtable first, then the tables newest first. A key written
//!   before the load and still in the memtable would shadow the loaded value. So the load
//!   starts by **flushing the memtable** (and a frozen one a failed flush left behind): what
//!   was written before the load becomes a table like any other, older than the load's.
//! * **Recovery** orders tables by the range of WAL numbers in their footers
//!   ([`crate::recovery`]): a newer table holds higher numbers. After the flush, the
//!   memtable is empty and its range starts at the current WAL, `n`, above every table's.
//!   The load takes its table numbers `t1 < t2 < ... < tk` from the store's one counter,
//!   and each table claims the numbers from the end of the one before: the first
//!   `n ..= t1`, the second `t1 + 1 ..= t2`, and so on, as consecutive flushes do. So the
//!   load's tables are newer than every table before, and the current WAL `n` (empty, as
//!   the flush left it) lies in the first table's range, where recovery deletes it unread.
//!   Writes after the load need a WAL above `tk`: a new one is created before the load
//!   commits.
//!
//! The loaded tables never overlap one another in keys, so their order among themselves
//! does not matter; they go in front of every other table, newest last-numbered first.
//!
//! ## The steps
//!
//! 1. **Sort** ([`kv_shared::external_sort::sorted_input`]). A sorted input is checked as
//!    it streams (a key out of order is [`Error::InvalidArgument`]) and equal neighbours
//!    collapse to the last. An unsorted input goes through an external merge sort whose run
//!    files live in the store's scratch directory [`SORT_DIR`], within `memtable_bytes` of
//!    memory; it runs before the write lock is taken, so writers wait only for the steps
//!    below.
//! 2. **Flush** the memtable, under the write lock (held to the end: writers wait for the
//!    load, readers do not).
//! 3. **Write the tables** under their temporary names, `NNNNNN.sst.tmp`, in the store
//!    directory, cutting a new table each time one holds `memtable_bytes` of keys and
//!    values (the size a flush gives). Each table is synced when it is finished.
//! 4. **Create the WAL** that takes the writes after the load (synced, its directory too).
//! 5. **Commit**: write the **load record** `NNNNNN.load`, which lists the tables, with
//!    [`Fs::write_atomic`]: written under `NNNNNN.load.tmp`, synced, renamed, the directory
//!    synced. The rename is the commit point: before it the load does not exist, after it
//!    the whole load does.
//! 6. **Move the tables into place**: each `NNNNNN.sst.tmp` is renamed to `NNNNNN.sst`,
//!    then the directory is synced (so the load is durable when `load` returns), and the
//!    tables are opened.
//! 7. **Switch**: the new WAL and a new, empty memtable take the writes; the tables join
//!    the list readers use, in front, all in one swap; then the record and the old WAL are
//!    removed (best effort: the next open removes them if this fails).
//!
//! A cursor opened before step 7 keeps its snapshot and never sees the load; one opened
//! after sees all of it.
//!
//! ## Why a record, and why the tables are not in a scratch directory
//!
//! Stage 3 has no list of its tables: the directory *is* the list, and a table is part of
//! the store when its name `NNNNNN.sst` is there. One table can join atomically (a rename),
//! but a load may make several, and a crash between two renames would leave part of the
//! load. The load record is the one file whose rename commits them all. On open,
//! [`finish_committed_loads`] runs before anything else: for each record it renames the
//! tables it lists that are still under their temporary names, syncs the directory and
//! removes the record. Every other `*.tmp` file is then removed as usual, which rolls back
//! a load that never reached its commit point.
//!
//! The tables are written in the store directory itself, not in a scratch directory moved
//! into place afterwards: a rename from one directory to another changes two directories,
//! and neither POSIX nor the file layer's crash model ([`kv_shared::file_system`]) keeps
//! two directories' changes in order, so a crash could keep the removal from one and lose
//! the addition to the other, and the table with it. The scratch directory holds only the
//! external sort's runs, which a crash may lose without harm. Its files are removed after
//! each load and on open; the directory itself stays, empty, as `lost/` does, since the file
//! layer removes files, not directories.
//!
//! | a crash during | the directory holds | the next open |
//! |---|---|---|
//! | steps 1 to 4 | some `NNNNNN.sst.tmp`, maybe a new empty WAL | removes them: the store as before the load |
//! | step 5, before the rename reached the disk | the same and `NNNNNN.load.tmp` | the same |
//! | step 5 after it, or step 6 | the record; some tables renamed, some not | renames the rest, removes the record: the whole load |
//! | step 7 | the whole load; maybe the record | removes the record |
//!
//! ## When a step fails without a crash
//!
//! A failure in steps 1 to 4 (an input error, a key out of order, a full disk) removes the
//! temporary tables and leaves the store as it was, the memtable flushed. A failure in
//! step 5 may come after the rename happened (its directory sync failed): the load first
//! tries to remove the record, and if that works, the store is as it was. If it does not,
//! or if step 6 fails, the load's fate on disk is only known at the next open, yet writes
//! must go on. The store then switches to the new WAL with a memtable whose range starts
//! where the load's does: the next flush writes a table that claims all of the load's
//! numbers, and recovery treats tables whose range lies inside a newer table's as the
//! inputs of a finished compaction and removes them. So the store shows the whole load
//! after a reopen only until its next flush, and never a part of it: before the load, or
//! all of it.
//!
//! ## Memory
//!
//! The external sort's buffer (`memtable_bytes`), one data block, and the index of the
//! table being written (one entry per block; every open table keeps its index in memory
//! anyway).
//!
//! ## The load record, byte by byte
//!
//! Integers are little-endian. The file is small and read whole.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `KVSSTLOD` |
//! | 8 | 4 | format version, `u32` (1) |
//! | 12 | 4 | `k`, the number of tables, `u32` |
//! | 16 | 8 × `k` | the tables' file numbers, `u64` each, ascending |
//! | 16 + 8 × `k` | 4 | CRC32 of every byte before it, `u32` |

use std::path::Path;
use std::sync::Arc;

use kv_shared::bulk::{LoadInput, LoadOrder, LoadReport};
use kv_shared::external_sort::sorted_input;
use kv_shared::framing::{ByteReader, DecodeError, put_crc, put_magic_version};
use kv_shared::{Error, Fs, Result};

use crate::SstableStore;
use crate::engine::Writer;
use crate::file_names::{SORT_DIR, load_record_number, load_record_path, table_path, wal_path};
use crate::table::Table;
use crate::table_builder::{TableBuilder, temp_path};
use crate::unpoisoned;
use crate::wal::{WAL_KIND, Wal};

/// The first eight bytes of a load record.
pub const LOAD_MAGIC: &[u8; 8] = b"KVSSTLOD";
/// The load record format version this build writes and reads.
pub const LOAD_VERSION: u32 = 1;

/// A key and its value, as a load streams them.
type Pair = (Vec<u8>, Vec<u8>);

/// A table a load has written, under its temporary name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LoadedTable {
    /// Its file number.
    number: u64,
    /// Bytes in the file.
    file_bytes: u64,
}

/// What the store-side steps of a load did, for its report.
#[derive(Debug, Default)]
struct Ingested {
    tables: u64,
    file_bytes: u64,
    flushed: bool,
}

impl SstableStore {
    /// The load, steps 1 to 7 of the module documentation.
    pub(crate) fn ingest(&self, input: LoadInput<'_>, order: LoadOrder) -> Result<LoadReport> {
        let mut report = LoadReport::default();
        let scratch = self.dir.join(SORT_DIR);
        if order == LoadOrder::Unsorted {
            self.fs.create_dir_all(&scratch)?;
        }
        let memory = usize::try_from(self.options.memtable_bytes).unwrap_or(usize::MAX);
        let result = sorted_input(input, order, &self.fs, &scratch, memory, &mut report)
            .and_then(|pairs| self.ingest_sorted(pairs));
        if order == LoadOrder::Unsorted {
            // Best effort: the sort removes its runs itself, and the next open clears them.
            let _ = clear_sort_dir(&self.fs, self.dir.path());
        }
        let done = result?;
        self.count_load(report.bytes, done.file_bytes);
        report.files_added = done.tables;
        report.method = method(&done);
        Ok(report)
    }

    /// Steps 2 to 7, on pairs with ascending, distinct keys.
    fn ingest_sorted(&self, mut pairs: impl Iterator<Item = Result<Pair>>) -> Result<Ingested> {
        let mut w = unpoisoned(self.writer.lock());
        let first = match pairs.next() {
            Some(first) => first?,
            // Nothing to load; the load still ends with what `sync` does.
            None => return w.wal.sync().map(|()| Ingested::default()),
        };
        let flushed = self.flush_all_locked(&mut w)?;
        let first_wal = w.mem.first_wal();
        let (fs, dir) = (&self.fs, self.dir.path());
        let pairs = std::iter::once(Ok(first)).chain(pairs);
        let tables = write_tables(self, first_wal, pairs)?;
        let wal_number = self.take_number();
        let wal = Wal::create(fs, &wal_path(dir, wal_number), WAL_KIND)
            .inspect_err(|_| discard(fs, dir, &tables))?;
        let numbers: Vec<u64> = tables.iter().map(|t| t.number).collect();
        let record = load_record_path(dir, self.take_number());
        if let Err(e) = fs.write_atomic(&record, &encode_record(&numbers)) {
            return Err(self.commit_failed(&mut w, wal, first_wal, &tables, &record, e));
        }
        let opened = match move_into_place(fs, dir, &numbers) {
            Ok(opened) => opened,
            Err(e) => {
                // Committed on disk, not shown: hand the load's numbers to the next flush.
                self.switch_after_load(&mut w, wal, first_wal, Vec::new());
                return Err(e);
            }
        };
        self.switch_after_load(&mut w, wal, wal_number, opened);
        // Best effort, both: the next open removes a record whose tables are in place, and
        // the WALs in the load's range (the one current before the load).
        let _ = fs.remove(&record);
        if let Some(&first_table) = numbers.first() {
            let _ = self.remove_wals(first_wal, first_table);
        }
        Ok(Ingested {
            tables: tables.len() as u64,
            file_bytes: tables.iter().map(|t| t.file_bytes).sum(),
            flushed,
        })
    }

    /// Step 5 failed with `error`: undoes the commit if it can (the store as before the
    /// load), or else leaves the load to the next open and the next flush (see "When a step
    /// fails without a crash"). Returns `error`.
    fn commit_failed(
        &self,
        w: &mut Writer,
        wal: Wal,
        first_wal: u64,
        tables: &[LoadedTable],
        record: &Path,
        error: Error,
    ) -> Error {
        let (fs, dir) = (&self.fs, self.dir.path());
        let undone = fs
            .remove_if_exists(record)
            .and_then(|()| fs.remove_if_exists(&temp_path(record)))
            .and_then(|()| fs.sync_dir(dir));
        if undone.is_ok() {
            discard(fs, dir, tables);
            let path = wal.path().to_path_buf();
            drop(wal);
            // Best effort: an empty WAL newer than the current one is harmless (recovery
            // replays it and finds nothing; the next flush's range covers it).
            let _ = fs.remove_if_exists(&path);
        } else {
            self.switch_after_load(w, wal, first_wal, Vec::new());
        }
        error
    }
}

/// The report's one line on how the pairs went in.
fn method(done: &Ingested) -> String {
    if done.tables == 0 {
        return "no pairs: nothing ingested".to_string();
    }
    let plural = if done.tables == 1 { "" } else { "s" };
    let memtable = if done.flushed {
        "memtable flushed first"
    } else {
        "memtable was empty"
    };
    format!("{} table{plural} ingested ({memtable})", done.tables)
}

/// The table a load is writing, and the key and value bytes in it so far.
struct OpenTable {
    number: u64,
    builder: TableBuilder,
    bytes: u64,
}

/// Step 3: writes `pairs` (ascending, distinct keys) into tables under their temporary
/// names, each claiming the WAL numbers from the end of the one before (the first from
/// `first_wal`) to its own number. On error, removes every file it made.
fn write_tables(
    store: &SstableStore,
    first_wal: u64,
    pairs: impl Iterator<Item = Result<Pair>>,
) -> Result<Vec<LoadedTable>> {
    let (fs, dir) = (&store.fs, store.dir.path());
    let mut done = Vec::new();
    let mut open: Option<OpenTable> = None;
    let write = || -> Result<()> {
        let mut range_start = first_wal;
        for pair in pairs {
            let (key, value) = pair?;
            let table = match &mut open {
                Some(table) => table,
                None => {
                    let number = store.take_number();
                    let path = temp_path(&table_path(dir, number));
                    // Listed before it is made, so a failure removes even a half-made file.
                    done.push(LoadedTable {
                        number,
                        file_bytes: 0,
                    });
                    let builder = TableBuilder::new(fs.create(&path)?, store.options.block_bytes);
                    open.insert(OpenTable {
                        number,
                        builder,
                        bytes: 0,
                    })
                }
            };
            table.builder.add(&key, Some(&value))?;
            table.bytes += (key.len() + value.len()) as u64;
            if table.bytes >= store.options.memtable_bytes
                && let Some(full) = open.take()
            {
                finish(full, &mut range_start, &mut done)?;
            }
        }
        match open.take() {
            Some(last) => finish(last, &mut range_start, &mut done),
            None => Ok(()),
        }
    };
    match write() {
        Ok(()) => Ok(done),
        Err(e) => {
            discard(fs, dir, &done);
            Err(e)
        }
    }
}

/// Finishes (and syncs) `table`, whose WAL range starts at `range_start`, and records its
/// size in `done`, whose last entry it is; the next table's range starts after its number.
fn finish(table: OpenTable, range_start: &mut u64, done: &mut [LoadedTable]) -> Result<()> {
    let summary = table.builder.finish(*range_start, table.number)?;
    *range_start = table.number + 1;
    if let Some(last) = done.last_mut() {
        last.file_bytes = summary.file_bytes;
    }
    Ok(())
}

/// Removes a load's tables from under their temporary names (best effort: the next open
/// removes whatever is left, as no record names them).
fn discard(fs: &Fs, dir: &Path, tables: &[LoadedTable]) {
    for table in tables {
        let _ = fs.remove_if_exists(&temp_path(&table_path(dir, table.number)));
    }
}

/// Step 6: renames each table of `numbers` from its temporary name to its own, syncs the
/// directory and opens the tables. Returns them newest (highest number) first.
fn move_into_place(fs: &Fs, dir: &Path, numbers: &[u64]) -> Result<Vec<Arc<Table>>> {
    rename_committed(fs, dir, numbers)?;
    let mut tables = numbers
        .iter()
        .map(|&n| Table::open(fs, &table_path(dir, n), n).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    tables.reverse();
    Ok(tables)
}

/// Renames each table of `numbers` still under its temporary name to its own name, then
/// syncs the directory. A table no longer under its temporary name was renamed before (by
/// an open that crashed, or by the load itself).
fn rename_committed(fs: &Fs, dir: &Path, numbers: &[u64]) -> Result<()> {
    for &n in numbers {
        let to = table_path(dir, n);
        let from = temp_path(&to);
        if fs.open_if_exists(&from)?.is_some() {
            fs.rename(&from, &to)?;
        }
    }
    fs.sync_dir(dir)
}

/// On open, before anything else: finishes every load that reached its commit point (its
/// record is there), renaming its tables into place and removing its record, and removes
/// the files of the external sort's scratch directory. Returns the highest file number a
/// record named (itself or a table), 0 without one, so that no number is used twice.
///
/// # Errors
/// [`Error::Corruption`] for a damaged record (it was synced before it was renamed, so no
/// crash explains damage); [`Error::Io`].
pub fn finish_committed_loads(fs: &Fs, dir: &Path) -> Result<u64> {
    let mut highest = 0;
    for name in fs.list(dir)? {
        let Some(number) = load_record_number(&name) else {
            continue;
        };
        let path = dir.join(&name);
        let tables =
            decode_record(&fs.read_all(&path)?).map_err(|e| e.into_corruption(&path, 0))?;
        rename_committed(fs, dir, &tables)?;
        fs.remove(&path)?;
        highest = tables.into_iter().fold(highest.max(number), u64::max);
    }
    clear_sort_dir(fs, dir)?;
    Ok(highest)
}

/// Removes the files in the scratch directory [`SORT_DIR`], if there is one.
fn clear_sort_dir(fs: &Fs, dir: &Path) -> Result<()> {
    let scratch = dir.join(SORT_DIR);
    let names = match fs.list(&scratch) {
        Ok(names) => names,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for name in names {
        fs.remove_if_exists(&scratch.join(name))?;
    }
    Ok(())
}

/// The bytes of a load record listing `numbers` (see the module documentation).
///
/// # Panics
/// With more than `u32::MAX` tables, which no load of this course comes near.
pub fn encode_record(numbers: &[u64]) -> Vec<u8> {
    let count = u32::try_from(numbers.len()).expect("a load makes fewer than 2^32 tables");
    let mut out = Vec::with_capacity(20 + 8 * numbers.len());
    put_magic_version(&mut out, LOAD_MAGIC, LOAD_VERSION);
    out.extend_from_slice(&count.to_le_bytes());
    for n in numbers {
        out.extend_from_slice(&n.to_le_bytes());
    }
    put_crc(&mut out);
    out
}

/// The table numbers a load record lists.
///
/// # Errors
/// [`DecodeError`] for a wrong magic or version, a count the file cannot hold, a checksum
/// mismatch or bytes after the checksum.
pub fn decode_record(bytes: &[u8]) -> std::result::Result<Vec<u64>, DecodeError> {
    let mut r = ByteReader::past_magic_version(bytes, LOAD_MAGIC, LOAD_VERSION, "load record")?;
    let count = u64::from(r.u32("table count")?);
    let list_len = r.check_len(count * 8, r.remaining(), "table list")?;
    let mut numbers = Vec::with_capacity(list_len / 8);
    for _ in 0..count {
        numbers.push(r.u64("table number")?);
    }
    r.crc_at_end("load record")?;
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_refuses_damage() {
        let bytes = encode_record(&[7, 9, 12]);
        assert_eq!(bytes.len(), 16 + 3 * 8 + 4);
        assert_eq!(&bytes[..8], b"KVSSTLOD");
        assert_eq!(bytes[12..16], 3u32.to_le_bytes());
        assert_eq!(bytes[16..24], 7u64.to_le_bytes());
        assert_eq!(decode_record(&bytes).unwrap(), vec![7, 9, 12]);
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(decode_record(&bad).is_err(), "flipped byte {at}");
        }
        assert!(decode_record(&bytes[..bytes.len() - 1]).is_err());
        // A count far over what the file holds is refused before anything is allocated.
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_record(&huge).is_err());
    }

    #[test]
    fn the_method_line_names_tables_and_the_flush() {
        let done = |tables, flushed| Ingested {
            tables,
            file_bytes: 0,
            flushed,
        };
        assert_eq!(
            method(&done(2, true)),
            "2 tables ingested (memtable flushed first)"
        );
        assert_eq!(
            method(&done(1, false)),
            "1 table ingested (memtable was empty)"
        );
        assert_eq!(method(&done(0, false)), "no pairs: nothing ingested");
    }
}
