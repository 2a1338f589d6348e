//! The annotated dumps `kv inspect` prints: every file this engine writes, byte by byte.
//!
//! [`inspect`] recognises the file by its magic and hands it to its dump: a table
//! ([`crate::table::dump`]), a manifest, `CURRENT`, or a WAL. Each dump shows every field
//! with its offset, its bytes and what they mean; a file cut short or damaged is shown as
//! far as it reads, with a note where it stops, and never makes a dump panic. The
//! snapshots in `tests/snapshots.rs` pin every format through these dumps.

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::varint_len;

use crate::file_names;
use crate::manifest::{self, CURRENT_MAGIC, VERSION, decode_current};
use crate::table::dump::dump_table;
use crate::version_edit::VersionEdit;
use crate::wal;

/// The annotated dump of any file this engine writes (a table with its filter, a manifest,
/// `CURRENT`, a WAL), or `None` when `bytes` is none of them. Never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    dump_table(bytes)
        .or_else(|| dump_manifest(bytes))
        .or_else(|| dump_current(bytes))
        .or_else(|| dump_wal(bytes))
}

/// The annotated dump of a manifest, or `None` when `bytes` is not one.
pub fn dump_manifest(bytes: &[u8]) -> Option<String> {
    let title = format!("lsm manifest ({} bytes)", bytes.len());
    sstable::wal::dump(bytes, manifest::KIND, title, |d, edit| {
        d.field(edit, describe_edit(edit));
    })
}

/// One line describing a version edit.
fn describe_edit(payload: &[u8]) -> String {
    let edit: VersionEdit = match postcard::from_bytes(payload) {
        Ok(edit) => edit,
        Err(e) => return format!("undecodable version edit: {e}"),
    };
    let counters = [
        ("log_number", edit.log_number),
        ("next_file", edit.next_file),
        ("last_seq", edit.last_seq),
    ];
    let mut parts: Vec<String> = counters
        .iter()
        .filter_map(|(name, n)| n.map(|n| format!("{name} {n}")))
        .collect();
    for (level, number) in &edit.removed {
        parts.push(format!("remove L{level} #{number}"));
    }
    for (level, t) in &edit.added {
        parts.push(format!(
            "add L{level} #{} {} bytes {} entries [{}@{} .. {}@{}]",
            t.number,
            t.size,
            t.entries,
            quoted(&t.smallest, 16),
            t.smallest_seq,
            quoted(&t.largest, 16),
            t.largest_seq
        ));
    }
    format!("version edit (postcard): {}", parts.join("; "))
}

/// The annotated dump of a `CURRENT` file, or `None` when `bytes` is not one.
pub fn dump_current(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(CURRENT_MAGIC) {
        return None;
    }
    let mut d = Dump::new(format!("lsm CURRENT pointer ({} bytes)", bytes.len()));
    match decode_current(bytes) {
        Ok(number) => {
            d.field(&bytes[..8], format!("magic {}", quoted(CURRENT_MAGIC, 8)));
            d.field(&bytes[8..12], format!("format version {VERSION}"));
            d.field(
                &bytes[12..20],
                format!("live manifest: {}", file_names::manifest(number)),
            );
            d.field(&bytes[20..24], "crc32 (ok)");
        }
        Err(e) => d.note(format!("invalid CURRENT: {e}")),
    }
    Some(d.finish())
}

/// The annotated dump of a WAL, each record's write batch shown field by field, or `None`
/// when `bytes` is not a WAL.
pub fn dump_wal(bytes: &[u8]) -> Option<String> {
    let title = format!("write-ahead log, {} bytes", bytes.len());
    sstable::wal::dump(bytes, wal::KIND, title, dump_batch)
}

/// Adds a WAL payload's fields to a dump, one line each (header fields, then each op's
/// kind, key length, key, value length and value), or one line for a payload that does not
/// decode. Advances the dump by exactly the payload.
fn dump_batch(d: &mut Dump, payload: &[u8]) {
    let batch = match wal::decode(payload) {
        Ok(batch) => batch,
        Err(e) => {
            d.field(payload, format!("undecodable write batch: {e}"));
            return;
        }
    };
    let mut at = 0;
    let mut field = |len: usize, text: String| {
        d.field(&payload[at..at + len], text);
        at += len;
    };
    field(8, format!("first sequence number {}", batch.first_seq));
    field(4, format!("op count {}", batch.count));
    for (seq, (i, op)) in (batch.first_seq..).zip(batch.ops().enumerate()) {
        let kind = if op.value.is_some() { "put" } else { "delete" };
        field(1, format!("op {i}: {kind}, seq {seq}"));
        let key_len = op.key.len();
        field(varint_len(key_len as u64), format!("key length {key_len}"));
        if key_len > 0 {
            field(key_len, format!("key {}", quoted(op.key, 40)));
        }
        if let Some(value) = op.value {
            let value_len = value.len();
            field(
                varint_len(value_len as u64),
                format!("value length {value_len}"),
            );
            if value_len > 0 {
                field(value_len, format!("value {}", quoted(value, 40)));
            }
        }
    }
}
