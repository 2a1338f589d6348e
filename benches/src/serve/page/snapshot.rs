//! Reading the structure of a store that is running, and keeping the last reading while the
//! directory does not change.
//!
//! [`crate::draw::structure`] reads the directory without a lock while the engine works in
//! it. A file can go in the middle of the reading (a compaction finished and deleted its
//! inputs) or be caught half written (a flush's table before its footer is there): the
//! reading then fails with [`Error::Io`] or [`Error::Corruption`] although nothing is wrong.
//! [`Snapshots::read`] retries such a reading a few times, a little later each time, and
//! reports the error only when every attempt failed.
//!
//! A page polls twice a second, and reading a store decodes every block of every table.
//! So each reading is kept with the directory's **fingerprint**: the name, size, change
//! time and inode of every file in it and in its subdirectories (a wisckey store keeps its
//! tree in `tree/` and its values in `vlog/`). Engines append to files and replace the
//! others under new names, so a store whose fingerprint is the same is the same store: the
//! kept reading (and its picture) is answered again without opening a file.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kv_shared::{Error, Result, Structure};

use crate::draw;
use crate::serve::Served;

/// How many times a reading is tried before its error is reported.
pub const ATTEMPTS: u32 = 5;

/// The wait after the first failed attempt; it doubles after each (10, 20, 40, 80 ms).
const FIRST_WAIT: Duration = Duration::from_millis(10);

/// One file of the directory as the fingerprint sees it: name, size, change time in
/// nanoseconds, inode.
type FileStamp = (String, u64, i128, u64);

/// One reading of the store, and its picture once drawn.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The structure read.
    pub structure: Arc<Structure>,
    /// Its picture, drawn by [`crate::draw`] the first time it is asked for.
    pub picture: Arc<std::sync::OnceLock<String>>,
}

impl Snapshot {
    /// The picture of the store, as `kv draw` draws it (drawn once per reading).
    pub fn picture(&self) -> &str {
        self.picture
            .get_or_init(|| draw::store_picture(&self.structure))
    }
}

/// The last reading of a store, with the fingerprint of its directory then.
#[derive(Debug, Default)]
pub struct Snapshots {
    last: Mutex<Option<(Vec<FileStamp>, Snapshot)>>,
}

impl Snapshots {
    /// The structure of `served`'s store now: the kept reading if the directory has not
    /// changed since, a new one (tried up to [`ATTEMPTS`] times) otherwise. Blocks: call it
    /// on a blocking thread.
    ///
    /// # Errors
    /// What the last attempt of [`crate::draw::structure`] reported; [`Error::Io`] when the
    /// directory cannot be listed.
    pub fn read(&self, served: &Served) -> Result<Snapshot> {
        let mut wait = FIRST_WAIT;
        let mut attempt = 1;
        loop {
            match self.read_once(served) {
                Ok(snapshot) => return Ok(snapshot),
                Err(e) if attempt < ATTEMPTS && passing(&e) => {
                    std::thread::sleep(wait);
                    wait *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt: the fingerprint first, then (when it changed) the reading, so a kept
    /// reading is never older than its fingerprint.
    fn read_once(&self, served: &Served) -> Result<Snapshot> {
        let stamps = fingerprint(&served.dir)?;
        {
            let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((kept, snapshot)) = last.as_ref()
                && *kept == stamps
            {
                return Ok(snapshot.clone());
            }
        }
        let structure = draw::structure(
            std::slice::from_ref(&served.info),
            &served.dir,
            Some(served.info.name),
            &served.options,
        )?;
        let snapshot = Snapshot {
            structure: Arc::new(structure),
            picture: Arc::default(),
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        *last = Some((stamps, snapshot.clone()));
        Ok(snapshot)
    }
}

/// Whether a failed reading may be the engine's work in progress rather than damage: a
/// file that went away, or one not written whole yet.
fn passing(error: &Error) -> bool {
    matches!(error, Error::Io { .. } | Error::Corruption { .. })
}

/// The name, size, change time and inode of every file in `dir` and its subdirectories
/// (named by their path under `dir`), sorted by name.
fn fingerprint(dir: &Path) -> Result<Vec<FileStamp>> {
    let mut stamps = Vec::new();
    stamp_files(dir, "", &mut stamps)?;
    stamps.sort();
    Ok(stamps)
}

/// Adds the stamp of every file in `dir` to `stamps`, each name after `prefix`, and those
/// of its subdirectories' files.
fn stamp_files(dir: &Path, prefix: &str, stamps: &mut Vec<FileStamp>) -> Result<()> {
    let io = |e| Error::io(dir, e);
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        // A file deleted since the listing is simply not part of the fingerprint.
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if meta.is_dir() {
            match stamp_files(&entry.path(), &format!("{name}/"), stamps) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
            continue;
        }
        let changed = i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec());
        stamps.push((name, meta.len(), changed, meta.ino()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kv_shared::{Error, Options};

    use super::*;
    use crate::engines::{ENGINES, find};

    fn served(dir: &Path) -> Served {
        let info = *find(ENGINES, "hashlog").unwrap();
        Served::open(info, dir, Options::new()).unwrap()
    }

    #[test]
    fn an_unchanged_directory_is_answered_from_the_kept_reading() {
        let dir = tempfile::tempdir().unwrap();
        let served = served(dir.path());
        let snapshots = Snapshots::default();
        let first = snapshots.read(&served).unwrap();
        let again = snapshots.read(&served).unwrap();
        assert!(Arc::ptr_eq(&first.structure, &again.structure));
        assert!(std::ptr::eq(first.picture(), again.picture()), "drawn once");

        served.engine().put(b"apple", b"red").unwrap();
        let after = snapshots.read(&served).unwrap();
        assert!(!Arc::ptr_eq(&first.structure, &after.structure));
        assert_eq!(after.structure.index.len(), 1);
        assert_eq!(first.structure.index.len(), 0);
        assert_ne!(first.picture(), after.picture());
        served.close().unwrap();
    }

    #[test]
    fn a_change_in_a_subdirectory_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("vlog/lost")).unwrap();
        std::fs::write(dir.path().join("vlog/00000001.seg"), b"one").unwrap();
        let before = fingerprint(dir.path()).unwrap();
        let names: Vec<&str> = before.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["vlog/00000001.seg"]);
        std::fs::write(dir.path().join("vlog/00000001.seg"), b"one two").unwrap();
        assert_ne!(fingerprint(dir.path()).unwrap(), before);
    }

    #[test]
    fn a_reading_that_keeps_failing_reports_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let served = served(dir.path());
        std::fs::write(dir.path().join("ENGINE"), b"not a marker").unwrap();
        let error = Snapshots::default().read(&served).unwrap_err();
        assert!(
            matches!(error, Error::Corruption { .. } | Error::InvalidArgument(_)),
            "{error}"
        );
        assert!(passing(&Error::io(
            "x",
            std::io::ErrorKind::NotFound.into()
        )));
        assert!(!passing(&Error::InvalidArgument("no".into())));
    }
}
