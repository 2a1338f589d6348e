//! The names of the files in a store directory.
//!
//! | name | what |
//! |---|---|
//! | `ENGINE`, `LOCK` | the marker and the lock, from [`kv_shared::StoreDir`] |
//! | `NNNNNN.wal` | a write-ahead log, [`crate::wal`] |
//! | `NNNNNN.sst` | a table, [`crate::table_builder`] |
//! | `NNNNNN.sst.tmp` | a table being written (by a flush, a compaction or a bulk load); a leftover of a crash, removed on open unless a load record names it |
//! | `NNNNNN.load` | a bulk load's record: the tables it commits, [`crate::ingest`] |
//! | `NNNNNN.load.tmp` | a load record being written; a leftover of a crash, removed on open |
//! | `sort/` | a directory: the external sort's run files during a bulk load of unsorted pairs; its files are removed on open |
//!
//! `NNNNNN` is a file number, at least six decimal digits. Numbers come from one counter
//! and are never reused, so every file has its own. A WAL's number also orders the WALs:
//! a higher number holds later writes.

use std::path::{Path, PathBuf};

/// What a file in the store directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `NNNNNN.wal`.
    Wal(u64),
    /// `NNNNNN.sst`.
    Table(u64),
    /// `*.tmp`: a leftover of an interrupted write.
    Temp,
    /// Anything else (the marker, the lock, a load record: see [`load_record_number`],
    /// files this stage does not know).
    Other,
}

/// The directory a bulk load of unsorted pairs sorts in ([`crate::ingest`]).
pub const SORT_DIR: &str = "sort";

/// The path of WAL number `number`.
pub fn wal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.wal"))
}

/// The path of table number `number`.
pub fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
}

/// The path of the record of bulk load number `number` ([`crate::ingest`]).
pub fn load_record_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.load"))
}

/// The number of the load record called `name` (`NNNNNN.load`), or `None` for any other
/// file.
pub fn load_record_number(name: &str) -> Option<u64> {
    name.strip_suffix(".load").and_then(file_number)
}

/// The number in a file name's stem: at least six decimal digits.
fn file_number(stem: &str) -> Option<u64> {
    (stem.len() >= 6 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// What the file called `name` is.
pub fn parse(name: &str) -> FileKind {
    if name.ends_with(".tmp") {
        return FileKind::Temp;
    }
    if let Some(n) = name.strip_suffix(".wal").and_then(file_number) {
        FileKind::Wal(n)
    } else if let Some(n) = name.strip_suffix(".sst").and_then(file_number) {
        FileKind::Table(n)
    } else {
        FileKind::Other
    }
}

/// The directory holding `path` (`.` for a bare file name), the one to sync after creating,
/// renaming or removing `path`.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("d");
        assert_eq!(wal_path(dir, 7), Path::new("d/000007.wal"));
        assert_eq!(parse("000007.wal"), FileKind::Wal(7));
        assert_eq!(parse("1234567.sst"), FileKind::Table(1234567));
        assert_eq!(parse("000007.sst.tmp"), FileKind::Temp);
        assert_eq!(parse("7.sst"), FileKind::Other);
        assert_eq!(parse("ENGINE"), FileKind::Other);
        assert_eq!(parse("00000x.wal"), FileKind::Other);
        assert_eq!(load_record_path(dir, 9), Path::new("d/000009.load"));
        assert_eq!(load_record_number("000009.load"), Some(9));
        assert_eq!(parse("000009.load"), FileKind::Other);
        assert_eq!(parse("000009.load.tmp"), FileKind::Temp);
        assert_eq!(load_record_number("000009.load.tmp"), None);
        assert_eq!(load_record_number("9.load"), None);
        assert_eq!(parent_dir(Path::new("t.sst")), Path::new("."));
        assert_eq!(parent_dir(Path::new("d/t.sst")), Path::new("d"));
    }
}
