//! Repair: bringing back a wisckey store with a damaged tree, a damaged value-log segment
//! or a damaged marker, and keeping the tree's pointers true to the log.
//!
//! A wisckey store is two stores in one directory: an lsm tree in `tree/` and bitcask
//! segments in `vlog/`. Each already has a repair of its own kind (stage 4's
//! [`lsm::repair()`], stage 2's segment salvage, [`bitcask::repair()`]), and [`repair`]
//! (`kv --engine wisckey --dir DIR repair`) runs both, under the rules of
//! [`kv_shared::repair`]: nothing is deleted, every intact record is kept, a dry run only
//! reads. What is new is the thread between the two: the tree holds **pointers** into the
//! log (segment, offset, length: [`crate::value_pointer`]), and salvaging a segment moves
//! its records. So repair ends by checking every pointer of the tree against the repaired
//! log, and the repaired store never reads a value through a pointer that names the wrong
//! bytes.
//!
//! ## The algorithm, step by step
//!
//! 1. **Check that the directory is a wisckey store and lock it**
//!    ([`kv_shared::repair::lock_store_or_damaged_marker`]): a directory without this
//!    engine's marker is refused untouched, an open store with
//!    [`kv_shared::Error::Locked`]. A damaged marker is accepted only beside a value-log
//!    segment whose header names its file's id; it is kept in `lost/` and written anew,
//!    last ([`kv_shared::repair::rewrite_marker`]).
//! 2. **Repair the tree** with [`lsm::repair()`] on `tree/`: its damaged tables, WALs,
//!    manifest, `CURRENT` or marker are salvaged there. It keeps what it moves in
//!    `tree/lost/`; repair then moves those files on into `lost/tree/`, so that every file
//!    the report calls damaged, `tree/000012.sst` say, is at `lost/tree/000012.sst`.
//! 3. **Scan every value-log segment** ([`kv_shared::repair::scan_log`], resynchronising
//!    past damage as bitcask's repair does). A segment is **damaged** when its header is
//!    bad, some of its bytes belong to no valid record, a record follows its seal, or it
//!    is not the newest and has no seal (a sealed segment that lost its end: opening
//!    refuses it), or the tree's tables name values past its last valid record (the newest
//!    segment cut at a record boundary reads clean, but a table is written only after the
//!    values it points at were synced: those records were on the disk and are gone). The newest segment may end in an **unsynced tail** (bytes after its
//!    last valid record, and no valid record after them): that is what a power loss
//!    leaves, opening cuts it ([`crate::recovery`]), and it is not damage.
//! 4. **Salvage each damaged segment into a new one**, with an id above every segment's:
//!    the header, every valid record in file order (values, small values and tombstones
//!    alike, with their batch numbers), and a seal: an ordinary sealed segment, no new
//!    format. A new id, not the damaged segment's own: salvaged in place, each record after
//!    the damage would move to a lower offset of the same segment, where a pointer not yet
//!    moved could name another record; with a new id a pointer names either the old place
//!    or the new one. The new segments come after the newest, which must then be sealed, as
//!    opening requires of every segment but the newest: a clean newest segment gets a seal
//!    record appended; a newest one with an unsynced tail is salvaged like a damaged one
//!    (a seal cannot follow bytes that are no record).
//! 5. **Check the tree's pointers** (`check_pointers`), whenever step 2 or step 4
//!    changed anything. First the tree's newest WAL is cut back to a prefix of the writes,
//!    as opening cuts it ([`crate::recovery::trim_tree_wal`]): at its first record whose
//!    pointer names bytes past the newest segment's valid records (a power loss kept the
//!    WAL's tail, not the log's). Then the tree is opened (its WAL replayed into tables)
//!    and walked, and each pointer judged:
//!    * into a salvaged segment: if a salvaged record started at that offset, with that
//!      length and that key, the key is **re-pointed** at the record's new place;
//!    * into a kept segment: the record is read and checked (inside the segment's valid
//!      bytes, its CRC, a put, of that key), as a `get` would;
//!    * anything else (a segment that is gone, bytes the damage or a cut took, a record of
//!      another key, a tree value that does not decode) names a value that is **lost**:
//!      the key is deleted from the tree, and the report names it.
//!
//!    The changes are written as tree batches, and the tree is flushed, so that they are
//!    in a table, out of reach of a later cut of its WAL, before any segment is moved.
//! 6. **Move the damaged segments** whole into `lost/vlog/`, then rewrite the marker if
//!    it was damaged.
//!
//! ## Why a lost value deletes its key
//!
//! Where the tree lost its newest entry of a key, [`lsm::repair()`] brings back an older
//! one, as stage 4 promises. Where the log lost the record a pointer names, repair could
//! look through the log for an older record of that key; but the log's older records are
//! dead by design, the garbage collector frees them at any time, and an old value coming
//! back in some keys and not others would be a guess. So the key is deleted: it reads as
//! absent, never as a wrong value, and the report says which keys went.
//!
//! ## A crash during repair
//!
//! Every step writes whole files atomically or appends and syncs; the newest segment is
//! sealed before any segment is written after it, and the damaged segments leave the log
//! only after the tree's pointers no longer name them. A crash leaves a store that a second
//! repair finishes (`tests/repair.rs` cuts the power at every file operation of one): a
//! salvage written but not yet pointed at is a clean segment of dead records (the collector
//! frees it), a damaged segment still in `vlog/` is salvaged again and the tree's pointers
//! into it moved then, and a pointer already moved names a clean segment, checked like any
//! other. A dry run, which cannot open the tree without changing it (opening replays its
//! WAL into tables), says that the pointers would be checked, not which keys would move or
//! go.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bitcask::record::{
    Kind, SEGMENT_HEADER_LEN, SegmentKeyLog, decode_record, decode_segment_header,
    encode_segment_header, seal_record,
};
use kv_shared::dump::quoted;
use kv_shared::repair::{
    FileReport, LOST_DIR, RepairReport, lock_store_or_damaged_marker, rewrite_marker, scan_log,
};
use kv_shared::{Engine, Error, FileRef, Fs, Options, Result, WriteBatch};
use lsm::LsmTree;
use lsm::block_cache::BlockCache;
use lsm::cursor::EntryCursor;
use lsm::table::Table;

use crate::Wisckey;
use crate::file_names::{self, TREE_DIR, VLOG_DIR};
use crate::options::WisckeyOptions;
use crate::recovery::{self, Ends};
use crate::value_log::seal_len;
use crate::value_pointer::{self, TreeValue, ValuePointer};

/// Repairs the wisckey store in `dir` (see the [module documentation](self)). With
/// `dry_run`, only reads and reports.
///
/// # Errors
/// [`Error::InvalidArgument`] when `dir` is not a store (no marker, or no such directory)
/// or for bad options; [`Error::WrongEngine`] or [`Error::FormatVersion`] for another
/// engine's store or version; [`Error::Locked`] when the store is open; as
/// [`lsm::repair()`] for the tree, and as the tree's open and writes for the pointer check;
/// [`Error::InvalidArgument`] when no segment id is left for a salvage; [`Error::Io`].
pub fn repair(dir: &Path, options: &Options, dry_run: bool) -> Result<RepairReport> {
    let parsed = WisckeyOptions::parse(options)?;
    let fs = Fs::new(options.file_system());
    let (engine, version) = (Wisckey::NAME, Wisckey::FORMAT_VERSION);
    let (_lock, marker_damage) =
        lock_store_or_damaged_marker(&fs, dir, engine, version, || vlog_is_ours(&fs, dir))?;
    let mut report = RepairReport {
        dry_run,
        ..RepairReport::default()
    };
    let tree_changed = repair_tree(&fs, dir, &parsed.tree, dry_run, &mut report)?;
    let reach = table_reach(&fs, &file_names::tree_dir(dir));
    let vlog = plan_vlog(&fs, dir, &reach)?;
    vlog.report(&mut report);
    if tree_changed || !vlog.salvaged.is_empty() {
        if dry_run {
            let note = "the tree's pointers would be checked against the repaired value log \
                        (which keys move or go is known only once the tree is opened)";
            report.written.push(FileReport::new(TREE_DIR, 0, note));
        } else {
            vlog.write(&fs, dir)?;
            let checked = check_pointers(&fs, dir, &parsed.tree, &vlog)?;
            report.written.push(checked.report());
            vlog.move_damaged(&fs, dir)?;
        }
    }
    if let Some(damage) = marker_damage {
        rewrite_marker(&fs, dir, engine, version, damage, &mut report)?;
    }
    Ok(report)
}

/// True when `dir/vlog/` holds a segment whose header names its file's id: a wisckey
/// store, whatever its damaged marker says.
fn vlog_is_ours(fs: &Fs, dir: &Path) -> Result<bool> {
    let vlog = file_names::vlog_dir(dir);
    for id in segment_ids(fs, &vlog)? {
        let file = fs.open(&file_names::segment(&vlog, id))?;
        let len = file.len()?.min(SEGMENT_HEADER_LEN);
        if decode_segment_header(&file.read_vec_at(0, len as usize)?) == Ok(id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The ids of the segments in `vlog`, ascending; none when the directory is missing.
fn segment_ids(fs: &Fs, vlog: &Path) -> Result<Vec<u32>> {
    match fs.file_system().list(vlog) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(vlog, e)),
        Ok(_) => file_names::segment_ids(fs, vlog),
    }
}

/// The names in `dir`; none when it is missing.
fn names_in(fs: &Fs, dir: &Path) -> Result<BTreeSet<String>> {
    match fs.file_system().list(dir) {
        Ok(names) => Ok(names.into_iter().collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Step 2: runs [`lsm::repair()`] on `tree/` (when there is a tree), adds its report's
/// lines under `tree/` names, and moves what it put in `tree/lost/` into `lost/tree/`.
/// Returns true when the tree was not clean.
fn repair_tree(
    fs: &Fs,
    dir: &Path,
    tree_options: &Options,
    dry_run: bool,
    report: &mut RepairReport,
) -> Result<bool> {
    let tree = file_names::tree_dir(dir);
    if names_in(fs, &tree)?.is_empty() {
        return Ok(false); // no tree yet: opening makes an empty one
    }
    let tree_lost = tree.join(LOST_DIR);
    let before = names_in(fs, &tree_lost)?;
    let found = lsm::repair(&tree, tree_options, dry_run)?;
    let named =
        |f: &FileReport| FileReport::new(format!("{TREE_DIR}/{}", f.file), f.records, &f.note);
    report.kept.extend(found.kept.iter().map(named));
    report.damaged.extend(found.damaged.iter().map(named));
    report.written.extend(found.written.iter().map(named));
    if !dry_run {
        let damaged: BTreeSet<&str> = found.damaged.iter().map(|f| f.file.as_str()).collect();
        for entry in names_in(fs, &tree_lost)?.difference(&before) {
            // `lsm::repair` names a copy `NAME.1`, `NAME.2`... when `NAME` is taken there.
            let base = match entry.rsplit_once('.') {
                Some((base, n)) if damaged.contains(base) && n.parse::<u32>().is_ok() => base,
                _ => entry.as_str(),
            };
            move_into_lost(fs, &tree_lost.join(entry), dir, TREE_DIR, base)?;
        }
    }
    Ok(!found.is_clean())
}

/// Moves the file at `from` into `dir/lost/sub/`, as `name` or, when an earlier repair
/// took that, the first free `name.1`, `name.2`, ...; syncs every directory it changed.
///
/// # Errors
/// [`Error::Io`].
fn move_into_lost(fs: &Fs, from: &Path, dir: &Path, sub: &str, name: &str) -> Result<()> {
    let lost = dir.join(LOST_DIR);
    let into = lost.join(sub);
    fs.create_dir_all(&into)?;
    let taken = names_in(fs, &into)?;
    let mut target = name.to_string();
    let mut n = 0;
    while taken.contains(&target) {
        n += 1;
        target = format!("{name}.{n}");
    }
    fs.rename(from, &into.join(&target))?;
    fs.sync_dir(&into)?;
    fs.sync_dir(&lost)?;
    fs.sync_dir(dir)?;
    fs.sync_dir(from.parent().unwrap_or(dir))
}

/// What the scan of one segment found.
#[derive(Debug)]
struct Examined {
    /// The valid records, seals left out, as byte ranges of the file.
    records: Vec<Range<usize>>,
    /// Its last valid record is a seal.
    sealed: bool,
    /// What is wrong with it, when it is damaged.
    damage: Option<String>,
    /// For the newest segment: where an unsynced tail starts, when it has one.
    torn_at: Option<u64>,
}

/// Where the tree's tables point, per segment: the end of the furthest value any entry of a
/// live table names there (every version, not only the newest). A table is only ever written
/// after the values its pointers name were synced ([`crate::engine`]'s WAL barrier), so a
/// segment whose valid records end before that lost records that were once on the disk.
///
/// Reads only. What cannot be read (no manifest, a damaged one, a damaged table) adds
/// nothing: that is the tree's damage, which [`lsm::repair()`] reports and salvages.
fn table_reach(fs: &Fs, tree: &Path) -> BTreeMap<u32, u64> {
    let mut reach = BTreeMap::new();
    let Ok(Some((_, state))) = lsm::manifest::recover(fs, tree) else {
        return reach;
    };
    let cache = Arc::new(BlockCache::new(0));
    for &number in state.levels.iter().flat_map(BTreeMap::keys) {
        let path = tree.join(lsm::file_names::table(number));
        if let Ok(table) = Table::open(fs, &path, number, cache.clone()) {
            // A table that fails part way has given what it could.
            let _ = add_table_reach(&Arc::new(table), &mut reach);
        }
    }
    reach
}

/// Adds the pointers of every entry of `table` to `reach` (see [`table_reach`]).
///
/// # Errors
/// [`Error::Corruption`] for a damaged block; [`Error::Io`].
fn add_table_reach(table: &Arc<Table>, reach: &mut BTreeMap<u32, u64>) -> Result<()> {
    let mut cursor = table.cursor(false);
    cursor.seek_to_first()?;
    while cursor.valid() {
        if let Some(Ok(TreeValue::Pointer(p))) = cursor.entry().value.map(value_pointer::decode) {
            let end = reach.entry(p.segment).or_insert(0);
            *end = (*end).max(p.end());
        }
        cursor.next()?;
    }
    Ok(())
}

/// The damage of a segment that reads clean up to `valid_end` but that the tree's tables
/// point past (`reach`, from [`table_reach`]): a cut at a record boundary, or a lost end
/// that happens to leave the records before it whole.
fn lost_end(reach: Option<&u64>, valid_end: u64) -> Option<String> {
    let reach = *reach.filter(|&&r| r > valid_end)?;
    Some(format!(
        "its valid records end at offset {valid_end}, but the tree's tables name values up \
         to offset {reach}: it lost records from its end"
    ))
}

/// Step 3: scans one segment (`bytes`, id `id`) and judges it; `newest` says whether it
/// may lack a seal and end in an unsynced tail.
fn examine(bytes: &[u8], id: u32, newest: bool) -> Examined {
    let scanned = scan_log::<SegmentKeyLog>(bytes, SEGMENT_HEADER_LEN as usize);
    let is_seal =
        |r: &Range<usize>| decode_record(&bytes[r.clone()]).is_ok_and(|d| d.kind == Kind::Seal);
    let seals: Vec<usize> = (0..scanned.records.len())
        .filter(|&i| is_seal(&scanned.records[i]))
        .collect();
    let last = scanned.records.len().checked_sub(1);
    let mut found = Examined {
        records: scanned
            .records
            .iter()
            .filter(|r| !is_seal(r))
            .cloned()
            .collect(),
        sealed: last.is_some() && seals.last() == last.as_ref(),
        damage: None,
        torn_at: None,
    };
    let header = &bytes[..bytes.len().min(SEGMENT_HEADER_LEN as usize)];
    let header_damage = match decode_segment_header(header) {
        Ok(found) if found == id => None,
        Ok(found) => Some(format!("the header names segment {found}, not {id}")),
        Err(e) => Some(format!("segment header: {}", e.detail)),
    };
    found.damage = if let Some(damage) = header_damage {
        // A newest segment whose header never reached the disk, and nothing after it: all
        // of it is an unsynced tail, as opening takes it.
        if newest && found.records.is_empty() && !found.sealed {
            found.torn_at = Some(0);
            None
        } else {
            Some(damage)
        }
    } else if let Some((pos, _)) = &scanned.first_bad {
        if newest && scanned.records.iter().all(|r| r.end <= *pos) {
            found.torn_at = Some(*pos as u64);
            None
        } else {
            scanned.damage_note()
        }
    } else if seals.first().is_some_and(|&i| Some(i) != last) {
        let at = scanned.records[seals[0]].start;
        Some(format!("a record follows the seal record at offset {at}"))
    } else if !found.sealed && !newest {
        Some("no seal record: a segment older than the newest lost its end".to_string())
    } else {
        None
    };
    found
}

/// A segment that stays: what a pointer into it may name.
#[derive(Debug)]
struct Kept {
    id: u32,
    /// The offset just past its last valid record (its seal and any unsynced tail left
    /// out).
    valid_end: u64,
}

/// Where a salvaged put record went.
#[derive(Debug)]
struct Moved {
    /// Its pointer in the new segment.
    to: ValuePointer,
    /// Its key.
    key: Vec<u8>,
}

/// A damaged segment and the new one its records are salvaged into.
#[derive(Debug)]
struct Salvage {
    /// The damaged segment's id.
    from: u32,
    /// The new segment's id.
    to: u32,
    /// What is wrong with the damaged one.
    damage: String,
    /// The records salvaged (seals left out).
    records: u64,
    /// The new segment's bytes: header, records, seal.
    bytes: Vec<u8>,
    /// Each salvaged put, by its offset in the damaged segment.
    moved: BTreeMap<u64, Moved>,
}

/// Step 4: the new segment `to` of the valid `records` of the damaged segment `from`
/// (whose bytes are `bytes`), and where each put went.
fn salvage(bytes: &[u8], records: &[Range<usize>], from: u32, to: u32, damage: String) -> Salvage {
    let mut out = encode_segment_header(to);
    let mut moved = BTreeMap::new();
    for range in records {
        let raw = &bytes[range.clone()];
        let (Ok(record), Ok(len)) = (decode_record(raw), u32::try_from(raw.len())) else {
            continue; // the scan only keeps records that decode
        };
        if record.kind == Kind::Put {
            let to = ValuePointer {
                segment: to,
                offset: out.len() as u64,
                len,
            };
            let key = record.key.to_vec();
            moved.insert(range.start as u64, Moved { to, key });
        }
        out.extend_from_slice(raw);
    }
    out.extend_from_slice(&seal_record());
    Salvage {
        from,
        to,
        damage,
        records: records.len() as u64,
        bytes: out,
        moved,
    }
}

/// What repair will do to the value log.
#[derive(Debug, Default)]
struct VlogPlan {
    /// The segments that stay, with a report line each.
    kept: Vec<(Kept, FileReport)>,
    /// The damaged segments, each with its salvage.
    salvaged: Vec<Salvage>,
    /// The newest segment, clean but unsealed, gets a seal: its id and record count.
    seal: Option<(u32, u64)>,
    /// Where each segment's records end, for the cut of the tree's WAL: as opening sees
    /// them for a clean segment or an unsynced tail, and nowhere for a damaged one (a
    /// pointer into it is judged by its salvage).
    ends: Ends,
}

/// Steps 3 and 4, planned: scans every segment of `dir/vlog/` and decides which stay,
/// which are salvaged and into which new ids, and whether the newest needs a seal. `reach`
/// is where the tree's tables point ([`table_reach`]): a segment they point past is
/// damaged.
fn plan_vlog(fs: &Fs, dir: &Path, reach: &BTreeMap<u32, u64>) -> Result<VlogPlan> {
    let vlog = file_names::vlog_dir(dir);
    let ids = segment_ids(fs, &vlog)?;
    let Some(&newest) = ids.last() else {
        return Ok(VlogPlan::default());
    };
    let mut plan = VlogPlan::default();
    plan.ends.newest = newest;
    let mut next_id = u64::from(newest) + 1;
    for &id in &ids {
        let bytes = fs.read_all(&file_names::segment(&vlog, id))?;
        let is_newest = id == newest;
        let mut found = examine(&bytes, id, is_newest);
        if found.damage.is_none() {
            found.damage = lost_end(reach.get(&id), valid_end(&bytes, &found));
        }
        // No cut for a damaged segment's sake: its damage is no power loss, and the
        // pointers into it are judged by its salvage.
        let end = match found.damage {
            Some(_) => u64::MAX,
            None => valid_end(&bytes, &found),
        };
        plan.ends.ends.insert(id, end.max(SEGMENT_HEADER_LEN));
        let damage = match (&found.damage, found.torn_at) {
            (Some(damage), _) => Some(damage.clone()),
            // The salvages come after the newest segment, which must then be sealed; a
            // seal cannot follow its unsynced tail, so it is salvaged too.
            (None, Some(at)) if !plan.salvaged.is_empty() => Some(format!(
                "an unsynced tail from offset {at}; salvaged, as the segments salvaged \
                 before it must follow a sealed one"
            )),
            _ => None,
        };
        let records = found.records.len() as u64;
        if let Some(damage) = damage {
            let to = u32::try_from(next_id).map_err(|_| {
                Error::InvalidArgument(format!(
                    "no segment id is left above {newest} for a salvage"
                ))
            })?;
            plan.salvaged
                .push(salvage(&bytes, &found.records, id, to, damage));
            next_id += 1;
            continue;
        }
        if is_newest && !found.sealed && !plan.salvaged.is_empty() {
            plan.seal = Some((id, records));
        }
        plan.kept.push(kept(id, &bytes, &found, records));
    }
    Ok(plan)
}

/// The offset just past the last valid record of a segment that is not damaged (`bytes`,
/// as [`examine`] `found` it): its seal and any unsynced tail left out.
fn valid_end(bytes: &[u8], found: &Examined) -> u64 {
    let len = bytes.len() as u64;
    match found.torn_at {
        Some(at) => at,
        None if found.sealed => len.saturating_sub(seal_len()),
        None => len,
    }
}

/// The [`Kept`] view of a segment that stays, and its report line.
fn kept(id: u32, bytes: &[u8], found: &Examined, records: u64) -> (Kept, FileReport) {
    let len = bytes.len() as u64;
    let valid_end = valid_end(bytes, found);
    let note = match found.torn_at {
        Some(at) => format!(
            "an unsynced tail of {} bytes from offset {at}: the next open cuts it",
            len - at
        ),
        None => "clean".to_string(),
    };
    (
        Kept { id, valid_end },
        FileReport::new(segment_name(id), records, note),
    )
}

/// The report name of segment `id`: `vlog/00000007.seg`.
fn segment_name(id: u32) -> String {
    let name = bitcask::file_names::FileName::Segment(id).name();
    format!("{VLOG_DIR}/{name}")
}

impl VlogPlan {
    /// Adds the value log's lines to `report`.
    fn report(&self, report: &mut RepairReport) {
        for (_, line) in &self.kept {
            report.kept.push(line.clone());
        }
        for s in &self.salvaged {
            let (from, to) = (segment_name(s.from), segment_name(s.to));
            report
                .damaged
                .push(FileReport::new(&from, s.records, &s.damage));
            let note = format!("the records salvaged from {from}, and a seal");
            report.written.push(FileReport::new(to, s.records, note));
        }
        if let Some((id, records)) = self.seal {
            let note = "a seal record appended: the salvaged segments come after it";
            report
                .written
                .push(FileReport::new(segment_name(id), records, note));
        }
    }

    /// Step 4, done: appends the newest segment's seal, synced, then writes each salvaged
    /// segment under its new id (atomically, synced). In that order, a crash between the
    /// two leaves a sealed newest segment, which opening takes as it is.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn write(&self, fs: &Fs, dir: &Path) -> Result<()> {
        let vlog = file_names::vlog_dir(dir);
        if let Some((id, _)) = self.seal {
            let file = fs.open(&file_names::segment(&vlog, id))?;
            file.append(&seal_record())?;
            file.sync()?;
        }
        for s in &self.salvaged {
            fs.write_atomic(&file_names::segment(&vlog, s.to), &s.bytes)?;
        }
        Ok(())
    }

    /// Step 6: moves every damaged segment whole into `lost/vlog/`.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn move_damaged(&self, fs: &Fs, dir: &Path) -> Result<()> {
        let vlog = file_names::vlog_dir(dir);
        for s in &self.salvaged {
            let from = file_names::segment(&vlog, s.from);
            let name = bitcask::file_names::FileName::Segment(s.from).name();
            move_into_lost(fs, &from, dir, VLOG_DIR, &name)?;
        }
        Ok(())
    }
}

/// What the pointer check did.
#[derive(Debug, Default)]
struct Checked {
    /// WAL records cut because their values were in an unsynced tail.
    trimmed: u64,
    /// Keys re-pointed at salvaged records.
    moved: u64,
    /// Keys deleted: their values are gone.
    lost: Vec<Vec<u8>>,
}

/// Keys named in a report note, at most.
const KEYS_NAMED: usize = 8;

impl Checked {
    /// Its report line.
    fn report(&self) -> FileReport {
        let mut note = format!(
            "the tree's pointers checked against the repaired value log: {} moved to \
             salvaged records, {} keys deleted whose values are gone",
            self.moved,
            self.lost.len()
        );
        if !self.lost.is_empty() {
            let named: Vec<String> = self
                .lost
                .iter()
                .take(KEYS_NAMED)
                .map(|k| quoted(k, 32))
                .collect();
            let more = if self.lost.len() > KEYS_NAMED {
                ", ..."
            } else {
                ""
            };
            note += &format!(" ({}{more})", named.join(", "));
        }
        if self.trimmed > 0 {
            note += &format!(
                "; {} records cut from the tree's newest WAL, their values in an unsynced tail",
                self.trimmed
            );
        }
        FileReport::new(TREE_DIR, self.moved + self.lost.len() as u64, note)
    }
}

/// What becomes of one key of the tree.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Its tree value stays.
    Keep,
    /// Its value was salvaged: it points here now.
    Move(ValuePointer),
    /// Its value is gone: the key is deleted.
    Lost,
}

/// The segments a pointer may name after the repair, and how to judge one.
struct Judge<'a> {
    /// The kept segments: each open, with its valid end.
    kept: BTreeMap<u32, (FileRef, u64)>,
    /// The salvages, by the damaged segment's id.
    salvaged: BTreeMap<u32, &'a Salvage>,
}

impl Judge<'_> {
    /// What becomes of `key`, whose tree value is `value`.
    fn verdict(&self, key: &[u8], value: &[u8]) -> Result<Verdict> {
        let p = match value_pointer::decode(value) {
            Ok(TreeValue::Inline(_)) => return Ok(Verdict::Keep),
            Ok(TreeValue::Pointer(p)) => p,
            Err(_) => return Ok(Verdict::Lost),
        };
        if let Some(s) = self.salvaged.get(&p.segment) {
            return Ok(match s.moved.get(&p.offset) {
                Some(m) if m.to.len == p.len && m.key == key => Verdict::Move(m.to),
                _ => Verdict::Lost,
            });
        }
        let Some((file, valid_end)) = self.kept.get(&p.segment) else {
            return Ok(Verdict::Lost);
        };
        if p.end() > *valid_end {
            return Ok(Verdict::Lost);
        }
        let bytes = file.read_vec_at(p.offset, p.len as usize)?;
        let holds = decode_record(&bytes).is_ok_and(|r| r.kind == Kind::Put && r.key == key);
        Ok(if holds { Verdict::Keep } else { Verdict::Lost })
    }
}

/// Tree batches of at most this many bytes of keys and pointers.
const BATCH_BYTES: usize = 1 << 20;

/// Step 5: cuts the tree's newest WAL back to what the log holds, then opens the tree, judges every key's tree value against the repaired log (`plan`, whose new
/// segments are written), writes the re-pointings and deletes, and flushes the tree.
///
/// # Errors
/// As [`LsmTree`]'s open, writes and flush; [`Error::Io`].
fn check_pointers(fs: &Fs, dir: &Path, tree_options: &Options, plan: &VlogPlan) -> Result<Checked> {
    let tree_dir = file_names::tree_dir(dir);
    let mut checked = Checked {
        trimmed: recovery::trim_tree_wal(fs, &tree_dir, &plan.ends)?,
        ..Checked::default()
    };
    let vlog = file_names::vlog_dir(dir);
    let mut judge = Judge {
        kept: BTreeMap::new(),
        salvaged: plan.salvaged.iter().map(|s| (s.from, s)).collect(),
    };
    for (kept, _) in &plan.kept {
        let file = fs.open(&file_names::segment(&vlog, kept.id))?;
        judge.kept.insert(kept.id, (file, kept.valid_end));
    }
    let tree = LsmTree::open(&tree_dir, tree_options)?;
    let mut changes: Vec<(Vec<u8>, Option<ValuePointer>)> = Vec::new();
    {
        let mut cursor = tree.cursor()?;
        cursor.seek_to_first()?;
        while cursor.valid() {
            match judge.verdict(cursor.key(), cursor.value())? {
                Verdict::Keep => {}
                Verdict::Move(to) => changes.push((cursor.key().to_vec(), Some(to))),
                Verdict::Lost => changes.push((cursor.key().to_vec(), None)),
            }
            cursor.next()?;
        }
    }
    apply(&tree, &changes)?;
    tree.flush()?;
    tree.close()?;
    for (key, to) in changes {
        match to {
            Some(_) => checked.moved += 1,
            None => checked.lost.push(key),
        }
    }
    Ok(checked)
}

/// Writes `changes` to `tree`: a put of the new pointer, or a delete, per key, in batches
/// of about [`BATCH_BYTES`].
///
/// # Errors
/// As [`LsmTree`]'s writes.
fn apply(tree: &LsmTree, changes: &[(Vec<u8>, Option<ValuePointer>)]) -> Result<()> {
    let mut batch = WriteBatch::new();
    let mut bytes = 0;
    for (key, to) in changes {
        match to {
            Some(p) => batch.put(key, &p.encode())?,
            None => batch.delete(key)?,
        }
        bytes += key.len() + value_pointer::POINTER_LEN;
        if bytes >= BATCH_BYTES {
            tree.write(&batch)?;
            batch = WriteBatch::new();
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        tree.write(&batch)?;
    }
    Ok(())
}
