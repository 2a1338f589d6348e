//! The annotated dumps `kv inspect` prints for the files of a wisckey store.
//!
//! A wisckey store holds no file of a new kind: its value log is bitcask segments and its
//! tree an lsm store. What is new is what the tree's values mean ([`crate::value_pointer`]).
//! So [`inspect`] recognises each file by its magic and shows it:
//!
//! * a **value-log segment** (`BITCASKS`): every record field by field, as bitcask's dump
//!   shows them, but grouped into one section per **write batch** (the records sharing a
//!   batch number in their sequence-number field, [`crate::value_log`]): recovery keeps
//!   or drops a batch whole, so damage to any of its records can cost all of its keys
//!   ([`dump_segment`]);
//! * a **tree WAL** (`KVSSTWAL`): stage 4's WAL framing and write batches, each put's value
//!   decoded as a tree value, an inline value or a pointer's segment, offset and length
//!   ([`dump_wal`]);
//! * any other file of the tree (tables, manifests, `CURRENT`): stage 4's dumps
//!   ([`lsm::inspect()`]), which show a tree value as its raw bytes (a pointer is the 17
//!   bytes starting `\x01`, an inline value the value after a `\x00`).
//!
//! The snapshots in `tests/snapshots.rs` pin the value-log segment and the WAL dumps of a
//! small store, and [`dump_tree_value`]'s view of a pointer and of an inline value.

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::varint_len;

use bitcask::record::{
    self, Kind, RECORD_HEADER_LEN, RecordRef, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION,
};

use crate::value_pointer;

/// The annotated dump of any file a wisckey store holds (a value-log segment, a tree WAL,
/// table, manifest or `CURRENT`), or `None` when `bytes` is none of them. Never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(SEGMENT_MAGIC) {
        return Some(dump_segment(bytes));
    }
    dump_wal(bytes).or_else(|| lsm::inspect(bytes))
}

/// Bytes of a key or value shown in a dump line.
const SHOWN: usize = 40;

/// The annotated dump of a value-log segment: the header, then the records field by field,
/// one section per write batch (the records that share a batch number, which stand or fall
/// together), and one for the seal. Stops with a note at the first bytes that are not a
/// whole, valid record.
pub fn dump_segment(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("wisckey value-log segment ({} bytes)", bytes.len()));
    let Some(header) = bytes.get(..SEGMENT_HEADER_LEN as usize) else {
        d.note("too short for a segment header");
        return d.finish();
    };
    d.field(&header[..8], format!("magic {}", quoted(SEGMENT_MAGIC, 8)));
    match record::decode_segment_header(header) {
        Ok(id) => {
            d.field(&header[8..12], format!("format version {SEGMENT_VERSION}"));
            d.field(&header[12..16], format!("segment id {id}"));
        }
        Err(e) => {
            d.note(format!("bad header: {e}"));
            return d.finish();
        }
    }
    let (mut pos, mut n, mut batch) = (SEGMENT_HEADER_LEN as usize, 0, None);
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let decoded = record::record_len(rest)
            .map_err(|e| format!("no whole record header ({e})"))
            .and_then(|len| {
                rest.get(..len)
                    .ok_or(format!("record of {len} bytes cut short"))
            })
            .and_then(|raw| {
                let r = record::decode_record(raw).map_err(|e| format!("bad record ({e})"))?;
                Ok((raw, r))
            });
        let (raw, r) = match decoded {
            Ok(found) => found,
            Err(why) => {
                d.note(format!("offset {pos}: {why}"));
                break;
            }
        };
        if r.kind == Kind::Seal {
            d.section("seal");
        } else if batch != Some(r.seq) {
            d.section(format!("write batch {}", r.seq));
        }
        batch = Some(r.seq);
        dump_record(&mut d, n, raw, &r);
        pos += raw.len();
        n += 1;
    }
    d.finish()
}

/// Record `n` of a segment, field by field; `raw` is its bytes, decoded as `r`.
fn dump_record(d: &mut Dump, n: usize, raw: &[u8], r: &RecordRef<'_>) {
    let k = r.key.len();
    d.note(format!("record {n}: {}", r.kind.name()));
    d.field(&raw[..4], "crc32 (ok)");
    d.field(&raw[4..12], format!("write batch {}", r.seq));
    d.field(&raw[12..20], format!("expiry {} (unused)", r.expiry));
    d.field(&raw[20..21], format!("kind {}", r.kind.name()));
    d.field(&raw[21..23], format!("key length {k}"));
    d.field(&raw[23..27], format!("value length {}", r.value.len()));
    let header = RECORD_HEADER_LEN;
    if k > 0 {
        d.field(
            &raw[header..header + k],
            format!("key {}", quoted(r.key, SHOWN)),
        );
    }
    if !r.value.is_empty() {
        let value = &raw[header + k..];
        d.field(value, format!("value {}", quoted(r.value, SHOWN)));
    }
}

/// The annotated dump of the tree's WAL, each put's value decoded as a tree value, or
/// `None` when `bytes` is not a WAL.
pub fn dump_wal(bytes: &[u8]) -> Option<String> {
    let title = format!("wisckey tree write-ahead log, {} bytes", bytes.len());
    sstable::wal::dump(bytes, lsm::wal::KIND, title, dump_batch)
}

/// The annotated dump of one tree value (what the tree holds for a key).
pub fn dump_tree_value(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("wisckey tree value ({} bytes)", bytes.len()));
    value_pointer::dump(&mut d, bytes);
    d.finish()
}

/// Adds a WAL payload's fields to a dump: the batch header, then each op's kind, key
/// length, key, value length and tree value; one line for a payload that does not decode.
/// Advances the dump by exactly the payload.
fn dump_batch(d: &mut Dump, payload: &[u8]) {
    let batch = match lsm::wal::decode(payload) {
        Ok(batch) => batch,
        Err(e) => return d.field(payload, format!("undecodable write batch: {e}")),
    };
    let mut at = 0;
    let mut take = |len: usize| {
        let bytes = &payload[at..at + len];
        at += len;
        bytes
    };
    d.field(
        take(8),
        format!("first sequence number {}", batch.first_seq),
    );
    d.field(take(4), format!("op count {}", batch.count));
    for (seq, (i, op)) in (batch.first_seq..).zip(batch.ops().enumerate()) {
        let kind = if op.value.is_some() { "put" } else { "delete" };
        d.field(take(1), format!("op {i}: {kind}, seq {seq}"));
        let key_len = op.key.len();
        d.field(
            take(varint_len(key_len as u64)),
            format!("key length {key_len}"),
        );
        if key_len > 0 {
            d.field(take(key_len), format!("key {}", quoted(op.key, 40)));
        }
        if let Some(value) = op.value {
            let len = value.len();
            d.field(
                take(varint_len(len as u64)),
                format!("tree value length {len}"),
            );
            value_pointer::dump(d, take(len));
        }
    }
}
