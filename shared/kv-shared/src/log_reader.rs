//! Reading an append-only log of records, telling a torn tail from corruption.
//!
//! Stage 1's data file, stage 2's segments and the write-ahead logs of stages 3 and 4 are
//! all logs: records appended one after another, each carrying its own CRC32. After a crash
//! the end of a log can hold a record that was only partly written. That is expected and
//! harmless: the write was never acknowledged as durable, so the reader drops it. A bad
//! record with good records *after* it is different: bytes that were once written whole
//! have changed, and silently skipping them would lose acknowledged data. So:
//!
//! * a record that is cut short, fails its checksum, or has an impossible length, with **no
//!   valid record anywhere after it**, is a **torn tail**: reading stops there and reports
//!   [`LogTail::Torn`], so the caller can truncate the file to [`LogEnd::valid_len`];
//! * the same damage **followed by any valid record** is [`crate::Error::Corruption`] naming
//!   the file and the offset of the first bad byte, in any log but the newest.
//!
//! ## The newest log: an unsynced tail may have holes
//!
//! A disk does not write a file's unsynced pages back in order: after a power loss a later
//! page may be on disk while an earlier one is not (it reads as zeros, or as what it held
//! before). So the *newest* log of a store (the one still being appended to when the power
//! went) may legitimately end with a bad record **followed by valid ones**, all of them
//! written after the last sync. None of them was ever promised durable, and keeping the
//! records after the hole would break the rule that a recovered store holds a *prefix* of
//! its writes. [`read_newest_log`] therefore reads the newest log by the rule RocksDB calls
//! point-in-time recovery: **everything from the first bad record on is an unsynced tail**;
//! the valid prefix is kept, the store opens. [`LogTail::Torn::valid_after`] says whether
//! valid records followed the damage; when they did, [`cut_unsynced_tail`] first copies the
//! whole file into the store's `lost/` directory ([`crate::repair::copy_to_lost`]), so that
//! if the damage was not a power loss after all nothing is destroyed, and only then cuts it.
//!
//! Older logs were synced whole before the next log was started (every engine must make
//! sure of that, or the prefix rule breaks across logs), so damage followed by valid records
//! in them cannot come from a power loss: [`read_log`] keeps calling it corruption.
//!
//! Finding "any valid record after" means trying every later offset as a record start. That
//! only happens on the error path and checks lengths before checksums, so it is cheap.
//!
//! A [`LogFormat`] says how long a record is from its first few bytes and how to decode it;
//! the reader never allocates more than a record's bounded length, and reads the file in
//! windows of [`WINDOW`] bytes.

use std::path::Path;

use crate::framing::DecodeError;
use crate::fs::{FileRef, Fs};
use crate::{Error, Result};

/// How many bytes the reader fetches from the file at a time.
pub const WINDOW: usize = 1 << 20;

/// One log record format.
pub trait LogFormat {
    /// The decoded record.
    type Record;
    /// Bytes needed before [`LogFormat::record_len`] can tell a record's length.
    const HEADER_LEN: usize;
    /// The whole record's length (header included) from its first [`Self::HEADER_LEN`] bytes.
    ///
    /// # Errors
    /// [`DecodeError`] when a length field is over its documented limit.
    fn record_len(header: &[u8]) -> Result<usize, DecodeError>;
    /// Decodes one whole record, verifying its checksum.
    ///
    /// # Errors
    /// [`DecodeError`] on a checksum mismatch or malformed field.
    fn decode(record: &[u8]) -> Result<Self::Record, DecodeError>;
}

/// A decoded record and where it sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord<R> {
    /// Offset of the record's first byte.
    pub offset: u64,
    /// The record's length in bytes.
    pub len: u64,
    /// The decoded record.
    pub record: R,
}

/// How a log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTail {
    /// The last record ended exactly at the end of the file.
    Clean,
    /// The bytes from `offset` to the end do not form a valid record and none follows.
    Torn {
        /// Offset of the first byte of the torn record.
        offset: u64,
        /// How many bytes the torn tail holds.
        bytes: u64,
        /// What was wrong with it.
        detail: String,
        /// The offset of the first valid record found after it: only [`read_newest_log`]
        /// reports a tail with one (an unsynced tail with holes); `None` when no valid
        /// record follows.
        valid_after: Option<u64>,
    },
}

/// Where the valid part of a log ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEnd {
    /// Length of the valid prefix: the offset just past the last valid record.
    pub valid_len: u64,
    /// Whether anything followed it.
    pub tail: LogTail,
}

/// A window over a file, refilled as the reader moves on.
struct Window<'a> {
    file: &'a FileRef,
    file_len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> Window<'a> {
    /// The bytes `[pos, pos + n)`; the caller has checked `pos + n <= file_len`.
    fn get(&mut self, pos: u64, n: usize) -> Result<&[u8]> {
        let end = self.start + self.buf.len() as u64;
        if pos < self.start || pos + n as u64 > end {
            let len = (n.max(WINDOW) as u64).min(self.file_len - pos) as usize;
            self.buf = self.file.read_vec_at(pos, len)?;
            self.start = pos;
        }
        let from = (pos - self.start) as usize;
        Ok(&self.buf[from..from + n])
    }

    /// Decodes the record at `pos`: `Ok(Ok(..))` for a valid one, `Ok(Err(..))` for a bad or
    /// incomplete one.
    fn record_at<F: LogFormat>(
        &mut self,
        pos: u64,
    ) -> Result<std::result::Result<(F::Record, u64), String>> {
        let remaining = self.file_len - pos;
        if remaining < F::HEADER_LEN as u64 {
            return Ok(Err(format!(
                "incomplete header: {remaining} of {} bytes",
                F::HEADER_LEN
            )));
        }
        let len = match F::record_len(self.get(pos, F::HEADER_LEN)?) {
            Ok(len) => len,
            Err(e) => return Ok(Err(e.detail)),
        };
        if len as u64 > remaining {
            return Ok(Err(format!(
                "incomplete record: {remaining} of {len} bytes"
            )));
        }
        Ok(F::decode(self.get(pos, len)?)
            .map(|record| (record, len as u64))
            .map_err(|e| e.detail))
    }
}

/// Reads the records of `file`, an older log (one synced whole), from byte `start`, calling
/// `each` for every valid one in order.
///
/// # Errors
/// [`Error::Corruption`] when a bad record has a valid record somewhere after it; any error
/// `each` returns; [`Error::Io`].
pub fn read_log<F: LogFormat>(
    file: &FileRef,
    start: u64,
    each: impl FnMut(LogRecord<F::Record>) -> Result<()>,
) -> Result<LogEnd> {
    read::<F>(file, start, false, each)
}

/// Reads the records of `file`, the newest log of its store, from byte `start`, calling
/// `each` for every valid one in order up to the first bad record: everything from there on
/// is its unsynced tail (see the module documentation), reported as [`LogTail::Torn`] with
/// `valid_after` set when valid records follow the damage.
///
/// # Errors
/// Any error `each` returns; [`Error::Io`].
pub fn read_newest_log<F: LogFormat>(
    file: &FileRef,
    start: u64,
    each: impl FnMut(LogRecord<F::Record>) -> Result<()>,
) -> Result<LogEnd> {
    read::<F>(file, start, true, each)
}

/// Cuts the unsynced tail `end` reports off `file`, the newest log of the store in `dir`,
/// and syncs the cut; returns how many bytes it dropped. When valid records followed the
/// damage, the whole file is first copied into `dir/lost/` under its name, and the copy
/// synced, so that nothing once written is destroyed.
///
/// # Errors
/// [`Error::Io`].
pub fn cut_unsynced_tail(fs: &Fs, dir: &Path, file: &FileRef, end: &LogEnd) -> Result<u64> {
    let LogTail::Torn {
        bytes, valid_after, ..
    } = &end.tail
    else {
        return Ok(0);
    };
    if valid_after.is_some() {
        let name = file
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::InvalidArgument(format!("{} names no file", file.path().display()))
            })?;
        crate::repair::copy_to_lost(fs, dir, &name)?;
    }
    file.truncate(end.valid_len)?;
    file.sync()?;
    Ok(*bytes)
}

/// [`read_log`] and [`read_newest_log`]: `newest` says which.
fn read<F: LogFormat>(
    file: &FileRef,
    start: u64,
    newest: bool,
    mut each: impl FnMut(LogRecord<F::Record>) -> Result<()>,
) -> Result<LogEnd> {
    let file_len = file.len()?;
    let mut window = Window {
        file,
        file_len,
        start: 0,
        buf: Vec::new(),
    };
    let mut pos = start;
    while pos < file_len {
        match window.record_at::<F>(pos)? {
            Ok((record, len)) => {
                each(LogRecord {
                    offset: pos,
                    len,
                    record,
                })?;
                pos += len;
            }
            Err(detail) => {
                let mut valid_after = None;
                for later in pos + 1..file_len {
                    if window.record_at::<F>(later)?.is_ok() {
                        valid_after = Some(later);
                        break;
                    }
                }
                if let (Some(later), false) = (valid_after, newest) {
                    return Err(Error::corruption(
                        file.path(),
                        pos,
                        format!("{detail} (a valid record follows at offset {later})"),
                    ));
                }
                return Ok(LogEnd {
                    valid_len: pos,
                    tail: LogTail::Torn {
                        offset: pos,
                        bytes: file_len - pos,
                        detail,
                        valid_after,
                    },
                });
            }
        }
    }
    Ok(LogEnd {
        valid_len: pos,
        tail: LogTail::Clean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{ByteReader, crc32};
    use crate::fs::Fs;

    /// A toy format for the tests: `crc32 u32 | len u8 | payload`.
    struct Toy;

    impl LogFormat for Toy {
        type Record = Vec<u8>;
        const HEADER_LEN: usize = 5;
        fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
            Ok(5 + header[4] as usize)
        }
        fn decode(record: &[u8]) -> Result<Vec<u8>, DecodeError> {
            let mut r = ByteReader::new(record);
            let crc = r.u32("crc")?;
            let len = r.u8("len")? as usize;
            let payload = r.bytes(len, "payload")?;
            if crc32(payload) != crc {
                return Err(DecodeError::new(0, "checksum mismatch"));
            }
            Ok(payload.to_vec())
        }
    }

    fn toy(payload: &[u8]) -> Vec<u8> {
        let mut out = crc32(payload).to_le_bytes().to_vec();
        out.push(payload.len() as u8);
        out.extend_from_slice(payload);
        out
    }

    fn read(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, LogEnd)> {
        let dir = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let file = fs.create(&dir.path().join("log")).unwrap();
        file.append(bytes).unwrap();
        let mut out = Vec::new();
        let end = read_log::<Toy>(&file, 0, |r| {
            out.push(r.record);
            Ok(())
        })?;
        Ok((out, end))
    }

    #[test]
    fn every_truncation_is_a_torn_tail_of_a_prefix() {
        let log: Vec<u8> = [toy(b"one"), toy(b"two"), toy(b"three")].concat();
        let ends = [8u64, 16, 26];
        for cut in 0..=log.len() {
            let (records, end) = read(&log[..cut]).unwrap();
            let whole = ends.iter().filter(|&&e| e <= cut as u64).count();
            assert_eq!(records.len(), whole, "cut at {cut}");
            assert_eq!(end.valid_len, if whole == 0 { 0 } else { ends[whole - 1] });
            assert_eq!(end.tail == LogTail::Clean, end.valid_len == cut as u64);
        }
    }

    #[test]
    fn a_bad_record_before_a_good_one_is_corruption() {
        let mut log: Vec<u8> = [toy(b"one"), toy(b"two"), toy(b"three")].concat();
        log[10] ^= 0x40; // inside "two"
        match read(&log) {
            Err(Error::Corruption { offset, .. }) => assert_eq!(offset, 8),
            other => panic!("expected corruption, got {other:?}"),
        }
        // The same damage in the last record is a torn tail.
        let mut log: Vec<u8> = [toy(b"one"), toy(b"two")].concat();
        log[12] ^= 0x01;
        let (records, end) = read(&log).unwrap();
        assert_eq!(records, vec![b"one".to_vec()]);
        assert!(matches!(
            end.tail,
            LogTail::Torn {
                offset: 8,
                bytes: 8,
                ..
            }
        ));
    }

    #[test]
    fn the_newest_log_keeps_the_prefix_before_a_hole_and_copies_the_rest_to_lost() {
        let mut log: Vec<u8> = [toy(b"one"), toy(b"two"), toy(b"three")].concat();
        log[10] ^= 0x40; // inside "two": a hole with "three" after it
        let dir = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let file = fs.create(&dir.path().join("log")).unwrap();
        file.append(&log).unwrap();
        let mut records = Vec::new();
        let end = read_newest_log::<Toy>(&file, 0, |r| {
            records.push(r.record);
            Ok(())
        })
        .unwrap();
        assert_eq!(records, vec![b"one".to_vec()]);
        assert_eq!(end.valid_len, 8);
        assert!(matches!(
            end.tail,
            LogTail::Torn {
                offset: 8,
                valid_after: Some(16),
                ..
            }
        ));
        let cut = cut_unsynced_tail(&fs, dir.path(), &file, &end).unwrap();
        assert_eq!(cut, log.len() as u64 - 8);
        assert_eq!(file.len().unwrap(), 8);
        let lost = dir.path().join(crate::repair::LOST_DIR).join("log");
        assert_eq!(std::fs::read(lost).unwrap(), log);

        // A plain torn tail is cut with no copy.
        file.append(&toy(b"four")[..5]).unwrap();
        let end = read_newest_log::<Toy>(&file, 0, |_| Ok(())).unwrap();
        assert!(matches!(
            end.tail,
            LogTail::Torn {
                valid_after: None,
                ..
            }
        ));
        assert_eq!(cut_unsynced_tail(&fs, dir.path(), &file, &end).unwrap(), 5);
        let copies = fs.list(&dir.path().join(crate::repair::LOST_DIR)).unwrap();
        assert_eq!(copies, ["log"]);
    }
}
