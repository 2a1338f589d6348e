//! The annotated dump of a data file, as `kv inspect data.log` prints it.
//!
//! Every field on its own line: offset, bytes, meaning. Checksums are recomputed and shown
//! as `ok` or `BAD`. A write batch record is shown op by op. A record with a bad checksum is
//! still shown field by field (if its lengths are the damaged part, what follows it is
//! misread, which is itself instructive); bytes at the end that cannot be a whole record
//! are shown as one field.
//!
//! The last lines say what `open` would do with the file, found by the same rule as
//! [`kv_shared::log_reader::read_newest_log`]: replay it whole, or cut its unsynced tail
//! (after copying the file into `lost/` when valid records follow the damage).
//!
//! [`structure`] describes a whole store directory as data ([`kv_shared::structure`]), for
//! `kv draw`: the data file's records in file order, each marked live when the index points
//! at it, and the index itself, rebuilt the way `open` rebuilds it.

use std::collections::HashSet;
use std::fmt::Display;
use std::path::Path;

use kv_shared::batch::{BatchOps, check_ops, dump_ops};
use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32};
use kv_shared::log_reader::{LogRecord, LogTail, read_newest_log};
use kv_shared::structure::{FileKind, Part, PartKind, Pointer, StoreFile, key_text, read_only_fs};
use kv_shared::{Engine, KeyRange, Result, Structure};

use crate::HashLog;
use crate::data_file::{FILE_HEADER_LEN, MAGIC, VERSION, check_header};
use crate::file_names::{DATA_FILE, DATA_FILE_TMP};
use crate::index::Index;
use crate::record::{
    BATCH, RECORD_HEADER_LEN, RecordFormat, Replayed, TOMBSTONE, decode, record_len,
};
use crate::recovery::replay;

/// Bytes of a key or value shown in a dump line.
const SHOWN: usize = 40;

/// The annotated dump of a data file, or `None` when `bytes` does not start with the
/// data file's magic. Never panics, whatever the bytes.
pub fn dump(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(MAGIC) {
        return None;
    }
    let mut d = Dump::new(format!("hashlog data file, {} bytes", bytes.len()));
    let header = &bytes[..bytes.len().min(FILE_HEADER_LEN as usize)];
    dump_header(&mut d, header);
    if let Err(e) = check_header(Path::new(DATA_FILE), header) {
        d.note(format!("open refuses this file: {e}"));
        return Some(d.finish());
    }

    let mut records = Records {
        d,
        summary: Summary::default(),
    };
    let mut pos = FILE_HEADER_LEN as usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        match whole_record_len(rest) {
            Ok(len) => {
                // All `len` bytes are there, so this cannot fail; if it somehow did, the
                // dump would only end that record early.
                let _ = records.record(&rest[..len]);
                pos += len;
            }
            Err(detail) => {
                records.d.section(format!(
                    "offset {pos}: {} bytes that are not a whole record",
                    rest.len()
                ));
                records.d.field(rest, detail);
                break;
            }
        }
    }
    let Records { mut d, summary } = records;
    d.note(summary.line());
    d.note(open_verdict(bytes));
    Some(d.finish())
}

/// Dumps the (possibly short) header field by field.
fn dump_header(d: &mut Dump, header: &[u8]) {
    d.section("file header");
    let mut r = ByteReader::new(header);
    let Ok(magic) = r.bytes(MAGIC.len(), "magic") else {
        return;
    };
    d.field(magic, format!("magic {}", quoted(magic, 8)));
    let Ok(version) = r.u32("version") else {
        d.field(&header[8..], "format version, cut short");
        return;
    };
    d.field(&version.to_le_bytes(), format!("format version {version}"));
    let Ok(stored) = r.u32("crc") else {
        d.field(&header[12..], "header checksum, cut short");
        return;
    };
    let verdict = crc_verdict(stored, crc32(&header[..12]));
    d.field(
        &stored.to_le_bytes(),
        format!("header crc32 {stored:#010x} {verdict}"),
    );
}

/// What the dump has seen, for its closing line.
#[derive(Default)]
struct Summary {
    records: u64,
    puts: u64,
    deletes: u64,
    batches: u64,
    batch_ops: u64,
    bad: u64,
    live: HashSet<Vec<u8>>,
}

impl Summary {
    /// A put (`is_put`) or delete of `key` in a record that checks out.
    fn apply(&mut self, key: &[u8], is_put: bool) {
        if is_put {
            self.live.insert(key.to_vec());
        } else {
            self.live.remove(key);
        }
    }

    fn line(&self) -> String {
        let batches = match self.batches {
            0 => String::new(),
            n => format!(", batches {n} with {} ops", self.batch_ops),
        };
        format!(
            "records: {} (puts {}, deletes {}{batches}, bad checksums {}); live keys: {}",
            self.records,
            self.puts,
            self.deletes,
            self.bad,
            self.live.len()
        )
    }
}

/// The length of the record at the start of `rest`, if all of it is there.
fn whole_record_len(rest: &[u8]) -> Result<usize, String> {
    if rest.len() < RECORD_HEADER_LEN {
        return Err(format!(
            "incomplete record header: {} of {RECORD_HEADER_LEN} bytes",
            rest.len()
        ));
    }
    let len = record_len(rest).map_err(|e| e.detail)?;
    if len > rest.len() {
        return Err(format!("incomplete record: {} of {len} bytes", rest.len()));
    }
    Ok(len)
}

/// The length of the record at the start of `rest`, if it is whole and valid.
fn valid_record_len(rest: &[u8]) -> Result<usize, String> {
    let len = whole_record_len(rest)?;
    decode(&rest[..len]).map_err(|e| e.detail)?;
    Ok(len)
}

/// The dump of the records, and what it has seen of them so far.
struct Records {
    d: Dump,
    summary: Summary,
}

impl Records {
    /// Dumps one record, `bytes` being exactly as long as its lengths say.
    fn record(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut r = ByteReader::new(bytes);
        let head = Head {
            stored_crc: r.u32("crc")?,
            key_len: r.u16("key length")?,
            value_len: r.u32("value length")?,
            actual_crc: crc32(&bytes[4..]),
        };
        if (BATCH..TOMBSTONE).contains(&head.value_len) {
            self.batch(&mut r, head)
        } else {
            self.put_or_delete(&mut r, head)
        }
    }

    /// Dumps a put or delete record, `r` being just past its value length field.
    fn put_or_delete(&mut self, r: &mut ByteReader<'_>, head: Head) -> Result<(), DecodeError> {
        let key = r.bytes(usize::from(head.key_len), "key")?;
        let is_delete = head.value_len == TOMBSTONE;
        let kind = if is_delete { "delete" } else { "put" };
        self.section(kind);
        let value_len = if is_delete {
            "value length: tombstone, no value follows".to_string()
        } else {
            format!("value length {}", head.value_len)
        };
        let d = &mut self.d;
        head.dump(d, format!("key length {}", head.key_len), value_len);
        d.field(key, format!("key {}", quoted(key, SHOWN)));
        if !is_delete {
            let value = r.bytes(head.value_len as usize, "value")?;
            d.field(value, format!("value {}", quoted(value, SHOWN)));
        }

        let summary = &mut self.summary;
        summary.records += 1;
        if head.stored_crc != head.actual_crc {
            summary.bad += 1;
            return Ok(());
        }
        if is_delete {
            summary.deletes += 1;
        } else {
            summary.puts += 1;
        }
        summary.apply(key, !is_delete);
        Ok(())
    }

    /// Dumps a write batch record, `r` being just past its value length field.
    fn batch(&mut self, r: &mut ByteReader<'_>, head: Head) -> Result<(), DecodeError> {
        let ops_len = head.value_len - BATCH;
        let count = r.u32("op count")?;
        let ops = r.bytes(ops_len as usize, "ops")?;
        self.section(format!("batch of {count} ops"));
        let d = &mut self.d;
        head.dump(
            d,
            format!("key length {}: a batch has no key of its own", head.key_len),
            format!("batch marker {BATCH:#010x} + ops length {ops_len}"),
        );
        d.field(&count.to_le_bytes(), format!("op count {count}"));
        dump_ops(d, ops, count);

        let summary = &mut self.summary;
        summary.records += 1;
        if head.stored_crc != head.actual_crc || count == 0 || check_ops(ops, count).is_err() {
            summary.bad += 1;
            return Ok(());
        }
        summary.batches += 1;
        summary.batch_ops += u64::from(count);
        for op in BatchOps::new(ops, count) {
            summary.apply(op.key, op.value.is_some());
        }
        Ok(())
    }

    /// The heading of the record about to be dumped: its number, offset and `kind`.
    fn section(&mut self, kind: impl Display) {
        let (number, at) = (self.summary.records, self.d.pos());
        self.d
            .section(format!("record {number} at offset {at}: {kind}"));
    }
}

/// The first ten bytes of a record, and the checksum recomputed over the whole record.
#[derive(Clone, Copy)]
struct Head {
    stored_crc: u32,
    actual_crc: u32,
    key_len: u16,
    value_len: u32,
}

impl Head {
    /// Dumps the three fields, with what the key and value length fields mean.
    fn dump(self, d: &mut Dump, key_len: impl Display, value_len: impl Display) {
        let verdict = crc_verdict(self.stored_crc, self.actual_crc);
        let crc = format!("crc32 {:#010x} {verdict}", self.stored_crc);
        d.field(&self.stored_crc.to_le_bytes(), crc);
        d.field(&self.key_len.to_le_bytes(), key_len);
        d.field(&self.value_len.to_le_bytes(), value_len);
    }
}

/// What `open` would do with the records of `bytes` (whose header is valid): the rule of
/// `read_newest_log` (the data file is the store's newest log), applied to the bytes in
/// memory.
fn open_verdict(bytes: &[u8]) -> String {
    let mut pos = FILE_HEADER_LEN as usize;
    let mut replayed = 0;
    while pos < bytes.len() {
        match valid_record_len(&bytes[pos..]) {
            Ok(len) => {
                replayed += 1;
                pos += len;
            }
            Err(detail) => {
                let later = (pos + 1..bytes.len()).find(|&p| valid_record_len(&bytes[p..]).is_ok());
                return match later {
                    Some(later) => format!(
                        "open replays {replayed} records, copies the file into lost/, then cuts \
                         the last {} bytes (from offset {pos}) off as an unsynced tail with a \
                         hole: {detail} (a valid record follows at offset {later})",
                        bytes.len() - pos
                    ),
                    None => format!(
                        "open replays {replayed} records, then cuts the last {} bytes \
                         (from offset {pos}) off as a torn tail: {detail}",
                        bytes.len() - pos
                    ),
                };
            }
        }
    }
    format!("open replays all {replayed} records: the file ends cleanly")
}

fn crc_verdict(stored: u32, actual: u32) -> String {
    if stored == actual {
        "ok".to_string()
    } else {
        format!("BAD (computed {actual:#010x})")
    }
}

/// The structure of the store in `dir` ([`kv_shared::structure`]): the data file's records
/// in file order, each marked live when the index points at it, and the index that opening
/// the store would rebuild. Reads only and takes no lock, so it works on a closed store and
/// on one open elsewhere (whose last record may be in flight: it shows as unreadable bytes).
///
/// # Errors
/// As [`Structure::read_dir`] for a directory that is not a hashlog store;
/// [`kv_shared::Error::Corruption`] for a damaged header, or a damaged record followed by a
/// valid one; [`kv_shared::Error::Io`].
pub fn structure(dir: &Path) -> Result<Structure> {
    let mut s = Structure::read_dir(dir, HashLog::NAME, VERSION)?;
    let mut index = Index::new();
    s.describe_each(|file| match file.name.as_str() {
        DATA_FILE => describe_log(&dir.join(DATA_FILE), file, &mut index),
        DATA_FILE_TMP => {
            file.kind = FileKind::Temp;
            Ok(())
        }
        _ => Ok(()),
    })?;
    for (key, location) in index.sorted_range(&KeyRange::all()) {
        s.push_pointer(Pointer {
            key: key_text(&key),
            file: DATA_FILE.to_string(),
            offset: location.offset,
            bytes: location.live_bytes(key.len()),
        });
    }
    let pointed: HashSet<u64> = s.index.iter().map(|p| p.offset).collect();
    if let Some(log) = s.files.iter_mut().find(|f| f.kind == FileKind::Log) {
        for part in log.parts.iter_mut().filter(|p| p.live.is_some()) {
            part.live = Some(pointed.contains(&part.offset));
        }
    }
    Ok(s)
}

/// Reads the data file at `path` into `file`'s parts (header, records, any unreadable
/// tail) and replays its records into `index`.
fn describe_log(path: &Path, file: &mut StoreFile, index: &mut Index) -> Result<()> {
    file.kind = FileKind::Log;
    let log = read_only_fs().open(path)?;
    file.bytes = log.len()?;
    let header_len = file.bytes.min(FILE_HEADER_LEN) as usize;
    check_header(path, &log.read_vec_at(0, header_len)?)?;
    file.push_part(Part::new(PartKind::Header, 0, FILE_HEADER_LEN));
    let mut records = 0;
    let end = read_newest_log::<RecordFormat>(&log, FILE_HEADER_LEN, |entry| {
        records += 1;
        file.push_part(record_part(&entry));
        replay(index, entry);
        Ok(())
    })?;
    if let LogTail::Torn { offset, bytes, .. } = end.tail {
        file.push_part(Part::new(PartKind::Unreadable, offset, bytes));
    }
    file.entries = Some(records);
    file.set_live(index.live_record_bytes(), end.valid_len - FILE_HEADER_LEN);
    Ok(())
}

/// The part a record makes: its kind, place and keys (liveness filled in later).
fn record_part(entry: &LogRecord<Replayed>) -> Part {
    let at = |kind| Part::new(kind, entry.offset, entry.len);
    let mut part = match &entry.record {
        Replayed::Put { key, .. } => at(PartKind::Put).with_keys([key.as_slice()]),
        Replayed::Delete { key } => at(PartKind::Delete).with_keys([key.as_slice()]),
        Replayed::Batch { count, ops } => {
            let mut part =
                at(PartKind::Batch).with_keys(BatchOps::new(ops, *count).map(|op| op.key));
            part.entries = Some(u64::from(*count));
            part
        }
    };
    part.live = Some(false);
    part
}
