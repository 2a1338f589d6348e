//! `kv inspect FILE`: the annotated dump of any file an engine wrote.
//!
//! Every file format in the repository starts or ends with a magic number. The marker file
//! (`ENGINE`, magic `KVMARKER`) is dumped by [`kv_shared::marker::dump`]; any other file is
//! offered to each registered engine's `inspect` function in turn, and the first that
//! recognises its magic dumps it. A file nobody recognises is an error, never a guess.
//!
//! Two engines may share a format's magic (stage 4 reuses stage 3's write-ahead log framing,
//! with its own payloads). So when the file sits in a store directory whose marker names a
//! registered engine, that engine is asked first.
//!
//! Only a regular file is read, and at most [`MAX_FILE_BYTES`] of it: a FIFO or a device such
//! as `/dev/zero` would otherwise block the command or fill memory.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use kv_shared::{Error, Result, marker};

use crate::engines::EngineInfo;

/// The annotated dump of `bytes`, or `None` when no format recognises them. The engine
/// named `owner` (the one whose store holds the file), if any, is asked first.
pub fn dump(registry: &[EngineInfo], owner: Option<&str>, bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(marker::MAGIC) {
        return Some(marker::dump(bytes));
    }
    let first = registry.iter().filter(|e| Some(e.name) == owner);
    let rest = registry.iter().filter(|e| Some(e.name) != owner);
    first.chain(rest).find_map(|engine| (engine.inspect)(bytes))
}

/// The engine named by the marker file beside `path`, if there is a valid one.
fn owner_of(path: &Path) -> Option<String> {
    let marker_path = path.parent()?.join(kv_shared::store_dir::MARKER_FILE);
    let bytes = std::fs::read(marker_path).ok()?;
    marker::decode(&bytes).ok().map(|m| m.engine)
}

/// The largest file `kv inspect` reads (256 MiB): far above any file the engines write with
/// their default settings, and small enough to hold in memory.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Reads the file at `path` and dumps it.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::InvalidArgument`] when it is not a
/// regular file, holds more than [`MAX_FILE_BYTES`], is empty, or no format recognises it
/// ("unknown file format").
pub fn dump_file(registry: &[EngineInfo], path: &Path) -> Result<String> {
    let bytes = read_bounded(path)?;
    if bytes.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} is empty (a store's LOCK file is always empty): nothing to dump",
            path.display()
        )));
    }
    dump(registry, owner_of(path).as_deref(), &bytes).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{}: unknown file format (no engine recognises its magic number)",
            path.display()
        ))
    })
}

/// The bytes of the regular file at `path`, refusing anything else and anything longer than
/// [`MAX_FILE_BYTES`].
///
/// The type is checked before opening, because opening a FIFO waits for a writer, and again
/// on the open file, in case the path was replaced in between. The read goes through
/// `take(MAX_FILE_BYTES + 1)`, so a file that grows while it is read is bounded too.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let io = |e| Error::io(path, e);
    check_regular(path, &std::fs::metadata(path).map_err(io)?)?;
    let file = File::open(path).map_err(io)?;
    let opened = file.metadata().map_err(io)?;
    check_regular(path, &opened)?;
    let mut bytes = Vec::with_capacity(opened.len().min(MAX_FILE_BYTES) as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    Ok(bytes)
}

/// Refuses what `metadata` describes unless it is a regular file of at most
/// [`MAX_FILE_BYTES`].
fn check_regular(path: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    if !metadata.is_file() {
        return Err(Error::InvalidArgument(format!(
            "{} is not a regular file (a directory, FIFO or device): nothing to dump",
            path.display()
        )));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    Ok(())
}

/// The error for a file longer than [`MAX_FILE_BYTES`].
fn too_large(path: &Path) -> Error {
    Error::InvalidArgument(format!(
        "{} is larger than {} MiB, the most `kv inspect` reads",
        path.display(),
        MAX_FILE_BYTES >> 20
    ))
}
