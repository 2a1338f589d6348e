//! The write-ahead log: every change is appended here before the memtable sees it.
//!
//! The memtable lives in memory; the WAL is what makes it survive a crash. A write is
//! framed, appended with one write call, and only then applied to the memtable, so when
//! `put` returns the change is in the operating system's hands. [`Wal::sync`] makes it
//! survive a power loss too. When the memtable has been written out as a table, its WALs
//! are deleted.
//!
//! The WAL does not know what its records mean: a record's payload is opaque bytes. This
//! stage puts a [`crate::wal_entry`] in each; stage 4 reuses this module unchanged with its
//! own payloads.
//!
//! ## Format (version 1)
//!
//! A 12-byte header, then records back to back until the end of the file.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `KVSSTWAL` |
//! | 8 | 4 | format version, `u32` LE (1) |
//! | 12 | .. | records |
//!
//! Each record is one [`crate::frame`]:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 8 + n`, `u32` LE |
//! | 4 | 4 | `n`, payload length, `u32` LE, at most [`MAX_PAYLOAD`] |
//! | 8 | n | payload |
//!
//! ## Creating, appending, replaying
//!
//! * [`Wal::create`] writes the header, syncs the file and syncs its directory, so a WAL
//!   that was ever appended to has its header on disk, and later `sync` calls need only
//!   sync the file. A power loss inside `create` can still leave the file with a short,
//!   torn or garbage header (its directory entry reached the disk, its data did not).
//!   [`Wal::replay`] treats a bad header with **no valid record after it** as such a torn
//!   creation, an empty log, and cuts the file to nothing; a bad header followed by a valid
//!   record is corruption (or another format version).
//! * [`Wal::append`] hands one whole record to the OS in one append. Appends are serialized
//!   by a mutex inside the `Wal`, so they may come from several threads.
//! * **When a write or a sync fails.** An append that fails may have written part of its
//!   record; left there, every later record would follow a damaged one, and the next open
//!   would call that corruption. So a failed append is cut back off (the file truncated to
//!   its length before the append) and reported; the change was not made. If even the cut
//!   fails, the `Wal` is **failed**: every later append and sync returns an error until the
//!   store is reopened, whose replay treats the damage as a torn tail. A failed `sync` fails
//!   the `Wal` too: after a failed fsync the kernel may have dropped the dirty pages, so a
//!   later fsync that succeeds cannot vouch for the records before it.
//! * [`Wal::replay`] reads the records with [`kv_shared::log_reader::read_log`]: a damaged
//!   record at the end is a torn tail (an append the crash cut short, never acknowledged
//!   as synced), which is truncated away and reported in [`WalReplay`]; a damaged record
//!   followed by a valid one is [`Error::Corruption`]. Replay then syncs the file: the
//!   process that wrote it may have been killed before syncing, and what the caller now
//!   serves must be durable once the caller's next `sync` returns.
//! * **Only the last WAL written can end torn.** An engine that keeps several WALs syncs
//!   each one before a newer WAL takes its first write, so every WAL before the last one
//!   holding a record is *sealed*: whole. [`Wal::holds_records`] finds the last one written
//!   (newest first, reading one record each); [`Wal::replay_sealed`] replays the ones before
//!   it, calling any damage, even at the very end, [`Error::Corruption`], and leaving the
//!   file as it found it. Taking a sealed WAL's cut end for a torn tail would lose writes
//!   from the middle of history: a later WAL's writes kept, an earlier one's gone, and a read
//!   returning a value that was overwritten.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError};
use kv_shared::log_reader::{LogFormat, LogTail, read_log};
use kv_shared::{Error, FileRef, Fs, MAX_KEY_LEN, MAX_VALUE_LEN, Result};

use crate::file_names::parent_dir;
use crate::frame::{self, FRAME_HEADER_LEN};

/// The first eight bytes of a WAL file.
pub const WAL_MAGIC: &[u8; 8] = b"KVSSTWAL";
/// The WAL format version this build writes and reads.
pub const WAL_VERSION: u32 = 1;
/// Length of the file header: magic and version.
pub const WAL_HEADER_LEN: u64 = 12;
/// Longest payload a record may hold: one key and one value at their limits, plus 4 KiB
/// for whatever a payload format puts around them.
pub const MAX_PAYLOAD: usize = MAX_KEY_LEN + MAX_VALUE_LEN + 4096;

/// An open write-ahead log, appended to by one writer (or serialized writers).
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: FileRef,
    size: AtomicU64,
    /// Held while appending, so a failed append can be cut back off.
    append_lock: Mutex<()>,
    /// Set when an append could not be cut back off or a sync failed.
    failed: AtomicBool,
}

/// What [`Wal::replay`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalReplay {
    /// Valid records replayed.
    pub records: u64,
    /// Bytes of torn tail cut off the end of the file (0 for a clean log).
    pub torn_tail_bytes: u64,
}

fn header() -> [u8; WAL_HEADER_LEN as usize] {
    let mut h = [0; WAL_HEADER_LEN as usize];
    h[..8].copy_from_slice(WAL_MAGIC);
    h[8..].copy_from_slice(&WAL_VERSION.to_le_bytes());
    h
}

/// The record format, for [`read_log`].
struct WalRecord;

impl LogFormat for WalRecord {
    type Record = Vec<u8>;
    const HEADER_LEN: usize = FRAME_HEADER_LEN;

    fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
        frame::frame_len(header, MAX_PAYLOAD)
    }

    fn decode(record: &[u8]) -> Result<Vec<u8>, DecodeError> {
        frame::open(record).map(<[u8]>::to_vec)
    }
}

impl Wal {
    /// Creates a new, empty log at `path` (replacing any file there): writes the header and
    /// syncs the file and its directory.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn create(fs: &Fs, path: &Path) -> Result<Wal> {
        let file = fs.create(path)?;
        file.append(&header())?;
        file.sync()?;
        fs.sync_dir(parent_dir(path))?;
        Ok(Wal {
            path: path.to_path_buf(),
            file,
            size: AtomicU64::new(WAL_HEADER_LEN),
            append_lock: Mutex::new(()),
            failed: AtomicBool::new(false),
        })
    }

    /// Appends one record holding `payload`, handed to the OS in a single append.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a payload over [`MAX_PAYLOAD`] (nothing written);
    /// [`Error::Io`] when the append fails (the record is cut back off, or the `Wal` fails)
    /// or the `Wal` has failed before.
    pub fn append(&self, payload: &[u8]) -> Result<()> {
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::InvalidArgument(format!(
                "WAL payload of {} bytes is over the limit of {MAX_PAYLOAD}",
                payload.len()
            )));
        }
        let mut record = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
        let start = frame::begin(&mut record);
        record.extend_from_slice(payload);
        frame::seal(&mut record, start);
        let _serial = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.check_not_failed()?;
        if let Err(e) = self.file.append(&record) {
            if self.file.truncate(self.size()).is_err() {
                self.failed.store(true, Relaxed);
            }
            return Err(e);
        }
        self.size.fetch_add(record.len() as u64, Relaxed);
        Ok(())
    }

    fn check_not_failed(&self) -> Result<()> {
        if self.failed.load(Relaxed) {
            return Err(Error::io(
                &self.path,
                std::io::Error::other(
                    "an earlier append or sync of this WAL failed; reopen the store",
                ),
            ));
        }
        Ok(())
    }

    /// True when an earlier failure stopped this log (see the module documentation).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Relaxed)
    }

    /// Makes every record appended so far durable.
    ///
    /// # Errors
    /// [`Error::Io`] when the sync fails (the `Wal` then fails) or the `Wal` has failed
    /// before.
    pub fn sync(&self) -> Result<()> {
        self.check_not_failed()?;
        self.file
            .sync()
            .inspect_err(|_| self.failed.store(true, Relaxed))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file: header and records.
    pub fn size(&self) -> u64 {
        self.size.load(Relaxed)
    }

    /// Calls `each` with the payload of every valid record of the log at `path`, in order.
    /// A torn tail is truncated off the file; a bad header with no valid record after it (a
    /// crash inside [`Wal::create`]) leaves an empty file. The file is then synced, so
    /// every record replayed is durable, even if the process that wrote it never synced.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a bad magic, or a damaged record, followed by a valid
    /// record; [`Error::FormatVersion`] for another version with records; any error `each`
    /// returns; [`Error::Io`].
    pub fn replay(
        fs: &Fs,
        path: &Path,
        mut each: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<WalReplay> {
        let file = fs.open(path)?;
        let len = file.len()?;
        let head = file.read_vec_at(0, len.min(WAL_HEADER_LEN) as usize)?;
        let header_error = if len < WAL_HEADER_LEN {
            Some(HeaderError::Decode(DecodeError::new(
                0,
                format!("{len} bytes is too short for a WAL header"),
            )))
        } else {
            check_header(&head).err()
        };
        if let Some(header_error) = header_error {
            // A header that never reached the disk whole: the crash came inside `create`,
            // before the sync that every record waits for, so no record can be missing.
            // The same damage with a valid record after it is corruption.
            let mut later_record = false;
            if len > WAL_HEADER_LEN {
                later_record = match read_log::<WalRecord>(&file, WAL_HEADER_LEN, |_| Ok(())) {
                    Ok(end) => end.valid_len > WAL_HEADER_LEN,
                    Err(_) => true,
                };
            }
            if later_record {
                return Err(match header_error {
                    HeaderError::Decode(e) => e.into_corruption(path, 0),
                    HeaderError::Version(found) => Error::FormatVersion {
                        file: path.to_path_buf(),
                        found,
                        supported: WAL_VERSION,
                    },
                });
            }
            file.truncate(0)?;
            file.sync()?;
            return Ok(WalReplay {
                records: 0,
                torn_tail_bytes: len,
            });
        }
        let mut records = 0;
        let end = read_log::<WalRecord>(&file, WAL_HEADER_LEN, |record| {
            records += 1;
            each(&record.record)
        })?;
        let mut torn_tail_bytes = 0;
        if let LogTail::Torn { bytes, .. } = end.tail {
            file.truncate(end.valid_len)?;
            torn_tail_bytes = bytes;
        }
        // What was replayed may still sit unsynced in the page cache (the process that
        // wrote it was killed before a `sync`); the caller now serves it, so make it durable.
        file.sync()?;
        Ok(WalReplay {
            records,
            torn_tail_bytes,
        })
    }

    /// Calls `each` with the payload of every record of a **sealed** WAL: one that a newer
    /// WAL replaced. It was synced before the newer one took its first write, so no crash
    /// can have torn it: it must be whole, a valid header and then valid records to its very
    /// last byte. The file is only read, never changed, so a store refused for its damage
    /// stays as it was found. Returns the number of records.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a missing or bad header, or any damaged record, the last
    /// one included (a torn tail here is damage, not a crash); [`Error::FormatVersion`] for
    /// another version; any error `each` returns; [`Error::Io`].
    pub fn replay_sealed(
        fs: &Fs,
        path: &Path,
        mut each: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        const SEALED: &str =
            "a WAL that a newer WAL replaced was synced first, so it must be whole";
        let file = fs.open(path)?;
        let len = file.len()?;
        if len < WAL_HEADER_LEN {
            return Err(Error::corruption(
                path,
                0,
                format!("{len} bytes is too short for a WAL header ({SEALED})"),
            ));
        }
        match check_header(&file.read_vec_at(0, WAL_HEADER_LEN as usize)?) {
            Ok(()) => {}
            Err(HeaderError::Decode(e)) => return Err(e.into_corruption(path, 0)),
            Err(HeaderError::Version(found)) => {
                return Err(Error::FormatVersion {
                    file: path.to_path_buf(),
                    found,
                    supported: WAL_VERSION,
                });
            }
        }
        let mut records = 0;
        let end = read_log::<WalRecord>(&file, WAL_HEADER_LEN, |record| {
            records += 1;
            each(&record.record)
        })?;
        if let LogTail::Torn {
            offset,
            bytes,
            detail,
        } = end.tail
        {
            return Err(Error::corruption(
                path,
                offset,
                format!("{bytes} damaged bytes at the end: {detail} ({SEALED})"),
            ));
        }
        Ok(records)
    }

    /// True when the WAL at `path` was written to: a valid header, then a valid first
    /// record. Reads only those bytes. Recovery asks this of the newest WALs first, to find
    /// the last one written, the only one whose end a crash can have torn.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn holds_records(fs: &Fs, path: &Path) -> Result<bool> {
        let file = fs.open(path)?;
        let len = file.len()?;
        let first = WAL_HEADER_LEN + FRAME_HEADER_LEN as u64;
        if len < first {
            return Ok(false);
        }
        let head = file.read_vec_at(0, first as usize)?;
        if check_header(&head[..WAL_HEADER_LEN as usize]).is_err() {
            return Ok(false);
        }
        let Ok(frame_len) = frame::frame_len(&head[WAL_HEADER_LEN as usize..], MAX_PAYLOAD) else {
            return Ok(false);
        };
        if WAL_HEADER_LEN + frame_len as u64 > len {
            return Ok(false);
        }
        let frame = file.read_vec_at(WAL_HEADER_LEN, frame_len)?;
        Ok(frame::open(&frame).is_ok())
    }
}

enum HeaderError {
    Decode(DecodeError),
    Version(u32),
}

fn check_header(bytes: &[u8]) -> std::result::Result<(), HeaderError> {
    let mut r = ByteReader::new(bytes);
    let magic = r.bytes(8, "magic").map_err(HeaderError::Decode)?;
    if magic != WAL_MAGIC {
        return Err(HeaderError::Decode(DecodeError::new(
            0,
            format!("not a WAL: magic {}", quoted(magic, 8)),
        )));
    }
    let version = r.u32("format version").map_err(HeaderError::Decode)?;
    if version != WAL_VERSION {
        return Err(HeaderError::Version(version));
    }
    Ok(())
}

/// Records shown in full by [`inspect_wal`]; later ones are counted.
const DUMP_RECORDS: usize = 200;

/// The annotated dump of a WAL file, or `None` when `bytes` do not start with
/// [`WAL_MAGIC`]. Payloads are shown as bytes; a damaged record ends the dump with a note.
pub fn inspect_wal(bytes: &[u8]) -> Option<String> {
    inspect_wal_with(bytes, |d, payload| {
        d.field(payload, format!("payload {}", quoted(payload, 40)))
    })
}

/// [`inspect_wal`] with a caller's way of showing each payload (this stage decodes its
/// [`crate::wal_entry`]s). `show` must advance the dump by exactly the payload's length.
pub fn inspect_wal_with(bytes: &[u8], mut show: impl FnMut(&mut Dump, &[u8])) -> Option<String> {
    if !bytes.starts_with(WAL_MAGIC) {
        return None;
    }
    let mut d = Dump::new(format!("write-ahead log, {} bytes", bytes.len()));
    d.field(&bytes[..8], "magic \"KVSSTWAL\"");
    let Some(version) = bytes.get(8..12) else {
        d.note("torn header: the file ends inside the version field");
        return Some(d.finish());
    };
    let v = u32::from_le_bytes([version[0], version[1], version[2], version[3]]);
    d.field(version, format!("format version {v}"));
    let mut pos = WAL_HEADER_LEN as usize;
    let mut n = 0usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let whole = frame::frame_len(rest, MAX_PAYLOAD)
            .ok()
            .filter(|&len| len <= rest.len())
            .and_then(|len| frame::open(&rest[..len]).ok().map(|p| (len, p)));
        let Some((len, payload)) = whole else {
            d.note(format!(
                "damaged or torn record at offset {pos}: {} bytes not shown",
                rest.len()
            ));
            break;
        };
        if n == DUMP_RECORDS {
            d.note(format!(
                "... {} more bytes of records not shown",
                bytes.len() - pos
            ));
            break;
        }
        d.section(format!("record {n}"));
        d.field(&rest[..4], "crc32 (ok)");
        d.field(&rest[4..8], format!("payload length {}", payload.len()));
        show(&mut d, payload);
        pos += len;
        n += 1;
    }
    Some(d.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay_all(fs: &Fs, path: &Path) -> Result<(Vec<Vec<u8>>, WalReplay)> {
        let mut out = Vec::new();
        let r = Wal::replay(fs, path, |p| {
            out.push(p.to_vec());
            Ok(())
        })?;
        Ok((out, r))
    }

    #[test]
    fn append_replay_and_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let path = dir.path().join("000001.wal");
        let wal = Wal::create(&fs, &path).unwrap();
        let payloads: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![0xff; 300]];
        for p in &payloads {
            wal.append(p).unwrap();
        }
        assert_eq!(wal.size(), std::fs::metadata(&path).unwrap().len());
        drop(wal);
        let whole = std::fs::read(&path).unwrap();
        let (got, r) = replay_all(&fs, &path).unwrap();
        assert_eq!(
            (got, r.records, r.torn_tail_bytes),
            (payloads.clone(), 3, 0)
        );
        // Cut inside every byte of the last record: the first two survive, the rest is torn.
        let last_start = whole.len() - 308;
        for cut in last_start..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let (got, r) = replay_all(&fs, &path).unwrap();
            assert_eq!(got, payloads[..2].to_vec(), "cut {cut}");
            assert_eq!(r.torn_tail_bytes, (cut - last_start) as u64);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start as u64);
        }
        // A torn or garbage header with no record after it is a crash inside `create`: an
        // empty log, cut to nothing.
        for header in [
            &whole[..5],
            &b"KVSSTWAL\x01"[..],
            &b"KVSSTWAL\xee\x00\x00\x00"[..],
            &[0x5a; 30][..],
        ] {
            std::fs::write(&path, header).unwrap();
            let r = replay_all(&fs, &path).unwrap().1;
            assert_eq!((r.records, r.torn_tail_bytes), (0, header.len() as u64));
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        }
        // A flipped byte in the first record, with valid ones after it, is corruption.
        let mut bad = whole.clone();
        bad[14] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            replay_all(&fs, &path),
            Err(Error::Corruption { offset: 12, .. })
        ));
        // Another file's bytes are refused by magic; another version by version.
        let mut foreign = whole.clone();
        foreign[0] = b'X';
        std::fs::write(&path, &foreign).unwrap();
        assert!(matches!(
            replay_all(&fs, &path),
            Err(Error::Corruption { .. })
        ));
        let mut newer = whole;
        newer[8] = 2;
        std::fs::write(&path, &newer).unwrap();
        assert!(matches!(
            replay_all(&fs, &path),
            Err(Error::FormatVersion { found: 2, .. })
        ));
    }

    #[test]
    fn a_sealed_wal_must_be_whole_and_is_never_changed() {
        let dir = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let path = dir.path().join("000001.wal");
        let wal = Wal::create(&fs, &path).unwrap();
        assert!(!Wal::holds_records(&fs, &path).unwrap(), "a header alone");
        for p in [&b"one"[..], b"two", b"three"] {
            wal.append(p).unwrap();
        }
        drop(wal);
        let whole = std::fs::read(&path).unwrap();
        assert!(Wal::holds_records(&fs, &path).unwrap());
        let mut seen = Vec::new();
        let n = Wal::replay_sealed(&fs, &path, |p| {
            seen.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!((n, seen.len()), (3, 3));
        // Cut inside the last record, or into the header: corruption, the file untouched
        // (where `replay` would cut a torn tail off).
        let last_start = whole.len() - (FRAME_HEADER_LEN + 5);
        let mut cuts: Vec<usize> = (last_start + 1..whole.len()).collect();
        cuts.extend([0, 5, 11]);
        for cut in cuts {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(
                matches!(
                    Wal::replay_sealed(&fs, &path, |_| Ok(())),
                    Err(Error::Corruption { .. })
                ),
                "cut at {cut}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), &whole[..cut], "cut at {cut}");
            assert_eq!(
                Wal::holds_records(&fs, &path).unwrap(),
                cut >= WAL_HEADER_LEN as usize + FRAME_HEADER_LEN + 3,
                "cut at {cut}"
            );
        }
        // A header and nothing else is whole: no record.
        std::fs::write(&path, &whole[..WAL_HEADER_LEN as usize]).unwrap();
        assert_eq!(Wal::replay_sealed(&fs, &path, |_| Ok(())).unwrap(), 0);
        // A damaged first record: not written to, as far as `holds_records` can tell.
        let mut bad = whole;
        bad[WAL_HEADER_LEN as usize + FRAME_HEADER_LEN] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(!Wal::holds_records(&fs, &path).unwrap());
    }

    #[test]
    fn dump_never_panics_on_any_prefix_or_flip() {
        let dir = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let path = dir.path().join("w.wal");
        let wal = Wal::create(&fs, &path).unwrap();
        wal.append(b"abc").unwrap();
        wal.append(b"defgh").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for cut in 0..=bytes.len() {
            let _ = inspect_wal(&bytes[..cut]);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = inspect_wal(&b);
        }
        assert!(inspect_wal(b"nope").is_none());
    }

    #[test]
    fn a_failed_append_is_cut_back_off_and_a_failed_sync_stops_the_log() {
        use kv_testkit::fault_fs::{FaultFs, FaultKind};
        use std::sync::Arc;
        let faults = FaultFs::new(7);
        let fs = Fs::new(Arc::new(faults.clone()));
        let dir = Path::new("/store");
        fs.create_dir_all(dir).unwrap();
        let path = dir.join("000001.wal");
        let wal = Wal::create(&fs, &path).unwrap();
        wal.append(b"first").unwrap();
        // The disk fills up: the append writes part of its record, fails, and is cut back.
        faults.fail_at(1, FaultKind::DiskFull);
        assert!(wal.append(&[7; 500]).is_err());
        faults.clear_faults();
        assert!(!wal.has_failed());
        wal.append(b"second").unwrap();
        assert_eq!(fs.open(&path).unwrap().len().unwrap(), wal.size());
        let (got, r) = replay_all(&fs, &path).unwrap();
        assert_eq!(got, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(r.torn_tail_bytes, 0, "no half record left in the middle");
        // A failed sync stops the log: later appends and syncs fail, even once the disk is fine.
        faults.fail_at(1, FaultKind::Once);
        assert!(wal.sync().is_err());
        faults.clear_faults();
        assert!(wal.has_failed());
        assert!(wal.append(b"third").is_err());
        assert!(wal.sync().is_err());
    }
}
