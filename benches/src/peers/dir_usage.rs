//! [`dir_usage`]: how much a peer's store takes on disk.
//!
//! The stages measure their directory through [`kv_shared::Fs::dir_usage`], which sees one
//! flat directory. Peers keep their files in subdirectories of their own (fjall has one per
//! keyspace and one for its journals), so the adapters walk the tree with `std::fs`. Sizes
//! are file lengths, as for the stages, not allocated blocks.

use std::io::ErrorKind;
use std::path::Path;

use kv_shared::{Error, Result};

/// Total length and number of the regular files under `dir`, at any depth. A file or
/// directory removed while the walk runs (a peer's background compaction) is skipped.
///
/// # Errors
/// [`Error::Io`] when `dir` or an entry in it cannot be read.
pub fn dir_usage(dir: &Path) -> Result<(u64, u64)> {
    let (mut bytes, mut files) = (0, 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound && current != dir => continue,
            Err(e) => return Err(Error::io(&current, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&current, e))?;
            let path = entry.path();
            let metadata = match std::fs::symlink_metadata(&path) {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&path, e)),
            };
            if metadata.is_dir() {
                pending.push(path);
            } else if metadata.is_file() {
                bytes += metadata.len();
                files += 1;
            }
        }
    }
    Ok((bytes, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_at_every_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a").join("b");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(tmp.path().join("top"), [1u8; 10]).unwrap();
        std::fs::write(deep.join("leaf"), [1u8; 5]).unwrap();
        std::fs::create_dir(tmp.path().join("empty")).unwrap();
        assert_eq!(dir_usage(tmp.path()).unwrap(), (15, 2));
        assert!(dir_usage(&tmp.path().join("missing")).is_err());
    }
}
