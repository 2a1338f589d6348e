//! The annotated dump of a data file, as `kv inspect data.log` prints it.
//!
//! Every field on its own line: offset, bytes, meaning. Checksums are recomputed and shown
//! as `ok` or `BAD`. A record with a bad checksum is still shown field by field (if its
//! lengths are the damaged part, what follows it is misread, which is itself instructive);
//! bytes at the end that cannot be a whole record are shown as one field.
//!
//! The last lines say what `open` would do with the file, found by the same rule as
//! [`kv_shared::log_reader::read_log`]: replay it whole, cut a torn tail, or refuse it.

use std::collections::HashSet;
use std::path::Path;

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32};

use crate::data_file::{DATA_FILE, FILE_HEADER_LEN, MAGIC, check_header};
use crate::record::{RECORD_HEADER_LEN, Record, TOMBSTONE, record_len};

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
    bad: u64,
    live: HashSet<Vec<u8>>,
}

impl Summary {
    fn line(&self) -> String {
        format!(
            "records: {} (puts {}, deletes {}, bad checksums {}); live keys: {}",
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
    Record::decode(&rest[..len]).map_err(|e| e.detail)?;
    Ok(len)
}

/// Dumps one record, `bytes` being exactly as long as its lengths say.
fn dump_record(d: &mut Dump, bytes: &[u8], summary: &mut Summary) -> Result<(), DecodeError> {
    let mut r = ByteReader::new(bytes);
    let stored = r.u32("crc")?;
    let key_len = r.u16("key length")?;
    let value_len = r.u32("value length")?;
    let key = r.bytes(usize::from(key_len), "key")?;
    let is_delete = value_len == TOMBSTONE;
    let kind = if is_delete { "delete" } else { "put" };
    d.section(format!(
        "record {} at offset {}: {kind}",
        summary.records,
        d.pos()
    ));

    let actual = crc32(&bytes[4..]);
    d.field(
        &stored.to_le_bytes(),
        format!("crc32 {stored:#010x} {}", crc_verdict(stored, actual)),
    );
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
