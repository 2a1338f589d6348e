//! Repair: bringing back a store that refuses to open because a table or a WAL is damaged.
//!
//! [`crate::recovery`] refuses a store whose table fails a checksum, or whose older WAL has
//! a bad record in the middle: guessing would risk a wrong value. [`repair`] (`kv --engine
//! sstable --dir DIR repair`) is the way back. It follows the rules of [`kv_shared::repair`]:
//! nothing is deleted (every damaged file is moved whole into `lost/`), every intact record
//! is salvaged into new files, and a dry run only reads and reports. Its model is LevelDB's
//! `RepairDB`, which turns every log into a table and rescues what it can of every table.
//!
//! ## What decides which value is newer
//!
//! In this stage a table's place among the others comes from the **range of WAL numbers**
//! in its footer (see [`crate::recovery`]): ordered by that range, tables go from oldest to
//! newest, and the newest table holding a key wins. So a table rebuilt from a damaged one
//! must get **the same range**, and a WAL turned into a table gets the range of its own
//! number, `n ..= n`, which is exactly where its records sit in history.
//!
//! ## The algorithm, step by step
//!
//! 1. **Check that the directory is an sstable store and lock it**
//!    ([`kv_shared::repair::lock_store_or_damaged_marker`]): its `ENGINE` marker must name
//!    this engine (a directory without one is refused before anything is written into it),
//!    and the `LOCK` is taken, so an open store is refused with [`Error::Locked`]. A marker
//!    that is there but damaged is accepted only when the store's own files prove it
//!    (`files_are_ours`: a table ending in the footer magic, or a WAL beginning with the WAL
//!    magic); it is then kept in `lost/` and written anew, last
//!    ([`kv_shared::repair::rewrite_marker`]).
//!    Unless this is a dry run, a bulk load that reached its commit point is then finished
//!    as opening would finish it ([`crate::ingest::finish_committed_loads`]), so its
//!    tables are scanned with the others and no new file takes one of its numbers.
//! 2. **Scan every table** (`scan_table`), reading the whole file. A table is whole when
//!    its footer, its index and every data block check out, and the blocks tile the data
//!    region exactly. Otherwise it is damaged, and its entries are salvaged block by block:
//!    the scan (`scan_frames`) walks the file looking for block frames, and at a bad byte
//!    it **resynchronises** ([`kv_shared::repair::scan_records`]), trying every following
//!    offset as the start of a frame until one passes its checksum and decodes as a block
//!    (keys in increasing order to its very end). This works without the footer and the
//!    index, so a table whose end is damaged keeps every data block.
//! 3. **Find the damaged tables' places** (`place_tables`). A damaged table whose footer
//!    survived keeps its range. If that range lies inside the range of a table with a higher
//!    number, it was the input of a compaction that finished (its data is in that table):
//!    it goes to `lost/` without being rebuilt, as opening would have removed it anyway.
//!    A table whose footer is gone has lost its range too. Ranges of consecutive flushes are
//!    contiguous (a memtable's range ends just before the next memtable's WAL), so the
//!    missing range is the **gap** between the ranges of the intact tables, ended by the
//!    oldest WAL not yet flushed, and below the table's own number (a table's number is
//!    taken after its WALs'). Tables sharing one gap split it in file-number order. A table
//!    for which no gap is left is placed oldest of all, at range `0 ..= 0` (tables that
//!    end up there together are merged, the higher number winning): its values may then
//!    lose to older ones, but none is lost.
//! 4. **Scan the WALs** (`scan_wal`). A WAL inside a table's range was flushed: opening
//!    removes it unread, and so does repair. Every other WAL is scanned record by record,
//!    resynchronising past damage as in step 2; any bad byte, even a torn end that opening
//!    would cut off, makes it damaged. If a WAL is damaged, it and every older unflushed WAL
//!    are **turned into tables** of range `n ..= n` (an older WAL must not stay behind a
//!    newer table, which opening calls corruption). The intact ones among them stay where
//!    they are: they are now flushed, and opening removes them.
//! 5. **Write, then move** (`carry_out`): each new table is written crash-safely (a
//!    temporary name, synced, renamed) under a new number above every file in the store;
//!    only then is each damaged file moved into `lost/`. A crash between the two leaves
//!    both: the next repair finds the damaged file's range already covered by the new,
//!    higher-numbered table, and just moves it away.
//!
//! ## What survives
//!
//! Every entry of every data block that passes its checksum, and every WAL record that
//! passes its checksum and decodes; a write batch is one record, so it survives whole or
//! not at all. What is lost: the entries of the damaged blocks and the records in the
//! damaged bytes. Where a key's newest version was lost and an older one survived, the key
//! goes back to that older value (or a deleted key comes back). A value is never given to
//! a key it was not written for: every salvaged byte passed a checksum.
//!
//! Files are read into memory whole, which suits the stores of this course; tables are
//! bounded by the memtable's size or by a compaction's output.

use std::collections::BTreeMap;
use std::path::Path;

use kv_shared::framing::ByteReader;
use kv_shared::repair::{
    FileReport, MagicAt, RepairReport, Scanned, file_has_magic, lock_store_or_damaged_marker,
    move_to_lost, rewrite_marker, scan_records,
};
use kv_shared::{Engine, Error, Fs, Options, Result};

use crate::SstableStore;
use crate::block::decode_entry;
use crate::entry::Entry;
use crate::file_names::{self, FileKind, table_path};
use crate::footer::{FOOTER_LEN, Footer, FooterError, TABLE_MAGIC};
use crate::frame::{self, FRAME_HEADER_LEN};
use crate::index;
use crate::ingest::finish_committed_loads;
use crate::options::SstableOptions;
use crate::table_builder::write_table;
use crate::wal::WAL_KIND;
use crate::wal_entry;

/// A key's entries as salvaged: sorted, one version per key.
type Entries = BTreeMap<Vec<u8>, Entry>;

/// Repairs the sstable store in `dir` (see the [module documentation](self)). With
/// `dry_run`, only reads and reports.
///
/// # Errors
/// [`Error::InvalidArgument`] when `dir` is not a store (no marker, or no such directory)
/// or for bad options; [`Error::WrongEngine`] or [`Error::FormatVersion`] when it is another
/// engine's or version's, or holds a table of another format version; [`Error::Locked`]
/// when the store is open; [`Error::Io`].
pub fn repair(dir: &Path, options: &Options, dry_run: bool) -> Result<RepairReport> {
    let fs = Fs::new(options.file_system());
    let block_bytes = SstableOptions::parse(options)?.block_bytes;
    let (engine, version) = (SstableStore::NAME, SstableStore::FORMAT_VERSION);
    let (_lock, marker_damage) =
        lock_store_or_damaged_marker(&fs, dir, engine, version, || files_are_ours(&fs, dir))?;
    // A bulk load that reached its commit point joins the store first, as an open would
    // make it ([`crate::ingest`]); a dry run only reads, and leaves that to the open.
    let mut max_number = if dry_run {
        0
    } else {
        finish_committed_loads(&fs, dir)?
    };
    let mut tables = Vec::new();
    let mut wal_numbers = Vec::new();
    for name in fs.list(dir)? {
        match file_names::parse(&name) {
            FileKind::Table(n) => {
                tables.push(scan_table(&fs, dir, n)?);
                max_number = max_number.max(n);
            }
            FileKind::Wal(n) => {
                wal_numbers.push(n);
                max_number = max_number.max(n);
            }
            FileKind::Temp | FileKind::Other => {} // leftovers: opening removes them
        }
    }
    tables.sort_by_key(|t| t.number);
    wal_numbers.sort_unstable();
    let mut plan = Plan::default();
    place_tables(&mut plan, tables, &wal_numbers);
    plan_wals(&fs, dir, &mut plan, &wal_numbers)?;
    let mut report = plan.report(dry_run, max_number);
    if !dry_run {
        plan.carry_out(&fs, dir, block_bytes, max_number)?;
    }
    if let Some(damage) = marker_damage {
        rewrite_marker(&fs, dir, engine, version, damage, &mut report)?;
    }
    Ok(report)
}

/// True when `dir` holds a table ending in this stage's footer magic, or, with no stage-4
/// `CURRENT` beside it, a WAL beginning with the WAL magic (stage 4's WALs share that
/// format): an sstable store, whatever its damaged marker says.
fn files_are_ours(fs: &Fs, dir: &Path) -> Result<bool> {
    let names = fs.list(dir)?;
    let lsm = names.iter().any(|name| name == "CURRENT");
    for name in &names {
        let proof = match file_names::parse(name) {
            FileKind::Table(_) => file_has_magic(fs, &dir.join(name), TABLE_MAGIC, MagicAt::End)?,
            FileKind::Wal(_) if !lsm => {
                file_has_magic(fs, &dir.join(name), crate::wal::WAL_MAGIC, MagicAt::Start)?
            }
            _ => false,
        };
        if proof {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Scans `bytes[start..end]` for [`crate::frame`]s with bodies of at most `max_body` bytes,
/// handing each body (and its offset) to `accept`, which says whether it is a good record.
/// At a bad byte (a failed checksum, an impossible length, a body `accept` refuses) the
/// scan resynchronises ([`kv_shared::repair::scan_records`]): it tries every following
/// offset as a frame start. Shared with stage 4, whose logs and blocks use the same frame.
pub fn scan_frames(
    bytes: &[u8],
    start: usize,
    end: usize,
    max_body: usize,
    mut accept: impl FnMut(usize, &[u8]) -> std::result::Result<(), String>,
) -> Scanned {
    let end = end.min(bytes.len());
    scan_records(start, end, |pos| {
        let (body, len) = frame_at(&bytes[pos..end], max_body)?;
        accept(pos, body)?;
        Ok(len)
    })
}

/// The body and whole length of the valid frame at the start of `rest`, or what is wrong.
fn frame_at(rest: &[u8], max_body: usize) -> std::result::Result<(&[u8], usize), String> {
    if rest.len() < FRAME_HEADER_LEN {
        return Err(format!("{} bytes, too few for a frame header", rest.len()));
    }
    let len = frame::frame_len(&rest[..FRAME_HEADER_LEN], max_body).map_err(|e| e.detail)?;
    if len > rest.len() {
        return Err(format!("a frame of {len} bytes runs past the end"));
    }
    let body = frame::open(&rest[..len]).map_err(|e| e.detail)?;
    Ok((body, len))
}

/// One table as step 2 found it.
#[derive(Debug)]
struct ScannedTable {
    number: u64,
    /// Its footer, when that survived.
    footer: Option<Footer>,
    /// The entries of every intact block.
    entries: Entries,
    /// What was wrong, `None` for a whole table.
    damage: Option<String>,
}

/// Step 2: reads table `number` whole and checks or salvages it.
///
/// # Errors
/// [`Error::FormatVersion`] for a table of another format version; [`Error::Io`].
fn scan_table(fs: &Fs, dir: &Path, number: u64) -> Result<ScannedTable> {
    let bytes = fs.read_all(&table_path(dir, number))?;
    let footer_at = bytes.len().saturating_sub(FOOTER_LEN);
    let footer = match Footer::decode(&bytes[footer_at..]) {
        Ok(footer) if footer.index_offset <= footer_at as u64 => Ok(footer),
        Ok(_) => Err("footer's index offset is past the footer".to_string()),
        Err(FooterError::Decode(e)) => Err(format!("footer: {}", e.detail)),
        Err(FooterError::Version(found)) => {
            // Another version's table is not damage: this build cannot read it at all.
            return Err(Error::FormatVersion {
                file: table_path(dir, number),
                found,
                supported: crate::footer::TABLE_VERSION,
            });
        }
    };
    let index_damage = match &footer {
        Ok(f) => check_index(&bytes, f, footer_at).err(),
        Err(e) => Some(e.clone()),
    };
    let data_end = footer
        .as_ref()
        .map_or(bytes.len(), |f| f.index_offset as usize);
    let mut entries = Entries::new();
    let scan = scan_frames(&bytes, 0, data_end, usize::MAX, |at, body| {
        if footer.is_err() && is_index_frame(&bytes, at, body) {
            return Ok(()); // the index of a table whose footer is gone: not data
        }
        salvage_block(body, &mut entries)
    });
    let damage = index_damage.or_else(|| scan.damage_note());
    Ok(ScannedTable {
        number,
        footer: footer.ok(),
        entries,
        damage,
    })
}

/// Checks the index block the footer points to: whole, ending where the footer begins, and
/// tiling the data region.
fn check_index(bytes: &[u8], footer: &Footer, footer_at: usize) -> std::result::Result<(), String> {
    let start = footer.index_offset as usize;
    if start + footer.index_len as usize != footer_at {
        return Err("index: does not end where the footer begins".to_string());
    }
    let body = frame::open(&bytes[start..footer_at]).map_err(|e| format!("index: {}", e.detail))?;
    index::decode(body, footer.index_offset)
        .map(|_| ())
        .map_err(|e| format!("index: {}", e.detail))
}

/// True when the frame with `body` at `at` is the table's index: it ends where the footer
/// begins and decodes as an index of the blocks before it.
fn is_index_frame(bytes: &[u8], at: usize, body: &[u8]) -> bool {
    at + FRAME_HEADER_LEN + body.len() + FOOTER_LEN == bytes.len()
        && index::decode(body, at as u64).is_ok()
}

/// Decodes a data block's body into `entries` if every entry decodes and the keys increase
/// to its very end; otherwise adds nothing and says why.
fn salvage_block(body: &[u8], entries: &mut Entries) -> std::result::Result<(), String> {
    let mut r = ByteReader::new(body);
    let mut found: Vec<(Vec<u8>, Entry)> = Vec::new();
    while !r.is_empty() {
        let (key, value) = decode_entry(&mut r).map_err(|e| e.detail)?;
        if found.last().is_some_and(|(last, _)| last.as_slice() >= key) {
            return Err("block keys out of order".to_string());
        }
        let entry = value.map_or(Entry::Tombstone, |v| Entry::Value(v.to_vec()));
        found.push((key.to_vec(), entry));
    }
    if found.is_empty() {
        return Err("an empty block".to_string());
    }
    entries.extend(found);
    Ok(())
}

/// What repair will do, file by file.
#[derive(Debug, Default)]
struct Plan {
    /// Whole tables and WALs, with their record counts and notes.
    kept: Vec<FileReport>,
    /// Damaged files (moved to `lost/`) and the records salvaged from them.
    damaged: Vec<FileReport>,
    /// New tables: their WAL range, entries, and what they come from.
    new_tables: Vec<NewTable>,
    /// Ranges taken by the tables that stay or are rebuilt, to place WALs against.
    ranges: Vec<(u64, u64)>,
}

/// A table repair writes.
#[derive(Debug)]
struct NewTable {
    first_wal: u64,
    last_wal: u64,
    entries: Entries,
    from: String,
}

/// Step 3: sorts the scanned tables into whole (kept), redundant (moved away) and damaged
/// (rebuilt at their place in the order of ranges).
fn place_tables(plan: &mut Plan, tables: Vec<ScannedTable>, wals: &[u64]) {
    let known: Vec<(u64, u64, u64)> = tables
        .iter()
        .filter_map(|t| t.footer.map(|f| (t.number, f.first_wal, f.last_wal)))
        .collect();
    plan.ranges = known
        .iter()
        .map(|&(_, first, last)| (first, last))
        .collect();
    let mut footerless = Vec::new();
    for table in tables {
        match (table.damage.clone(), table.footer) {
            (None, _) => {
                let name = table_name(table.number);
                let note = "whole";
                plan.kept
                    .push(FileReport::new(name, table.entries.len() as u64, note));
            }
            (Some(_), None) => footerless.push(table),
            (Some(damage), Some(footer)) => plan.rebuild_in_place(table, damage, footer, &known),
        }
    }
    place_footerless(plan, footerless, wals);
}

impl Plan {
    /// A damaged table whose footer survived: rebuilt with its own range, unless a table
    /// with a higher number covers that range (it was a finished compaction's input).
    fn rebuild_in_place(
        &mut self,
        table: ScannedTable,
        damage: String,
        footer: Footer,
        known: &[(u64, u64, u64)],
    ) {
        let name = table_name(table.number);
        let (first, last) = (footer.first_wal, footer.last_wal);
        let container = known
            .iter()
            .find(|&&(n, f, l)| n > table.number && f <= first && last <= l);
        if let Some(&(n, _, _)) = container {
            let note = format!(
                "{damage}; the input of a finished compaction, its data is in {}",
                table_name(n)
            );
            self.damaged.push(FileReport::new(name, 0, note));
            return;
        }
        let count = table.entries.len() as u64;
        self.damaged.push(FileReport::new(&name, count, damage));
        self.add_table(first, last, table.entries, format!("salvaged from {name}"));
    }

    /// Plans a new table of range `first ..= last` holding `entries`.
    fn add_table(&mut self, first_wal: u64, last_wal: u64, entries: Entries, from: String) {
        self.ranges.push((first_wal, last_wal));
        self.new_tables.push(NewTable {
            first_wal,
            last_wal,
            entries,
            from,
        });
    }
}

/// Step 3, for the tables whose footer is gone (in number order): each gets the first gap
/// between the known ranges below its number, or, when none is left, the oldest place.
fn place_footerless(plan: &mut Plan, footerless: Vec<ScannedTable>, wals: &[u64]) {
    let mut from = 1; // the first WAL of a store is number 1
    let mut oldest: Vec<ScannedTable> = Vec::new();
    for table in footerless {
        let Some((first, last)) = gap_for(&plan.ranges, wals, from, table.number) else {
            oldest.push(table);
            continue;
        };
        from = last + 1;
        let name = table_name(table.number);
        let damage = table.damage.unwrap_or_default();
        let note =
            format!("{damage}; its WAL range, lost with the footer, is the gap {first}..={last}");
        plan.damaged
            .push(FileReport::new(&name, table.entries.len() as u64, note));
        plan.add_table(first, last, table.entries, format!("salvaged from {name}"));
    }
    if oldest.is_empty() {
        return;
    }
    let mut merged = Entries::new();
    let mut names = Vec::new();
    for table in oldest {
        let name = table_name(table.number);
        let damage = table.damage.unwrap_or_default();
        let note = format!("{damage}; no gap left for its WAL range: placed oldest of all");
        plan.damaged
            .push(FileReport::new(&name, table.entries.len() as u64, note));
        merged.extend(table.entries); // in number order: the higher number wins
        names.push(name);
    }
    plan.add_table(0, 0, merged, format!("salvaged from {}", names.join(", ")));
}

/// The gap in WAL numbers from `from` on that no range covers, ended by the next range, the
/// next WAL (not flushed, or flushed into a lost range: either way not older) and table
/// `number` itself; `None` when it is empty.
fn gap_for(ranges: &[(u64, u64)], wals: &[u64], from: u64, number: u64) -> Option<(u64, u64)> {
    let mut first = from;
    while let Some(&(_, last)) = ranges.iter().find(|&&(f, l)| f <= first && first <= l) {
        first = last + 1;
    }
    let mut last = number.checked_sub(1)?;
    if let Some(next) = ranges.iter().map(|r| r.0).filter(|&f| f > first).min() {
        last = last.min(next - 1);
    }
    if let Some(&wal) = wals.iter().find(|&&w| w >= first) {
        last = last.min(wal.checked_sub(1)?);
    }
    (first <= last).then_some((first, last))
}

/// One WAL not yet flushed, as step 4 found it.
#[derive(Debug)]
struct ScannedWal {
    number: u64,
    /// Its records applied in order: the newest version of each key.
    entries: Entries,
    records: u64,
    damage: Option<String>,
}

/// Step 4: the WALs. Flushed ones are kept unread (opening removes them); the others are
/// scanned, and the damaged ones, with every older one, are turned into tables.
fn plan_wals(fs: &Fs, dir: &Path, plan: &mut Plan, wals: &[u64]) -> Result<()> {
    let covered = |n: u64| plan.ranges.iter().any(|&(f, l)| f <= n && n <= l);
    let mut unflushed = Vec::new();
    for &n in wals {
        if covered(n) {
            let note = "flushed into a table: opening removes it";
            plan.kept.push(FileReport::new(wal_name(n), 0, note));
        } else {
            unflushed.push(scan_wal(fs, dir, n)?);
        }
    }
    let newest_table = plan.ranges.iter().map(|r| r.1).max();
    let convert = unflushed
        .iter()
        .rposition(|w| w.damage.is_some() || newest_table.is_some_and(|l| w.number < l));
    for (i, wal) in unflushed.into_iter().enumerate() {
        let name = wal_name(wal.number);
        if convert.is_none_or(|last| i > last) {
            plan.kept.push(FileReport::new(name, wal.records, "whole"));
            continue;
        }
        match wal.damage {
            Some(damage) => plan
                .damaged
                .push(FileReport::new(&name, wal.records, damage)),
            None => {
                let note = "whole; its records go into a table, and opening removes it";
                plan.kept.push(FileReport::new(&name, wal.records, note));
            }
        }
        let from = format!("records of {name}");
        plan.add_table(wal.number, wal.number, wal.entries, from);
    }
    Ok(())
}

/// Step 4: reads WAL `number` whole and salvages its records, resynchronising past damage.
fn scan_wal(fs: &Fs, dir: &Path, number: u64) -> Result<ScannedWal> {
    let bytes = fs.read_all(&file_names::wal_path(dir, number))?;
    let header_len = WAL_KIND.header_len() as usize;
    let header_ok = bytes.len() >= header_len
        && bytes[..8] == WAL_KIND.magic
        && bytes[8..12] == WAL_KIND.version.to_le_bytes();
    let mut entries = Entries::new();
    let scan = scan_frames(
        &bytes,
        header_len,
        bytes.len(),
        WAL_KIND.max_payload,
        |_, body| {
            let entry = wal_entry::decode(body).map_err(|e| e.detail)?;
            for op in entry.ops() {
                let value = op
                    .value
                    .map_or(Entry::Tombstone, |v| Entry::Value(v.to_vec()));
                entries.insert(op.key.to_vec(), value);
            }
            Ok(())
        },
    );
    let damage = if header_ok {
        scan.damage_note()
    } else {
        Some("missing or damaged header".to_string())
    };
    Ok(ScannedWal {
        number,
        entries,
        records: scan.records.len() as u64,
        damage,
    })
}

impl Plan {
    /// The report: what is kept, what is damaged, and the tables to write, numbered from
    /// `max_number + 1` on.
    fn report(&self, dry_run: bool, max_number: u64) -> RepairReport {
        let written = (max_number + 1..)
            .zip(&self.new_tables)
            .map(|(n, t)| {
                let note = format!("{}; WALs {}..={}", t.from, t.first_wal, t.last_wal);
                FileReport::new(table_name(n), t.entries.len() as u64, note)
            })
            .collect();
        RepairReport {
            dry_run,
            kept: self.kept.clone(),
            damaged: self.damaged.clone(),
            written,
        }
    }

    /// Step 5: writes the new tables (each crash-safely), then moves the damaged files into
    /// `lost/`.
    fn carry_out(self, fs: &Fs, dir: &Path, block_bytes: usize, max_number: u64) -> Result<()> {
        for (n, table) in (max_number + 1..).zip(self.new_tables) {
            let entries = table.entries.into_iter().map(Ok);
            let path = table_path(dir, n);
            write_table(
                fs,
                &path,
                block_bytes,
                table.first_wal,
                table.last_wal,
                entries,
            )?;
        }
        for damaged in &self.damaged {
            move_to_lost(fs, dir, &damaged.file)?;
        }
        Ok(())
    }
}

/// The file name of table `number`.
fn table_name(number: u64) -> String {
    file_name(&table_path(Path::new(""), number))
}

/// The file name of WAL `number`.
fn wal_name(number: u64) -> String {
    file_name(&file_names::wal_path(Path::new(""), number))
}

fn file_name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
