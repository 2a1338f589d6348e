//! The one error type every engine returns.
//!
//! Each variant is a different thing a caller may want to react to: retry (`Io`), give up on
//! a damaged store and repair it (`Corruption`), fix the call (`InvalidArgument`, `KeyTooLarge`,
//! `ValueTooLarge`), pick another directory or engine (`Locked`, `WrongEngine`,
//! `FormatVersion`), or close and reopen the store after its background work failed
//! (`Background`). No error path panics and none silently skips data.

use std::path::PathBuf;

/// Result alias used throughout the workspace.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system failed a file operation.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Bytes on disk do not match their checksum or their documented format.
    #[error("corruption in {} at offset {offset}: {detail}", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset in that file where the damage was found.
        offset: u64,
        /// What did not match.
        detail: String,
    },

    /// The caller passed something the engine cannot accept (an unknown option, a bad value).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A key is longer than [`crate::MAX_KEY_LEN`]; nothing was written.
    #[error("key of {len} bytes is over the limit of {max} bytes")]
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A value is longer than [`crate::MAX_VALUE_LEN`]; nothing was written.
    #[error("value of {len} bytes is over the limit of {max} bytes")]
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// Another open engine (in this process or another) holds the directory's lock.
    #[error("directory {} is already open (its LOCK file is held)", dir.display())]
    Locked {
        /// The store directory.
        dir: PathBuf,
    },

    /// The directory belongs to a different engine than the one opening it.
    #[error("directory {} holds a `{found}` store, not a `{expected}` store", dir.display())]
    WrongEngine {
        /// The store directory.
        dir: PathBuf,
        /// Engine named by the directory's marker file.
        found: String,
        /// Engine that tried to open it.
        expected: String,
    },

    /// A file was written in a format version this build does not read.
    #[error("{} has format version {found}; this build reads version {supported}", file.display())]
    FormatVersion {
        /// The file with the unsupported version.
        file: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },

    /// A job the engine runs on its own thread (a flush, a compaction, a merge) failed or
    /// panicked earlier, and the engine refuses writes from then on.
    ///
    /// The failure itself was not the caller's: it may have been an I/O error on a table
    /// the job was writing, or a bug. What the store holds on disk is still consistent (a
    /// failed job changes nothing until its result is installed), but the engine cannot
    /// know what the failure left in memory, so it stops accepting writes rather than build
    /// on it. Reads may keep working. Close the store (or drop it) and open it again: the
    /// reopen recovers every write that was acknowledged before the failure.
    #[error("background {task} failed; writes are refused until the store is reopened: {detail}")]
    Background {
        /// Which job failed: `"flush"`, `"compaction"` or `"merge"`.
        task: &'static str,
        /// What went wrong: the job's error, or the panic's message.
        detail: String,
    },
}

impl Error {
    /// Wraps an operating-system error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds a [`Error::Corruption`].
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, detail: impl Into<String>) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// Builds an [`Error::Background`].
    pub fn background(task: &'static str, detail: impl Into<String>) -> Self {
        Error::Background {
            task,
            detail: detail.into(),
        }
    }

    /// True for [`Error::Background`].
    pub fn is_background(&self) -> bool {
        matches!(self, Error::Background { .. })
    }
}
