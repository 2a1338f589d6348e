//! [`Fs`]: the handle through which an engine uses its [`FileSystem`].
//!
//! It adds two things on top of the raw trait: errors that name the path they happened on,
//! and [`IoCounters`] that count every byte written and read, every read call and every
//! sync. Those counters are how every engine reports "bytes written to disk" the same way,
//! so write amplification is comparable across stages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};

use crate::file_system::{File, FileLock, FileSystem, RealFs};
use crate::{Error, Result};

/// Counts of the I/O done through one [`Fs`] (and every [`FileRef`] it opened).
#[derive(Debug, Default)]
pub struct IoCounters {
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
    reads: AtomicU64,
    syncs: AtomicU64,
}

impl IoCounters {
    /// Bytes appended to any file so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Relaxed)
    }
    /// Bytes read from any file so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Relaxed)
    }
    /// Positioned read calls so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Relaxed)
    }
    /// File and directory syncs so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Relaxed)
    }
}

/// A file system handle with path-carrying errors and I/O counters. Cheap to clone; clones
/// share the counters.
#[derive(Debug, Clone)]
pub struct Fs {
    inner: Arc<dyn FileSystem>,
    counters: Arc<IoCounters>,
}

/// An open file, with the path it was opened at. Cheap to clone; clones share the file.
#[derive(Debug, Clone)]
pub struct FileRef {
    path: Arc<PathBuf>,
    file: Arc<dyn File>,
    counters: Arc<IoCounters>,
}

impl Default for Fs {
    fn default() -> Self {
        Fs::new(Arc::new(RealFs))
    }
}

impl Fs {
    /// Wraps a file system with fresh counters.
    pub fn new(inner: Arc<dyn FileSystem>) -> Self {
        Fs {
            inner,
            counters: Arc::default(),
        }
    }

    /// The I/O counters of this handle.
    pub fn counters(&self) -> &IoCounters {
        &self.counters
    }

    /// The underlying file system.
    pub fn file_system(&self) -> &Arc<dyn FileSystem> {
        &self.inner
    }

    fn file_ref(&self, path: &Path, file: Arc<dyn File>) -> FileRef {
        FileRef {
            path: Arc::new(path.to_path_buf()),
            file,
            counters: self.counters.clone(),
        }
    }

    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn create(&self, path: &Path) -> Result<FileRef> {
        let file = self.inner.create(path).map_err(|e| Error::io(path, e))?;
        Ok(self.file_ref(path, file))
    }

    /// Opens an existing file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path (kind `NotFound` when it does not exist).
    pub fn open(&self, path: &Path) -> Result<FileRef> {
        let file = self.inner.open(path).map_err(|e| Error::io(path, e))?;
        Ok(self.file_ref(path, file))
    }

    /// Opens `path` if it exists; `None` if it does not.
    ///
    /// # Errors
    /// [`Error::Io`] for any failure other than "not found".
    pub fn open_if_exists(&self, path: &Path) -> Result<Option<FileRef>> {
        match self.inner.open(path) {
            Ok(file) => Ok(Some(self.file_ref(path, file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Atomically renames `from` to `to`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `from`.
    pub fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to).map_err(|e| Error::io(from, e))
    }

    /// Removes a file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn remove(&self, path: &Path) -> Result<()> {
        self.inner.remove(path).map_err(|e| Error::io(path, e))
    }

    /// Removes a file if it exists.
    ///
    /// # Errors
    /// [`Error::Io`] for any failure other than "not found".
    pub fn remove_if_exists(&self, path: &Path) -> Result<()> {
        match self.inner.remove(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        }
    }

    /// Names of the files in `dir`, sorted.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory.
    pub fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = self.inner.list(dir).map_err(|e| Error::io(dir, e))?;
        names.sort();
        Ok(names)
    }

    /// Creates a directory and its parents.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory.
    pub fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner
            .create_dir_all(dir)
            .map_err(|e| Error::io(dir, e))
    }

    /// Makes the entries of `dir` durable.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory.
    pub fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.counters.syncs.fetch_add(1, Relaxed);
        self.inner.sync_dir(dir).map_err(|e| Error::io(dir, e))
    }

    /// Takes the exclusive lock on `path`.
    ///
    /// # Errors
    /// [`Error::Locked`] (naming the lock file's directory) when another holder has it,
    /// [`Error::Io`] otherwise.
    pub fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked {
                    dir: path.parent().unwrap_or(path).to_path_buf(),
                }
            } else {
                Error::io(path, e)
            }
        })
    }

    /// Reads a whole file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn read_all(&self, path: &Path) -> Result<Vec<u8>> {
        let file = self.open(path)?;
        let len = file.len()?;
        file.read_vec_at(0, len as usize)
    }

    /// Sum of the sizes of the files in `dir`, and how many there are.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory or a file in it.
    pub fn dir_usage(&self, dir: &Path) -> Result<(u64, u64)> {
        let mut bytes = 0;
        let names = self.list(dir)?;
        for name in &names {
            let path = dir.join(name);
            match self.inner.open(&path) {
                Ok(file) => bytes += file.len().map_err(|e| Error::io(&path, e))?,
                // Removed between the listing and the open (a background merge): skip it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok((bytes, names.len() as u64))
    }

    /// Writes `path` all at once so a crash leaves either the old file or the new one: the
    /// bytes go to `path` + `.tmp`, which is synced, renamed over `path`, and the directory
    /// synced.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that failed.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = self.create(&tmp)?;
        file.append(bytes)?;
        file.sync()?;
        drop(file);
        self.rename(&tmp, path)?;
        self.sync_dir(path.parent().unwrap_or(Path::new(".")))
    }
}

impl FileRef {
    /// The path this file was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `buf` at the end of the file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn append(&self, buf: &[u8]) -> Result<()> {
        self.file
            .append(buf)
            .map_err(|e| Error::io(self.path.as_path(), e))?;
        self.counters
            .bytes_written
            .fetch_add(buf.len() as u64, Relaxed);
        Ok(())
    }

    /// Fills `buf` from `offset`. Reading past the end is an error of kind `UnexpectedEof`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.counters.reads.fetch_add(1, Relaxed);
        self.counters
            .bytes_read
            .fetch_add(buf.len() as u64, Relaxed);
        self.file
            .read_at(buf, offset)
            .map_err(|e| Error::io(self.path.as_path(), e))
    }

    /// Reads `len` bytes from `offset` into a new vector. Callers must have bounded `len`
    /// (by the file's length or a documented limit) before calling.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn read_vec_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.read_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// The file's current length.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn len(&self) -> Result<u64> {
        self.file
            .len()
            .map_err(|e| Error::io(self.path.as_path(), e))
    }

    /// True when the file is empty.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Makes the file's data durable.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn sync(&self) -> Result<()> {
        self.counters.syncs.fetch_add(1, Relaxed);
        self.file
            .sync()
            .map_err(|e| Error::io(self.path.as_path(), e))
    }

    /// Cuts the file to `len` bytes.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn truncate(&self, len: u64) -> Result<()> {
        self.file
            .truncate(len)
            .map_err(|e| Error::io(self.path.as_path(), e))
    }
}

/// The removal of a file that readers may still be using: once marked obsolete
/// ([`RemoveWhenObsolete::mark_obsolete`]), the file is removed when this value is dropped.
/// Kept in what readers share (a table behind an `Arc`), it removes the file when the last
/// reader lets go. Should the process die first, the file is left behind, for the next open
/// to recognise and remove.
#[derive(Debug)]
pub struct RemoveWhenObsolete {
    fs: Fs,
    path: PathBuf,
    obsolete: AtomicBool,
}

impl RemoveWhenObsolete {
    /// The file at `path`, not obsolete.
    pub fn new(fs: &Fs, path: &Path) -> RemoveWhenObsolete {
        let (fs, path) = (fs.clone(), path.to_path_buf());
        let obsolete = AtomicBool::new(false);
        RemoveWhenObsolete { fs, path, obsolete }
    }

    /// Marks the file obsolete: it is removed when this value is dropped.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, SeqCst);
    }
}

impl Drop for RemoveWhenObsolete {
    fn drop(&mut self) {
        // No reader is left (`&mut self`): the flag needs no atomic load.
        if *self.obsolete.get_mut() {
            // Best effort: a file left behind is recognised and removed by the next open.
            let _ = self.fs.remove_if_exists(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_obsolete_file_goes_with_its_last_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let (fs, path) = (Fs::default(), tmp.path().join("table"));
        fs.write_atomic(&path, b"bytes").unwrap();
        drop(RemoveWhenObsolete::new(&fs, &path));
        assert!(path.exists(), "a file not marked obsolete stays");
        let shared = Arc::new(RemoveWhenObsolete::new(&fs, &path));
        let reader = shared.clone();
        shared.mark_obsolete();
        drop(shared);
        assert!(path.exists(), "a reader still holds it");
        drop(reader);
        assert!(!path.exists(), "gone with the last holder");
    }
}
