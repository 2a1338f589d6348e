//! The annotated dump of one block (`kv inspect`): every entry's lengths, key, trailer and
//! value, the restart array and the block trailer. An lz4 block shows its stored bytes, then
//! what they decompress to as notes (those bytes are not in the file).

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::varint_len;

use crate::table::block::{Block, TRAILER_LEN, decode};
use crate::table::compression::Compression;
use crate::key::Kind;

/// Adds the fields of the block whose on-disk bytes are `raw` at `base` (its offset in the
/// file) to a dump; `value` says what each entry's value means.
pub fn dump_block(d: &mut Dump, base: u64, raw: &[u8], value: impl Fn(&[u8], Kind) -> String) {
    d.seek(base);
    let contents = match decode(raw) {
        Ok(contents) => contents,
        Err(e) => {
            d.field(raw, format!("unreadable block: {e}"));
            return;
        }
    };
    let Ok(block) = Block::new(&contents) else {
        return; // decode checked it
    };
    let stored_len = raw.len() - TRAILER_LEN;
    let compressed = raw[stored_len] == Compression::Lz4 as u8;
    if compressed {
        d.field(&raw[..4], format!("uncompressed length {}", contents.len()));
        d.field(
            &raw[4..stored_len],
            format!("lz4 data, {} bytes", stored_len - 4),
        );
        d.note(format!(
            "decompressed: {} bytes of entries, {} restart points",
            block.entries_len(),
            block.restart_count()
        ));
    }
    let restarts: Vec<usize> = (0..block.restart_count())
        .map(|i| block.restart_offset(i).unwrap_or_default())
        .collect();
    let mut iter = block.iter();
    while let Some(entry) = iter.next_entry() {
        let Ok(e) = entry else {
            d.note("entry does not decode");
            return;
        };
        let unshared = e.key.len() - e.shared;
        let header_len = varint_len(e.shared as u64)
            + varint_len(unshared as u64)
            + varint_len(e.value.len() as u64);
        let restart = if restarts.contains(&e.offset) {
            " (restart point)"
        } else {
            ""
        };
        let header = format!(
            "shared {}, unshared {unshared}, value length {}{restart}",
            e.shared,
            e.value.len()
        );
        let key = if e.shared == 0 {
            format!("key {}", quoted(e.key, 40))
        } else {
            format!(
                "key suffix {} (key {})",
                quoted(&e.key[e.shared..], 40),
                quoted(e.key, 40)
            )
        };
        let kind = match e.kind {
            Kind::Put => "put",
            Kind::Delete => "delete",
        };
        let trailer = format!("trailer: seq {} {kind}", e.seq);
        if compressed {
            d.note(format!(
                "entry at {}: {header}; {key}; {trailer}; {}",
                e.offset,
                value(e.value, e.kind)
            ));
            continue;
        }
        let at = e.offset;
        let key_at = at + header_len;
        let trailer_at = key_at + unshared;
        d.field(&contents[at..key_at], header);
        d.field(&contents[key_at..trailer_at], key);
        d.field(&contents[trailer_at..trailer_at + 8], trailer);
        if !e.value.is_empty() {
            d.field(e.value, value(e.value, e.kind));
        }
    }
    let restarts_at = block.entries_len();
    for (i, offset) in restarts.iter().enumerate() {
        if compressed {
            d.note(format!("restart point {i} at {offset}"));
        } else {
            let at = restarts_at + 4 * i;
            d.field(
                &contents[at..at + 4],
                format!("restart point {i} at {offset}"),
            );
        }
    }
    let count_at = contents.len() - 4;
    if compressed {
        d.note(format!("restart count {}", block.restart_count()));
    } else {
        d.field(
            &contents[count_at..],
            format!("restart count {}", block.restart_count()),
        );
    }
    let kind = if compressed { "1 (lz4)" } else { "0 (none)" };
    d.field(
        &raw[stored_len..=stored_len],
        format!("compression type {kind}"),
    );
    d.field(&raw[stored_len + 1..], "crc32 (ok)");
}
