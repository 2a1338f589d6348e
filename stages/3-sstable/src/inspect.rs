//! The annotated dumps `kv inspect` prints: every field of a file at its offset, with its
//! meaning. [`inspect`] recognises this stage's two kinds of file by their magic:
//!
//! * a WAL ([`inspect_wal`]): `KVSSTWAL` at the start; its records (format in
//!   [`crate::wal`]) with each payload decoded as a put, a delete or a write batch (format
//!   in [`crate::wal_entry`]);
//! * a table ([`inspect_table`]): `KVSSTABL` at the end; its data blocks entry by entry,
//!   its index, its footer (formats in [`crate::block`], [`crate::index`] and
//!   [`crate::footer`]).
//!
//! The dumps work on any bytes: a damaged record, block or footer is reported in a note
//! and the dump goes on with what it can still show; they never panic.

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::ByteReader;

use crate::block::TOMBSTONE;
use crate::footer::{FOOTER_LEN, Footer, FooterError, TABLE_MAGIC};
use crate::frame::{self, FRAME_HEADER_LEN};
use crate::index;
use crate::wal::{self, WAL_MAGIC};
use crate::wal_entry;

/// The annotated dump of one of this stage's files, recognised by its magic: a WAL or a
/// table. `None` for any other bytes; never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(WAL_MAGIC) {
        return inspect_wal(bytes);
    }
    inspect_table(bytes)
}

/// The annotated dump of a WAL, each payload decoded ([`wal_entry::dump`]), or `None` when
/// `bytes` do not start with [`WAL_MAGIC`].
pub fn inspect_wal(bytes: &[u8]) -> Option<String> {
    wal::inspect_wal_with(bytes, wal_entry::dump)
}

/// Entries shown field by field; after that, block bodies are shown as one line each.
const DUMP_ENTRIES: usize = 200;

/// A frame that starts `bytes` and fits in it, with a valid checksum: its length and body.
fn whole_frame(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let len = frame::frame_len(bytes, bytes.len().saturating_sub(FRAME_HEADER_LEN)).ok()?;
    let body = frame::open(bytes.get(..len)?).ok()?;
    Some((len, body))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Dumps the entries of a data block body; returns how many were shown.
fn dump_entries(d: &mut Dump, body: &[u8], budget: usize) -> usize {
    let mut r = ByteReader::new(body);
    let mut shown = 0;
    while !r.is_empty() {
        let start = r.pos();
        if shown == budget {
            d.field(&body[start..], "more entries, not shown");
            return shown;
        }
        let fields = (|| {
            let k = r.u16("key length")? as usize;
            let word = r.u32("value word")?;
            let key = r.bytes(k, "key")?;
            let v = if word == TOMBSTONE { 0 } else { word as usize };
            let value = r.bytes(v, "value")?;
            Ok::<_, kv_shared::DecodeError>((k, word, key, value))
        })();
        let Ok((k, word, key, value)) = fields else {
            d.field(&body[start..], "undecodable entry");
            return shown;
        };
        d.field(&body[start..start + 2], format!("key length {k}"));
        if word == TOMBSTONE {
            d.field(&body[start + 2..start + 6], "value word: tombstone");
        } else {
            d.field(&body[start + 2..start + 6], format!("value length {word}"));
        }
        d.field(key, format!("key {}", quoted(key, 40)));
        if word != TOMBSTONE {
            d.field(value, format!("value {}", quoted(value, 40)));
        }
        shown += 1;
    }
    shown
}

/// Dumps an index body: the table's last key, then one entry per block.
fn dump_index(d: &mut Dump, body: &[u8]) {
    let mut r = ByteReader::new(body);
    let last = r
        .u16("last key length")
        .and_then(|k| r.bytes(k as usize, "last key"));
    let Ok(last) = last else {
        d.field(body, "undecodable index");
        return;
    };
    d.field(
        &body[..2],
        format!("table's last key: length {}", last.len()),
    );
    d.field(last, format!("last key {}", quoted(last, 40)));
    let mut i = 0;
    while !r.is_empty() {
        let start = r.pos();
        let Ok(e) = index::decode_entry(&mut r) else {
            d.field(&body[start..], "undecodable index entry");
            break;
        };
        let k = e.first_key.len();
        d.field(
            &body[start..start + 2],
            format!("block {i}: key length {k}"),
        );
        d.field(
            &e.first_key,
            format!("first key {}", quoted(&e.first_key, 40)),
        );
        d.field(
            &body[start + 2 + k..start + 10 + k],
            format!("offset {}", e.offset),
        );
        d.field(
            &body[start + 10 + k..start + 14 + k],
            format!("length {}", e.len),
        );
        i += 1;
    }
}

/// The annotated dump of a table, or `None` when `bytes` do not end with [`TABLE_MAGIC`].
pub fn inspect_table(bytes: &[u8]) -> Option<String> {
    if bytes.len() < FOOTER_LEN || !bytes.ends_with(TABLE_MAGIC) {
        return None;
    }
    let footer_at = bytes.len() - FOOTER_LEN;
    let footer = Footer::decode(&bytes[footer_at..]);
    let mut d = Dump::new(format!("sstable, {} bytes", bytes.len()));
    let index_offset = match &footer {
        Ok(f) if f.index_offset <= footer_at as u64 => f.index_offset as usize,
        _ => {
            d.note("footer damaged: data blocks and index not shown");
            footer_at
        }
    };

    let mut pos = 0;
    let mut shown = 0;
    let mut n = 0;
    while pos < index_offset {
        let Some((len, body)) = whole_frame(&bytes[pos..index_offset]) else {
            d.note(format!(
                "damaged block at offset {pos}: the rest of the data region is not shown"
            ));
            break;
        };
        d.section(format!("data block {n}"));
        d.field(&bytes[pos..pos + 4], "crc32 (ok)");
        d.field(
            &bytes[pos + 4..pos + 8],
            format!("body length {}", body.len()),
        );
        shown += dump_entries(&mut d, body, DUMP_ENTRIES - shown);
        pos += len;
        n += 1;
    }

    if footer.is_ok() && index_offset < footer_at {
        d.seek(index_offset as u64);
        d.section("index block");
        match whole_frame(&bytes[index_offset..footer_at]) {
            Some((_, body)) => {
                d.field(&bytes[index_offset..index_offset + 4], "crc32 (ok)");
                d.field(
                    &bytes[index_offset + 4..index_offset + 8],
                    format!("body length {}", body.len()),
                );
                dump_index(&mut d, body);
            }
            None => d.note("index block damaged"),
        }
    }

    d.seek(footer_at as u64);
    d.section("footer");
    let f = &bytes[footer_at..];
    d.field(&f[0..8], format!("index offset {}", u64_at(f, 0)));
    d.field(&f[8..12], format!("index length {}", u32_at(f, 8)));
    d.field(&f[12..20], format!("entries {}", u64_at(f, 12)));
    d.field(&f[20..28], format!("tombstones {}", u64_at(f, 20)));
    d.field(&f[28..36], format!("first WAL {}", u64_at(f, 28)));
    d.field(&f[36..44], format!("last WAL {}", u64_at(f, 36)));
    d.field(&f[44..48], format!("format version {}", u32_at(f, 44)));
    d.field(&f[48..52], "crc32 of the footer's first 48 bytes");
    d.field(&f[52..60], "magic \"KVSSTABL\"");
    match footer {
        Ok(_) => d.note("footer ok"),
        Err(FooterError::Decode(e)) => d.note(format!("footer damaged: {e}")),
        Err(FooterError::Version(v)) => d.note(format!("unsupported format version {v}")),
    }
    Some(d.finish())
}
