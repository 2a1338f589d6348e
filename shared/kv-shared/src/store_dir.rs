//! Opening a store directory: the exclusive lock and the marker check every engine shares.
//!
//! [`StoreDir::open`] creates the directory if needed, takes an exclusive lock on its `LOCK`
//! file (so a second open, from this process or another, fails with
//! [`Error::Locked`]), and checks or writes the [`crate::marker`] file `ENGINE`.
//!
//! A directory that holds any file but no marker is refused: it is not a store, and an
//! engine must not start writing into someone else's files. The only files allowed are the
//! two an earlier open may have left when it stopped before its marker was in place: `LOCK`
//! and `ENGINE.tmp` (the marker's temporary, see [`Fs::write_atomic`]). Every other `*.tmp`
//! counts, since recovery deletes those. The check runs before the lock is taken, so a
//! refused directory does not even gain a `LOCK` file, and once more under the lock, in case
//! another process created files in between.
//!
//! A directory is an entry of its parent, and like any entry its creation is durable only
//! once the parent is synced: a power loss before that can take the new store directory,
//! and every file synced into it, away. So when `open` creates the directory (or any missing
//! parent of it) it syncs the parent of each directory it created before going on; nothing
//! acknowledged can then live in a directory that may vanish.

use std::path::{Path, PathBuf};

use crate::file_system::FileLock;
use crate::fs::Fs;
use crate::marker;
use crate::{Error, Result};

/// Name of the lock file in every store directory.
pub const LOCK_FILE: &str = "LOCK";
/// Name of the marker file in every store directory.
pub const MARKER_FILE: &str = "ENGINE";

/// An open, locked store directory. Dropping it releases the lock.
#[derive(Debug)]
pub struct StoreDir {
    path: PathBuf,
    created: bool,
    _lock: Box<dyn FileLock>,
}

impl StoreDir {
    /// Opens `dir` for `engine` at `format_version`, creating the store if the directory is
    /// missing or empty.
    ///
    /// # Errors
    /// [`Error::Locked`] when the lock is held; [`Error::WrongEngine`] or
    /// [`Error::FormatVersion`] when the marker names another engine or version;
    /// [`Error::Corruption`] for a damaged marker; [`Error::InvalidArgument`] for a non-empty
    /// directory without a marker; [`Error::Io`].
    pub fn open(fs: &Fs, dir: &Path, engine: &str, format_version: u32) -> Result<StoreDir> {
        create_durably(fs, dir)?;
        let marker_path = dir.join(MARKER_FILE);
        if fs.open_if_exists(&marker_path)?.is_none() {
            refuse_foreign(fs, dir)?;
        }
        let lock = fs.lock(&dir.join(LOCK_FILE))?;
        let created = match fs.open_if_exists(&marker_path)? {
            Some(file) => {
                let len = file.len()?;
                if len > 64 {
                    return Err(Error::corruption(&marker_path, 0, "marker file too long"));
                }
                let bytes = file.read_vec_at(0, len as usize)?;
                let found =
                    marker::decode(&bytes).map_err(|e| e.into_corruption(&marker_path, 0))?;
                check_marker(dir, found, engine, format_version)?;
                false
            }
            None => {
                refuse_foreign(fs, dir)?;
                fs.write_atomic(&marker_path, &marker::encode(engine, format_version))?;
                true
            }
        };
        Ok(StoreDir {
            path: dir.to_path_buf(),
            created,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// True when this open created the store.
    pub fn is_new(&self) -> bool {
        self.created
    }
}

/// Creates `dir` if it is missing, with its missing parents, and syncs the parent of each
/// directory it creates, top down, so the new entries are durable.
///
/// # Errors
/// [`Error::Io`].
fn create_durably(fs: &Fs, dir: &Path) -> Result<()> {
    if dir.parent().is_none() || dir.as_os_str().is_empty() || exists(fs, dir)? {
        return Ok(());
    }
    // A single relative name's parent is the working directory, which exists.
    let up = match dir.parent() {
        Some(up) if !up.as_os_str().is_empty() => up,
        _ => Path::new("."),
    };
    create_durably(fs, up)?;
    fs.create_dir_all(dir)?;
    fs.sync_dir(up)
}

/// Whether the directory `dir` exists.
///
/// # Errors
/// [`Error::Io`] for any failure but "not found".
fn exists(fs: &Fs, dir: &Path) -> Result<bool> {
    match fs.file_system().list(dir) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Refuses `dir`, which has no marker, if it holds any file but the `LOCK` and `ENGINE.tmp`
/// an interrupted creation may leave: other `*.tmp` files count, since recovery deletes them.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the files; [`Error::Io`].
fn refuse_foreign(fs: &Fs, dir: &Path) -> Result<()> {
    let marker_tmp = format!("{MARKER_FILE}.tmp");
    let foreign: Vec<String> = fs
        .list(dir)?
        .into_iter()
        .filter(|name| name != LOCK_FILE && *name != marker_tmp)
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "{} holds files ({}) but no {MARKER_FILE} marker: not a store, refusing to write into it",
        dir.display(),
        foreign.join(", ")
    )))
}

/// Checks that `found`, the marker of the store in `dir`, names `engine` at
/// `format_version`.
///
/// # Errors
/// [`Error::WrongEngine`] or [`Error::FormatVersion`] when it names another engine or
/// version.
pub fn check_marker(
    dir: &Path,
    found: marker::Marker,
    engine: &str,
    format_version: u32,
) -> Result<()> {
    if found.engine != engine {
        return Err(Error::WrongEngine {
            dir: dir.to_path_buf(),
            found: found.engine,
            expected: engine.to_string(),
        });
    }
    if found.format_version != format_version {
        return Err(Error::FormatVersion {
            file: dir.join(MARKER_FILE),
            found: found.format_version,
            supported: format_version,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_marker_and_foreign_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let dir = tmp.path().join("store");
        let first = StoreDir::open(&fs, &dir, "hashlog", 1).unwrap();
        assert!(first.is_new());
        assert!(matches!(
            StoreDir::open(&fs, &dir, "hashlog", 1),
            Err(Error::Locked { .. })
        ));
        drop(first);
        assert!(!StoreDir::open(&fs, &dir, "hashlog", 1).unwrap().is_new());
        assert!(matches!(
            StoreDir::open(&fs, &dir, "bitcask", 1),
            Err(Error::WrongEngine { .. })
        ));
        assert!(matches!(
            StoreDir::open(&fs, &dir, "hashlog", 2),
            Err(Error::FormatVersion {
                found: 1,
                supported: 2,
                ..
            })
        ));
        for name in ["notes.txt", "draft.tmp"] {
            let foreign = tmp.path().join(format!("foreign-{name}"));
            std::fs::create_dir(&foreign).unwrap();
            std::fs::write(foreign.join(name), b"mine").unwrap();
            assert!(matches!(
                StoreDir::open(&fs, &foreign, "hashlog", 1),
                Err(Error::InvalidArgument(_))
            ));
            assert_eq!(fs.list(&foreign).unwrap(), [name], "no LOCK, no marker");
            assert_eq!(std::fs::read(foreign.join(name)).unwrap(), b"mine");
        }
        let interrupted = tmp.path().join("interrupted");
        std::fs::create_dir(&interrupted).unwrap();
        std::fs::write(interrupted.join(LOCK_FILE), b"").unwrap();
        std::fs::write(interrupted.join("ENGINE.tmp"), b"KVMA").unwrap();
        assert!(
            StoreDir::open(&fs, &interrupted, "hashlog", 1)
                .unwrap()
                .is_new()
        );
        std::fs::write(dir.join(MARKER_FILE), b"KVMARKER garbage").unwrap();
        assert!(matches!(
            StoreDir::open(&fs, &dir, "hashlog", 1),
            Err(Error::Corruption { .. })
        ));
    }
}
