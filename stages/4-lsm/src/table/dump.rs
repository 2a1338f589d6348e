//! The annotated dump of a table file (`kv inspect`): every data block entry by entry (its
//! lengths, key, trailer and value), the restart arrays and block trailers, the filter
//! block, the index block and the footer. An lz4 block shows its stored bytes, then what
//! they decompress to as notes (those bytes are not in the file).

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::varint_len;

use crate::key::Kind;
use crate::table::block::{Block, BlockEntry, TRAILER_LEN, decode};
use crate::table::compression::Compression;
use crate::table::filter;
use crate::table::footer::{FOOTER_LEN, FORMAT_VERSION, Footer, MAGIC};
use crate::table::index::{Index, decode_handle};

/// The annotated dump of a table file, or `None` when `bytes` does not end with the table
/// magic.
pub fn dump_table(bytes: &[u8]) -> Option<String> {
    if bytes.len() < FOOTER_LEN || !bytes.ends_with(MAGIC) {
        return None;
    }
    let mut d = Dump::new(format!("lsm table ({} bytes)", bytes.len()));
    let footer_at = bytes.len() - FOOTER_LEN;
    let footer = match Footer::decode(&bytes[footer_at..], bytes.len() as u64) {
        Ok(f) => f,
        Err(e) => {
            d.note(format!("bad footer: {e}"));
            return Some(d.finish());
        }
    };
    let index_bytes = range(bytes, footer.index_offset, footer.index_size.into());
    let index = match Index::decode(index_bytes, footer.filter_offset) {
        Ok(index) => index,
        Err(e) => {
            d.note(format!("bad index block: {e}"));
            return Some(d.finish());
        }
    };
    for (i, handle) in index.entries().iter().enumerate() {
        d.section(format!(
            "data block {i} (offset {}, {} bytes)",
            handle.offset, handle.size
        ));
        let raw = range(bytes, handle.offset, handle.size.into());
        dump_block(&mut d, handle.offset, raw, |v, _| {
            format!("value {}", quoted(v, 40))
        });
    }
    dump_filter_block(&mut d, bytes, &footer);
    d.section(format!(
        "index block (offset {}, {} bytes)",
        footer.index_offset, footer.index_size
    ));
    dump_block(
        &mut d,
        footer.index_offset,
        index_bytes,
        |v, _| match decode_handle(v) {
            Ok((offset, size)) => format!("handle: data block at offset {offset}, {size} bytes"),
            Err(_) => "bad handle".to_string(),
        },
    );
    dump_footer(&mut d, &bytes[footer_at..], footer_at as u64, &footer);
    Some(d.finish())
}

/// `len` bytes of `bytes` at `offset` (a checked footer's or index's, so within `bytes`).
fn range(bytes: &[u8], offset: u64, len: u64) -> &[u8] {
    &bytes[offset as usize..(offset + len) as usize]
}

fn dump_filter_block(d: &mut Dump, bytes: &[u8], footer: &Footer) {
    let block = &bytes[footer.filter_offset as usize..footer.index_offset as usize];
    d.section(format!(
        "filter block (offset {}, {} bytes)",
        footer.filter_offset, footer.filter_size
    ));
    d.seek(footer.filter_offset);
    match filter::decode(block) {
        Ok(bloom) => {
            let n = block.len() - filter::CRC_LEN - 1;
            d.field(
                &block[..n],
                format!("bloom bit array, {} bits", bloom.bit_len()),
            );
            d.field(
                &block[n..n + 1],
                format!("probes per key {}", bloom.probes()),
            );
            d.field(&block[n + 1..], "crc32 (ok)");
        }
        Err(e) => d.field(block, format!("bad filter block: {e}")),
    }
}

fn dump_footer(d: &mut Dump, f: &[u8], at: u64, footer: &Footer) {
    d.section("footer");
    d.seek(at);
    d.field(&f[0..8], format!("filter offset {}", footer.filter_offset));
    d.field(&f[8..12], format!("filter size {}", footer.filter_size));
    d.field(&f[12..20], format!("index offset {}", footer.index_offset));
    d.field(&f[20..24], format!("index size {}", footer.index_size));
    d.field(&f[24..32], format!("entry count {}", footer.entries));
    d.field(&f[32..36], format!("format version {FORMAT_VERSION}"));
    d.field(&f[36..40], "footer crc32 (ok)");
    d.field(&f[40..48], format!("magic {}", quoted(MAGIC, 8)));
}

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
    let mut out = BlockDump {
        d,
        contents: &contents,
        compressed: raw[stored_len] == Compression::Lz4 as u8,
    };
    if out.compressed {
        out.d
            .field(&raw[..4], format!("uncompressed length {}", contents.len()));
        out.d.field(
            &raw[4..stored_len],
            format!("lz4 data, {} bytes", stored_len - 4),
        );
        out.d.note(format!(
            "decompressed: {} bytes of entries, {} restart points",
            block.entries_len(),
            block.restart_count()
        ));
    }
    if out.entries(&block, &value) {
        out.restarts(&block);
        let kind = if out.compressed {
            "1 (lz4)"
        } else {
            "0 (none)"
        };
        let d = out.d;
        d.field(
            &raw[stored_len..=stored_len],
            format!("compression type {kind}"),
        );
        d.field(&raw[stored_len + 1..], "crc32 (ok)");
    }
}

/// One block's dump in progress: its decoded contents, shown as fields of the file when it
/// is stored as is, as notes when those bytes are lz4's output and not in the file.
struct BlockDump<'d, 'c> {
    d: &'d mut Dump,
    contents: &'c [u8],
    compressed: bool,
}

impl BlockDump<'_, '_> {
    /// Bytes `at..end` of the contents, meaning `text`: a field, or a note.
    fn show(&mut self, at: usize, end: usize, text: String) {
        if self.compressed {
            self.d.note(text);
        } else {
            self.d.field(&self.contents[at..end], text);
        }
    }

    /// Every entry; false (after a note) when one does not decode.
    fn entries(&mut self, block: &Block<'_>, value: &impl Fn(&[u8], Kind) -> String) -> bool {
        let restarts: Vec<usize> = (0..block.restart_count())
            .map(|i| block.restart_offset(i).unwrap_or_default())
            .collect();
        let mut iter = block.iter();
        while let Some(entry) = iter.next_entry() {
            let Ok(e) = entry else {
                self.d.note("entry does not decode");
                return false;
            };
            self.entry(&e, restarts.contains(&e.offset), value);
        }
        true
    }

    /// One entry: its three lengths, its key (or the suffix after the shared prefix), its
    /// trailer and its value.
    fn entry(
        &mut self,
        e: &BlockEntry<'_, '_>,
        restart: bool,
        value: &impl Fn(&[u8], Kind) -> String,
    ) {
        let unshared = e.key.len() - e.shared;
        let header = format!(
            "shared {}, unshared {unshared}, value length {}{}",
            e.shared,
            e.value.len(),
            if restart { " (restart point)" } else { "" }
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
        let value_text = value(e.value, e.kind);
        if self.compressed {
            self.d.note(format!(
                "entry at {}: {header}; {key}; {trailer}; {value_text}",
                e.offset
            ));
            return;
        }
        let key_at = e.offset
            + varint_len(e.shared as u64)
            + varint_len(unshared as u64)
            + varint_len(e.value.len() as u64);
        let trailer_at = key_at + unshared;
        self.show(e.offset, key_at, header);
        self.show(key_at, trailer_at, key);
        self.show(trailer_at, trailer_at + 8, trailer);
        if !e.value.is_empty() {
            self.d.field(e.value, value_text);
        }
    }

    /// The restart array and its count.
    fn restarts(&mut self, block: &Block<'_>) {
        let restarts_at = block.entries_len();
        for i in 0..block.restart_count() {
            let offset = block.restart_offset(i).unwrap_or_default();
            let at = restarts_at + 4 * i;
            self.show(at, at + 4, format!("restart point {i} at {offset}"));
        }
        let count_at = self.contents.len() - 4;
        let count = format!("restart count {}", block.restart_count());
        self.show(count_at, count_at + 4, count);
    }
}
