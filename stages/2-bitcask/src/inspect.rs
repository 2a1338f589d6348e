//! The annotated dumps `kv inspect` prints for the files of a bitcask store, each recognised
//! by its magic: a segment ([`crate::record`]), a hint file ([`crate::hint`]) and a merge
//! commit record ([`crate::merge_commit`]). Every line is one field of the format those
//! modules document byte by byte: its offset, its bytes and what they mean. A dump stops
//! with a note at the first bytes that do not decode, and never panics, whatever the bytes.

use kv_shared::batch::dump_ops;
use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::ByteReader;
use kv_shared::log_reader::LogFormat;

use crate::hint::{self, HINT_HEADER_LEN, HINT_MAGIC, HINT_VERSION, HintEntry, HintLog};
use crate::merge_commit::{COMMIT_MAGIC, COMMIT_VERSION, MergeCommit};
use crate::record::{
    self, BATCH_HEADER_LEN, Kind, RECORD_HEADER_LEN, RecordRef, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
    SEGMENT_VERSION,
};

/// Bytes of a key or value shown in a dump line.
const SHOWN: usize = 40;

/// The annotated dump of a bitcask file, or `None` when `bytes` does not start with one of
/// the three magics (`BITCASKS`, `BITCASKH`, `BITCASKM`).
pub fn dump(bytes: &[u8]) -> Option<String> {
    let magic = bytes.get(..8)?;
    if magic == SEGMENT_MAGIC {
        Some(dump_segment(bytes))
    } else if magic == HINT_MAGIC {
        Some(dump_hint(bytes))
    } else if magic == COMMIT_MAGIC {
        Some(dump_commit(bytes))
    } else {
        None
    }
}

/// How a dump shows an expiry field.
fn expiry_text(expiry: u64) -> String {
    if expiry == 0 {
        "expiry: never".to_string()
    } else {
        format!("expiry {expiry} ms since the Unix epoch")
    }
}

/// The annotated dump of a segment file: the header, then every record field by field.
pub fn dump_segment(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("bitcask segment ({} bytes)", bytes.len()));
    if bytes.len() < SEGMENT_HEADER_LEN as usize {
        d.note("too short for a segment header");
        return d.finish();
    }
    d.field(&bytes[..8], format!("magic {}", quoted(SEGMENT_MAGIC, 8)));
    match record::decode_segment_header(bytes) {
        Ok(id) => {
            d.field(&bytes[8..12], format!("format version {SEGMENT_VERSION}"));
            d.field(&bytes[12..16], format!("segment id {id}"));
        }
        Err(e) => {
            d.note(format!("bad header: {e}"));
            return d.finish();
        }
    }
    let mut pos = SEGMENT_HEADER_LEN as usize;
    let mut n = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let len = match record::record_len(rest) {
            Ok(len) => len,
            Err(e) => {
                d.note(format!("offset {pos}: no whole record header ({e})"));
                break;
            }
        };
        if len > rest.len() {
            d.note(format!(
                "offset {pos}: record of {len} bytes cut short at {} (torn tail)",
                rest.len()
            ));
            break;
        }
        match record::decode_record(&rest[..len]) {
            Ok(r) => dump_record(&mut d, n, &rest[..len], &r),
            Err(e) => {
                d.note(format!("offset {pos}: bad record ({e})"));
                break;
            }
        }
        pos += len;
        n += 1;
    }
    d.finish()
}

/// Record `n` of a segment, field by field; `raw` is its bytes, already decoded as `r`.
fn dump_record(d: &mut Dump, n: usize, raw: &[u8], r: &RecordRef<'_>) {
    let k = r.key.len();
    let batch = r.kind == Kind::Batch;
    let count = r.batch_count();
    if batch {
        d.section(format!("record {n}: batch of {count} ops"));
    } else {
        d.section(format!("record {n}: {}", r.kind.name()));
    }
    d.field(&raw[..4], "crc32 (ok)");
    if batch {
        let seq = r.seq;
        d.field(
            &raw[4..12],
            format!("sequence number {seq} of op 0 (op i has {seq} + i)"),
        );
    } else {
        d.field(&raw[4..12], format!("sequence number {}", r.seq));
    }
    d.field(&raw[12..20], expiry_text(r.expiry));
    d.field(&raw[20..21], format!("kind {}", r.kind.name()));
    d.field(&raw[21..23], format!("key length {k}"));
    let what = if batch { "body length" } else { "value length" };
    d.field(&raw[23..27], format!("{what} {}", r.value.len()));
    if k > 0 {
        d.field(&raw[27..27 + k], format!("key {}", quoted(r.key, SHOWN)));
    }
    if batch {
        d.field(
            &raw[RECORD_HEADER_LEN..BATCH_HEADER_LEN],
            format!("op count {count}"),
        );
        dump_ops(d, &raw[BATCH_HEADER_LEN..], count);
    } else if !r.value.is_empty() {
        d.field(&raw[27 + k..], format!("value {}", quoted(r.value, SHOWN)));
    }
}

/// The annotated dump of a hint file: the header, then every entry field by field.
pub fn dump_hint(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("bitcask hint file ({} bytes)", bytes.len()));
    let mut r = ByteReader::new(bytes);
    let (Ok(magic), Ok(version), Ok(id)) = (r.bytes(8, "magic"), r.u32("version"), r.u32("id"))
    else {
        d.note("too short for a hint header");
        return d.finish();
    };
    d.field(magic, format!("magic {}", quoted(magic, 8)));
    d.field(&bytes[8..12], format!("format version {version}"));
    if magic != HINT_MAGIC || version != HINT_VERSION {
        d.note("not a hint file this build reads");
        return d.finish();
    }
    d.field(&bytes[12..16], format!("segment id {id}"));
    let mut pos = HINT_HEADER_LEN as usize;
    let mut n = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let len = match HintLog::record_len(rest) {
            Ok(len) if len <= rest.len() => len,
            _ => {
                d.note(format!("offset {pos}: entry cut short (torn tail)"));
                break;
            }
        };
        match hint::decode_entry(&rest[..len]) {
            Ok(e) => dump_hint_entry(&mut d, n, &rest[..len], &e),
            Err(err) => {
                d.note(format!("offset {pos}: bad entry ({err})"));
                break;
            }
        }
        pos += len;
        n += 1;
    }
    d.finish()
}

/// Entry `n` of a hint file, field by field; `raw` is its bytes, already decoded as `e`.
fn dump_hint_entry(d: &mut Dump, n: usize, raw: &[u8], e: &HintEntry) {
    match e.kind {
        Some(kind) => {
            d.section(format!("entry {n}: {}", kind.name()));
            d.field(&raw[..4], "crc32 (ok)");
            d.field(&raw[4..12], format!("sequence number {}", e.seq));
            d.field(&raw[12..20], expiry_text(e.expiry));
            d.field(&raw[20..28], format!("record offset {}", e.offset));
            d.field(&raw[28..32], format!("record length {}", e.len));
            d.field(&raw[32..33], format!("kind {}", kind.name()));
        }
        None => {
            d.section("end entry");
            d.field(&raw[..4], "crc32 (ok)");
            d.field(&raw[4..12], format!("{} entries before this one", e.seq));
            d.field(&raw[12..20], "(unused)");
            d.field(&raw[20..28], format!("segment length {}", e.offset));
            d.field(&raw[28..32], "(unused)");
            d.field(&raw[32..33], "kind end");
        }
    }
    d.field(&raw[33..35], format!("key length {}", e.key.len()));
    if !e.key.is_empty() {
        d.field(&raw[35..], format!("key {}", quoted(&e.key, SHOWN)));
    }
}

/// The annotated dump of a merge commit record.
pub fn dump_commit(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!(
        "bitcask merge commit record ({} bytes)",
        bytes.len()
    ));
    match MergeCommit::decode(bytes) {
        Ok(c) => {
            d.field(&bytes[..8], format!("magic {}", quoted(COMMIT_MAGIC, 8)));
            d.field(&bytes[8..12], format!("format version {COMMIT_VERSION}"));
            let mut pos = 12;
            for (what, ids) in [("input", &c.inputs), ("output", &c.outputs)] {
                d.field(
                    &bytes[pos..pos + 4],
                    format!("{what} segments: {}", ids.len()),
                );
                pos += 4;
                for id in ids {
                    d.field(&bytes[pos..pos + 4], format!("{what} segment {id}"));
                    pos += 4;
                }
            }
            d.field(&bytes[pos..], "crc32 (ok)");
        }
        Err(e) => d.note(format!("invalid commit record: {e}")),
    }
    d.finish()
}
