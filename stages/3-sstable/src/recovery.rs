//! Opening a store: from whatever a crash left in the directory to tables and a memtable.
//!
//! ## Which WALs a table replaces: the recovery rule
//!
//! Files are numbered from one counter ([`crate::file_names`]). A memtable starts with the
//! WAL it was created with; when it is frozen, a new WAL numbered `n` takes over, and the
//! memtable's range ends at `n - 1`. The table it becomes records that range,
//! `first_wal ..= last_wal`, in its [`crate::footer`]: every WAL numbered in it is redundant
//! once the table exists. The range covers *every* number up to the next WAL, not only the
//! WALs that held records (the WAL an open started, replaced before it took a write, holds
//! none). A failed `Wal::create` leaves its number for the next flush to create again, so
//! what it left behind is replaced, never stranded before a WAL that holds writes. A
//! compaction output records the union of its inputs' ranges.
//!
//! ## The steps of [`recover`]
//!
//! 0. **Finish committed bulk loads** ([`crate::ingest::finish_committed_loads`]): the
//!    tables a load record lists are renamed from their temporary names into place and the
//!    record removed, before step 1 would take them for unfinished tables; the external
//!    sort's scratch files are removed. The highest number a record named counts as used.
//! 1. **List the directory** (`list_files`): `*.tmp` files are unfinished tables, removed;
//!    every table is opened (footer and index checked); WAL numbers are collected.
//! 2. **Drop finished compactions' inputs** (`drop_compacted_inputs`): a table whose WAL
//!    range lies inside the range of a table with a **higher file number** is an input of a
//!    compaction that finished, removed. (The output was renamed into place before any
//!    input was deleted.)
//! 3. **Order the tables** (`order_tables`): the remaining ones must have disjoint ranges
//!    (else `Corruption`); ordered by range, they go from oldest to newest.
//! 4. **Sort out the WALs** (`wals_to_replay`): a WAL whose number lies inside a table's
//!    range was flushed: removed, **not replayed** (a crash between writing a flush's table
//!    and deleting its WALs leaves exactly this; replaying it would put its old values in
//!    the memtable, above any newer table that overwrote them). The other WALs must all be
//!    newer than every table (else `Corruption`).
//! 5. **Replay them** (`replay_wals`), in number order, into one memtable. Only the **last
//!    one written** (the newest with any byte past its header) can have an unsynced tail: **everything
//!    from its first damaged record on** is cut off ([`Wal::replay`]), even when valid
//!    records follow the damage, since a disk writes unsynced pages back in any order; the
//!    whole WAL is then first copied into the store's `lost/` directory, so nothing once
//!    written is destroyed. Each older one was synced before a newer one took a write, so
//!    damage anywhere in it, its end included, is `Corruption` ([`Wal::replay_sealed`];
//!    taken for an unsynced tail, it would lose an older write and keep the newer ones). Each record is applied whole (a write batch
//!    is one record, checked whole before any op is applied). A WAL that held no record is
//!    removed.
//!
//! The engine then starts a new WAL for the writes after open. A crash at any point of a
//! flush or compaction therefore loses nothing the durability contract promises (a write
//! that returned, after a kill; a write before a `sync` that returned, after a power loss)
//! and shows no key twice (the tests reproduce each state).

use std::path::Path;
use std::sync::Arc;

use kv_shared::{Error, Fs, Result};

use crate::file_names::{self, FileKind, table_path, wal_path};
use crate::ingest::finish_committed_loads;
use crate::memtable::Memtable;
use crate::table::Table;
use crate::wal::{Record, WAL_KIND, Wal, WalReplay};
use crate::wal_entry;

/// What [`recover`] rebuilt from the directory.
#[derive(Debug)]
pub struct Recovered {
    /// The tables, newest first.
    pub tables: Vec<Arc<Table>>,
    /// The memtable the WALs were replayed into.
    pub mem: Memtable,
    /// The first file number not in use.
    pub next_number: u64,
    /// WAL records replayed.
    pub records: u64,
    /// Bytes of torn tail cut off the last WAL.
    pub torn_bytes: u64,
}

/// What the directory holds, as step 1 found it.
struct Listing {
    tables: Vec<Table>,
    wals: Vec<u64>,
    max_number: u64,
}

/// Reads the directory back: the steps in the module documentation.
///
/// # Errors
/// [`Error::Corruption`] for a damaged table or WAL or files that do not fit together;
/// [`Error::FormatVersion`]; [`Error::Io`].
pub fn recover(fs: &Fs, dir: &Path) -> Result<Recovered> {
    let loaded = finish_committed_loads(fs, dir)?;
    let mut listing = list_files(fs, dir)?;
    listing.max_number = listing.max_number.max(loaded);
    check_numbers(dir, &listing)?;
    let live = order_tables(drop_compacted_inputs(fs, listing.tables)?)?;
    let newest_flushed = live.last().map(|t| t.footer().last_wal);
    let next_number = listing.max_number.max(newest_flushed.unwrap_or(0)) + 1;
    let to_replay = wals_to_replay(fs, dir, &live, listing.wals)?;
    let mem = Memtable::new(to_replay.first().copied().unwrap_or(next_number));
    let replayed = replay_wals(fs, dir, &to_replay, &mem)?;
    Ok(Recovered {
        tables: live.into_iter().rev().map(Arc::new).collect(), // newest first
        mem,
        next_number,
        records: replayed.records,
        torn_bytes: replayed.torn_tail_bytes,
    })
}

/// Refuses, before any file is touched, a file number (a file's name, or a WAL number a
/// table's footer records) of `u64::MAX`: it leaves no number for the next file.
fn check_numbers(dir: &Path, listing: &Listing) -> Result<()> {
    let footers = listing.tables.iter().map(|t| t.footer().last_wal);
    if footers.chain([listing.max_number]).any(|n| n == u64::MAX) {
        return Err(Error::corruption(
            dir,
            0,
            "a file number of u64::MAX leaves none for the next file",
        ));
    }
    Ok(())
}

/// Step 1: removes leftover temporary files, opens every table, collects the WAL numbers.
fn list_files(fs: &Fs, dir: &Path) -> Result<Listing> {
    let mut listing = Listing {
        tables: Vec::new(),
        wals: Vec::new(),
        max_number: 0,
    };
    for name in fs.list(dir)? {
        match file_names::parse(&name) {
            FileKind::Temp => fs.remove(&dir.join(&name))?,
            FileKind::Table(n) => {
                listing
                    .tables
                    .push(Table::open(fs, &table_path(dir, n), n)?);
                listing.max_number = listing.max_number.max(n);
            }
            FileKind::Wal(n) => {
                listing.wals.push(n);
                listing.max_number = listing.max_number.max(n);
            }
            FileKind::Other => {}
        }
    }
    listing.wals.sort_unstable();
    Ok(listing)
}

/// Step 2: removes the inputs of a finished compaction (a table whose WAL range lies inside
/// a newer table's) and returns the others.
fn drop_compacted_inputs(fs: &Fs, tables: Vec<Table>) -> Result<Vec<Table>> {
    let ranges: Vec<(u64, u64, u64)> = tables
        .iter()
        .map(|t| (t.number(), t.footer().first_wal, t.footer().last_wal))
        .collect();
    let (replaced, live): (Vec<Table>, Vec<Table>) = tables.into_iter().partition(|t| {
        let (first, last) = (t.footer().first_wal, t.footer().last_wal);
        ranges
            .iter()
            .any(|&(number, f, l)| number > t.number() && f <= first && last <= l)
    });
    for table in replaced {
        let path = table.path().to_path_buf();
        drop(table);
        fs.remove(&path)?;
    }
    Ok(live)
}

/// Step 3: the tables ordered oldest first, their WAL ranges checked to be disjoint.
fn order_tables(mut live: Vec<Table>) -> Result<Vec<Table>> {
    live.sort_by_key(|t| t.footer().last_wal);
    for pair in live.windows(2) {
        let (older, newer) = (pair[0].footer(), pair[1].footer());
        if older.last_wal >= newer.first_wal {
            return Err(Error::corruption(
                pair[1].path(),
                0,
                format!(
                    "holds WALs {}..={}, overlapping {} (WALs {}..={})",
                    newer.first_wal,
                    newer.last_wal,
                    pair[0].path().display(),
                    older.first_wal,
                    older.last_wal
                ),
            ));
        }
    }
    Ok(live)
}

/// Step 4: removes the WALs a table holds; returns the others, which must be newer than
/// every table, in number order.
fn wals_to_replay(fs: &Fs, dir: &Path, live: &[Table], wals: Vec<u64>) -> Result<Vec<u64>> {
    let newest_flushed = live.last().map(|t| t.footer().last_wal);
    let mut to_replay = Vec::new();
    for n in wals {
        let path = wal_path(dir, n);
        let flushed = live
            .iter()
            .any(|t| t.footer().first_wal <= n && n <= t.footer().last_wal);
        if flushed {
            fs.remove(&path)?;
        } else if let Some(last) = newest_flushed.filter(|&last| n < last) {
            return Err(Error::corruption(
                &path,
                0,
                format!("WAL {n} is in no table, yet older than the tables' WALs (up to {last})"),
            ));
        } else {
            to_replay.push(n);
        }
    }
    Ok(to_replay)
}

// Exercise 3.6: replay the WALs into the memtable. Read: chapter 3, "Invariants and recovery".
// Tests: conformance::conformance::reopen_keeps_everything
// Tests: corruption::a_torn_wal_tail_loses_only_the_torn_record
// Tests: batch::a_batch_is_one_wal_record_replayed_whole
/// Step 5: replays the WALs numbered `wals` (in order) into `mem`; the ones before the last
/// written as sealed. Removes a WAL that held no record.
fn replay_wals(fs: &Fs, dir: &Path, wals: &[u64], mem: &Memtable) -> Result<WalReplay> {
    let last_written = last_written(fs, dir, wals)?;
    let mut total = WalReplay::default();
    for (i, &n) in wals.iter().enumerate() {
        let path = wal_path(dir, n);
        let apply = |record: Record<'_>| {
            let entry = wal_entry::decode(record.payload)
                .map_err(|e| e.into_corruption(&path, record.payload_offset()))?;
            mem.apply(entry.ops());
            Ok(())
        };
        let replay = if last_written.is_some_and(|last| i < last) {
            // Sealed: damage anywhere, its end included, is corruption; the file is kept
            // as it is. (It may hold no record: the WAL an open started, replaced by a
            // flush before any write.)
            WalReplay {
                records: Wal::replay_sealed(fs, &path, WAL_KIND, apply)?,
                torn_tail_bytes: 0,
            }
        } else {
            Wal::replay(fs, &path, WAL_KIND, apply)?
        };
        total.records += replay.records;
        total.torn_tail_bytes += replay.torn_tail_bytes;
        if replay.records == 0 {
            fs.remove(&path)?;
        }
    }
    Ok(total)
}

/// The position in `wals` of the last WAL written, the newest with any byte past its
/// header (its first record may be damaged: a power loss can lose it and keep a later one):
/// only it can have an unsynced tail, as each older one was synced before a newer one took
/// its first write. Reads the length of each, newest first.
fn last_written(fs: &Fs, dir: &Path, wals: &[u64]) -> Result<Option<usize>> {
    for (i, &n) in wals.iter().enumerate().rev() {
        if Wal::written_past_header(fs, &wal_path(dir, n), WAL_KIND)? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}
