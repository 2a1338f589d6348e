//! The annotated dumps `kv inspect` prints for the files of a wisckey store.
//!
//! A wisckey store holds no file of a new kind: its value log is bitcask segments and its
//! tree an lsm store. What is new is what the tree's values mean ([`crate::value_pointer`]).
//! So [`inspect`] recognises each file by its magic and shows it:
//!
//! * a **value-log segment** (`BITCASKS`): bitcask's segment dump
//!   ([`bitcask::inspect::dump_segment`]), every record field by field;
//! * a **tree WAL** (`KVSSTWAL`): stage 4's WAL framing and write batches, each put's value
//!   decoded as a tree value, an inline value or a pointer's segment, offset and length
//!   ([`dump_wal`]);
//! * any other file of the tree (tables, manifests, `CURRENT`): stage 4's dumps
//!   ([`lsm::inspect`]), which show a tree value as its raw bytes (a pointer is the 17
//!   bytes starting `\x01`, an inline value the value after a `\x00`).
//!
//! The snapshots in `tests/snapshots.rs` pin the value-log segment and the WAL dumps of a
//! small store, and [`dump_tree_value`]'s view of a pointer and of an inline value.

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::varint_len;

use bitcask::record::SEGMENT_MAGIC;

use crate::value_pointer;

/// The annotated dump of any file a wisckey store holds (a value-log segment, a tree WAL,
/// table, manifest or `CURRENT`), or `None` when `bytes` is none of them. Never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(SEGMENT_MAGIC) {
        return Some(bitcask::inspect::dump_segment(bytes));
    }
    dump_wal(bytes).or_else(|| lsm::inspect(bytes))
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
