//! The manifest: which tables make up the tree, kept as a log of changes.
//!
//! Every change to the set of tables (a flush adds an L0 table; a compaction removes its
//! inputs and adds its outputs) is one [`VersionEdit`], appended to the manifest and synced
//! **before** the change is visible to readers or any file is deleted. Replaying the edits
//! in order rebuilds the tree's shape: [`ManifestState`]. An edit also carries the counters
//! that must survive a restart: the next file number, the last sequence number, and the
//! *log number*, the first WAL that is not yet flushed (older WALs are obsolete).
//!
//! On open the engine replays the manifest named by `CURRENT`, then starts a **new** manifest
//! whose first record is a snapshot of the whole state, switches `CURRENT` to it (written to
//! a temporary file, synced, renamed over `CURRENT`, directory synced: a crash leaves either
//! the old pointer or the new one), and deletes the old manifest. So a manifest grows only
//! during one run.
//!
//! The snapshot is synced before `CURRENT` names its manifest, so only an edit after it can
//! be torn by a crash. [`recover`] refuses, as [`Error::Corruption`], a manifest that does
//! not hold its snapshot whole (empty, header torn, snapshot cut or damaged): read as a torn
//! tail, it would open as an empty tree, every flushed write gone.
//!
//! The manifest is the store's newest log of edits, yet unlike the newest WAL it never
//! takes a bad record followed by valid ones for an unsynced tail (see
//! [`kv_shared::log_reader`]): [`Manifest::append`] syncs each edit before the next one is
//! appended, so at most one edit, the last, can be unsynced when the power goes, and a
//! hole a power loss leaves in it has no valid record after it. Damage followed by a valid
//! edit is therefore corruption. Cutting there would be worse than refusing: the edits
//! after the damage may name tables whose WALs are already deleted, and recovery would
//! then delete those tables as orphans.
//!
//! ## Manifest format
//!
//! A record log, the same [`sstable::wal`] log the WALs are, of kind [`KIND`]: a 16-byte
//! header (magic `KVLSMMAN`, version [`VERSION`], and a CRC32 of the two), then CRC-framed
//! records, each payload one [`VersionEdit`] encoded with `postcard`
//! ([`crate::version_edit`]):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `KVLSMMAN` |
//! | 8 | 4 | format version, `u32` LE ([`VERSION`]) |
//! | 12 | 4 | CRC32 of bytes 0..12, `u32` LE |
//! | 16 | .. | records: CRC32 (`u32` LE) of the length and payload, payload length `n` (`u32` LE), `n` bytes of payload |
//!
//! ## `CURRENT` format, 24 bytes
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `KVLSMCUR` |
//! | 8 | 4 | format version, `u32` LE ([`VERSION`]) |
//! | 12 | 8 | number of the live manifest, `u64` LE |
//! | 20 | 4 | CRC32 of bytes 0..20, `u32` LE |

use std::collections::BTreeMap;
use std::path::Path;

use kv_shared::framing::{ByteReader, DecodeError, put_crc, put_magic_version};
use kv_shared::{Error, Fs, Result};

use sstable::wal::{LogKind, MAX_RECORD_LEN, Wal};

use crate::file_names;
use crate::version::NUM_LEVELS;
use crate::version_edit::{TableMeta, VersionEdit};

/// The manifest's magic number.
pub const MAGIC: &[u8; 8] = b"KVLSMMAN";
/// The magic number of `CURRENT`.
pub const CURRENT_MAGIC: &[u8; 8] = b"KVLSMCUR";
/// Format version of the manifest and of `CURRENT`.
pub const VERSION: u32 = 1;
/// The manifest's kind of record log: its magic and version under a header checksum, and
/// records as long as the reader's bound (far above any real edit).
pub const KIND: LogKind = LogKind::new(*MAGIC, VERSION)
    .with_header_crc()
    .with_max_payload(MAX_RECORD_LEN);

/// The tree's shape as the manifest records it: what replaying every edit gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestState {
    /// Per level, its tables by file number.
    pub levels: Vec<BTreeMap<u64, TableMeta>>,
    /// First WAL not yet flushed.
    pub log_number: u64,
    /// Next unused file number.
    pub next_file: u64,
    /// Highest sequence number in a table.
    pub last_seq: u64,
}

impl ManifestState {
    /// An empty tree.
    pub fn new() -> ManifestState {
        ManifestState {
            levels: vec![BTreeMap::new(); NUM_LEVELS],
            log_number: 0,
            next_file: 1,
            last_seq: 0,
        }
    }

    // Exercise 4.1: replay a manifest edit. Read: chapter 4, "Invariants and recovery".
    // Tests: lib::manifest::tests::edits_replay_and_snapshot
    // Tests: crash::a_flushed_wal_left_behind_is_not_replayed
    // Tests: conformance::conformance::reopen_keeps_everything
    /// Applies one edit.
    ///
    /// # Errors
    /// A description of the inconsistency: a level out of range, a removed table that is
    /// not there, an added table that already is.
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<(), String> {
        for &(level, number) in &edit.removed {
            let tables = self
                .levels
                .get_mut(level as usize)
                .ok_or_else(|| format!("level {level} out of range"))?;
            tables.remove(&number).ok_or_else(|| {
                format!("removes table {number} that level {level} does not hold")
            })?;
        }
        for (level, table) in &edit.added {
            let tables = self
                .levels
                .get_mut(*level as usize)
                .ok_or_else(|| format!("level {level} out of range"))?;
            if tables.insert(table.number, table.clone()).is_some() {
                return Err(format!("adds table {} twice", table.number));
            }
        }
        if let Some(n) = edit.log_number {
            self.log_number = self.log_number.max(n);
        }
        if let Some(n) = edit.next_file {
            self.next_file = self.next_file.max(n);
        }
        if let Some(n) = edit.last_seq {
            self.last_seq = self.last_seq.max(n);
        }
        Ok(())
    }

    /// One edit that rebuilds this whole state from nothing (a new manifest's first record).
    pub fn snapshot(&self) -> VersionEdit {
        VersionEdit {
            log_number: Some(self.log_number),
            next_file: Some(self.next_file),
            last_seq: Some(self.last_seq),
            removed: Vec::new(),
            added: self
                .levels
                .iter()
                .enumerate()
                .flat_map(|(level, tables)| tables.values().map(move |t| (level as u8, t.clone())))
                .collect(),
        }
    }
}

/// The live manifest, open for appending edits.
#[derive(Debug)]
pub struct Manifest {
    log: Wal,
    number: u64,
}

impl Manifest {
    /// Starts manifest `number` in `dir` with `state` as its first record, syncs it, and
    /// points `CURRENT` at it. (Creating the log syncs its header and its directory entry.)
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn create(fs: &Fs, dir: &Path, number: u64, state: &ManifestState) -> Result<Manifest> {
        let path = dir.join(file_names::manifest(number));
        let log = Wal::create(fs, &path, KIND)?;
        let manifest = Manifest { log, number };
        manifest.append(&state.snapshot())?;
        fs.write_atomic(&dir.join(file_names::CURRENT), &encode_current(number))?;
        Ok(manifest)
    }

    /// Appends one edit and syncs it: when this returns, the edit survives power loss.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn append(&self, edit: &VersionEdit) -> Result<()> {
        let payload = postcard::to_allocvec(edit)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode a version edit: {e}")))?;
        self.log.append(&payload)?;
        self.log.sync()
    }

    /// This manifest's file number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes written to it so far.
    pub fn size(&self) -> u64 {
        self.log.size()
    }
}

/// Reads `CURRENT` and the manifest it names: `None` when there is no `CURRENT` (a store
/// created but never given a manifest), else the manifest's number and the state its edits
/// build. A torn last edit (a crash during an append) is ignored: it was never acknowledged.
/// The first record, the snapshot, cannot be torn: it was synced before `CURRENT` named the
/// manifest.
///
/// # Errors
/// [`Error::Corruption`] for a damaged `CURRENT` or manifest, a manifest that `CURRENT` names
/// but that is missing, empty, or torn before the end of its first record (a snapshot), or
/// edits that do not fit together; [`Error::Io`].
pub fn recover(fs: &Fs, dir: &Path) -> Result<Option<(u64, ManifestState)>> {
    let current_path = dir.join(file_names::CURRENT);
    let Some(file) = fs.open_if_exists(&current_path)? else {
        return Ok(None);
    };
    let len = file.len()?;
    if len > 64 {
        return Err(Error::corruption(&current_path, 0, "CURRENT is too long"));
    }
    let number = decode_current(&file.read_vec_at(0, len as usize)?)
        .map_err(|e| e.into_corruption(&current_path, 0))?;
    let path = dir.join(file_names::manifest(number));
    if fs.open_if_exists(&path)?.is_none() {
        return Err(Error::corruption(
            &current_path,
            12,
            format!("CURRENT names {}, which is missing", path.display()),
        ));
    }
    let mut state = ManifestState::new();
    let summary = Wal::read_records(fs, &path, KIND, |record| {
        let (offset, payload) = (record.offset, record.payload);
        let edit: VersionEdit = postcard::from_bytes(payload).map_err(|e| {
            Error::corruption(&path, offset, format!("undecodable version edit: {e}"))
        })?;
        if offset == KIND.header_len() && !is_snapshot(&edit) {
            return Err(Error::corruption(
                &path,
                offset,
                "the first record is not a snapshot (it must set every counter and remove \
                 nothing)",
            ));
        }
        state
            .apply(&edit)
            .map_err(|detail| Error::corruption(&path, offset, detail))
    })?;
    // `Manifest::create` syncs the header and the snapshot before `CURRENT` names the file,
    // so a crash cannot leave the manifest that `CURRENT` names without them: an empty file,
    // a torn header or a torn snapshot is damage. (Taken for a torn tail, it would open as
    // an empty tree, every flushed write gone.)
    if summary.records == 0 {
        return Err(Error::corruption(
            &path,
            0,
            format!(
                "CURRENT names this manifest, but its header and first record (a snapshot, \
                 synced before CURRENT named it) are not whole: {} bytes",
                fs.open(&path)?.len()?
            ),
        ));
    }
    Ok(Some((number, state)))
}

/// True when `edit` can be a manifest's first record: a snapshot of the whole state, which
/// sets every counter and removes nothing ([`ManifestState::snapshot`]).
fn is_snapshot(edit: &VersionEdit) -> bool {
    edit.log_number.is_some()
        && edit.next_file.is_some()
        && edit.last_seq.is_some()
        && edit.removed.is_empty()
}

/// The bytes of `CURRENT` pointing at manifest `number`.
pub fn encode_current(number: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    put_magic_version(&mut out, CURRENT_MAGIC, VERSION);
    out.extend_from_slice(&number.to_le_bytes());
    put_crc(&mut out);
    out
}

/// The manifest number `CURRENT` names.
///
/// # Errors
/// [`DecodeError`] for bad magic, version, checksum or length.
pub fn decode_current(bytes: &[u8]) -> Result<u64, DecodeError> {
    let mut r = ByteReader::past_magic_version(bytes, CURRENT_MAGIC, VERSION, "CURRENT file")?;
    let number = r.u64("manifest number")?;
    r.crc_at_end("CURRENT file")?;
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table `number` holding keys `a` to `b` (its other fields do not matter here).
    fn meta(number: u64, a: &str, b: &str) -> TableMeta {
        TableMeta {
            number,
            smallest: a.into(),
            largest: b.into(),
            ..TableMeta::default()
        }
    }

    #[test]
    fn edits_replay_and_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let mut state = ManifestState::new();
        let m = Manifest::create(&fs, tmp.path(), 1, &state).unwrap();
        let edits = [
            VersionEdit {
                log_number: Some(3),
                next_file: Some(5),
                last_seq: Some(10),
                added: vec![(0, meta(4, "a", "k"))],
                ..VersionEdit::default()
            },
            VersionEdit {
                next_file: Some(7),
                removed: vec![(0, 4)],
                added: vec![(1, meta(5, "a", "c")), (1, meta(6, "d", "k"))],
                ..VersionEdit::default()
            },
        ];
        for e in &edits {
            m.append(e).unwrap();
            state.apply(e).unwrap();
        }
        let (number, recovered) = recover(&fs, tmp.path()).unwrap().unwrap();
        assert_eq!(number, 1);
        assert_eq!(recovered, state);
        let mut rebuilt = ManifestState::new();
        rebuilt.apply(&state.snapshot()).unwrap();
        assert_eq!(rebuilt, state);
        assert!(
            state.clone().apply(&edits[1]).is_err(),
            "removing twice is refused"
        );
        assert_eq!(decode_current(&encode_current(42)).unwrap(), 42);
    }

    #[test]
    fn current_refuses_every_flip_cut_and_extra_byte() {
        let bytes = encode_current(42);
        assert_eq!(bytes.len(), 24);
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            assert!(decode_current(&flipped).is_err(), "flip at {i}");
            assert!(decode_current(&bytes[..i]).is_err(), "cut at {i}");
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(decode_current(&longer).is_err());
    }
}
