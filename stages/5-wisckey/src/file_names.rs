//! The names of the files in a wisckey store directory, and how the directories are made.
//!
//! | path | what |
//! |---|---|
//! | `ENGINE`, `LOCK` | the marker (engine `wisckey`) and the lock every store has ([`kv_shared::StoreDir`]) |
//! | `vlog/00000007.seg` | value-log segment 7: a bitcask segment ([`crate::value_log`]), named as bitcask names them ([`bitcask::file_names::FileName::Segment`]) |
//! | `vlog/lost/` | a copy of a segment whose unsynced tail had holes, kept by recovery; never read |
//! | `tree/` | the LSM tree of keys and value pointers: a whole stage 4 store, with its own `ENGINE` (engine `lsm`), `LOCK`, `CURRENT`, manifests, WALs and tables ([`lsm::file_names`]) |
//! | `tree/lost/` | a copy of a tree WAL whose tail recovery cut, when the cut part held damage followed by valid records |
//! | `lost/` | what `kv repair` set aside ([`mod@crate::repair`]): a damaged `ENGINE` marker, damaged segments in `lost/vlog/`, damaged tree files in `lost/tree/`; never read |
//!
//! Segment ids are 32-bit, given out in increasing order and never reused: the highest id
//! is the active segment, every lower one is sealed.

use std::path::{Path, PathBuf};

use bitcask::file_names::FileName;
use kv_shared::{Fs, Result};

/// The value log's directory, in the store directory.
pub const VLOG_DIR: &str = "vlog";
/// The tree's directory (an `lsm` store), in the store directory.
pub const TREE_DIR: &str = "tree";

/// The value log's directory of the store in `dir`.
pub fn vlog_dir(dir: &Path) -> PathBuf {
    dir.join(VLOG_DIR)
}

/// The tree's directory of the store in `dir`.
pub fn tree_dir(dir: &Path) -> PathBuf {
    dir.join(TREE_DIR)
}

/// The path of segment `id` in the value log directory `vlog`.
pub fn segment(vlog: &Path, id: u32) -> PathBuf {
    FileName::Segment(id).path(vlog)
}

/// The ids of the segments in `vlog`, ascending (other files are ignored).
///
/// # Errors
/// [`kv_shared::Error::Io`].
pub fn segment_ids(fs: &Fs, vlog: &Path) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = fs
        .list(vlog)?
        .iter()
        .filter_map(|name| match FileName::parse(name) {
            Some(FileName::Segment(id)) => Some(id),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Creates the directory `dir` inside the store directory `parent` if it is missing, and
/// syncs `parent`, so that its entry is durable before any file in it is. The sync is done
/// even when `dir` was there: an earlier open may have created it and failed before its
/// own sync.
///
/// # Errors
/// [`kv_shared::Error::Io`].
pub fn create_dir_durably(fs: &Fs, parent: &Path, dir: &Path) -> Result<()> {
    fs.create_dir_all(dir)?;
    fs.sync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_bitcask_names() {
        let vlog = vlog_dir(Path::new("/s"));
        assert_eq!(segment(&vlog, 7), Path::new("/s/vlog/00000007.seg"));
        assert_eq!(tree_dir(Path::new("/s")), Path::new("/s/tree"));
    }
}
