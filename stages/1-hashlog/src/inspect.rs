//! The annotated dump of a data file, as `kv inspect data.log` prints it.
//!
//! Every field on its own line: offset, bytes, meaning. Checksums are recomputed and shown
//! as `ok` or `BAD`. A record whose checksum is bad is still shown field by field (its
//! lengths may be the damaged part, so what follows it may be misread); bytes at the end
//! that cannot be a whole record are shown as one field and named. The dump is for reading,
//! not for recovery: it never stops at damage that [`crate::recovery`] would refuse.

use std::collections::HashSet;

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32};

use crate::data_file::{FILE_HEADER_LEN, MAGIC, VERSION};
use crate::record::{RECORD_HEADER_LEN, TOMBSTONE, record_len};

/// Bytes of a key or value shown in a dump line.
const SHOWN: usize = 40;

/// The annotated dump of a data file, or `None` when `bytes` does not start with the
/// data file's magic. Never panics, whatever the bytes.
pub fn dump(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(MAGIC) {
        return None;
    }
    let mut d = Dump::new(format!("hashlog data file, {} bytes", bytes.len()));
    d.section("file header");
    d.field(MAGIC, format!("magic {}", quoted(MAGIC, 8)));
    if !dump_header_rest(&mut d, bytes) {
        return Some(d.finish());
    }

    let mut summary = Summary::default();
    let mut pos = FILE_HEADER_LEN as usize;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        match whole_record_len(rest) {
            Ok(len) => {
                d.section(format!("record {} at offset {pos}", summary.records));
                // `whole_record_len` checked that all of the record is there, so this cannot
                // fail; if it somehow did, the dump would just end the record early.
                let _ = dump_record(&mut d, &rest[..len], &mut summary);
                pos += len;
            }
            Err(detail) => return Some(tail(d, rest, detail, &summary)),
        }
    }
    d.note(summary.line());
    d.note("the file ends exactly after the last record");
    Some(d.finish())
}

/// Dumps the version and checksum after the magic; false when the header is cut short.
fn dump_header_rest(d: &mut Dump, bytes: &[u8]) -> bool {
    let mut r = ByteReader::new(&bytes[MAGIC.len()..]);
    let Ok(version) = r.u32("version") else {
        d.field(
            &bytes[MAGIC.len()..],
            "format version, cut short: the header is damaged",
        );
        return false;
    };
    let version_note = if version == VERSION {
        ""
    } else {
        " (this build reads only version 1)"
    };
    d.field(
        &version.to_le_bytes(),
        format!("format version {version}{version_note}"),
    );
    let Ok(stored) = r.u32("crc") else {
        d.field(
            &bytes[12..],
            "header checksum, cut short: the header is damaged",
        );
        return false;
    };
    let actual = crc32(&bytes[..12]);
    d.field(
        &stored.to_le_bytes(),
        format!("header crc32 {stored:#010x} {}", verdict(stored, actual)),
    );
    true
}

/// What the dump has seen, for its closing line.
#[derive(Default)]
struct Summary {
    records: u64,
    puts: u64,
    deletes: u64,
    bad: u64,
    live: HashSet<Vec<u8>>,
}

impl Summary {
    fn line(&self) -> String {
        let mut line = format!(
            "{} records ({} puts, {} deletes), {} live keys",
            self.records,
            self.puts,
            self.deletes,
            self.live.len()
        );
        if self.bad > 0 {
            line.push_str(&format!(
                "; {} with a BAD checksum (open refuses them if a valid record follows, \
                 else drops them as a torn tail)",
                self.bad
            ));
        }
        line
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

/// Dumps one record, `bytes` being exactly as long as its lengths say.
fn dump_record(d: &mut Dump, bytes: &[u8], summary: &mut Summary) -> Result<(), DecodeError> {
    let mut r = ByteReader::new(bytes);
    let stored = r.u32("crc")?;
    let actual = crc32(&bytes[4..]);
    d.field(
        &stored.to_le_bytes(),
        format!("crc32 {stored:#010x} {}", verdict(stored, actual)),
    );
    let key_len = r.u16("key length")?;
    d.field(&key_len.to_le_bytes(), format!("key length {key_len}"));
    let value_len = r.u32("value length")?;
    let is_delete = value_len == TOMBSTONE;
    let meaning = if is_delete {
        "value length: tombstone, this record deletes its key".to_string()
    } else {
        format!("value length {value_len}")
    };
    d.field(&value_len.to_le_bytes(), meaning);
    let key = r.bytes(usize::from(key_len), "key")?;
    d.field(key, format!("key {}", quoted(key, SHOWN)));
    if !is_delete {
        let value = r.bytes(value_len as usize, "value")?;
        d.field(value, format!("value {}", quoted(value, SHOWN)));
    }
    summary.records += 1;
    if stored != actual {
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

/// Ends the dump with the bytes that are not a whole record.
fn tail(mut d: Dump, rest: &[u8], detail: String, summary: &Summary) -> String {
    d.section(format!(
        "{} bytes at offset {} that are not a record",
        rest.len(),
        d.pos()
    ));
    d.field(rest, &detail);
    d.note(summary.line());
    d.note(format!(
        "open cuts these {} bytes off as a torn tail (or, if a valid record follows them, \
         refuses the file as corrupt)",
        rest.len()
    ));
    d.finish()
}

fn verdict(stored: u32, actual: u32) -> String {
    if stored == actual {
        "ok".to_string()
    } else {
        format!("BAD (computed {actual:#010x})")
    }
}
