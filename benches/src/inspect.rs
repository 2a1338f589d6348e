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

/// Reads the file at `path` and dumps it.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::InvalidArgument`] ("unknown file
/// format") when no format recognises it.
pub fn dump_file(registry: &[EngineInfo], path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
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
