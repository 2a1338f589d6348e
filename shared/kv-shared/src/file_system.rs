//! The file layer: the only way engines touch the disk.
//!
//! Every engine does its file I/O through these two small traits, never through `std::fs`
//! directly. The default, [`RealFs`], is the real file system. The reliability suites plug in
//! a fault-injecting implementation instead, which remembers what was synced and can
//! simulate a power loss or a failing disk at any operation.
//!
//! The operations are the ones a log-structured engine needs and no more: create, open,
//! append, positioned read, sync, truncate (to cut a torn tail), rename, remove, list, sync a
//! directory, and an exclusive lock.

use std::fmt::Debug;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// A file system: directories of named files.
pub trait FileSystem: Send + Sync + Debug {
    /// Creates `path` empty (truncating any file already there) and opens it for append and read.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>>;
    /// Opens an existing file for append and positioned reads.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>>;
    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Lists the names of the files in `dir` (not their paths), in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates `dir` and its parents where missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the directory entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing), held until the guard is dropped.
    /// A lock that is already held, by this process or another, fails with
    /// [`io::ErrorKind::WouldBlock`].
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
}

/// An open file. Methods take `&self` so one writer and many readers can share it.
#[allow(clippy::len_without_is_empty)]
pub trait File: Send + Sync + Debug {
    /// Appends all of `buf` at the end of the file (handed to the OS before it returns).
    fn append(&self, buf: &[u8]) -> io::Result<()>;
    /// Fills `buf` from `offset`; fails with [`io::ErrorKind::UnexpectedEof`] past the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Makes the file's data (and its length) durable.
    fn sync(&self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&self, len: u64) -> io::Result<()>;
}

/// A held lock; dropping it releases the lock.
pub trait FileLock: Send + Sync + Debug {}

/// How many times [`RealFs::lock`] tries a held lock before it reports it held.
const LOCK_TRIES: u32 = 20;
/// The pause between two tries of a held lock (so a held lock is reported after ~0.2 s).
const LOCK_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The real file system, through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(std::fs::File);

#[derive(Debug)]
struct RealLock(#[allow(dead_code)] std::fs::File);

impl FileLock for RealLock {}

impl FileSystem for RealFs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        file.set_len(0)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // A lock held by another process that is about to exec (forked by some thread of
        // the process that held the directory: its copy of the descriptor closes at exec) is
        // released within moments, so a held lock is tried again for a short while before
        // the directory is called locked.
        for _ in 0..LOCK_TRIES - 1 {
            match file.try_lock() {
                Ok(()) => return Ok(Box::new(RealLock(file))),
                Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(LOCK_RETRY_PAUSE),
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        match file.try_lock() {
            Ok(()) => Ok(Box::new(RealLock(file))),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl File for RealFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        (&self.0).write_all(buf)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}
