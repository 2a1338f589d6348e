//! What can go wrong while writing or checking a workshop crate.

use std::path::PathBuf;

/// Everything the workshop can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A source file, marker, chapter or manifest of the checkout is not what the workshop
    /// reads: a malformed marker, a section the chapter lacks, a function that does not parse.
    #[error("{}:{line}: {detail}", path.display())]
    Source {
        /// The file.
        path: PathBuf,
        /// The 1-based line (0 when the problem is the whole file).
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// The request cannot be carried out: an unknown stage, a directory that is not empty,
    /// a `--from` crate that does not fit, a directory that is not a workshop crate.
    #[error("{0}")]
    Usage(String),
    /// `cargo` could not be started or waited for.
    #[error("could not run `cargo {args}`: {source}")]
    Cargo {
        /// The arguments it was given.
        args: String,
        /// Why it could not run.
        #[source]
        source: std::io::Error,
    },
    /// `kv workshop check`: some exercises do not pass yet (the scorecard says which).
    #[error("{failing} of {total} exercises do not pass yet")]
    NotAllPassed {
        /// Exercises that do not pass.
        failing: usize,
        /// Exercises in the crate.
        total: usize,
    },
}

/// The workshop's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// For `kv`, whose commands fail with [`kv_shared::Error`]: an I/O error stays one, anything
/// else is reported as an invalid argument with the workshop's message.
impl From<Error> for kv_shared::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Io { path, source } => kv_shared::Error::Io { path, source },
            other => kv_shared::Error::InvalidArgument(other.to_string()),
        }
    }
}

/// Turns an I/O error on `path` into an [`Error::Io`].
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

/// An [`Error::Source`] at `line` of `path`.
pub(crate) fn source(path: impl Into<PathBuf>, line: usize, detail: impl Into<String>) -> Error {
    Error::Source {
        path: path.into(),
        line,
        detail: detail.into(),
    }
}
