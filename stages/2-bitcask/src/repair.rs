//! Repair: bringing back a store with damaged segments, hint files or merge commit records,
//! keeping every intact record.
//!
//! Opening refuses a store whose sealed segment has a bad record (or lost its seal), or
//! whose merge commit record does not check out ([`crate::recovery`]): guessing would risk
//! wrong answers. [`repair`] (`kv --engine bitcask --dir DIR repair`) is the way back. It
//! follows the rules of [`kv_shared::repair`]: nothing is deleted, every intact record is
//! kept, and a dry run changes nothing.
//!
//! ## The algorithm, step by step
//!
//! 1. **Check that the directory is a bitcask store and lock it**
//!    ([`kv_shared::repair::lock_store_or_damaged_marker`]): the `ENGINE` marker must name
//!    this engine, or nothing is touched; an open store is refused with
//!    [`kv_shared::Error::Locked`]. A marker that is there but damaged is accepted only when
//!    a segment with a valid header sits beside it (`segments_are_ours`); it is then kept in
//!    `lost/` and written anew ([`kv_shared::repair::rewrite_marker`]).
//! 2. **Check the merge commit records** (`check_commits`). A commit record that decodes
//!    is kept: opening finishes its merge. A damaged one is moved to `lost/`. Its merge did
//!    commit (the record is only written at the commit point), but which segments it
//!    replaced can no longer be read. If some outputs still have their temporary
//!    `.merge` names, the renames had not finished, and inputs are only deleted after the
//!    renames: every input is still there, so the store *before* the merge is whole. The
//!    outputs (copies of records the inputs still hold) go to `lost/` too, and the store
//!    is as if the merge never ran. Otherwise the outputs are in place, and so is any input
//!    the crash did not delete: each record carries its sequence number and the newest
//!    wins, so keeping both is right, except that a key deleted before that merge may come
//!    back if its tombstone was in an input already deleted. The report says so.
//! 3. **Scan every segment** (`check_segment`). From the byte after the header, decode
//!    records; at a bad byte, **resynchronise** by trying every later offset until a record
//!    decodes with a valid checksum ([`kv_shared::repair::scan_log`], as LevelDB's log
//!    reader and `RepairDB` do). A segment is damaged if its header is bad, any byte
//!    belongs to no valid record, a record follows its seal, or it has no seal and is not
//!    the active segment (the newest segment without a hint file, counting a hint still
//!    under its temporary `.merge` name): an immutable segment that lost its end.
//! 4. **Check every hint file** against its segment (`check_hints`), as opening does
//!    ([`crate::hint::read_hint`]). A damaged hint is copied into `lost/` (and rebuilt in
//!    step 5); the hint of a damaged segment (it describes bytes that are about to
//!    change) is moved there.
//! 5. **Rebuild the hints repair takes away** (`plan_hints`). Opening, and repair itself,
//!    tell the active segment (the newest log, allowed to lack a seal) from the others by
//!    one fact: every segment a merge writes has a hint file. A merge's outputs take new
//!    ids, so they can be newer than the active segment; if one of them lost its hint, it
//!    would pass for the active segment, and the real one for an immutable segment that
//!    lost its seal. So every segment that had a hint and would lose it (a damaged hint, a
//!    salvaged segment, or an output of a merge whose damaged commit record sends its
//!    temporary hint to `lost/`) gets a new one, built from the segment's records as they
//!    now are, exactly as a merge writes it: the segment is the truth.
//! 6. **Salvage each damaged segment in its own place** (planned by `check_segment`,
//!    done by `apply`). Its bytes are copied into `lost/`
//!    ([`kv_shared::repair::copy_to_lost`]), synced; then the segment is rewritten,
//!    atomically, under the **same name and id**: the header, every valid record in file
//!    order, and a seal. Which value of a key is newest is decided by the records' sequence
//!    numbers, which are copied as they were; but the segment ids still order the files
//!    (the active segment is the newest, ids are never reused, merges pick their inputs by
//!    id), so the salvaged segment must take the damaged one's place, not come last. It is
//!    sealed even when it was the active segment: opening then starts a fresh active
//!    segment after it. Then the hints of step 5 are written, each atomically (to `.tmp`,
//!    fsynced, renamed, directory fsynced).
//!
//! Copying into `lost/` and then replacing (rather than moving first) means a crash at any
//! point leaves the damaged segment or the salvaged one under its name, never neither.
//! Hints are moved before segments are replaced, and new hints written only after every
//! segment is, so a stale hint never describes a salvaged segment. A damaged hint of an
//! intact segment is copied, not moved, and replaced atomically: its segment is never
//! without a hint. A salvaged segment is, for a moment: a crash between its rewrite and
//! its new hint leaves it sealed but without a hint, and if it is newer than the active
//! segment, a second repair then takes the active segment for an immutable one that lost
//! its seal and seals it, keeping each of its valid records.
//!
//! What a repair can cost: the records in the damaged bytes. A key whose newest record was
//! lost goes back to the value of its newest surviving record (or comes back, if a
//! tombstone was lost). A write batch is one record: salvaged whole or not at all.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use kv_shared::repair::{
    FileReport, RepairReport, Scanned, copy_to_lost, lock_store_or_damaged_marker, move_to_lost,
    rewrite_marker, scan_log,
};
use kv_shared::{Engine, Fs, Options, Result};

use crate::Bitcask;
use crate::file_names::FileName;
use crate::hint::{self, read_hint};
use crate::merge_commit::MergeCommit;
use crate::record::{
    Kind, SEGMENT_HEADER_LEN, SegmentKeyLog, decode_record, decode_segment_header,
    encode_segment_header, seal_record,
};

/// The longest merge commit record read (it lists segment ids: a few bytes each).
const MAX_COMMIT_LEN: u64 = 8 << 20;

/// What repair will do to the files of a store.
#[derive(Debug, Default)]
struct Plan {
    report: RepairReport,
    /// Files to move into `lost/` whole (damaged hints and commit records, and what goes
    /// with them).
    to_lost: Vec<String>,
    /// Damaged segments: name and salvaged bytes.
    salvaged: Vec<(String, Vec<u8>)>,
    /// Damaged hints of intact segments: copied into `lost/`, then rebuilt in place.
    stale_hints: Vec<String>,
    /// Hints rebuilt from their segments: name and bytes, written after every segment.
    hints: Vec<(String, Vec<u8>)>,
}

/// Repairs the bitcask store in `dir` (see the [module documentation](self)). With
/// `dry_run`, only reads and reports.
///
/// # Errors
/// [`kv_shared::Error::InvalidArgument`] when `dir` is not a store (no marker);
/// [`kv_shared::Error::WrongEngine`] or [`kv_shared::Error::FormatVersion`] when it is
/// another engine's or version's; [`kv_shared::Error::Locked`] when the store is open;
/// [`kv_shared::Error::Io`].
pub fn repair(dir: &Path, options: &Options, dry_run: bool) -> Result<RepairReport> {
    let fs = Fs::new(options.file_system());
    let (engine, version) = (Bitcask::NAME, Bitcask::FORMAT_VERSION);
    let (_lock, marker_damage) =
        lock_store_or_damaged_marker(&fs, dir, engine, version, || segments_are_ours(&fs, dir))?;
    let files: Vec<FileName> = fs
        .list(dir)?
        .iter()
        .filter_map(|n| FileName::parse(n))
        .collect();
    let mut plan = Plan::default();
    plan.report.dry_run = dry_run;
    if let Some(damage) = marker_damage {
        rewrite_marker(&fs, dir, engine, version, damage, &mut plan.report)?;
    }
    check_commits(&fs, dir, &files, &mut plan)?;
    let active = active_candidate(&files);
    // Without a commit record that opening will finish, `*.merge` files are the debris of
    // a merge that never committed: opening deletes them, repair leaves them alone.
    let committed = plan
        .report
        .kept
        .iter()
        .any(|f| f.file.starts_with("merge-"));
    let mut segment_lens = BTreeMap::new();
    for &file in &files {
        let wanted = match file {
            FileName::Segment(_) => true,
            FileName::MergeSegment(_) => committed,
            _ => false,
        };
        if wanted && !plan.to_lost.contains(&file.name()) {
            let len = check_segment(&fs, dir, file, Some(file) == active, &mut plan)?;
            segment_lens.insert(file.name(), len);
        }
    }
    check_hints(&fs, dir, &files, &segment_lens, &mut plan)?;
    plan_hints(&fs, dir, &files, &segment_lens, &mut plan)?;
    if !dry_run {
        apply(&fs, dir, &plan)?;
    }
    Ok(plan.report)
}

/// True when `dir` holds a segment whose header checks out and names its file's id: a
/// bitcask store, whatever its marker says.
fn segments_are_ours(fs: &Fs, dir: &Path) -> Result<bool> {
    for name in fs.list(dir)? {
        let Some(segment @ FileName::Segment(id)) = FileName::parse(&name) else {
            continue;
        };
        let file = fs.open(&segment.path(dir))?;
        let len = file.len()?.min(SEGMENT_HEADER_LEN);
        if decode_segment_header(&file.read_vec_at(0, len as usize)?) == Ok(id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Step 2: keeps the commit records that decode; plans moving a damaged one (and, when
/// its renames had not finished, its merge's outputs) into `lost/`.
fn check_commits(fs: &Fs, dir: &Path, files: &[FileName], plan: &mut Plan) -> Result<()> {
    let outputs: Vec<String> = files
        .iter()
        .filter(|f| matches!(f, FileName::MergeSegment(_) | FileName::MergeHint(_)))
        .map(|f| f.name())
        .collect();
    for &file in files {
        let FileName::Commit(_) = file else { continue };
        let name = file.name();
        let handle = fs.open(&file.path(dir))?;
        let len = handle.len()?.min(MAX_COMMIT_LEN);
        let bytes = handle.read_vec_at(0, len as usize)?;
        let Err(e) = MergeCommit::decode(&bytes) else {
            plan.report.kept.push(FileReport::new(
                name,
                0,
                "a committed merge: open finishes it",
            ));
            continue;
        };
        let note = if outputs.is_empty() {
            "its merge's outputs are in place; a key deleted before that merge may come \
             back if the merge had already deleted the input holding its tombstone"
        } else {
            "its merge had not renamed all its outputs, so no input was deleted yet: the \
             outputs (copies) go to lost/ too, and the store is as before that merge"
        };
        let detail = format!("merge commit record: {}; {note}", e.detail);
        plan.report.damaged.push(FileReport::new(&name, 0, detail));
        plan.to_lost.push(name);
        for output in &outputs {
            let note = "output of the merge whose commit record is damaged";
            plan.report.damaged.push(FileReport::new(output, 0, note));
            plan.to_lost.push(output.clone());
        }
    }
    Ok(())
}

/// The segment that may lack a seal: the newest segment without a hint file. A hint still
/// under its temporary name counts: the segment is a merge's output whose renames a crash
/// cut short.
fn active_candidate(files: &[FileName]) -> Option<FileName> {
    let hinted =
        |id: u32| files.contains(&FileName::Hint(id)) || files.contains(&FileName::MergeHint(id));
    files
        .iter()
        .filter(|f| matches!(f, FileName::Segment(id) if !hinted(*id)))
        .max_by_key(|f| f.id())
        .copied()
}

/// Step 3: scans segment `file`; plans its salvage when it is damaged. Returns its length.
fn check_segment(
    fs: &Fs,
    dir: &Path,
    file: FileName,
    may_be_open: bool,
    plan: &mut Plan,
) -> Result<u64> {
    let name = file.name();
    let bytes = fs.read_all(&file.path(dir))?;
    let scanned = scan_log::<SegmentKeyLog>(&bytes, SEGMENT_HEADER_LEN as usize);
    let records: Vec<&Range<usize>> = scanned
        .records
        .iter()
        .filter(|r| bytes[r.start + 20] != Kind::Seal.byte())
        .collect();
    let count = records.len() as u64;
    let Some(damage) = segment_damage(&bytes, file.id(), &scanned, may_be_open) else {
        plan.report.kept.push(FileReport::new(name, count, "clean"));
        return Ok(bytes.len() as u64);
    };
    let mut salvaged = encode_segment_header(file.id());
    for range in records {
        salvaged.extend_from_slice(&bytes[range.clone()]);
    }
    salvaged.extend_from_slice(&seal_record());
    plan.report
        .damaged
        .push(FileReport::new(&name, count, damage));
    plan.report.written.push(FileReport::new(
        &name,
        count,
        "salvaged records and a seal, under the damaged segment's id",
    ));
    plan.salvaged.push((name, salvaged));
    Ok(0) // its hint, if any, no longer describes it
}

/// What is wrong with a segment, if anything: its header, bytes that are no record, a
/// record after its seal, or no seal where one is needed.
fn segment_damage(bytes: &[u8], id: u32, scanned: &Scanned, may_be_open: bool) -> Option<String> {
    let header = &bytes[..bytes.len().min(SEGMENT_HEADER_LEN as usize)];
    match decode_segment_header(header) {
        Ok(found) if found == id => {}
        Ok(found) => return Some(format!("header names segment {found}, not {id}")),
        Err(e) => return Some(format!("segment header: {}", e.detail)),
    }
    if let Some(note) = scanned.damage_note() {
        return Some(note);
    }
    let seals: Vec<usize> = scanned
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| bytes[r.start + 20] == Kind::Seal.byte())
        .map(|(i, _)| i)
        .collect();
    let last = scanned.records.len().checked_sub(1);
    match seals.first() {
        Some(&i) if Some(i) != last => Some(format!(
            "a record follows the seal record at offset {}",
            scanned.records[i].start
        )),
        None if !may_be_open => Some("no seal record: an immutable segment lost its end".into()),
        _ => None,
    }
}

/// Step 4: keeps each hint that matches its intact segment; plans rebuilding the others
/// (`plan_hints`): a damaged one is copied into `lost/` first, the hint of a damaged
/// segment is moved there.
fn check_hints(
    fs: &Fs,
    dir: &Path,
    files: &[FileName],
    segment_lens: &BTreeMap<String, u64>,
    plan: &mut Plan,
) -> Result<()> {
    for &file in files {
        let segment = match file {
            FileName::Hint(id) => FileName::Segment(id),
            FileName::MergeHint(id) => FileName::MergeSegment(id),
            _ => continue,
        };
        let name = file.name();
        let Some(&segment_len) = segment_lens.get(&segment.name()) else {
            continue; // no segment: opening never reads it
        };
        if segment_len == 0 {
            let note = "the hint of a damaged segment: it describes bytes repair rewrites";
            plan.report.damaged.push(FileReport::new(&name, 0, note));
            plan.to_lost.push(name);
            continue;
        }
        let problem = {
            let handle = fs.open(&file.path(dir))?;
            match read_hint(&handle, segment.id(), segment_len, |_| {})? {
                Ok(entries) => {
                    plan.report
                        .kept
                        .push(FileReport::new(name, entries, "clean"));
                    continue;
                }
                Err(why) => format!("hint file: {why}; rebuilt from its segment"),
            }
        };
        plan.report.damaged.push(FileReport::new(&name, 0, problem));
        plan.stale_hints.push(name);
    }
    Ok(())
}

/// Step 5: plans a new hint for every segment that had one and will lose it (its hint was
/// damaged, its segment is salvaged, or it is an output of a merge whose damaged commit
/// record sends its temporary hint to `lost/`), built from the segment's records as they
/// will be.
fn plan_hints(
    fs: &Fs,
    dir: &Path,
    files: &[FileName],
    segment_lens: &BTreeMap<String, u64>,
    plan: &mut Plan,
) -> Result<()> {
    for &file in files {
        let (hint, temporary) = match file {
            FileName::Segment(id) => (FileName::Hint(id), FileName::MergeHint(id)),
            FileName::MergeSegment(id) => (FileName::MergeHint(id), FileName::MergeHint(id)),
            _ => continue,
        };
        let name = file.name();
        if !segment_lens.contains_key(&name) {
            continue; // not part of the store after repair
        }
        let lost = |f: FileName| plan.to_lost.contains(&f.name());
        let had_hint = files.contains(&hint) || files.contains(&temporary);
        let keeps_hint = (files.contains(&hint)
            && !lost(hint)
            && !plan.stale_hints.contains(&hint.name()))
            // a committed merge's temporary hint, which opening renames beside its segment
            || (temporary != hint && files.contains(&temporary) && !lost(temporary));
        if !had_hint || keeps_hint {
            continue;
        }
        let salvaged = plan.salvaged.iter().find(|(n, _)| *n == name);
        let bytes = match salvaged {
            Some((_, bytes)) => bytes.clone(),
            None => fs.read_all(&file.path(dir))?,
        };
        let Some((count, hint_bytes)) = hint_of(file.id(), &bytes) else {
            let note = "holds a batch record, which a hint cannot describe: no hint rebuilt";
            plan.report.damaged.push(FileReport::new(&name, 0, note));
            continue;
        };
        let note = "a hint rebuilt from its segment";
        plan.report
            .written
            .push(FileReport::new(hint.name(), count, note));
        plan.hints.push((hint.name(), hint_bytes));
    }
    Ok(())
}

/// The hint file of segment `id`, whose bytes are `bytes` (whole records, as repair
/// keeps them), and its entry count: one entry per record but the seal, in file order.
/// `None` when the segment holds a batch record (only a merge's outputs have hints, and
/// they never hold one).
fn hint_of(id: u32, bytes: &[u8]) -> Option<(u64, Vec<u8>)> {
    let scanned = scan_log::<SegmentKeyLog>(bytes, SEGMENT_HEADER_LEN as usize);
    let mut out = hint::encode_header(id);
    let mut count = 0;
    for range in &scanned.records {
        let record = decode_record(&bytes[range.clone()]).ok()?;
        match record.kind {
            Kind::Seal => continue,
            Kind::Batch => return None,
            Kind::Put | Kind::Tombstone => {}
        }
        let len = u32::try_from(range.len()).ok()?;
        let (seq, expiry, at) = (record.seq, record.expiry, range.start as u64);
        hint::encode_entry(&mut out, seq, expiry, at, len, record.kind, record.key);
        count += 1;
    }
    hint::encode_end(&mut out, count, bytes.len() as u64);
    Some((count, out))
}

/// Step 6: moves whole files into `lost/`, then replaces each damaged segment by its
/// salvaged records, its original kept in `lost/` first, then writes the rebuilt hints
/// (a damaged one copied into `lost/` first).
fn apply(fs: &Fs, dir: &Path, plan: &Plan) -> Result<()> {
    for name in &plan.to_lost {
        move_to_lost(fs, dir, name)?;
    }
    for (name, salvaged) in &plan.salvaged {
        copy_to_lost(fs, dir, name)?;
        fs.write_atomic(&dir.join(name), salvaged)?;
    }
    for (name, hint) in &plan.hints {
        if plan.stale_hints.contains(name) {
            copy_to_lost(fs, dir, name)?;
        }
        fs.write_atomic(&dir.join(name), hint)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kv_shared::Error;
    use kv_shared::repair::LOST_DIR;
    use kv_shared::store_dir::MARKER_FILE;

    use super::*;

    fn options() -> Options {
        Options::new()
            .set("segment_bytes", "4K")
            .set("background_merge", "false")
    }

    fn value(i: u32) -> Vec<u8> {
        format!("value {i:04} {}", "v".repeat(60)).into_bytes()
    }

    /// 300 puts over several 4 KiB segments; `compact` first when `merged`, so the
    /// segments have hint files.
    fn build(dir: &Path, merged: bool) {
        let store = Bitcask::open(dir, &options()).unwrap();
        for i in 0..300u32 {
            store.put(&i.to_be_bytes(), &value(i)).unwrap();
        }
        if merged {
            store.put(&0u32.to_be_bytes(), &value(0)).unwrap(); // a dead record to merge
            store.compact().unwrap();
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names = Fs::default().list(dir).unwrap();
        names.sort();
        names
    }

    /// Every key holds its value, but `lost` keys at most, which are absent.
    fn check_store(dir: &Path, lost: usize) {
        let store = Bitcask::open(dir, &options()).unwrap();
        let missing = (0..300u32)
            .filter(|i| match store.get(&i.to_be_bytes()).unwrap() {
                Some(v) => {
                    assert_eq!(v, value(*i));
                    false
                }
                None => true,
            })
            .count();
        assert!(missing <= lost, "{missing} keys lost");
    }

    #[test]
    fn records_on_both_sides_of_the_damage_are_salvaged_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        build(&dir, false);
        let path = FileName::Segment(1).path(&dir);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SEGMENT_HEADER_LEN as usize + 100] ^= 0x10; // inside the second record
        std::fs::write(&path, &bytes).unwrap();
        assert!(Bitcask::open(&dir, &options()).is_err());
        let listing = names(&dir);

        let dry = repair(&dir, &options(), true).unwrap();
        assert_eq!(names(&dir), listing, "a dry run changes nothing");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        let report = repair(&dir, &options(), false).unwrap();
        assert_eq!(
            report,
            RepairReport {
                dry_run: false,
                ..dry
            }
        );
        assert_eq!(report.damaged.len(), 1, "{report}");
        assert_eq!(report.damaged[0].file, "00000001.seg");
        let records = report.damaged[0].records;
        assert!(
            records > 30,
            "records before and after the damage: {report}"
        );
        assert_eq!(
            std::fs::read(dir.join(LOST_DIR).join("00000001.seg")).unwrap(),
            bytes
        );
        check_store(&dir, 1);
        assert!(repair(&dir, &options(), true).unwrap().is_clean());
    }

    #[test]
    fn a_damaged_hint_is_kept_in_lost_and_rebuilt_from_its_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        build(&dir, true);
        let hint = names(&dir)
            .into_iter()
            .find(|n| n.ends_with(".hint"))
            .expect("compact writes hint files");
        let original = std::fs::read(dir.join(&hint)).unwrap();
        let mut bytes = original.clone();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(dir.join(&hint), &bytes).unwrap();
        let dry = repair(&dir, &options(), true).unwrap();
        assert_eq!(std::fs::read(dir.join(&hint)).unwrap(), bytes, "dry run");
        let report = repair(&dir, &options(), false).unwrap();
        assert_eq!(
            report,
            RepairReport {
                dry_run: false,
                ..dry
            }
        );
        assert_eq!(report.damaged.len(), 1, "{report}");
        assert_eq!(report.damaged[0].file, hint);
        let written: Vec<&str> = report.written.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(written, [hint.as_str()], "{report}");
        assert_eq!(
            std::fs::read(dir.join(LOST_DIR).join(&hint)).unwrap(),
            bytes
        );
        // The segment is the truth: rebuilt from it, the hint is the one the merge wrote.
        assert_eq!(std::fs::read(dir.join(&hint)).unwrap(), original);
        check_store(&dir, 0);
    }

    #[test]
    fn a_merge_output_above_the_active_segment_keeps_a_hint_through_repair() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        build(&dir, true);
        {
            // A few writes after the merge, in the active segment it left: the merge's
            // outputs took ids after that segment's.
            let store = Bitcask::open(&dir, &options()).unwrap();
            for i in 0..5u32 {
                store.put(&i.to_be_bytes(), &value(i)).unwrap();
            }
        }
        let files: Vec<FileName> = names(&dir)
            .iter()
            .filter_map(|n| FileName::parse(n))
            .collect();
        let active = active_candidate(&files).expect("an active segment").id();
        let hint = files
            .iter()
            .filter(|f| matches!(f, FileName::Hint(id) if *id > active))
            .max_by_key(|f| f.id())
            .expect("a merge output above the active segment")
            .name();
        for salvage in [false, true] {
            // First a damaged hint of an intact segment, then a damaged merge output.
            let target = if salvage {
                hint.replace(".hint", ".seg")
            } else {
                hint.clone()
            };
            let mut bytes = std::fs::read(dir.join(&target)).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x01;
            std::fs::write(dir.join(&target), &bytes).unwrap();
            let report = repair(&dir, &options(), false).unwrap();
            let dry = repair(&dir, &options(), true).unwrap();
            assert!(dry.is_clean(), "after repair, a dry run finds: {dry}");
            let written: Vec<&str> = report.written.iter().map(|f| f.file.as_str()).collect();
            assert!(written.contains(&hint.as_str()), "{report}");
            assert!(dir.join(&hint).exists(), "{report}");
            check_store(&dir, usize::from(salvage));
            assert!(repair(&dir, &options(), true).unwrap().is_clean());
        }
    }

    #[test]
    fn a_damaged_commit_record_with_unrenamed_outputs_undoes_the_merge() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        build(&dir, false);
        // What a crash between a merge's commit point and its renames leaves, with the
        // commit record then damaged: an output under its temporary name, every input.
        let output = FileName::MergeSegment(900).path(&dir);
        let mut copy = encode_segment_header(900);
        copy.extend_from_slice(&seal_record());
        std::fs::write(&output, &copy).unwrap();
        let commit = MergeCommit {
            inputs: vec![1, 2],
            outputs: vec![900],
        };
        let mut bytes = commit.encode();
        bytes[14] ^= 0x01;
        std::fs::write(FileName::Commit(901).path(&dir), &bytes).unwrap();
        assert!(Bitcask::open(&dir, &options()).is_err());
        let report = repair(&dir, &options(), false).unwrap();
        let damaged: Vec<&str> = report.damaged.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(
            damaged,
            ["merge-00000901.commit", "00000900.seg.merge"],
            "{report}"
        );
        check_store(&dir, 0);
    }

    #[test]
    fn a_half_renamed_merge_output_gets_its_hint_back_when_the_commit_record_is_damaged() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        build(&dir, true);
        {
            let store = Bitcask::open(&dir, &options()).unwrap();
            store.put(&0u32.to_be_bytes(), &value(0)).unwrap();
        }
        let files: Vec<FileName> = names(&dir)
            .iter()
            .filter_map(|n| FileName::parse(n))
            .collect();
        let active = active_candidate(&files).expect("an active segment").id();
        let id = files.iter().map(|f| f.id()).max().unwrap();
        assert!(id > active && files.contains(&FileName::Hint(id)));
        // What a crash between an output's two renames leaves, with the commit record then
        // damaged: the segment under its final name, its hint under its temporary one.
        let hint = FileName::Hint(id).path(&dir);
        std::fs::rename(&hint, FileName::MergeHint(id).path(&dir)).unwrap();
        let mut commit = MergeCommit {
            inputs: vec![1],
            outputs: vec![id],
        }
        .encode();
        commit[14] ^= 0x01;
        std::fs::write(FileName::Commit(900).path(&dir), &commit).unwrap();
        let report = repair(&dir, &options(), false).unwrap();
        let written: Vec<&str> = report.written.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(written, [FileName::Hint(id).name()], "{report}");
        assert!(hint.exists());
        let dry = repair(&dir, &options(), true).unwrap();
        assert!(dry.is_clean(), "after repair, a dry run finds: {dry}");
        check_store(&dir, 0);
    }

    #[test]
    fn a_damaged_marker_is_rewritten_beside_bitcask_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        build(&dir, false);
        let marker = dir.join(MARKER_FILE);
        let mut bytes = std::fs::read(&marker).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&marker, &bytes).unwrap();
        assert!(Bitcask::open(&dir, &options()).is_err());
        let report = repair(&dir, &options(), false).unwrap();
        assert_eq!(report.damaged.len(), 1, "{report}");
        assert_eq!(
            std::fs::read(dir.join(LOST_DIR).join(MARKER_FILE)).unwrap(),
            bytes
        );
        check_store(&dir, 0);
    }

    #[test]
    fn a_foreign_directory_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
        assert!(matches!(
            repair(tmp.path(), &options(), false),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(names(tmp.path()), ["notes.txt"]);
        // A damaged marker beside files that are no bitcask segments proves nothing.
        std::fs::write(tmp.path().join(MARKER_FILE), b"KVMARKER damaged").unwrap();
        std::fs::write(tmp.path().join("00000001.seg"), b"not a segment header").unwrap();
        assert!(matches!(
            repair(tmp.path(), &options(), true),
            Err(Error::Corruption { .. })
        ));
        assert_eq!(names(tmp.path()), ["00000001.seg", "ENGINE", "notes.txt"]);
    }
}
