//! The annotated dump of a data file, as `kv inspect data.log` prints it.
//!
//! Every field on its own line: offset, bytes, meaning. Checksums are recomputed and shown
//! as `ok` or `BAD`. A write batch record is shown op by op. A record with a bad checksum is
//! still shown field by field (if its lengths are the damaged part, what follows it is
//! misread, which is itself instructive); bytes at the end that cannot be a whole record
//! are shown as one field.
//!
//! The last lines say what `open` would do with the file, found by the same rule as
//! [`kv_shared::log_reader::read_log`]: replay it whole, cut a torn tail, or refuse it.

use std::collections::HashSet;
use std::path::Path;

use kv_shared::batch::{BatchOps, check_ops, dump_ops};
use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32};

use crate::data_file::{FILE_HEADER_LEN, MAGIC, check_header};
use crate::file_names::DATA_FILE;
use crate::record::{BATCH, RECORD_HEADER_LEN, TOMBSTONE, decode, record_len};

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

    let mut summary = Summary::default();
    let mut pos = FILE_HEADER_LEN as usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        match whole_record_len(rest) {
            Ok(len) => {
                // All `len` bytes are there, so this cannot fail; if it somehow did, the
                // dump would only end that record early.
                let _ = dump_record(&mut d, &rest[..len], &mut summary);
                pos += len;
            }
            Err(detail) => {
                d.section(format!(
                    "offset {pos}: {} bytes that are not a whole record",
                    rest.len()
                ));
                d.field(rest, detail);
                break;
            }
        }
    }
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

/// Dumps one record, `bytes` being exactly as long as its lengths say.
fn dump_record(d: &mut Dump, bytes: &[u8], summary: &mut Summary) -> Result<(), DecodeError> {
    let mut r = ByteReader::new(bytes);
    let stored = r.u32("crc")?;
    let key_len = r.u16("key length")?;
    let value_len = r.u32("value length")?;
    let actual = crc32(&bytes[4..]);
    let crc = Crc { stored, actual };
    if (BATCH..TOMBSTONE).contains(&value_len) {
        dump_batch(d, &mut r, crc, key_len, value_len, summary)
    } else {
        dump_put_or_delete(d, &mut r, crc, key_len, value_len, summary)
    }
}

/// A record's stored and recomputed checksums.
#[derive(Clone, Copy)]
struct Crc {
    stored: u32,
    actual: u32,
}

impl Crc {
    /// The checksum's line.
    fn field(self, d: &mut Dump) {
        let verdict = crc_verdict(self.stored, self.actual);
        d.field(
            &self.stored.to_le_bytes(),
            format!("crc32 {:#010x} {verdict}", self.stored),
        );
    }
}

/// Dumps a put or delete record, `r` being just past its value length field.
fn dump_put_or_delete(
    d: &mut Dump,
    r: &mut ByteReader<'_>,
    crc: Crc,
    key_len: u16,
    value_len: u32,
    summary: &mut Summary,
) -> Result<(), DecodeError> {
    let key = r.bytes(usize::from(key_len), "key")?;
    let is_delete = value_len == TOMBSTONE;
    let kind = if is_delete { "delete" } else { "put" };
    let at = d.pos();
    d.section(format!("record {} at offset {at}: {kind}", summary.records));
    crc.field(d);
    d.field(&key_len.to_le_bytes(), format!("key length {key_len}"));
    if is_delete {
        d.field(
            &value_len.to_le_bytes(),
            "value length: tombstone, no value follows",
        );
    } else {
        d.field(
            &value_len.to_le_bytes(),
            format!("value length {value_len}"),
        );
    }
    d.field(key, format!("key {}", quoted(key, SHOWN)));
    if !is_delete {
        let value = r.bytes(value_len as usize, "value")?;
        d.field(value, format!("value {}", quoted(value, SHOWN)));
    }

    summary.records += 1;
    if crc.stored != crc.actual {
        summary.bad += 1;
    } else if is_delete {
        summary.deletes += 1;
        summary.live.remove(key);
    } else {
        summary.puts += 1;
        summary.live.insert(key.to_vec());
    }
    Ok(())
}

/// Dumps a write batch record, `r` being just past its value length field.
fn dump_batch(
    d: &mut Dump,
    r: &mut ByteReader<'_>,
    crc: Crc,
    key_len: u16,
    value_len: u32,
    summary: &mut Summary,
) -> Result<(), DecodeError> {
    let ops_len = value_len - BATCH;
    let count = r.u32("op count")?;
    let ops = r.bytes(ops_len as usize, "ops")?;
    let at = d.pos();
    d.section(format!(
        "record {} at offset {at}: batch of {count} ops",
        summary.records
    ));
    crc.field(d);
    d.field(
        &key_len.to_le_bytes(),
        format!("key length {key_len}: a batch has no key of its own"),
    );
    d.field(
        &value_len.to_le_bytes(),
        format!("batch marker {BATCH:#010x} + ops length {ops_len}"),
    );
    d.field(&count.to_le_bytes(), format!("op count {count}"));
    dump_ops(d, ops, count);

    summary.records += 1;
    let valid = crc.stored == crc.actual && count > 0 && check_ops(ops, count).is_ok();
    if !valid {
        summary.bad += 1;
        return Ok(());
    }
    summary.batches += 1;
    summary.batch_ops += u64::from(count);
    for op in BatchOps::new(ops, count) {
        if op.value.is_some() {
            summary.live.insert(op.key.to_vec());
        } else {
            summary.live.remove(op.key);
        }
    }
    Ok(())
}

/// What `open` would do with the records of `bytes` (whose header is valid): the rule of
/// `read_log`, applied to the bytes in memory.
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
                        "open refuses this file: corruption at offset {pos}, {detail} \
                         (a valid record follows at offset {later})"
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
