//! Repair: bringing back a store that refuses to open because a table, a WAL, the manifest
//! or `CURRENT` is damaged.
//!
//! [`crate::recovery`] refuses a store whose manifest names a damaged table, or whose older
//! WAL has a bad record: guessing could return a wrong value. [`repair`] (`kv --engine lsm
//! --dir DIR repair`) is the way back. It follows the rules of [`kv_shared::repair`]:
//! nothing is deleted (every damaged file is moved whole into `lost/`), every intact record
//! is salvaged into new tables, and a dry run only reads and reports. Its model is LevelDB's
//! `RepairDB`: turn the logs into tables, rescue what can be read of every table, write a
//! new manifest naming them.
//!
//! ## What decides which version wins
//!
//! Every entry carries its sequence number, but a read does not compare them across tables:
//! it looks in L0 newest first **by file number**, then one table per deeper level, and
//! stops at the first version it finds ([`crate::version::Version::get`]). So the repaired
//! tree must keep that order true:
//!
//! * a table rebuilt from a damaged table of **L1 or deeper** goes back on the same level;
//!   it holds a subset of the keys of the one it replaces, so the level's tables stay
//!   disjoint, and deeper stays older;
//! * a rebuilt **L0** table would take a new, highest number and jump in front of newer L0
//!   tables. So the salvaged entries of the oldest damaged L0 table and of every L0 table
//!   newer than it are merged (by sequence number, the newest version of each key kept,
//!   tombstones too) into one new L0 table: it is newer than the L0 tables left, and holds
//!   the newest surviving version of each of its keys;
//! * the WALs hold the newest writes of all: turned into a table, they go on L0 with the
//!   highest number of all.
//!
//! Without a readable manifest the levels are unknown, so every surviving version of every
//! table and WAL is merged into **one** L0 table (compaction spreads it down the levels
//! later), the newest version of each key winning by sequence number.
//!
//! ## The algorithm, step by step
//!
//! 1. **Check that the directory is an lsm store and lock it**
//!    ([`kv_shared::repair::lock_store_or_damaged_marker`]): a directory without this
//!    engine's marker is refused untouched; an open store is refused with
//!    [`kv_shared::Error::Locked`]. A marker that is there but damaged is accepted only
//!    when the store's own files prove it (`files_are_ours`: a table ending in the footer
//!    magic, a manifest or `CURRENT` beginning with theirs); it is then kept in `lost/` and
//!    written anew, last ([`kv_shared::repair::rewrite_marker`]).
//! 2. **Read `CURRENT` and the manifest** ([`crate::manifest::recover`], which only reads),
//!    and decide whether to trust it (`manifest_doubt`). Opening takes a damaged last edit
//!    for one a crash tore, and a manifest cut exactly between two edits looks whole; either
//!    way edits may be lost from its end, and the tree it describes is then an older one
//!    whose files are partly gone. So the manifest is trusted only when it is whole to its
//!    end, every table it names is there, the WAL its log number names is there, and the
//!    first WAL record follows its last sequence number (the writes between would be in the
//!    table of a flush whose edit was lost). Otherwise, as without a manifest, everything
//!    is merged: the tables it does not name are then included.
//! 3. **Scan every table** in the directory ([`scan`]): whole, or damaged with the entries of
//!    its intact blocks salvaged. A table the manifest names is also damaged when its size
//!    or entry count differs from the manifest's, and missing when it is gone. A damaged
//!    table the manifest does not name (an unfinished flush's or compaction's output, which
//!    opening would delete) is only moved to `lost/`.
//! 4. **Scan the WALs** the manifest has not seen flushed (numbered at or above its log
//!    number), resynchronising past damage, and checking that sequence numbers run on. If
//!    one is damaged, all of them are turned into one L0 table, and an empty WAL is created
//!    for the manifest's new log number (opening expects it).
//! 5. **Rebuild** the damaged tables as said above, and write a new manifest naming the
//!    tables, with the last sequence number and next file number above everything found,
//!    and point `CURRENT` at it.
//! 6. **Move** the damaged files, the L0 tables merged into the new one and the old
//!    manifests into `lost/`. The new tables and the manifest come first: a crash before
//!    the manifest leaves the old store (and the new tables as orphans, which opening
//!    deletes); a crash after it leaves a store that opens, the damaged files not yet moved
//!    being orphans that opening deletes (their intact entries are already salvaged).
//!
//! ## What survives
//!
//! Every entry of every data block that passes its checksum, every WAL record that passes
//! its checksum and decodes (a write batch is one record: whole or not at all), and every
//! whole table. The entries of damaged blocks and the records in damaged bytes are lost;
//! where a key's newest version was lost, an older surviving one (or a deleted key's old
//! value) comes back. A value is never given to a key it was not written for: every
//! salvaged byte passed a checksum. Files are read into memory whole, which suits the
//! stores of this course.

pub mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use kv_shared::repair::{
    FileReport, MagicAt, RepairReport, file_has_magic, lock_store_or_damaged_marker, move_to_lost,
    rewrite_marker,
};
use kv_shared::{Engine, Fs, Options, Result};

use crate::LsmTree;
use crate::file_names::{self, FileKind};
use crate::flush::flush;
use crate::manifest::{self, Manifest, ManifestState};
use crate::memtable::Memtable;
use crate::options::LsmOptions;
use crate::table::footer;
use crate::version_edit::TableMeta;
use crate::wal::{self, Wal};
use scan::{ScannedTable, ScannedWal, Version, scan_table, scan_wal};

/// Repairs the lsm store in `dir` (see the [module documentation](self)). With `dry_run`,
/// only reads and reports.
///
/// # Errors
/// [`kv_shared::Error::InvalidArgument`] when `dir` is not a store (no marker, or no such
/// directory) or for bad options; [`kv_shared::Error::WrongEngine`] or
/// [`kv_shared::Error::FormatVersion`] for another engine's store or version;
/// [`kv_shared::Error::Locked`] when the store is open; [`kv_shared::Error::Io`].
pub fn repair(dir: &Path, options: &Options, dry_run: bool) -> Result<RepairReport> {
    let fs = Fs::new(options.file_system());
    let lsm_options = LsmOptions::parse(options)?;
    let (engine, version) = (LsmTree::NAME, LsmTree::FORMAT_VERSION);
    let (_lock, marker_damage) =
        lock_store_or_damaged_marker(&fs, dir, engine, version, || files_are_ours(&fs, dir))?;
    let files = Files::list(&fs, dir)?;
    let plan = match manifest::recover(&fs, dir) {
        Ok(Some((number, state))) => match manifest_doubt(&fs, dir, &files, number, &state)? {
            None => plan_with_manifest(&fs, dir, &files, number, state)?,
            Some(why) => plan_without_manifest(&fs, dir, &files, why)?,
        },
        Ok(None) if files.tables.is_empty() => Plan::clean(&fs, dir, &files)?,
        Ok(None) => plan_without_manifest(&fs, dir, &files, "CURRENT is missing".into())?,
        Err(e) if e.is_corruption() => plan_without_manifest(&fs, dir, &files, e.to_string())?,
        Err(e) => return Err(e),
    };
    let mut report = plan.report(dry_run, &files);
    if !dry_run && !report.is_clean() {
        plan.carry_out(&fs, dir, &lsm_options, &files)?;
    }
    if let Some(damage) = marker_damage {
        rewrite_marker(&fs, dir, engine, version, damage, &mut report)?;
    }
    Ok(report)
}

/// True when `dir` holds a file only this engine writes: a table ending in its footer
/// magic, a manifest or `CURRENT` beginning with theirs. An lsm store, whatever its
/// damaged marker says. (Its WALs share stage 3's format, so they prove nothing.)
fn files_are_ours(fs: &Fs, dir: &Path) -> Result<bool> {
    let current = dir.join(file_names::CURRENT);
    if file_has_magic(fs, &current, manifest::CURRENT_MAGIC, MagicAt::Start)? {
        return Ok(true);
    }
    for name in fs.list(dir)? {
        let path = dir.join(&name);
        let proof = match file_names::parse(&name) {
            FileKind::Table(_) => file_has_magic(fs, &path, footer::MAGIC, MagicAt::End)?,
            FileKind::Manifest(_) => file_has_magic(fs, &path, manifest::MAGIC, MagicAt::Start)?,
            _ => false,
        };
        if proof {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Why the manifest `number`, though readable (its state `state`), cannot be trusted:
/// its end is damaged (opening takes that for a torn last edit, but the edit lost may be a
/// compaction's, whose inputs are gone), or it names a table that is missing. `None` when
/// it is whole and every table it names is there.
///
/// # Errors
/// [`kv_shared::Error::Io`].
fn manifest_doubt(
    fs: &Fs,
    dir: &Path,
    files: &Files,
    number: u64,
    state: &ManifestState,
) -> Result<Option<String>> {
    let path = dir.join(file_names::manifest(number));
    let read = Wal::read_records(fs, &path, manifest::KIND, |_| Ok(()))?;
    if read.torn_tail_bytes > 0 {
        return Ok(Some(format!(
            "{} damaged bytes at the end of {}: edits may be lost",
            read.torn_tail_bytes,
            file_names::manifest(number)
        )));
    }
    let missing: Vec<String> = state
        .levels
        .iter()
        .flat_map(|level| level.keys())
        .filter(|n| files.tables.binary_search(n).is_err())
        .map(|&n| file_names::table(n))
        .collect();
    if !missing.is_empty() {
        return Ok(Some(format!(
            "{} names tables that are missing ({})",
            file_names::manifest(number),
            missing.join(", ")
        )));
    }
    wal_doubt(fs, dir, files, state)
}

/// Why the WALs say the manifest lost edits from its end (cut at a record boundary, where
/// no checksum can see it): the WAL its log number names is gone (deleted after an edit
/// that is lost), or the first WAL record, intact, does not follow its last sequence
/// number (the table of a flush whose edit is lost holds the writes between).
///
/// # Errors
/// [`kv_shared::Error::Io`].
fn wal_doubt(fs: &Fs, dir: &Path, files: &Files, state: &ManifestState) -> Result<Option<String>> {
    if files.wals.binary_search(&state.log_number).is_err() {
        return Ok(Some(format!(
            "the manifest's log number names {}, which is missing: edits may be lost",
            file_names::wal(state.log_number)
        )));
    }
    for &n in files.wals.iter().filter(|&&n| n >= state.log_number) {
        let wal = scan_wal(fs, dir, n, &mut None)?;
        let Some(first) = wal.versions.first().map(|v| v.1) else {
            continue;
        };
        // A damaged first record says nothing of the manifest: its own damage explains it.
        return Ok((wal.starts_whole && first != state.last_seq + 1).then(|| {
            format!(
                "{} starts at sequence number {first}, the manifest ends at {}: edits may \
                 be lost",
                file_names::wal(n),
                state.last_seq
            )
        }));
    }
    Ok(None)
}

/// The store's files by kind, numbers sorted.
#[derive(Debug, Default)]
struct Files {
    tables: Vec<u64>,
    wals: Vec<u64>,
    manifests: Vec<u64>,
    current: bool,
    /// The highest file number in use.
    highest: u64,
}

impl Files {
    fn list(fs: &Fs, dir: &Path) -> Result<Files> {
        let mut files = Files::default();
        for name in fs.list(dir)? {
            let number = match file_names::parse(&name) {
                FileKind::Table(n) => {
                    files.tables.push(n);
                    n
                }
                FileKind::Wal(n) => {
                    files.wals.push(n);
                    n
                }
                FileKind::Manifest(n) => {
                    files.manifests.push(n);
                    n
                }
                FileKind::Temp => continue,
                FileKind::Other => {
                    files.current |= name == file_names::CURRENT;
                    continue;
                }
            };
            files.highest = files.highest.max(number);
        }
        files.tables.sort_unstable();
        files.wals.sort_unstable();
        files.manifests.sort_unstable();
        Ok(files)
    }
}

/// What repair will do.
#[derive(Debug, Default)]
struct Plan {
    kept: Vec<FileReport>,
    damaged: Vec<FileReport>,
    /// Files moved into `lost/` (the damaged ones that exist, the merged L0 tables, the
    /// replaced manifests and `CURRENT`).
    to_lost: Vec<String>,
    /// The tree the new manifest will record; `None` when the manifest stays.
    state: Option<ManifestState>,
    /// New tables: level, the versions they hold, where they come from.
    new_tables: Vec<(usize, Vec<Version>, String)>,
    /// Whether a fresh, empty WAL becomes the log number (the WALs were turned into a table).
    new_wal: bool,
    /// Whether the manifest must be rewritten (a table it names, or a WAL, was damaged).
    rewrite: bool,
}

impl Plan {
    /// Step 2 found no manifest and there is no table: a store created and never written,
    /// or holding only WALs, which opening replays. Nothing to repair but damaged WALs,
    /// which are merged into a table as without a manifest.
    fn clean(fs: &Fs, dir: &Path, files: &Files) -> Result<Plan> {
        let mut next_seq = None;
        let mut wals = Vec::new();
        for &n in &files.wals {
            wals.push(scan_wal(fs, dir, n, &mut next_seq)?);
        }
        if wals.iter().any(|w| w.damage.is_some()) {
            return plan_without_manifest(fs, dir, files, "CURRENT is missing".into());
        }
        let mut plan = Plan::default();
        for w in wals {
            plan.kept.push(FileReport::new(
                file_names::wal(w.number),
                w.records,
                "whole",
            ));
        }
        Ok(plan)
    }

    fn keep(&mut self, name: String, records: u64, note: &str) {
        self.kept.push(FileReport::new(name, records, note));
    }

    fn lose(&mut self, name: String, records: u64, note: String) {
        self.damaged.push(FileReport::new(&name, records, note));
        self.to_lost.push(name);
    }
}

/// Steps 3 to 5 with a readable manifest (number `number`, tree `state`).
fn plan_with_manifest(
    fs: &Fs,
    dir: &Path,
    files: &Files,
    number: u64,
    mut state: ManifestState,
) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut scanned: BTreeMap<u64, ScannedTable> = BTreeMap::new();
    for &n in &files.tables {
        scanned.insert(n, scan_table(fs, dir, n)?);
    }
    let mut damaged_l0 = Vec::new();
    for level in 0..state.levels.len() {
        let metas: Vec<TableMeta> = state.levels[level].values().cloned().collect();
        for meta in metas {
            // Every table named is there: `manifest_doubt` sent other stores the other way.
            let Some(table) = scanned.remove(&meta.number) else {
                continue;
            };
            let Some(damage) = table_damage(&table, &meta) else {
                plan.keep(file_names::table(meta.number), meta.entries, "whole");
                continue;
            };
            state.levels[level].remove(&meta.number);
            plan.rewrite = true;
            if level == 0 {
                damaged_l0.push((meta.number, table.entries, damage));
                continue;
            }
            let name = file_names::table(meta.number);
            plan.lose(name.clone(), table.entries.len() as u64, damage);
            let from = format!("salvaged from {name}");
            plan.new_tables.push((level, table.entries, from));
        }
    }
    merge_l0(fs, dir, &mut plan, &mut state, damaged_l0)?;
    for (n, orphan) in scanned {
        let name = file_names::table(n);
        let note = "not named by the manifest (an unfinished flush's or compaction's output)";
        match orphan.damage {
            None => plan.keep(
                name,
                orphan.entries.len() as u64,
                &format!("{note}: opening removes it"),
            ),
            Some(damage) => plan.lose(name, 0, format!("{damage}; {note}")),
        }
    }
    plan_wals(fs, dir, files, &mut plan, &state)?;
    if !plan.rewrite {
        // Nothing the manifest names was damaged (at most orphans, moved away): it stays.
        let tables = state.levels.iter().map(|level| level.len() as u64).sum();
        plan.keep(file_names::manifest(number), tables, "whole");
        return Ok(plan);
    }
    for &m in &files.manifests {
        let note = if m == number {
            "whole, replaced by the repaired manifest"
        } else {
            "an older manifest"
        };
        plan.lose(file_names::manifest(m), 0, note.to_string());
    }
    plan.state = Some(state);
    Ok(plan)
}

/// What is wrong with `table`, which the manifest describes as `meta`; `None` when it is
/// whole and what the manifest says.
fn table_damage(table: &ScannedTable, meta: &TableMeta) -> Option<String> {
    if let Some(damage) = &table.damage {
        return Some(damage.clone());
    }
    (table.size != meta.size || table.entries.len() as u64 != meta.entries).then(|| {
        format!(
            "{} bytes and {} entries, where the manifest says {} and {}",
            table.size,
            table.entries.len(),
            meta.size,
            meta.entries
        )
    })
}

/// Step 5 for L0: the oldest damaged L0 table and every L0 table newer than it become one
/// new L0 table holding the newest surviving version of each key.
fn merge_l0(
    fs: &Fs,
    dir: &Path,
    plan: &mut Plan,
    state: &mut ManifestState,
    damaged: Vec<(u64, Vec<Version>, String)>,
) -> Result<()> {
    let Some(oldest) = damaged.iter().map(|d| d.0).min() else {
        return Ok(());
    };
    let mut versions = Vec::new();
    let mut names = Vec::new();
    for (n, entries, damage) in damaged {
        let name = file_names::table(n);
        plan.lose(name.clone(), entries.len() as u64, damage);
        versions.extend(entries);
        names.push(name);
    }
    let newer: Vec<u64> = state.levels[0].range(oldest..).map(|(&n, _)| n).collect();
    for n in newer {
        state.levels[0].remove(&n);
        let table = scan_table(fs, dir, n)?;
        let name = file_names::table(n);
        plan.kept.retain(|kept| kept.file != name);
        let note = "whole, but newer than a damaged L0 table: merged into the rebuilt one";
        plan.lose(name.clone(), table.entries.len() as u64, note.to_string());
        versions.extend(table.entries);
        names.push(name);
    }
    plan.new_tables
        .push((0, versions, format!("merged from {}", names.join(", "))));
    Ok(())
}

/// Step 4: the WALs. Those below the log number were flushed (opening removes them); the
/// others are scanned, and if one is damaged they all become one L0 table.
fn plan_wals(
    fs: &Fs,
    dir: &Path,
    files: &Files,
    plan: &mut Plan,
    state: &ManifestState,
) -> Result<()> {
    let mut next_seq = Some(state.last_seq + 1);
    let mut live: Vec<ScannedWal> = Vec::new();
    for &n in &files.wals {
        if n < state.log_number {
            plan.keep(file_names::wal(n), 0, "flushed: opening removes it");
            continue;
        }
        let scanned = scan_wal(fs, dir, n, &mut next_seq)?;
        if scanned.damage.is_some() {
            next_seq = None; // what follows damage cannot be held to a sequence number
        }
        live.push(scanned);
    }
    if live.iter().all(|w| w.damage.is_none()) {
        for w in live {
            plan.keep(file_names::wal(w.number), w.records, "whole");
        }
        return Ok(());
    }
    wals_to_table(plan, live);
    Ok(())
}

/// Turns every WAL of `wals` into one new L0 table (the newest), the damaged ones moved
/// into `lost/`, and plans an empty WAL for the new log number.
fn wals_to_table(plan: &mut Plan, wals: Vec<ScannedWal>) {
    let mut versions = Vec::new();
    let mut names = Vec::new();
    for w in wals {
        let name = file_names::wal(w.number);
        match w.damage {
            Some(damage) => plan.lose(name.clone(), w.records, damage),
            None => plan.keep(
                name.clone(),
                w.records,
                "whole; its records go into a table, and opening removes it",
            ),
        }
        versions.extend(w.versions);
        names.push(name);
    }
    plan.new_tables
        .push((0, versions, format!("records of {}", names.join(", "))));
    plan.new_wal = true;
    plan.rewrite = true;
}

/// Steps 3 to 5 without a readable manifest (`why`): every version of every table and WAL
/// merged into one L0 table.
fn plan_without_manifest(fs: &Fs, dir: &Path, files: &Files, why: String) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut versions = Vec::new();
    for &n in &files.tables {
        let table = scan_table(fs, dir, n)?;
        let note = table
            .damage
            .unwrap_or_else(|| "whole; merged into the rebuilt table".into());
        plan.lose(file_names::table(n), table.entries.len() as u64, note);
        versions.extend(table.entries);
    }
    for &n in &files.wals {
        let wal = scan_wal(fs, dir, n, &mut None)?;
        let note = wal
            .damage
            .unwrap_or_else(|| "whole; merged into the rebuilt table".into());
        plan.lose(file_names::wal(n), wal.records, note);
        versions.extend(wal.versions);
    }
    for &m in &files.manifests {
        plan.lose(file_names::manifest(m), 0, format!("not used: {why}"));
    }
    if files.current {
        plan.lose(
            file_names::CURRENT.to_string(),
            0,
            format!("not used: {why}"),
        );
    }
    plan.new_tables.push((
        0,
        versions,
        "every surviving version, newest of each key".into(),
    ));
    plan.new_wal = true;
    plan.state = Some(ManifestState::new());
    Ok(plan)
}

impl Plan {
    /// The report; new files are numbered from above every file number in use.
    fn report(&self, dry_run: bool, files: &Files) -> RepairReport {
        let mut written = Vec::new();
        let mut number = self.first_number(files);
        for (level, versions, from) in &self.new_tables {
            if versions.is_empty() {
                continue;
            }
            // The table keeps the newest version of each key.
            let keys: BTreeSet<&[u8]> = versions.iter().map(|v| v.0.as_slice()).collect();
            let note = format!("L{level}; {from}");
            let name = file_names::table(number);
            written.push(FileReport::new(name, keys.len() as u64, note));
            number += 1;
        }
        if let Some(state) = &self.state {
            if self.new_wal {
                written.push(FileReport::new(
                    file_names::wal(number),
                    0,
                    "an empty WAL for the writes to come",
                ));
                number += 1;
            }
            let tables = state.levels.iter().map(|l| l.len() as u64).sum::<u64>()
                + self.new_tables.iter().filter(|t| !t.1.is_empty()).count() as u64;
            written.push(FileReport::new(
                file_names::manifest(number),
                tables,
                "the repaired manifest, named by CURRENT",
            ));
        }
        RepairReport {
            dry_run,
            kept: self.kept.clone(),
            damaged: self.damaged.clone(),
            written,
        }
    }

    fn first_number(&self, files: &Files) -> u64 {
        let recorded = self.state.as_ref().map_or(0, |s| s.next_file);
        recorded.max(files.highest + 1)
    }

    /// Step 5 and 6: writes the new tables, the WAL and the manifest, then moves what is
    /// replaced into `lost/`.
    fn carry_out(self, fs: &Fs, dir: &Path, options: &LsmOptions, files: &Files) -> Result<()> {
        let mut number = self.first_number(files);
        let Some(mut state) = self.state else {
            for name in &self.to_lost {
                move_to_lost(fs, dir, name)?;
            }
            return Ok(());
        };
        for (level, versions, _) in self.new_tables {
            let Some((meta, max_seq)) = write_versions(fs, dir, &versions, number, options)? else {
                continue;
            };
            state.last_seq = state.last_seq.max(max_seq);
            state.levels[level].insert(number, meta);
            number += 1;
        }
        if self.new_wal {
            Wal::create(fs, &dir.join(file_names::wal(number)), wal::KIND)?;
            state.log_number = number;
            number += 1;
        }
        state.next_file = number + 1;
        if self.to_lost.iter().any(|n| n == file_names::CURRENT) {
            move_to_lost(fs, dir, file_names::CURRENT)?;
        }
        Manifest::create(fs, dir, number, &state)?;
        for name in self.to_lost.iter().filter(|n| *n != file_names::CURRENT) {
            move_to_lost(fs, dir, name)?;
        }
        Ok(())
    }
}

/// Writes `versions` as table `number`, the newest version of each key (by sequence
/// number) kept; `None` when there are none.
fn write_versions(
    fs: &Fs,
    dir: &Path,
    versions: &[Version],
    number: u64,
    options: &LsmOptions,
) -> Result<Option<(TableMeta, u64)>> {
    let mem = Arc::new(Memtable::new(0, options.memtable_bytes));
    for (key, seq, value) in versions {
        mem.insert(key, *seq, value.as_deref());
    }
    flush(fs, dir, &mem, number, options)
}
