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
//! A repaired store may have lost writes (those in the damaged bytes), and where an old
//! value's record survived while the newer one's did not, a key may go back to that older
//! value. What it never does is return a value that was not written for that key.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Result;
use crate::fs::Fs;

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
    let lost = dir.join(LOST_DIR);
    fs.create_dir_all(&lost)?;
    let taken = fs.list(&lost)?;
    let mut target = name.to_string();
    let mut n = 0;
    while taken.contains(&target) {
        n += 1;
        target = format!("{name}.{n}");
    }
    let to = lost.join(&target);
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

#[cfg(test)]
mod tests {
    use super::*;

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
