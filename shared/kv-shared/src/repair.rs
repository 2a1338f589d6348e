//! Repair: bringing back a store that refuses to open, and the report every engine's
//! `repair` function returns.
//!
//! A flipped bit in an old file and a store refuses to open with [`crate::Error::Corruption`].
//! That refusal is right (the engine must not guess), but it leaves the user nothing to do
//! next. LevelDB answers with `RepairDB`, RocksDB with `ldb repair`; each engine crate of the
//! course answers with a function of this shape:
//!
//! ```ignore
//! pub fn repair(dir: &Path, options: &Options, dry_run: bool) -> Result<RepairReport>;
//! ```
//!
//! and `kv --engine E --dir DIR repair [--dry-run]` calls it. The rules they all follow:
//!
//! * **Nothing is deleted.** Every damaged file is moved, whole, into `DIR/lost/`
//!   ([`LOST_DIR`], [`move_to_lost`]), where a person (or a later, better tool) can still
//!   read it.
//! * **Every intact record is salvaged.** The records a damaged file still holds before and
//!   after its bad bytes are written into new files of the store, so the repaired store
//!   opens and keeps as much as the damage allows.
//! * **The report says what happened to every file** ([`FileReport`]): kept as it was,
//!   salvaged (with how many records were kept and what was wrong), or written anew.
//! * **A dry run only reports.** It reads every file and says what a repair would do,
//!   changing nothing on disk.
//!
//! The steps every engine's repair shares live here too:
//!
//! * **Check that the directory is a store of this engine, then lock it** ([`lock_store`]):
//!   its `ENGINE` marker must exist and name this engine at this format version, or
//!   nothing is touched; repair never creates a store. Then the `LOCK` is taken, so a store
//!   open elsewhere is refused with [`crate::Error::Locked`]. An engine whose own files can
//!   prove the directory is its store may accept a damaged marker and write it anew
//!   ([`lock_store_or_damaged_marker`], [`rewrite_marker`]).
//! * **Scan a file for records, resynchronising past damage** ([`scan_records`], and
//!   [`scan_log`] for a [`LogFormat`] log): decode a record at each offset; at a bad byte
//!   try every following offset as a record start until one decodes, the way LevelDB's log
//!   reader skips a damaged block and `RepairDB` salvages what follows. What a record is
//!   stays the engine's business: the scan only asks "is there a valid record at this
//!   offset, and how long is it?".
//!
//! A repaired store may have lost writes (those in the damaged bytes), and where an old
//! value's record survived while the newer one's did not, a key may go back to that older
//! value. What it never does is return a value that was not written for that key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::file_system::FileLock;
use crate::fs::Fs;
use crate::log_reader::LogFormat;
use crate::store_dir::{LOCK_FILE, MARKER_FILE, check_marker};
use crate::{Error, Result, marker};

/// The subdirectory of a store that damaged files are moved into.
pub const LOST_DIR: &str = "lost";

/// What a repair did, or (in a dry run) would do, file by file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// True when nothing was changed on disk.
    pub dry_run: bool,
    /// Files that read cleanly and stay as they are.
    pub kept: Vec<FileReport>,
    /// Damaged files: each is moved into `lost/`, its intact records salvaged.
    pub damaged: Vec<FileReport>,
    /// Files the repair wrote: salvaged records, a rebuilt manifest or index.
    pub written: Vec<FileReport>,
}

/// One file in a [`RepairReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file's name in the store directory.
    pub file: String,
    /// The records it holds (kept, written) or that were salvaged from it (damaged).
    pub records: u64,
    /// What was wrong with it (damaged files), or what it is (written files).
    pub note: String,
}

impl FileReport {
    /// A report line for `file` with `records` records and a note.
    pub fn new(file: impl Into<String>, records: u64, note: impl Into<String>) -> Self {
        FileReport {
            file: file.into(),
            records,
            note: note.into(),
        }
    }
}

impl RepairReport {
    /// True when every file read cleanly: there was nothing to repair.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty() && self.written.is_empty()
    }
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (salvage, moved, write) = if self.dry_run {
            ("would salvage", "would move", "would write")
        } else {
            ("salvaged", "moved", "wrote")
        };
        for kept in &self.kept {
            writeln!(f, "kept     {}: {} records", kept.file, kept.records)?;
        }
        for damaged in &self.damaged {
            writeln!(
                f,
                "damaged  {}: {}; {salvage} {} records; {moved} to {LOST_DIR}/{}",
                damaged.file, damaged.note, damaged.records, damaged.file
            )?;
        }
        for written in &self.written {
            writeln!(
                f,
                "{write:<8} {}: {} records ({})",
                written.file, written.records, written.note
            )?;
        }
        if self.is_clean() {
            writeln!(f, "nothing to repair: every file reads cleanly")?;
        }
        Ok(())
    }
}

/// Moves `dir/name` into `dir/lost/`, under the same name or, when that is taken by an
/// earlier repair, the first free `name.1`, `name.2`, ...; syncs both directories. Returns
/// the path it now has.
///
/// # Errors
/// [`crate::Error::Io`].
pub fn move_to_lost(fs: &Fs, dir: &Path, name: &str) -> Result<PathBuf> {
    let (lost, to) = free_lost_path(fs, dir, name)?;
    fs.rename(&dir.join(name), &to)?;
    fs.sync_dir(&lost)?;
    fs.sync_dir(dir)?;
    Ok(to)
}

/// Copies `dir/name` into `dir/lost/`, under the same name or, when that is taken, the
/// first free `name.1`, `name.2`, ... (as [`move_to_lost`] names them), leaving the original
/// in place; syncs the copy and both directories. Returns the copy's path. Recovery uses it
/// before it cuts a log it cannot prove to be only an unsynced tail, so the cut destroys
/// nothing.
///
/// # Errors
/// [`crate::Error::Io`].
pub fn copy_to_lost(fs: &Fs, dir: &Path, name: &str) -> Result<PathBuf> {
    /// How many bytes are copied at a time.
    const CHUNK: u64 = 1 << 20;
    let (lost, path) = free_lost_path(fs, dir, name)?;
    let from = fs.open(&dir.join(name))?;
    let to = fs.create(&path)?;
    let len = from.len()?;
    let mut at = 0;
    while at < len {
        let n = (len - at).min(CHUNK);
        to.append(&from.read_vec_at(at, n as usize)?)?;
        at += n;
    }
    to.sync()?;
    fs.sync_dir(&lost)?;
    fs.sync_dir(dir)?;
    Ok(path)
}

/// Creates `dir/lost/` if needed and returns it with the first free path for `name` in it:
/// `name` itself, or when that is taken by an earlier repair, `name.1`, `name.2`, ...
///
/// # Errors
/// [`crate::Error::Io`].
fn free_lost_path(fs: &Fs, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let lost = dir.join(LOST_DIR);
    fs.create_dir_all(&lost)?;
    let taken = fs.list(&lost)?;
    let mut target = name.to_string();
    let mut n = 0;
    while taken.contains(&target) {
        n += 1;
        target = format!("{name}.{n}");
    }
    let path = lost.join(&target);
    Ok((lost, path))
}

/// Checks that `dir` holds a store of `engine` at `format_version`, without creating
/// anything (a missing directory has no marker either), then takes its lock. Dropping the
/// lock releases it.
///
/// # Errors
/// [`Error::InvalidArgument`] without a marker; [`Error::Corruption`] for a damaged one;
/// [`Error::WrongEngine`], [`Error::FormatVersion`], [`Error::Locked`], [`Error::Io`].
pub fn lock_store(
    fs: &Fs,
    dir: &Path,
    engine: &str,
    format_version: u32,
) -> Result<Box<dyn FileLock>> {
    read_marker(fs, dir, engine, format_version)??;
    fs.lock(&dir.join(LOCK_FILE))
}

/// As [`lock_store`], but a damaged marker (one that does not decode) is accepted when
/// `is_ours` finds the engine's own files in `dir`: then the store is locked and the
/// damage returned, for the marker to be written anew ([`rewrite_marker`]). A marker that
/// decodes but names another engine or version is never overruled.
///
/// # Errors
/// [`Error::InvalidArgument`] without a marker; [`Error::Corruption`] for a damaged one in
/// a directory without the engine's files; [`Error::WrongEngine`], [`Error::FormatVersion`],
/// [`Error::Locked`], [`Error::Io`].
pub fn lock_store_or_damaged_marker(
    fs: &Fs,
    dir: &Path,
    engine: &str,
    format_version: u32,
    is_ours: impl FnOnce() -> Result<bool>,
) -> Result<(Box<dyn FileLock>, Option<String>)> {
    let damage = match read_marker(fs, dir, engine, format_version)? {
        Ok(()) => None,
        Err(e @ Error::Corruption { .. }) if is_ours()? => Some(e.to_string()),
        Err(e) => return Err(e),
    };
    Ok((fs.lock(&dir.join(LOCK_FILE))?, damage))
}

/// Reads the marker of `dir` and checks it names `engine` at `format_version`. The outer
/// result fails when there is no marker to check; the inner one is the marker's verdict.
///
/// # Errors
/// Outer: [`Error::InvalidArgument`] without a marker, [`Error::Io`]. Inner:
/// [`Error::Corruption`], [`Error::WrongEngine`], [`Error::FormatVersion`].
fn read_marker(fs: &Fs, dir: &Path, engine: &str, format_version: u32) -> Result<Result<()>> {
    let marker_path = dir.join(MARKER_FILE);
    let Some(file) = fs.open_if_exists(&marker_path)? else {
        return Err(Error::InvalidArgument(format!(
            "{} has no {MARKER_FILE} marker: not a store (or no such directory), \
             refusing to repair it",
            dir.display()
        )));
    };
    let len = file.len()?;
    if len > 64 {
        return Ok(Err(Error::corruption(
            &marker_path,
            0,
            "marker file too long",
        )));
    }
    let bytes = file.read_vec_at(0, len as usize)?;
    Ok(marker::decode(&bytes)
        .map_err(|e| e.into_corruption(&marker_path, 0))
        .and_then(|found| check_marker(dir, found, engine, format_version)))
}

/// Reports the damaged marker of a store that [`lock_store_or_damaged_marker`] accepted
/// (`damage` says what was wrong) and, unless the report is a dry run's, keeps a copy of
/// it in `lost/` and writes a new one naming `engine` at `format_version`.
///
/// # Errors
/// [`Error::Io`].
pub fn rewrite_marker(
    fs: &Fs,
    dir: &Path,
    engine: &str,
    format_version: u32,
    damage: String,
    report: &mut RepairReport,
) -> Result<()> {
    let note = format!("{damage}; the store's own files show it is a {engine} store");
    report.damaged.push(FileReport::new(MARKER_FILE, 0, note));
    report
        .written
        .push(FileReport::new(MARKER_FILE, 0, "a new marker"));
    if !report.dry_run {
        copy_to_lost(fs, dir, MARKER_FILE)?;
        fs.write_atomic(
            &dir.join(MARKER_FILE),
            &marker::encode(engine, format_version),
        )?;
    }
    Ok(())
}

/// What a resynchronising scan ([`scan_records`]) found: the byte ranges of the valid
/// records, in order, and the damage it skipped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Each valid record's bytes, as a range of the scanned offsets.
    pub records: Vec<Range<usize>>,
    /// The offset of the first bad byte and what was wrong there.
    pub first_bad: Option<(usize, String)>,
    /// Bytes that belong to no valid record.
    pub skipped: usize,
}

impl Scanned {
    /// A report note for the damage found, `None` when every byte belonged to a record.
    pub fn damage_note(&self) -> Option<String> {
        let (offset, detail) = self.first_bad.as_ref()?;
        Some(format!(
            "{detail} at offset {offset}; {} bytes hold no valid record",
            self.skipped
        ))
    }
}

/// Scans the offsets `start..end` for records. `record_at(pos)` says whether a valid
/// record starts at `pos` (`Ok` with its length in bytes, which must end by `end`) or what
/// is wrong there. A valid record is kept and the scan moves past it; at a bad offset the
/// scan **resynchronises**, trying every following offset, until a record is found again.
///
/// `record_at` is called exactly once for each offset tried, in increasing order, so it
/// may collect what it accepts as it goes: a call that returns `Ok` is a record kept.
pub fn scan_records(
    start: usize,
    end: usize,
    mut record_at: impl FnMut(usize) -> std::result::Result<usize, String>,
) -> Scanned {
    let mut scanned = Scanned::default();
    let mut pos = start;
    let mut bad_since: Option<usize> = None;
    while pos < end {
        let found = record_at(pos).and_then(|len| match len {
            0 => Err("a record of no bytes".to_string()),
            len if len > end - pos => Err(format!("a record of {len} bytes runs past the end")),
            len => Ok(len),
        });
        match found {
            Ok(len) => {
                if let Some(from) = bad_since.take() {
                    scanned.skipped += pos - from;
                }
                scanned.records.push(pos..pos + len);
                pos += len;
            }
            Err(detail) => {
                scanned.first_bad.get_or_insert((pos, detail));
                bad_since.get_or_insert(pos);
                pos += 1;
            }
        }
    }
    if let Some(from) = bad_since {
        scanned.skipped += end - from;
    }
    scanned
}

/// Scans the log `bytes` from `start` (the first byte after its header) for records of
/// format `F` with [`scan_records`]: a record is valid when its lengths are within their
/// limits, it fits in `bytes` and it decodes with a valid checksum.
pub fn scan_log<F: LogFormat>(bytes: &[u8], start: usize) -> Scanned {
    scan_records(start, bytes.len(), |pos| log_record_at::<F>(&bytes[pos..]))
}

/// The length of the valid record of format `F` at the start of `rest`, or what is wrong.
fn log_record_at<F: LogFormat>(rest: &[u8]) -> std::result::Result<usize, String> {
    if rest.len() < F::HEADER_LEN {
        return Err(format!("incomplete record header ({} bytes)", rest.len()));
    }
    let len = F::record_len(&rest[..F::HEADER_LEN]).map_err(|e| e.detail)?;
    if len > rest.len() {
        return Err(format!("incomplete record: {} of {len} bytes", rest.len()));
    }
    F::decode(&rest[..len]).map_err(|e| e.detail)?;
    Ok(len)
}

/// Where [`file_has_magic`] looks for a file's magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MagicAt {
    /// The file's first bytes (a log's header).
    Start,
    /// The file's last bytes (a table's footer).
    End,
}

/// True when `path` exists and its first or last bytes (`at`) are `magic`: a cheap proof,
/// for [`lock_store_or_damaged_marker`], that a file was written by a given engine.
///
/// # Errors
/// [`Error::Io`].
pub fn file_has_magic(fs: &Fs, path: &Path, magic: &[u8], at: MagicAt) -> Result<bool> {
    let Some(file) = fs.open_if_exists(path)? else {
        return Ok(false);
    };
    let len = file.len()?;
    let want = magic.len() as u64;
    if len < want {
        return Ok(false);
    }
    let offset = match at {
        MagicAt::Start => 0,
        MagicAt::End => len - want,
    };
    Ok(file.read_vec_at(offset, magic.len())? == magic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_is_found_at_either_end_and_nowhere_else() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let path = tmp.path().join("000001.sst");
        std::fs::write(&path, b"HEADbodyTAIL").unwrap();
        assert!(file_has_magic(&fs, &path, b"HEAD", MagicAt::Start).unwrap());
        assert!(file_has_magic(&fs, &path, b"TAIL", MagicAt::End).unwrap());
        assert!(!file_has_magic(&fs, &path, b"TAIL", MagicAt::Start).unwrap());
        assert!(!file_has_magic(&fs, &path, b"body", MagicAt::End).unwrap());
        assert!(!file_has_magic(&fs, &path, b"HEADbodyTAIL+", MagicAt::End).unwrap());
        let missing = tmp.path().join("000002.sst");
        assert!(!file_has_magic(&fs, &missing, b"HEAD", MagicAt::Start).unwrap());
    }

    #[test]
    fn damaged_files_move_into_lost_without_overwriting() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        for round in 0..3 {
            std::fs::write(tmp.path().join("00000001.seg"), [round]).unwrap();
            let to = move_to_lost(&fs, tmp.path(), "00000001.seg").unwrap();
            assert_eq!(std::fs::read(&to).unwrap(), [round]);
        }
        let mut names = fs.list(&tmp.path().join(LOST_DIR)).unwrap();
        names.sort();
        assert_eq!(names, ["00000001.seg", "00000001.seg.1", "00000001.seg.2"]);
        assert!(!tmp.path().join("00000001.seg").exists());
    }

    #[test]
    fn copies_into_lost_keep_the_original_and_every_earlier_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        std::fs::write(tmp.path().join("data.log"), b"first").unwrap();
        let first = copy_to_lost(&fs, tmp.path(), "data.log").unwrap();
        std::fs::write(tmp.path().join("data.log"), b"second").unwrap();
        let second = copy_to_lost(&fs, tmp.path(), "data.log").unwrap();
        assert_eq!(std::fs::read(&first).unwrap(), b"first");
        assert_eq!(std::fs::read(&second).unwrap(), b"second");
        assert!(second.ends_with("lost/data.log.1"), "{}", second.display());
        assert_eq!(
            std::fs::read(tmp.path().join("data.log")).unwrap(),
            b"second"
        );
        // The store's own listing does not see the copies.
        assert_eq!(fs.list(tmp.path()).unwrap(), ["data.log"]);
    }

    /// A directory holding a `name` store at version 1, its marker written as opening does.
    fn store(tmp: &Path, name: &str) -> PathBuf {
        let dir = tmp.join(name);
        drop(crate::StoreDir::open(&Fs::default(), &dir, name, 1).unwrap());
        dir
    }

    #[test]
    fn only_a_store_of_this_engine_and_version_is_locked() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let dir = store(tmp.path(), "hashlog");
        let lock = lock_store(&fs, &dir, "hashlog", 1).unwrap();
        assert!(matches!(
            lock_store(&fs, &dir, "hashlog", 1),
            Err(Error::Locked { .. })
        ));
        drop(lock);
        assert!(matches!(
            lock_store(&fs, &dir, "bitcask", 1),
            Err(Error::WrongEngine { .. })
        ));
        assert!(matches!(
            lock_store(&fs, &dir, "hashlog", 2),
            Err(Error::FormatVersion { found: 1, .. })
        ));
        let missing = tmp.path().join("missing");
        assert!(matches!(
            lock_store(&fs, &missing, "hashlog", 1),
            Err(Error::InvalidArgument(_))
        ));
        assert!(!missing.exists(), "repair never creates a store");
        let foreign = tmp.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
        assert!(matches!(
            lock_store(&fs, &foreign, "hashlog", 1),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(fs.list(&foreign).unwrap(), ["notes.txt"], "no LOCK taken");
        std::fs::write(dir.join(MARKER_FILE), b"KVMARKER damaged").unwrap();
        assert!(matches!(
            lock_store(&fs, &dir, "hashlog", 1),
            Err(Error::Corruption { .. })
        ));
        std::fs::write(dir.join(MARKER_FILE), [b'x'; 65]).unwrap();
        assert!(matches!(
            lock_store(&fs, &dir, "hashlog", 1),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn a_damaged_marker_is_accepted_only_where_the_engines_files_prove_the_store() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let dir = store(tmp.path(), "hashlog");
        let marker_path = dir.join(MARKER_FILE);
        let mut bytes = std::fs::read(&marker_path).unwrap();
        bytes[9] ^= 0x01;
        std::fs::write(&marker_path, &bytes).unwrap();
        assert!(matches!(
            lock_store_or_damaged_marker(&fs, &dir, "hashlog", 1, || Ok(false)),
            Err(Error::Corruption { .. })
        ));
        let (lock, damage) =
            lock_store_or_damaged_marker(&fs, &dir, "hashlog", 1, || Ok(true)).unwrap();
        let damage = damage.expect("the marker's damage");
        assert!(matches!(
            lock_store(&fs, &dir, "x", 1),
            Err(Error::Corruption { .. })
        ));

        let mut report = RepairReport {
            dry_run: true,
            ..RepairReport::default()
        };
        rewrite_marker(&fs, &dir, "hashlog", 1, damage.clone(), &mut report).unwrap();
        assert_eq!(report.damaged[0].file, MARKER_FILE);
        assert_eq!(
            std::fs::read(&marker_path).unwrap(),
            bytes,
            "a dry run writes nothing"
        );
        assert!(!dir.join(LOST_DIR).exists());
        report.dry_run = false;
        rewrite_marker(&fs, &dir, "hashlog", 1, damage, &mut report).unwrap();
        assert_eq!(
            std::fs::read(dir.join(LOST_DIR).join(MARKER_FILE)).unwrap(),
            bytes
        );
        drop(lock);
        assert!(lock_store(&fs, &dir, "hashlog", 1).is_ok());

        // A marker that decodes but names another engine is never overruled.
        let (lock, damage) =
            lock_store_or_damaged_marker(&fs, &dir, "hashlog", 1, || Ok(true)).unwrap();
        assert_eq!(damage, None);
        drop(lock);
        assert!(matches!(
            lock_store_or_damaged_marker(&fs, &dir, "bitcask", 1, || Ok(true)),
            Err(Error::WrongEngine { .. })
        ));
    }

    /// A toy record format for the scanner: `R`, a length byte `n`, then `n` dots.
    fn toy_record_at(bytes: &[u8], pos: usize) -> std::result::Result<usize, String> {
        match bytes[pos..] {
            [b'R', n, ref rest @ ..] if rest.len() >= n as usize => {
                let body = &rest[..n as usize];
                if body.iter().all(|&b| b == b'.') {
                    Ok(2 + n as usize)
                } else {
                    Err("a body that is not all dots".to_string())
                }
            }
            [b'R', n, ..] => Err(format!("a record of {n} bytes cut short")),
            _ => Err("no record mark".to_string()),
        }
    }

    #[test]
    fn the_scan_resynchronises_past_damage_and_counts_what_it_skips() {
        let clean = b"HDR\x52\x02..\x52\x00\x52\x01.".to_vec();
        let scanned = scan_records(3, clean.len(), |pos| toy_record_at(&clean, pos));
        assert_eq!(scanned.records, [3..7, 7..9, 9..12]);
        assert_eq!(scanned.damage_note(), None);

        // Damage inside the first record, and a torn last one.
        let mut damaged = clean.clone();
        damaged[5] = b'x';
        damaged.extend_from_slice(b"R\x05..");
        let mut tried = Vec::new();
        let scanned = scan_records(3, damaged.len(), |pos| {
            tried.push(pos);
            toy_record_at(&damaged, pos)
        });
        assert_eq!(scanned.records, [7..9, 9..12]);
        assert_eq!(
            scanned.first_bad,
            Some((3, "a body that is not all dots".to_string()))
        );
        assert_eq!(scanned.skipped, 4 + 4);
        assert_eq!(
            scanned.damage_note().unwrap(),
            "a body that is not all dots at offset 3; 8 bytes hold no valid record"
        );
        assert!(
            tried.windows(2).all(|w| w[0] < w[1]),
            "each offset once: {tried:?}"
        );
    }

    #[test]
    fn a_record_of_no_bytes_or_past_the_end_is_damage_not_a_hang() {
        let scanned = scan_records(0, 4, |pos| if pos == 0 { Ok(0) } else { Ok(9) });
        assert!(scanned.records.is_empty());
        assert_eq!(scanned.skipped, 4);
        assert_eq!(
            scanned.first_bad,
            Some((0, "a record of no bytes".to_string()))
        );
        assert_eq!(scan_records(5, 2, |_| Ok(1)), Scanned::default());
    }

    #[test]
    fn the_report_says_what_happened_to_every_file() {
        let report = RepairReport {
            dry_run: true,
            kept: vec![FileReport::new("00000002.seg", 120, "")],
            damaged: vec![FileReport::new(
                "00000001.seg",
                14,
                "record checksum mismatch at offset 191",
            )],
            written: vec![FileReport::new("00000003.seg", 14, "salvaged records")],
        };
        let text = report.to_string();
        assert!(
            text.contains("kept     00000002.seg: 120 records"),
            "{text}"
        );
        assert!(
            text.contains("would salvage 14 records; would move to lost/"),
            "{text}"
        );
        assert!(
            text.contains("would write 00000003.seg: 14 records"),
            "{text}"
        );
        assert!(!report.is_clean());
        assert!(
            RepairReport::default()
                .to_string()
                .contains("nothing to repair")
        );
    }
}
