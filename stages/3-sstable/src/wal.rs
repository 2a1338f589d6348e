//! The record log: CRC-framed records after a short header. This stage's write-ahead log
//! is one; stage 4 uses the same module for its write-ahead log and for its manifest.
//!
//! The memtable lives in memory; the WAL is what makes it survive a crash. A write is
//! framed, appended with one write call, and only then applied to the memtable, so when
//! `put` returns the change is in the operating system's hands. [`Wal::sync`] makes it
//! survive a power loss too. When the memtable has been written out as a table, its WALs
//! are deleted.
//!
//! The log does not know what its records mean: a record's payload is opaque bytes. This
//! stage puts a [`crate::wal_entry`] in each. What tells one kind of log from another is
//! its [`LogKind`], given by the caller: the magic and version of its header, whether the
//! header carries a checksum, and the longest payload a record may hold. The log writes and
//! checks its own header and framing, so a caller never repeats them.
//!
//! ## Format
//!
//! A header, then records back to back until the end of the file. The header is 12 bytes,
//! or 16 for a kind with a header checksum ([`LogKind::with_header_crc`]):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic ([`LogKind::magic`]) |
//! | 8 | 4 | format version, `u32` LE ([`LogKind::version`]) |
//! | 12 | 4 | only with a header checksum: CRC32 of bytes `0 .. 12`, `u32` LE |
//!
//! Each record is one [`crate::frame`]:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 8 + n`, `u32` LE |
//! | 4 | 4 | `n`, payload length, `u32` LE, at most the kind's [`LogKind::max_payload`] |
//! | 8 | n | payload |
//!
//! This stage's WAL is [`WAL_KIND`]: magic ASCII `KVSSTWAL`, version 1, no header checksum
//! (a 12-byte header), payloads of at most [`MAX_PAYLOAD`] bytes.
//!
//! ## The calls
//!
//! | call | what it does |
//! |---|---|
//! | [`Wal::create`] | a new, empty log: header written, file and directory synced |
//! | [`Wal::append`], [`Wal::append_parts`] | one record, handed to the OS in one append |
//! | [`Wal::sync`], [`Wal::size`], [`Wal::path`] | durability, bytes so far, the file |
//! | [`Wal::replay`] | every record of the log a crash may have torn at its end; cuts the tear off |
//! | [`Wal::replay_sealed`] | every record of a log that must be whole; never changes the file |
//! | [`Wal::read_records`] | every record, a torn tail reported and left in place, the file untouched |
//! | [`Wal::holds_records`] | whether a log holds a first valid record (reads only that) |
//! | [`Wal::written_past_header`] | whether a log holds any byte past its header (reads only its length) |
//! | [`Wal::has_whole_header`] | whether a log starts with its kind's whole, valid header |
//! | [`dump`] | the annotated dump of a log, each payload shown by the caller |
//!
//! Every read hands out each record as a [`Record`]: its payload and its offset in the file,
//! so a caller's decoding error can name the byte where it found the damage.
//!
//! ## Creating, appending, replaying
//!
//! * [`Wal::create`] writes the header, syncs the file and syncs its directory, so a log
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
//! * [`Wal::replay`] reads the last WAL written, the store's newest log, with
//!   [`kv_shared::log_reader::read_newest_log`]: **everything from its first damaged record
//!   on is its unsynced tail** (RocksDB's point-in-time recovery), truncated away and
//!   reported in [`WalReplay`]. That covers an append the crash cut short, never
//!   acknowledged as synced, and also a tail with holes: a disk writes a file's unsynced
//!   pages back in any order, so after a power loss a damaged record may have valid ones
//!   after it, all written after the last sync. Keeping those would bring back later
//!   writes without earlier ones. When valid records did follow, the whole file is first
//!   copied into the store's `lost/` directory ([`kv_shared::repair::copy_to_lost`]), so if
//!   the damage was not a power loss after all, nothing once written is destroyed. Replay
//!   then syncs the file: the process that wrote it may have been killed before syncing,
//!   and what the caller now serves must be durable once the caller's next `sync` returns.
//! * **Only the last WAL written can end torn.** An engine that keeps several WALs syncs
//!   each one before a newer WAL takes its first write, so every WAL before the last one
//!   written to is *sealed*: whole. [`Wal::written_past_header`] finds the last one written
//!   (newest first, by length: its first record may be the one a power loss lost while a
//!   later one survived); [`Wal::replay_sealed`] replays the ones before
//!   it, calling any damage, even at the very end, [`Error::Corruption`], and leaving the
//!   file as it found it. Taking a sealed WAL's cut end for a torn tail would lose writes
//!   from the middle of history: a later WAL's writes kept, an earlier one's gone, and a read
//!   returning a value that was overwritten.
//! * [`Wal::read_records`] is the reading for a log whose owner decides itself what a torn
//!   end means (stage 4's manifest): a file shorter than its header holds no record, a
//!   torn tail is reported, and nothing is cut or synced.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32};
use kv_shared::log_reader::{LogEnd, LogFormat, LogRecord, LogTail, read_log, read_newest_log};
use kv_shared::{Error, FileRef, Fs, MAX_KEY_LEN, MAX_VALUE_LEN, Result};

use crate::file_names::parent_dir;
use crate::frame::{self, FRAME_HEADER_LEN};
use crate::unpoisoned;

/// The first eight bytes of this stage's WAL files.
pub const WAL_MAGIC: &[u8; 8] = b"KVSSTWAL";
/// The version of this stage's WAL format.
pub const WAL_VERSION: u32 = 1;
/// Longest payload a WAL record may hold: one key and one value at their limits, plus 4 KiB
/// for whatever a payload format puts around them.
pub const MAX_PAYLOAD: usize = MAX_KEY_LEN + MAX_VALUE_LEN + 4096;
/// Longest payload any log may hold: the bound a reader uses to tell an impossible length
/// from a record it must read (a kind's own limit is at most this).
pub const MAX_RECORD_LEN: usize = 256 << 20;
/// Bytes a caller of [`Wal::append_framed`] reserves at the front of a record for its
/// frame header ([`crate::frame`]).
pub const FRAME_RESERVE: usize = FRAME_HEADER_LEN;
/// This stage's write-ahead log.
pub const WAL_KIND: LogKind = LogKind::new(*WAL_MAGIC, WAL_VERSION);

/// What tells one kind of record log from another (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKind {
    /// The first eight bytes of the file.
    pub magic: [u8; 8],
    /// The format version that follows the magic.
    pub version: u32,
    /// Whether a CRC32 of the magic and version follows them (a 16-byte header, not 12).
    pub header_crc: bool,
    /// Longest payload a record may hold; a longer append is refused, and a reader takes a
    /// longer record for damage.
    pub max_payload: usize,
}

impl LogKind {
    /// A kind with a 12-byte header (no header checksum) and payloads of at most
    /// [`MAX_PAYLOAD`] bytes.
    pub const fn new(magic: [u8; 8], version: u32) -> LogKind {
        LogKind {
            magic,
            version,
            header_crc: false,
            max_payload: MAX_PAYLOAD,
        }
    }

    /// The same kind with a CRC32 of the magic and version in its header (16 bytes).
    pub const fn with_header_crc(self) -> LogKind {
        LogKind {
            header_crc: true,
            ..self
        }
    }

    /// The same kind with another payload limit, at most [`MAX_RECORD_LEN`].
    ///
    /// # Panics
    /// When `max_payload` is over [`MAX_RECORD_LEN`] (at compile time, for a `const`).
    pub const fn with_max_payload(self, max_payload: usize) -> LogKind {
        assert!(
            max_payload <= MAX_RECORD_LEN,
            "payload limit over MAX_RECORD_LEN"
        );
        LogKind {
            max_payload,
            ..self
        }
    }

    /// Bytes of the header: 12, or 16 with a header checksum.
    pub const fn header_len(&self) -> u64 {
        if self.header_crc { 16 } else { 12 }
    }

    /// The header's bytes.
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len() as usize);
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        if self.header_crc {
            let crc = crc32(&out);
            out.extend_from_slice(&crc.to_le_bytes());
        }
        out
    }

    /// Checks the first [`LogKind::header_len`] bytes of a file: magic, checksum (when the
    /// kind has one), then version.
    fn check_header(&self, bytes: &[u8]) -> std::result::Result<(), HeaderError> {
        let header_len = self.header_len();
        if (bytes.len() as u64) < header_len {
            return Err(HeaderError::Decode(DecodeError::new(
                0,
                format!(
                    "{} bytes is too short for a {header_len}-byte log header",
                    bytes.len()
                ),
            )));
        }
        let mut r = ByteReader::new(bytes);
        let magic = r.bytes(8, "magic").map_err(HeaderError::Decode)?;
        if magic != self.magic {
            return Err(HeaderError::Decode(DecodeError::new(
                0,
                format!(
                    "magic {} where {} was expected",
                    quoted(magic, 8),
                    quoted(&self.magic, 8)
                ),
            )));
        }
        let version = r.u32("format version").map_err(HeaderError::Decode)?;
        if self.header_crc {
            let crc = r.u32("header checksum").map_err(HeaderError::Decode)?;
            if crc != crc32(&bytes[..12]) {
                return Err(HeaderError::Decode(DecodeError::new(
                    12,
                    "header checksum mismatch",
                )));
            }
        }
        if version != self.version {
            return Err(HeaderError::Version(version));
        }
        Ok(())
    }
}

/// Why a header was refused.
enum HeaderError {
    /// Short, a wrong magic or a failed checksum.
    Decode(DecodeError),
    /// Another format version.
    Version(u32),
}

impl HeaderError {
    fn into_error(self, path: &Path, kind: &LogKind) -> Error {
        match self {
            HeaderError::Decode(e) => e.into_corruption(path, 0),
            HeaderError::Version(found) => Error::FormatVersion {
                file: path.to_path_buf(),
                found,
                supported: kind.version,
            },
        }
    }
}

/// One record as a read hands it out: where it sits in the file, and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset in the file of the record's first byte (its checksum).
    pub offset: u64,
    /// The payload, checksum verified.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Offset in the file of the payload's first byte: the base for the offsets of a
    /// payload decoder's errors.
    pub fn payload_offset(&self) -> u64 {
        self.offset + FRAME_HEADER_LEN as u64
    }
}

/// An open record log, appended to by one writer (or serialized writers).
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: FileRef,
    max_payload: usize,
    size: AtomicU64,
    /// Held while appending, so a failed append can be cut back off.
    append_lock: Mutex<()>,
    /// Set when an append could not be cut back off or a sync failed.
    failed: AtomicBool,
}

/// What a read of a log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalReplay {
    /// Valid records read.
    pub records: u64,
    /// Bytes after the last valid record that were a torn tail (0 for a clean log).
    pub torn_tail_bytes: u64,
}

/// The record framing, for [`read_log`].
struct Framing;

impl LogFormat for Framing {
    type Record = Vec<u8>;
    const HEADER_LEN: usize = FRAME_HEADER_LEN;

    fn record_len(header: &[u8]) -> std::result::Result<usize, DecodeError> {
        frame::frame_len(header, MAX_RECORD_LEN)
    }

    fn decode(record: &[u8]) -> std::result::Result<Vec<u8>, DecodeError> {
        frame::open(record).map(<[u8]>::to_vec)
    }
}

impl Wal {
    /// Creates a new, empty log of `kind` at `path` (replacing any file there): writes the
    /// header and syncs the file and its directory.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn create(fs: &Fs, path: &Path, kind: LogKind) -> Result<Wal> {
        let file = fs.create(path)?;
        file.append(&kind.header())?;
        file.sync()?;
        fs.sync_dir(parent_dir(path))?;
        Ok(Wal {
            path: path.to_path_buf(),
            file,
            max_payload: kind.max_payload,
            size: AtomicU64::new(kind.header_len()),
            append_lock: Mutex::new(()),
            failed: AtomicBool::new(false),
        })
    }

    /// Appends one record holding `payload`, handed to the OS in a single append.
    ///
    /// # Errors
    /// As [`Wal::append_parts`].
    pub fn append(&self, payload: &[u8]) -> Result<()> {
        self.append_parts(&[payload])
    }

    /// Appends one record whose payload is `parts` back to back (so a caller need not copy
    /// them into one buffer first), handed to the OS in a single append.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a payload over the kind's limit (nothing written);
    /// [`Error::Io`] when the append fails (the record is cut back off, or the `Wal` fails)
    /// or the `Wal` has failed before.
    pub fn append_parts(&self, parts: &[&[u8]]) -> Result<()> {
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        self.check_payload_len(payload_len)?;
        let mut record = Vec::with_capacity(FRAME_HEADER_LEN + payload_len);
        let start = frame::begin(&mut record);
        for part in parts {
            record.extend_from_slice(part);
        }
        frame::seal(&mut record, start);
        self.append_record(&record)
    }

    /// Appends one record built in place by the caller: `framed` is [`FRAME_RESERVE`]
    /// bytes, which this overwrites with the frame header, then the payload. A writer that
    /// gathers its payload in a buffer of its own (the lsm's group commit) reserves the
    /// header up front and so saves the copy [`Wal::append_parts`] makes.
    ///
    /// # Errors
    /// As [`Wal::append_parts`]; also [`Error::InvalidArgument`] when `framed` is shorter
    /// than [`FRAME_RESERVE`].
    pub fn append_framed(&self, framed: &mut [u8]) -> Result<()> {
        let payload_len = framed.len().checked_sub(FRAME_RESERVE).ok_or_else(|| {
            Error::InvalidArgument("a framed record shorter than its frame header".into())
        })?;
        self.check_payload_len(payload_len)?;
        frame::seal(framed, 0);
        self.append_record(framed)
    }

    /// Refuses a payload over the kind's limit.
    fn check_payload_len(&self, payload_len: usize) -> Result<()> {
        if payload_len > self.max_payload {
            return Err(Error::InvalidArgument(format!(
                "log payload of {payload_len} bytes is over the limit of {}",
                self.max_payload
            )));
        }
        Ok(())
    }

    /// Hands one whole, framed record to the OS in a single append; on failure cuts it back
    /// off (or marks the `Wal` failed when even that fails).
    fn append_record(&self, record: &[u8]) -> Result<()> {
        let _serial = unpoisoned(self.append_lock.lock());
        self.check_not_failed()?;
        if let Err(e) = self.file.append(record) {
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
                    "an earlier append or sync of this log failed; reopen the store",
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

    /// Calls `each` with every valid record of the log of `kind` at `path`, the newest log
    /// of its store, in order up to the first damaged one. The unsynced tail, from there
    /// on, is truncated off the file (after a copy of the whole file goes into `lost/`, when
    /// valid records follow the damage); a bad header with no valid record after it (a
    /// crash inside [`Wal::create`]) leaves an empty file. The file is then synced, so
    /// every record replayed is durable, even if the process that wrote it never synced.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a bad header followed by a valid record (the header is
    /// synced before any record is written, so no power loss explains that);
    /// [`Error::FormatVersion`] for another version with records; any error `each` returns;
    /// [`Error::Io`].
    pub fn replay(
        fs: &Fs,
        path: &Path,
        kind: LogKind,
        mut each: impl FnMut(Record<'_>) -> Result<()>,
    ) -> Result<WalReplay> {
        let file = fs.open(path)?;
        let len = file.len()?;
        if let Err(header_error) = read_header(&file, len, &kind)? {
            // A header that never reached the disk whole: the crash came inside `create`,
            // before the sync that every record waits for, so no record can be missing.
            // The same damage with a valid record after it is corruption.
            if holds_a_record_after(&file, len, &kind) {
                return Err(header_error.into_error(path, &kind));
            }
            file.truncate(0)?;
            file.sync()?;
            return Ok(WalReplay {
                records: 0,
                torn_tail_bytes: len,
            });
        }
        let (records, end) = read_body(&file, path, &kind, true, &mut each)?;
        let mut torn_tail_bytes = 0;
        if let LogTail::Torn {
            bytes, valid_after, ..
        } = end.tail
        {
            if valid_after.is_some() {
                copy_to_lost(fs, path)?;
            }
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

    /// Calls `each` with every record of a **sealed** log: one that a newer log replaced.
    /// It was synced before the newer one took its first write, so no crash can have torn
    /// it: it must be whole, a valid header and then valid records to its very last byte.
    /// The file is only read, never changed, so a store refused for its damage stays as it
    /// was found. Returns the number of records.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a missing or bad header, or any damaged record, the last
    /// one included (a torn tail here is damage, not a crash); [`Error::FormatVersion`] for
    /// another version; any error `each` returns; [`Error::Io`].
    pub fn replay_sealed(
        fs: &Fs,
        path: &Path,
        kind: LogKind,
        mut each: impl FnMut(Record<'_>) -> Result<()>,
    ) -> Result<u64> {
        const SEALED: &str =
            "a log that a newer log replaced was synced first, so it must be whole";
        let file = fs.open(path)?;
        let len = file.len()?;
        if let Err(e) = read_header(&file, len, &kind)? {
            return Err(match e {
                HeaderError::Decode(mut e) => {
                    e.detail = format!("{} ({SEALED})", e.detail);
                    e.into_corruption(path, 0)
                }
                version => version.into_error(path, &kind),
            });
        }
        let (records, end) = read_body(&file, path, &kind, false, &mut each)?;
        if let LogTail::Torn {
            offset,
            bytes,
            detail,
            ..
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

    /// Calls `each` with every valid record of the log of `kind` at `path`, in order, and
    /// changes nothing: a file shorter than its header holds no record (a crash inside
    /// [`Wal::create`]), and a torn tail ends the reading quietly and is reported, for the
    /// caller to judge. For a log whose owner decides what a torn end means.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a bad header, or a damaged record followed by a valid one;
    /// [`Error::FormatVersion`] for another version; any error `each` returns;
    /// [`Error::Io`].
    pub fn read_records(
        fs: &Fs,
        path: &Path,
        kind: LogKind,
        mut each: impl FnMut(Record<'_>) -> Result<()>,
    ) -> Result<WalReplay> {
        let file = fs.open(path)?;
        let len = file.len()?;
        if len < kind.header_len() {
            return Ok(WalReplay {
                records: 0,
                torn_tail_bytes: len,
            });
        }
        read_header(&file, len, &kind)?.map_err(|e| e.into_error(path, &kind))?;
        let (records, end) = read_body(&file, path, &kind, false, &mut each)?;
        let torn_tail_bytes = match end.tail {
            LogTail::Clean => 0,
            LogTail::Torn { bytes, .. } => bytes,
        };
        Ok(WalReplay {
            records,
            torn_tail_bytes,
        })
    }

    /// True when the log of `kind` at `path` was written to: a valid header, then a valid
    /// first record. Reads only those bytes. Recovery asks this of the newest WALs first,
    /// to find the last one written, the only one whose end a crash can have torn.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn holds_records(fs: &Fs, path: &Path, kind: LogKind) -> Result<bool> {
        let file = fs.open(path)?;
        let len = file.len()?;
        let header_len = kind.header_len() as usize;
        let first = header_len + FRAME_HEADER_LEN;
        if len < first as u64 {
            return Ok(false);
        }
        let head = file.read_vec_at(0, first)?;
        if kind.check_header(&head[..header_len]).is_err() {
            return Ok(false);
        }
        let Ok(frame_len) = frame::frame_len(&head[header_len..], kind.max_payload) else {
            return Ok(false);
        };
        if (header_len + frame_len) as u64 > len {
            return Ok(false);
        }
        let frame = file.read_vec_at(header_len as u64, frame_len)?;
        Ok(frame::open(&frame).is_ok())
    }

    /// True when the log of `kind` at `path` holds any byte past its header: records were
    /// appended to it, so (as [`Wal::create`] syncs the header before returning) its header
    /// was synced, and so was every older log of an engine that syncs a log before a newer
    /// one takes a write. Unlike [`Wal::holds_records`] this counts a log whose first record
    /// is damaged, as a power loss can leave the newest log. Reads only the length.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn written_past_header(fs: &Fs, path: &Path, kind: LogKind) -> Result<bool> {
        Ok(fs.open(path)?.len()? > kind.header_len())
    }

    /// True when the file at `path` starts with `kind`'s whole, valid header (magic,
    /// version and, for a kind with one, checksum). Reads only the header.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn has_whole_header(fs: &Fs, path: &Path, kind: LogKind) -> Result<bool> {
        let file = fs.open(path)?;
        let len = file.len()?;
        Ok(read_header(&file, len, &kind)?.is_ok())
    }
}

/// Reads and checks the header of a file `len` bytes long (one read, of the header or of
/// the whole file when it is shorter): the outer `Result` is the I/O, the inner one the
/// verdict on the bytes.
fn read_header(
    file: &FileRef,
    len: u64,
    kind: &LogKind,
) -> Result<std::result::Result<(), HeaderError>> {
    let head = file.read_vec_at(0, len.min(kind.header_len()) as usize)?;
    Ok(kind.check_header(&head))
}

/// True when some valid record follows where the header should end (so a bad header is
/// damage, not a creation cut short). An I/O error counts as "yes": the caller then
/// refuses the file rather than emptying it.
fn holds_a_record_after(file: &FileRef, len: u64, kind: &LogKind) -> bool {
    let start = kind.header_len();
    if len <= start {
        return false;
    }
    match read_log::<Framing>(file, start, |_| Ok(())) {
        Ok(end) => end.valid_len > start,
        Err(_) => true,
    }
}

/// Copies the whole log at `path` into the `lost/` directory beside it.
fn copy_to_lost(fs: &Fs, path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidArgument(format!("{} names no file", path.display())))?;
    kv_shared::repair::copy_to_lost(fs, parent_dir(path), &name.to_string_lossy())?;
    Ok(())
}

/// Reads the records after the header, calling `each` for every valid one: in the
/// `newest` log up to the first damaged record (the rest is its unsynced tail), in any
/// other a damaged record followed by a valid one is corruption. Returns how many there
/// were and where the valid part ends.
fn read_body(
    file: &FileRef,
    path: &Path,
    kind: &LogKind,
    newest: bool,
    each: &mut impl FnMut(Record<'_>) -> Result<()>,
) -> Result<(u64, LogEnd)> {
    let mut records = 0;
    let mut one = |record: LogRecord<Vec<u8>>| {
        if record.record.len() > kind.max_payload {
            return Err(Error::corruption(
                path,
                record.offset,
                format!(
                    "a record of {} bytes, over this log's limit of {}",
                    record.record.len(),
                    kind.max_payload
                ),
            ));
        }
        records += 1;
        each(Record {
            offset: record.offset,
            payload: &record.record,
        })
    };
    let end = if newest {
        read_newest_log::<Framing>(file, kind.header_len(), &mut one)?
    } else {
        read_log::<Framing>(file, kind.header_len(), &mut one)?
    };
    Ok((records, end))
}

/// Records shown in full by [`dump`]; later ones are counted.
const DUMP_RECORDS: usize = 200;

/// The annotated dump of a log of `kind` under the heading `title`, or `None` when `bytes`
/// do not start with the kind's magic. `show` adds the fields of one payload and must
/// advance the dump by exactly the payload's length. A record whose checksum fails is shown
/// as raw bytes and the dump goes on; a record cut short ends it with a note. Never panics.
pub fn dump(
    bytes: &[u8],
    kind: LogKind,
    title: impl std::fmt::Display,
    mut show: impl FnMut(&mut Dump, &[u8]),
) -> Option<String> {
    if !bytes.starts_with(&kind.magic) {
        return None;
    }
    let mut d = Dump::new(title);
    if !dump_header(&mut d, bytes, &kind) {
        return Some(d.finish());
    }
    let mut pos = kind.header_len() as usize;
    let mut n = 0usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let Some(len) = frame::frame_len(rest, kind.max_payload)
            .ok()
            .filter(|&len| len <= rest.len())
        else {
            d.note(format!(
                "damaged or torn record at offset {pos}: {} bytes not shown",
                rest.len()
            ));
            break;
        };
        if n == DUMP_RECORDS {
            d.note(format!(
                "... {} more bytes of records not shown",
                rest.len()
            ));
            break;
        }
        d.section(format!("record {n}"));
        let payload = &rest[FRAME_HEADER_LEN..len];
        let whole = frame::open(&rest[..len]).is_ok();
        d.field(
            &rest[..4],
            format!("crc32 ({})", if whole { "ok" } else { "BAD" }),
        );
        d.field(&rest[4..8], format!("payload length {}", payload.len()));
        if whole {
            show(&mut d, payload);
        } else {
            d.field(
                payload,
                format!("payload, not decoded {}", quoted(payload, 40)),
            );
        }
        pos += len;
        n += 1;
    }
    Some(d.finish())
}

/// Adds the header's fields; false when the file ends inside it.
fn dump_header(d: &mut Dump, bytes: &[u8], kind: &LogKind) -> bool {
    d.field(&bytes[..8], format!("magic {}", quoted(&kind.magic, 8)));
    let Some(version) = bytes.get(8..12) else {
        d.note("torn header: the file ends inside the version field");
        return false;
    };
    let v = u32::from_le_bytes([version[0], version[1], version[2], version[3]]);
    d.field(version, format!("format version {v}"));
    if kind.header_crc {
        let Some(crc) = bytes.get(12..16) else {
            d.note("torn header: the file ends inside the header checksum");
            return false;
        };
        let ok = kind.check_header(&bytes[..16]).is_ok();
        d.field(
            crc,
            format!("header crc32 ({})", if ok { "ok" } else { "BAD" }),
        );
    }
    true
}

/// The annotated dump of a log of this stage's WAL kind ([`WAL_KIND`]), titled
/// `write-ahead log, N bytes`, each payload shown by `show` (this stage decodes its
/// [`crate::wal_entry`]s; stage 4 its own payloads); `None` when `bytes` do not start with
/// [`WAL_MAGIC`]. `show` must advance the dump by exactly the payload's length.
pub fn inspect_wal_with(bytes: &[u8], show: impl FnMut(&mut Dump, &[u8])) -> Option<String> {
    let title = format!("write-ahead log, {} bytes", bytes.len());
    dump(bytes, WAL_KIND, title, show)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAL_HEADER_LEN: usize = WAL_KIND.header_len() as usize;

    fn collect(out: &mut Vec<Vec<u8>>) -> impl FnMut(Record<'_>) -> Result<()> + '_ {
        |record| {
            out.push(record.payload.to_vec());
            Ok(())
        }
    }

    /// A new log of `kind` in a temporary directory (kept while the guard lives), holding
    /// one record per payload.
    fn new_log(kind: LogKind, payloads: &[&[u8]]) -> (tempfile::TempDir, Fs, PathBuf, Wal) {
        let dir = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let path = dir.path().join("000001.wal");
        let wal = Wal::create(&fs, &path, kind).unwrap();
        for payload in payloads {
            wal.append(payload).unwrap();
        }
        (dir, fs, path, wal)
    }

    fn replay_all(fs: &Fs, path: &Path) -> Result<(Vec<Vec<u8>>, WalReplay)> {
        let mut out = Vec::new();
        let r = Wal::replay(fs, path, WAL_KIND, collect(&mut out))?;
        Ok((out, r))
    }

    #[test]
    fn append_replay_and_torn_tails() {
        let payloads: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![0xff; 300]];
        let (_dir, fs, path, wal) = new_log(WAL_KIND, &[b"one", b"", &[0xff; 300]]);
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
        // A flipped byte in the first record, with valid ones after it: a sealed log calls
        // it corruption and keeps it as it is; the newest log takes it for its unsynced tail
        // and keeps a copy of the whole file in `lost/` before the cut.
        let mut bad = whole.clone();
        bad[14] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            Wal::replay_sealed(&fs, &path, WAL_KIND, |_| Ok(())),
            Err(Error::Corruption { offset: 12, .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bad);
        let (got, r) = replay_all(&fs, &path).unwrap();
        assert_eq!((got.len(), r.torn_tail_bytes), (0, bad.len() as u64 - 12));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 12);
        let lost = parent_dir(&path).join(kv_shared::repair::LOST_DIR);
        assert_eq!(std::fs::read(lost.join("000001.wal")).unwrap(), bad);
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
    fn records_come_with_their_offsets() {
        let (_dir, fs, path, wal) = new_log(WAL_KIND, &[b"abc"]);
        wal.append_parts(&[b"de", b"", b"fgh"]).unwrap();
        drop(wal);
        let bytes = std::fs::read(&path).unwrap();
        let mut seen = Vec::new();
        Wal::replay(&fs, &path, WAL_KIND, |record| {
            let at = record.payload_offset() as usize;
            assert_eq!(&bytes[at..at + record.payload.len()], record.payload);
            seen.push((record.offset, record.payload.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(12, b"abc".to_vec()), (23, b"defgh".to_vec())]);
    }

    #[test]
    fn a_kind_with_a_header_checksum() {
        const KIND: LogKind = LogKind::new(*b"TESTLOG!", 3)
            .with_header_crc()
            .with_max_payload(1000);
        let (_dir, fs, path, log) = new_log(KIND, &[b"edit"]);
        assert_eq!(log.size(), 16 + 8 + 4);
        assert!(matches!(
            log.append(&[0; 1001]),
            Err(Error::InvalidArgument(_))
        ));
        drop(log);
        let bytes = std::fs::read(&path).unwrap();
        // magic | version | CRC32 of the first 12 bytes, then the record.
        let mut header = b"TESTLOG!\x03\x00\x00\x00".to_vec();
        header.extend_from_slice(&crc32(&header).to_le_bytes());
        assert_eq!(bytes[..16], header[..]);
        assert_eq!(bytes.len(), 16 + 8 + 4);
        assert!(Wal::has_whole_header(&fs, &path, KIND).unwrap());
        assert!(!Wal::has_whole_header(&fs, &path, WAL_KIND).unwrap());
        assert!(Wal::holds_records(&fs, &path, KIND).unwrap());

        // `read_records` changes nothing: a torn tail is reported and left, a short header
        // is an empty log, a bad checksum is corruption, another version is refused.
        let mut torn = bytes.clone();
        torn.extend_from_slice(b"\x01\x02");
        std::fs::write(&path, &torn).unwrap();
        let mut got = Vec::new();
        let r = Wal::read_records(&fs, &path, KIND, collect(&mut got)).unwrap();
        assert_eq!(
            (got, r.records, r.torn_tail_bytes),
            (vec![b"edit".to_vec()], 1, 2)
        );
        assert_eq!(std::fs::read(&path).unwrap(), torn);
        std::fs::write(&path, &bytes[..14]).unwrap();
        let r = Wal::read_records(&fs, &path, KIND, |_| Ok(())).unwrap();
        assert_eq!((r.records, r.torn_tail_bytes), (0, 14));
        let mut bad_crc = bytes.clone();
        bad_crc[13] ^= 1;
        std::fs::write(&path, &bad_crc).unwrap();
        assert!(matches!(
            Wal::read_records(&fs, &path, KIND, |_| Ok(())),
            Err(Error::Corruption { offset: 12, .. })
        ));
        assert!(!Wal::has_whole_header(&fs, &path, KIND).unwrap());
        std::fs::write(&path, &bytes).unwrap();
        let other_version = LogKind { version: 2, ..KIND };
        assert!(matches!(
            Wal::read_records(&fs, &path, other_version, |_| Ok(())),
            Err(Error::FormatVersion { found: 3, .. })
        ));
        let dumped = dump(&bytes, KIND, "test log", |d, p| d.field(p, "edit")).unwrap();
        assert!(dumped.contains("header crc32 (ok)") && dumped.contains("edit"));
    }

    #[test]
    fn a_record_over_the_kind_limit_is_refused_on_reading() {
        const SMALL: LogKind = WAL_KIND.with_max_payload(4);
        let (_dir, fs, path, wal) = new_log(WAL_KIND, &[b"12345"]);
        drop(wal);
        assert!(matches!(
            Wal::replay(&fs, &path, SMALL, |_| Ok(())),
            Err(Error::Corruption { offset: 12, .. })
        ));
    }

    #[test]
    fn a_sealed_wal_must_be_whole_and_is_never_changed() {
        let (_dir, fs, path, wal) = new_log(WAL_KIND, &[]);
        assert!(
            !Wal::holds_records(&fs, &path, WAL_KIND).unwrap(),
            "a header alone"
        );
        for p in [&b"one"[..], b"two", b"three"] {
            wal.append(p).unwrap();
        }
        drop(wal);
        let whole = std::fs::read(&path).unwrap();
        assert!(Wal::holds_records(&fs, &path, WAL_KIND).unwrap());
        let mut seen = Vec::new();
        let n = Wal::replay_sealed(&fs, &path, WAL_KIND, collect(&mut seen)).unwrap();
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
                    Wal::replay_sealed(&fs, &path, WAL_KIND, |_| Ok(())),
                    Err(Error::Corruption { .. })
                ),
                "cut at {cut}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), &whole[..cut], "cut at {cut}");
            assert_eq!(
                Wal::holds_records(&fs, &path, WAL_KIND).unwrap(),
                cut >= WAL_HEADER_LEN + FRAME_HEADER_LEN + 3,
                "cut at {cut}"
            );
        }
        // A header and nothing else is whole: no record.
        std::fs::write(&path, &whole[..WAL_HEADER_LEN]).unwrap();
        assert_eq!(
            Wal::replay_sealed(&fs, &path, WAL_KIND, |_| Ok(())).unwrap(),
            0
        );
        // A damaged first record: not written to, as far as `holds_records` can tell.
        let mut bad = whole;
        bad[WAL_HEADER_LEN + FRAME_HEADER_LEN] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(!Wal::holds_records(&fs, &path, WAL_KIND).unwrap());
        assert!(Wal::written_past_header(&fs, &path, WAL_KIND).unwrap());
        std::fs::write(&path, &bad[..WAL_HEADER_LEN]).unwrap();
        assert!(!Wal::written_past_header(&fs, &path, WAL_KIND).unwrap());
    }

    #[test]
    fn dump_never_panics_on_any_prefix_or_flip() {
        for kind in [WAL_KIND, WAL_KIND.with_header_crc()] {
            let (_dir, _, path, _) = new_log(kind, &[b"abc", b"defgh"]);
            let bytes = std::fs::read(&path).unwrap();
            let show = |d: &mut Dump, p: &[u8]| d.field(p, "payload");
            for cut in 0..=bytes.len() {
                let _ = dump(&bytes[..cut], kind, "log", show);
            }
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 0xff;
                let _ = dump(&b, kind, "log", show);
            }
        }
        assert!(inspect_wal_with(b"nope", |_, _| ()).is_none());
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
        let wal = Wal::create(&fs, &path, WAL_KIND).unwrap();
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
