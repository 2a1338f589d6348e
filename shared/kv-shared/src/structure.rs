//! The structure of a store, as data: its files, what each one holds, and what an engine
//! opening it would hold in memory. `kv draw` pictures it, and it is meant to be served as
//! JSON too, so every field is documented here and [`STRUCTURE_VERSION`] names its shape.
//!
//! Every stage describes its own directory with `inspect::structure(dir)`. That reading is
//! **read only**: it starts from [`Structure::read_dir`], which checks the `ENGINE` marker
//! (a directory without one is refused, not guessed at) and lists the files, and it reads
//! them through [`read_only_fs`], a file system that cannot create, change, rename or delete
//! anything. It takes no lock, so it works on a closed store and on one that another process
//! has open (a file the other process deletes in the meantime simply drops out of the list,
//! see [`Structure::describe_each`]).
//!
//! ## Shape (version 1)
//!
//! ```text
//! Structure
//! ├── version            1
//! ├── engine             "hashlog" | "bitcask" | "sstable" | "lsm" | "wisckey" (the ENGINE marker)
//! ├── format_version     the store format version the marker records
//! ├── files: [StoreFile]   every file in the directory, sorted by name (a subdirectory's
//! │                        by its path: wisckey's tree/000005.sst, vlog/00000001.seg)
//! │     name, kind, bytes, live_bytes?, dead_bytes?, keys? {first, last}, level?,
//! │     entries?, describes?, note?,
//! │     parts: [Part]      in file order, at most MAX_PARTS; parts_omitted counts the rest
//! │           kind, offset, bytes, keys, key_span? {first, last}, entries?, live?
//! ├── index: [Pointer]     the hash index opening would rebuild (stages 1 and 2), by key,
//! │     key, file, offset, bytes     at most MAX_POINTERS; index_omitted counts the rest
//! ├── memtable?            what the write-ahead logs would replay (stages 3 to 5)
//! │     wals, entries, bytes, capacity_bytes?, keys?
//! ├── levels: [Level]      the levels of an LSM tree (stages 4 and 5)
//! │     level, tables, bytes, target_bytes?
//! └── merge?               a merge or compaction whose files are in the directory
//!       inputs, outputs, committed
//! ```
//!
//! In JSON an absent `?` field is `null`, and enums are lower-case strings (`"data_block"`).
//! **Keys** are text ([`key_text`]): printable ASCII as is, a backslash or double quote
//! escaped by a backslash, any other byte as `\xNN`, so any key reads back exactly.

use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::file_system::{File, FileLock, FileSystem};
use crate::fs::Fs;
use crate::store_dir::{LOCK_FILE, MARKER_FILE, check_marker};
use crate::{Error, Result, marker};

/// The shape of [`Structure`] this build writes: changed when a field changes meaning or
/// goes away (new fields may be added within a version).
pub const STRUCTURE_VERSION: u32 = 1;

/// Most parts listed for one file; past them, [`StoreFile::parts_omitted`] counts.
pub const MAX_PARTS: usize = 4096;

/// Most index pointers listed; past them, [`Structure::index_omitted`] counts.
pub const MAX_POINTERS: usize = 4096;

/// Most keys listed for one part (a write batch's ops); [`Part::entries`] has the count.
pub const MAX_PART_KEYS: usize = 32;

/// A store directory, described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Structure {
    /// The shape of this description: [`STRUCTURE_VERSION`].
    pub version: u32,
    /// The engine the directory's `ENGINE` marker names.
    pub engine: String,
    /// The store format version the marker records.
    pub format_version: u32,
    /// Every file of the directory, sorted by name; a stage that keeps files in
    /// subdirectories lists them by their path (`tree/000005.sst`).
    pub files: Vec<StoreFile>,
    /// The in-memory hash index (stage 1's index, stage 2's keydir) that opening the store
    /// would rebuild: for each live key, the record holding its latest value. Sorted by key.
    /// Empty for the stages that keep their keys sorted on disk.
    pub index: Vec<Pointer>,
    /// Pointers not listed in `index` (past [`MAX_POINTERS`]).
    pub index_omitted: u64,
    /// The memtable that opening the store would replay from its write-ahead logs, for the
    /// stages that have one.
    pub memtable: Option<Memtable>,
    /// The levels of an LSM tree, from L0 down; empty for the stages without levels.
    pub levels: Vec<Level>,
    /// A merge (stage 2) or compaction whose files are in the directory, when one is.
    pub merge: Option<MergeInProgress>,
}

/// One file of a store directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreFile {
    /// The file's name in the directory, or its path from the directory for a file in a
    /// subdirectory (`vlog/00000001.seg`, `/` between the names).
    pub name: String,
    /// What the file is.
    pub kind: FileKind,
    /// Its size in bytes.
    pub bytes: u64,
    /// Bytes still needed: the records the index points at (logs and segments), every byte
    /// of a table the store reads. `None` where the stage cannot tell.
    pub live_bytes: Option<u64>,
    /// Bytes a merge or compaction could reclaim: overwritten and deleted records, headers
    /// and seals of records nothing needs, a table no longer read. `None` where unknown.
    pub dead_bytes: Option<u64>,
    /// The smallest and largest key the file holds, where it is sorted (a table).
    pub keys: Option<KeySpan>,
    /// The LSM level the file is on (stage 4's tables).
    pub level: Option<u32>,
    /// Entries the file holds (a table's entries, tombstones included; a log's records).
    pub entries: Option<u64>,
    /// The file this one describes or belongs to (a hint file's segment).
    pub describes: Option<String>,
    /// A short remark on the file's state: "active segment", "obsolete: a finished
    /// compaction's input", "the live manifest".
    pub note: Option<String>,
    /// The file's parts in file order: header, records, blocks, index, footer.
    pub parts: Vec<Part>,
    /// Parts not listed in `parts` (past [`MAX_PARTS`]).
    pub parts_omitted: u64,
}

/// What a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// The `ENGINE` marker.
    Marker,
    /// The `LOCK` file (always empty).
    Lock,
    /// Stage 1's data file, the one log.
    Log,
    /// A stage 2 segment.
    Segment,
    /// A stage 2 hint file.
    Hint,
    /// A stage 2 merge's output, segment or hint, not yet under its final name.
    MergeOutput,
    /// A stage 2 merge's commit record.
    MergeCommit,
    /// A write-ahead log.
    Wal,
    /// A sorted table (SSTable).
    Table,
    /// Stage 4's manifest, the log of version edits.
    Manifest,
    /// Stage 4's `CURRENT`, naming the live manifest.
    Current,
    /// A file being written (`*.tmp`): a crash's leftover, or work in progress.
    Temp,
    /// A file the engine does not own.
    Other,
}

/// One part of a file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// What the part is.
    pub kind: PartKind,
    /// Offset of its first byte in the file.
    pub offset: u64,
    /// Its length in bytes.
    pub bytes: u64,
    /// The keys it holds, for a record (a batch: its ops' keys, in order, at most
    /// [`MAX_PART_KEYS`]) or a hint entry; empty for other parts.
    pub keys: Vec<String>,
    /// The first and last key of a data block.
    pub key_span: Option<KeySpan>,
    /// Entries of a data block; ops of a write batch.
    pub entries: Option<u64>,
    /// For a record: whether the index points at it (some live key's latest value is in
    /// it). `None` where there is no such index.
    pub live: Option<bool>,
}

/// What a part of a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// A file header (magic, version).
    Header,
    /// A put record.
    Put,
    /// A delete record (a tombstone).
    Delete,
    /// A write batch record.
    Batch,
    /// A segment's seal record.
    Seal,
    /// One entry of a hint file.
    HintEntry,
    /// A hint file's end entry.
    HintEnd,
    /// A manifest's version edit.
    Edit,
    /// A table's data block.
    DataBlock,
    /// A table's index block.
    Index,
    /// A table's filter block.
    Filter,
    /// A table's footer.
    Footer,
    /// The bytes of a small file read as one field (`CURRENT`, a marker, a commit record).
    Body,
    /// Bytes at the end that are not a whole record: a torn write, or one in flight.
    Unreadable,
}

/// The smallest and the largest key of something sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySpan {
    /// The smallest key.
    pub first: String,
    /// The largest key.
    pub last: String,
}

/// An index entry: where a live key's latest value is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// The key.
    pub key: String,
    /// The file holding the record.
    pub file: String,
    /// Offset of the record in that file.
    pub offset: u64,
    /// Bytes of the file the key keeps alive there: its whole record, or its op inside a
    /// write batch's record.
    pub bytes: u64,
}

/// The memtable a store would replay from its write-ahead logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memtable {
    /// The write-ahead logs replayed into it, oldest first.
    pub wals: Vec<String>,
    /// Entries in it, tombstones included (stage 4 counts every version of a key).
    pub entries: u64,
    /// Bytes it holds, as the engine counts them against its flush threshold.
    pub bytes: u64,
    /// The flush threshold (the `memtable_bytes` option the description was made with).
    pub capacity_bytes: Option<u64>,
    /// Its smallest and largest key; `None` when it is empty.
    pub keys: Option<KeySpan>,
}

/// One level of an LSM tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// The level's number, 0 for L0.
    pub level: u32,
    /// Tables on it.
    pub tables: u32,
    /// Their bytes.
    pub bytes: u64,
    /// The size compaction keeps it under (the options the description was made with);
    /// `None` for a level whose trigger is a table count (L0).
    pub target_bytes: Option<u64>,
}

/// A merge or compaction seen in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeInProgress {
    /// The files it replaces.
    pub inputs: Vec<String>,
    /// The files it writes.
    pub outputs: Vec<String>,
    /// True once its commit point has passed (the next open finishes it rather than
    /// undoing it).
    pub committed: bool,
}

/// A key as text: printable ASCII as is, `\` and `"` escaped by a backslash, every other
/// byte as `\xNN`.
pub fn key_text(key: &[u8]) -> String {
    let quoted = crate::dump::quoted(key, key.len());
    quoted[1..quoted.len() - 1].to_string()
}

/// The key a [`key_text`] stands for: its inverse. Text that no key gives (a lone `\\`, a
/// bad escape) is read as far as it makes sense, byte for byte.
pub fn key_bytes(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let hex_at = |at: usize| {
        let digits = std::str::from_utf8(bytes.get(at..at + 2)?).ok()?;
        u8::from_str_radix(digits, 16).ok()
    };
    let mut i = 0;
    while i < bytes.len() {
        let (byte, len) = match (bytes[i], bytes.get(i + 1)) {
            (b'\\', Some(b'x')) => hex_at(i + 2).map_or((b'\\', 1), |byte| (byte, 4)),
            (b'\\', Some(&c @ (b'\\' | b'"'))) => (c, 2),
            (b, _) => (b, 1),
        };
        out.push(byte);
        i += len;
    }
    out
}

/// The first and last of `keys` as a [`KeySpan`].
pub fn key_span(first: &[u8], last: &[u8]) -> KeySpan {
    KeySpan {
        first: key_text(first),
        last: key_text(last),
    }
}

impl Structure {
    /// The start of every stage's description of `dir`: checks that its marker names
    /// `engine` at `format_version`, and lists its files, sorted by name, as [`StoreFile`]s
    /// of kind [`FileKind::Other`] (the marker and lock recognised) for the stage to fill in.
    /// Reads only; takes no lock.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `dir` is not a directory or has no marker (not a
    /// store); [`Error::WrongEngine`] or [`Error::FormatVersion`] when the marker names
    /// another engine or version; [`Error::Corruption`] for a damaged marker; [`Error::Io`].
    pub fn read_dir(dir: &Path, engine: &str, format_version: u32) -> Result<Structure> {
        check_marker(dir, read_marker(dir)?, engine, format_version)?;
        Ok(Structure {
            version: STRUCTURE_VERSION,
            engine: engine.to_string(),
            format_version,
            files: list_files(dir)?,
            index: Vec::new(),
            index_omitted: 0,
            memtable: None,
            levels: Vec::new(),
            merge: None,
        })
    }

    /// Calls `describe` on every file in turn. A file that is gone when it is read (another
    /// process holding the store open deleted it after the listing: a merge or compaction
    /// finished) leaves the list instead of failing the description.
    ///
    /// # Errors
    /// The first other error `describe` returns.
    pub fn describe_each(
        &mut self,
        mut describe: impl FnMut(&mut StoreFile) -> Result<()>,
    ) -> Result<()> {
        let mut gone = Vec::new();
        for (i, file) in self.files.iter_mut().enumerate() {
            match describe(file) {
                Ok(()) => {}
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    gone.push(i);
                }
                Err(e) => return Err(e),
            }
        }
        for i in gone.into_iter().rev() {
            self.files.remove(i);
        }
        Ok(())
    }

    /// Adds a pointer to `index`, or counts it in `index_omitted` past [`MAX_POINTERS`].
    pub fn push_pointer(&mut self, pointer: Pointer) {
        if self.index.len() < MAX_POINTERS {
            self.index.push(pointer);
        } else {
            self.index_omitted += 1;
        }
    }

    /// The file called `name`, if the directory holds it.
    pub fn file(&self, name: &str) -> Option<&StoreFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

impl StoreFile {
    /// A file of `bytes` bytes called `name`, of a kind yet to be told.
    pub fn new(name: impl Into<String>, bytes: u64) -> StoreFile {
        StoreFile {
            name: name.into(),
            kind: FileKind::Other,
            bytes,
            live_bytes: None,
            dead_bytes: None,
            keys: None,
            level: None,
            entries: None,
            describes: None,
            note: None,
            parts: Vec::new(),
            parts_omitted: 0,
        }
    }

    /// Adds a part, or counts it in `parts_omitted` past [`MAX_PARTS`].
    pub fn push_part(&mut self, part: Part) {
        if self.parts.len() < MAX_PARTS {
            self.parts.push(part);
        } else {
            self.parts_omitted += 1;
        }
    }

    /// Sets the live bytes, and the dead bytes as the rest of `used` (the bytes that hold
    /// records, headers excluded).
    pub fn set_live(&mut self, live: u64, used: u64) {
        self.live_bytes = Some(live);
        self.dead_bytes = Some(used.saturating_sub(live));
    }
}

impl Part {
    /// A part of `kind`, `bytes` long at `offset`, with nothing else known yet.
    pub fn new(kind: PartKind, offset: u64, bytes: u64) -> Part {
        Part {
            kind,
            offset,
            bytes,
            keys: Vec::new(),
            key_span: None,
            entries: None,
            live: None,
        }
    }

    /// The part with `keys` (at most [`MAX_PART_KEYS`] of them kept).
    pub fn with_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a [u8]>) -> Part {
        self.keys = keys.into_iter().take(MAX_PART_KEYS).map(key_text).collect();
        self
    }
}

/// Longest marker file read (as [`crate::StoreDir`] checks).
const MAX_MARKER_LEN: u64 = 64;

/// The marker of the store in `dir`, read without a lock.
///
/// # Errors
/// As [`Structure::read_dir`], for the marker only.
pub fn read_marker(dir: &Path) -> Result<marker::Marker> {
    if !dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let path = dir.join(MARKER_FILE);
    let bytes = match std::fs::File::open(&path) {
        Ok(file) => {
            let mut bytes = Vec::new();
            // A marker is at most 57 bytes; reading one more shows a longer file.
            file.take(MAX_MARKER_LEN + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(&path, e))?;
            if bytes.len() as u64 > MAX_MARKER_LEN {
                return Err(Error::corruption(&path, 0, "marker file too long"));
            }
            bytes
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::InvalidArgument(format!(
                "{} is not a store: it has no {MARKER_FILE} marker",
                dir.display()
            )));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    marker::decode(&bytes).map_err(|e| e.into_corruption(&path, 0))
}

/// The files of `dir` with their sizes, sorted by name; the marker and lock recognised.
fn list_files(dir: &Path) -> Result<Vec<StoreFile>> {
    let io_error = |e| Error::io(dir, e);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(e)),
        };
        if !meta.is_file() {
            continue;
        }
        let mut file = StoreFile::new(entry.file_name().to_string_lossy(), meta.len());
        file.kind = match file.name.as_str() {
            MARKER_FILE => FileKind::Marker,
            LOCK_FILE => FileKind::Lock,
            _ => FileKind::Other,
        };
        files.push(file);
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// A file system that only reads: opening gives a read-only file, and every call that would
/// change something (create, append, truncate, sync, rename, remove, lock) fails with
/// [`io::ErrorKind::PermissionDenied`]. The engines' own readers (a table's, a log's) run on
/// it unchanged, and cannot alter the store they describe.
pub fn read_only_fs() -> Fs {
    Fs::new(Arc::new(ReadOnlyFs))
}

#[derive(Debug)]
struct ReadOnlyFs;

#[derive(Debug)]
struct ReadOnlyFile(std::fs::File);

fn refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "a store's structure is read without changing anything",
    )
}

impl FileSystem for ReadOnlyFs {
    fn create(&self, _: &Path) -> io::Result<Arc<dyn File>> {
        Err(refused())
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        Ok(Arc::new(ReadOnlyFile(std::fs::File::open(path)?)))
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn remove(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        crate::file_system::RealFs.list(dir)
    }
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn lock(&self, _: &Path) -> io::Result<Box<dyn FileLock>> {
        Err(refused())
    }
}

impl File for ReadOnlyFile {
    fn append(&self, _: &[u8]) -> io::Result<()> {
        Err(refused())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn sync(&self) -> io::Result<()> {
        Err(refused())
    }
    fn truncate(&self, _: u64) -> io::Result<()> {
        Err(refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_text() {
        assert_eq!(key_text(b"fruit"), "fruit");
        assert_eq!(key_text(b"a\"b\\c\x00\xff"), "a\\\"b\\\\c\\x00\\xff");
        for key in [&b"fruit"[..], b"a\"b\\c\x00\xff", b"\\x41", b""] {
            assert_eq!(key_bytes(&key_text(key)), key);
        }
    }

    #[test]
    fn a_directory_without_marker_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
        let err = Structure::read_dir(tmp.path(), "hashlog", 2).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing created");
        let missing = tmp.path().join("missing");
        assert!(matches!(
            Structure::read_dir(&missing, "hashlog", 2),
            Err(Error::InvalidArgument(_))
        ));
        assert!(!missing.exists());
    }

    #[test]
    fn the_marker_names_the_engine_and_version() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(MARKER_FILE), marker::encode("bitcask", 2)).unwrap();
        std::fs::write(tmp.path().join(LOCK_FILE), b"").unwrap();
        let s = Structure::read_dir(tmp.path(), "bitcask", 2).unwrap();
        let kinds: Vec<_> = s.files.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            kinds,
            [("ENGINE", FileKind::Marker), ("LOCK", FileKind::Lock)]
        );
        assert!(matches!(
            Structure::read_dir(tmp.path(), "lsm", 2),
            Err(Error::WrongEngine { .. })
        ));
        assert!(matches!(
            Structure::read_dir(tmp.path(), "bitcask", 3),
            Err(Error::FormatVersion { .. })
        ));
    }

    #[test]
    fn the_read_only_file_system_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"bytes").unwrap();
        let fs = read_only_fs();
        let file = fs.open(&path).unwrap();
        assert_eq!(file.read_vec_at(1, 3).unwrap(), b"yte");
        assert!(file.append(b"x").is_err());
        assert!(file.truncate(0).is_err());
        assert!(fs.create(&tmp.path().join("g")).is_err());
        assert!(fs.remove(&path).is_err());
        assert!(fs.lock(&tmp.path().join("LOCK")).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"bytes");
        assert!(!tmp.path().join("g").exists() && !tmp.path().join("LOCK").exists());
    }
}
