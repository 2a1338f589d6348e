//! The names of the files in a hashlog store directory, and creating the data file.
//!
//! | name | what |
//! |---|---|
//! | `ENGINE`, `LOCK` | the marker and the lock every store has ([`kv_shared::StoreDir`]) |
//! | `data.log` | the data file: a header ([`crate::data_file`]), then records ([`crate::record`]) |
//! | `data.log.tmp` | the data file being created; a leftover of a crash, removed on open |
//! | `lost/` | damaged files that [`mod@crate::repair`] kept whole; the engine never reads them |
//!
//! ## Creation
//!
//! The data file is created with its header in one step ([`kv_shared::Fs::write_atomic`]:
//! the header goes to `data.log.tmp`, which is synced, renamed to `data.log`, and the
//! directory synced). So a `data.log` always has a whole header, and its directory entry is
//! durable before the first record is appended. A header that is short or does not check
//! out is therefore damage, reported as [`kv_shared::Error::Corruption`], never repaired by
//! guessing.

use std::path::{Path, PathBuf};

use kv_shared::{FileRef, Fs, Result};

use crate::data_file::{FILE_HEADER_LEN, check_header, encode_header};

/// Name of the data file in the store directory.
pub const DATA_FILE: &str = "data.log";

/// Name of the data file while it is being created.
pub const DATA_FILE_TMP: &str = "data.log.tmp";

/// The path of the data file of the store in `dir`.
pub fn data_path(dir: &Path) -> PathBuf {
    dir.join(DATA_FILE)
}

/// Opens the data file in `dir`, creating it (with its header, atomically) when missing,
/// and checks its header. The records are not read: that is [`crate::recovery`]'s job.
///
/// # Errors
/// As [`check_header`]; [`kv_shared::Error::Io`].
pub fn open_or_create(fs: &Fs, dir: &Path) -> Result<FileRef> {
    let path = data_path(dir);
    let file = match fs.open_if_exists(&path)? {
        Some(file) => file,
        None => {
            // A crash during an earlier creation may have left the temporary file behind.
            fs.remove_if_exists(&dir.join(DATA_FILE_TMP))?;
            fs.write_atomic(&path, &encode_header())?;
            fs.open(&path)?
        }
    };
    let len = file.len()?.min(FILE_HEADER_LEN);
    check_header(&path, &file.read_vec_at(0, len as usize)?)?;
    Ok(file)
}
