//! The names of the files in a store directory, and what each one is.
//!
//! | name | what |
//! |---|---|
//! | `ENGINE`, `LOCK` | the marker and the lock (see [`kv_shared::StoreDir`]) |
//! | `CURRENT` | names the live manifest ([`crate::manifest`]) |
//! | `MANIFEST-NNNNNN` | a manifest: the log of version edits |
//! | `NNNNNN.wal` | a write-ahead log ([`crate::wal`]), one per memtable |
//! | `NNNNNN.sst` | a table ([`crate::table`]) |
//! | `*.tmp` | a file being replaced atomically; left over only by a crash |
//! | `ingest-tmp/` | a bulk load's scratch directory: its sort runs and the tables it writes before they join the store ([`crate::ingest`]); empty between loads |
//!
//! `NNNNNN` is a file number, zero-padded to six digits (more if it grows), from one counter
//! shared by manifests, WALs and tables and recorded in the manifest, so no number is used
//! twice.

/// Name of the pointer file.
pub const CURRENT: &str = "CURRENT";

/// Name of the scratch directory of bulk loads ([`crate::ingest`]).
pub const INGEST_DIR: &str = "ingest-tmp";

/// What a file in the store directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A table, with its number.
    Table(u64),
    /// A write-ahead log, with its number.
    Wal(u64),
    /// A manifest, with its number.
    Manifest(u64),
    /// A leftover temporary file.
    Temp,
    /// Anything else (`CURRENT`, `ENGINE`, `LOCK`, files this engine does not own).
    Other,
}

/// The file name of table `number`.
pub fn table(number: u64) -> String {
    format!("{number:06}.sst")
}

/// The file name of WAL `number`.
pub fn wal(number: u64) -> String {
    format!("{number:06}.wal")
}

/// The file name of manifest `number`.
pub fn manifest(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

/// What the file called `name` is.
pub fn parse(name: &str) -> FileKind {
    let number = |digits: &str| -> Option<u64> {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    if name.ends_with(".tmp") {
        return FileKind::Temp;
    }
    if let Some(n) = name.strip_suffix(".sst").and_then(number) {
        return FileKind::Table(n);
    }
    if let Some(n) = name.strip_suffix(".wal").and_then(number) {
        return FileKind::Wal(n);
    }
    if let Some(n) = name.strip_prefix("MANIFEST-").and_then(number) {
        return FileKind::Manifest(n);
    }
    FileKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse(&table(7)), FileKind::Table(7));
        assert_eq!(parse(&wal(1234567)), FileKind::Wal(1234567));
        assert_eq!(parse(&manifest(3)), FileKind::Manifest(3));
        assert_eq!(parse("CURRENT.tmp"), FileKind::Temp);
        assert_eq!(parse("CURRENT"), FileKind::Other);
        assert_eq!(parse("x.sst"), FileKind::Other);
        assert_eq!(parse(".wal"), FileKind::Other);
    }
}
