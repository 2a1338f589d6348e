//! A record log: a file of CRC-framed payloads after a magic header. The manifest is one.
//!
//! (Stage 3's WAL, which stage 4 reuses, is the same idea with its own header; the manifest
//! gets its own log so that its header carries a checksum and its own magic.)
//!
//! The log knows nothing of what its payloads mean; the manifest ([`crate::manifest`]) puts
//! a postcard-encoded [`crate::manifest::VersionEdit`] in each record. Every record is
//! appended with one write call, so a crash can only leave a *torn tail*, which
//! [`kv_shared::log_reader::read_log`] tells apart from real corruption.
//!
//! ## Format
//!
//! Header, 16 bytes, once at offset 0:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic (each log kind has its own, e.g. `KVLSMMAN` for the manifest) |
//! | 8 | 4 | format version, `u32` LE |
//! | 12 | 4 | CRC32 of bytes 0..12, `u32` LE |
//!
//! Then records, one after another:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of the length field and the payload, `u32` LE |
//! | 4 | 4 | payload length `n`, `u32` LE, at most [`MAX_RECORD_LEN`] |
//! | 8 | n | payload |
//!
//! A file shorter than its header was cut while being created: it holds no records.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32, crc32_parts};
use kv_shared::log_reader::{LogFormat, LogTail, read_log};
use kv_shared::{Error, FileRef, Fs, Result};

/// Bytes of the header.
pub const HEADER_LEN: u64 = 16;
/// Bytes before each record's payload.
pub const RECORD_HEADER_LEN: usize = 8;
/// Longest payload a record may hold (a bound for the reader, far above any real edit).
pub const MAX_RECORD_LEN: usize = 256 << 20;

/// An open record log, appended to by one writer at a time.
#[derive(Debug)]
pub struct RecordLog {
    file: FileRef,
    size: AtomicU64,
}

/// What reading a record log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    /// Valid records read.
    pub records: u64,
    /// Bytes after the last valid record that were a torn tail (0 for a clean log).
    pub torn_tail_bytes: u64,
}

impl RecordLog {
    /// Creates the log at `path` (replacing any file there) and writes its header.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn create(fs: &Fs, path: &Path, magic: &[u8; 8], version: u32) -> Result<RecordLog> {
        let file = fs.create(path)?;
        let header = header(magic, version);
        file.append(&header)?;
        Ok(RecordLog {
            file,
            size: AtomicU64::new(HEADER_LEN),
        })
    }

    /// Appends one record, with one write call.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a payload over [`MAX_RECORD_LEN`]; [`Error::Io`].
    pub fn append(&self, payload: &[u8]) -> Result<()> {
        let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
        record.extend_from_slice(&encode_record_header(payload)?);
        record.extend_from_slice(payload);
        self.file.append(&record)?;
        self.size.fetch_add(record.len() as u64, Relaxed);
        Ok(())
    }

    /// Makes every appended record durable.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn sync(&self) -> Result<()> {
        self.file.sync()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Bytes written to the file so far, header included.
    pub fn size(&self) -> u64 {
        self.size.load(Relaxed)
    }
}

/// The 8-byte record header (checksum and length) of `payload`.
///
/// # Errors
/// [`Error::InvalidArgument`] for a payload over [`MAX_RECORD_LEN`].
pub fn encode_record_header(payload: &[u8]) -> Result<[u8; RECORD_HEADER_LEN]> {
    if payload.len() > MAX_RECORD_LEN {
        return Err(Error::InvalidArgument(format!(
            "log record of {} bytes is over the limit of {MAX_RECORD_LEN}",
            payload.len()
        )));
    }
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32_parts(&[&len, payload]);
    let mut out = [0; RECORD_HEADER_LEN];
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out[4..].copy_from_slice(&len);
    Ok(out)
}

fn header(magic: &[u8; 8], version: u32) -> [u8; HEADER_LEN as usize] {
    let mut out = [0; HEADER_LEN as usize];
    out[..8].copy_from_slice(magic);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc32(&out[..12]);
    out[12..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a header: `Ok(version)` when it carries `magic` and a good checksum.
fn check_header(bytes: &[u8], magic: &[u8; 8]) -> Result<u32, DecodeError> {
    let mut r = ByteReader::new(bytes);
    if r.bytes(8, "magic")? != magic {
        return Err(DecodeError::new(
            0,
            format!("bad magic, expected {}", quoted(magic, 8)),
        ));
    }
    let version = r.u32("format version")?;
    let crc = r.u32("header checksum")?;
    if crc != crc32(&bytes[..12]) {
        return Err(DecodeError::new(12, "header checksum mismatch"));
    }
    Ok(version)
}

/// The record framing, for [`read_log`].
struct Framing;

impl LogFormat for Framing {
    type Record = Vec<u8>;
    const HEADER_LEN: usize = RECORD_HEADER_LEN;

    fn record_len(header: &[u8]) -> Result<usize, DecodeError> {
        let mut r = ByteReader::new(header);
        r.u32("checksum")?;
        let len = r.u32("payload length")? as usize;
        if len > MAX_RECORD_LEN {
            return Err(DecodeError::new(
                4,
                format!("payload length {len} is over the limit"),
            ));
        }
        Ok(RECORD_HEADER_LEN + len)
    }

    fn decode(record: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut r = ByteReader::new(record);
        let crc = r.u32("checksum")?;
        let len = r.u32("payload length")?;
        let len = r.check_len(len.into(), MAX_RECORD_LEN, "payload length")?;
        let payload = r.bytes(len, "payload")?;
        if crc != crc32_parts(&[&record[4..8], payload]) {
            return Err(DecodeError::new(0, "record checksum mismatch"));
        }
        Ok(payload.to_vec())
    }
}

/// Reads every record of the log at `path`, calling `each(offset, payload)` in order.
///
/// A torn tail (a record cut short by a crash, with nothing valid after it) ends the log
/// quietly and is reported in the summary; the caller decides whether to cut it off.
///
/// # Errors
/// [`Error::Corruption`] for a bad header or a bad record followed by a good one;
/// [`Error::FormatVersion`] for another version; whatever `each` returns; [`Error::Io`].
pub fn read_records(
    fs: &Fs,
    path: &Path,
    magic: &[u8; 8],
    version: u32,
    mut each: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<LogSummary> {
    let file = fs.open(path)?;
    let len = file.len()?;
    if len < HEADER_LEN {
        return Ok(LogSummary {
            records: 0,
            torn_tail_bytes: len,
        });
    }
    let head = file.read_vec_at(0, HEADER_LEN as usize)?;
    let found = check_header(&head, magic).map_err(|e| e.into_corruption(path, 0))?;
    if found != version {
        return Err(Error::FormatVersion {
            file: path.to_path_buf(),
            found,
            supported: version,
        });
    }
    let mut records = 0;
    let end = read_log::<Framing>(&file, HEADER_LEN, |record| {
        records += 1;
        each(record.offset, &record.record)
    })?;
    let torn_tail_bytes = match end.tail {
        LogTail::Clean => 0,
        LogTail::Torn { bytes, .. } => bytes,
    };
    Ok(LogSummary {
        records,
        torn_tail_bytes,
    })
}

/// The annotated dump of a record log whose payloads `describe` explains (one field per
/// payload), or `None` when `bytes` does not start with `magic`.
pub fn dump(
    bytes: &[u8],
    magic: &[u8; 8],
    title: &str,
    mut describe: impl FnMut(&[u8]) -> String,
) -> Option<String> {
    if !bytes.starts_with(magic) {
        return None;
    }
    let mut d = Dump::new(format!("{title} ({} bytes)", bytes.len()));
    if bytes.len() < HEADER_LEN as usize {
        d.field(bytes, "incomplete header (a file cut while being created)");
        return Some(d.finish());
    }
    d.field(&bytes[..8], format!("magic {}", quoted(magic, 8)));
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    d.field(&bytes[8..12], format!("format version {version}"));
    let ok = check_header(&bytes[..HEADER_LEN as usize], magic).is_ok();
    d.field(
        &bytes[12..16],
        format!("header crc32 ({})", if ok { "ok" } else { "BAD" }),
    );
    let mut pos = HEADER_LEN as usize;
    let mut index = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let len = match Framing::record_len(rest) {
            Ok(len) if len <= rest.len() => len,
            _ => {
                d.field(rest, "torn tail: an incomplete record");
                break;
            }
        };
        d.section(format!("record {index}"));
        let valid = Framing::decode(&rest[..len]).is_ok();
        d.field(
            &rest[..4],
            format!("crc32 ({})", if valid { "ok" } else { "BAD" }),
        );
        d.field(
            &rest[4..8],
            format!("payload length {}", len - RECORD_HEADER_LEN),
        );
        d.field(&rest[8..len], describe(&rest[8..len]));
        pos += len;
        index += 1;
    }
    Some(d.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8; 8] = b"TESTLOG!";

    fn read_all(fs: &Fs, path: &Path) -> Result<(Vec<Vec<u8>>, LogSummary)> {
        let mut out = Vec::new();
        let summary = read_records(fs, path, MAGIC, 1, |_, p| {
            out.push(p.to_vec());
            Ok(())
        })?;
        Ok((out, summary))
    }

    #[test]
    fn records_round_trip_and_every_cut_is_a_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let path = tmp.path().join("log");
        let log = RecordLog::create(&fs, &path, MAGIC, 1).unwrap();
        let payloads: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![7; 300]];
        for p in &payloads {
            log.append(p).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, log.size());
        let (got, summary) = read_all(&fs, &path).unwrap();
        assert_eq!(got, payloads);
        assert_eq!(summary.torn_tail_bytes, 0);
        for cut in 0..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let (got, _) = read_all(&fs, &path).unwrap();
            assert_eq!(got[..], payloads[..got.len()], "cut at {cut}");
        }
        // A flipped byte in the first record, with good records after it, is corruption.
        let mut bad = bytes.clone();
        bad[HEADER_LEN as usize + 9] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            read_all(&fs, &path),
            Err(Error::Corruption { .. })
        ));
        let mut wrong = bytes;
        wrong[0] = b'X';
        std::fs::write(&path, &wrong).unwrap();
        assert!(matches!(
            read_all(&fs, &path),
            Err(Error::Corruption { .. })
        ));
    }
}
