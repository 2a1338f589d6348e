//! Structure-aware fuzzing behind valid checksums ([`kv_testkit::resealed`]): one data
//! block, the filter block, the index block or the footer of a table, one WAL record (a
//! write batch), one MANIFEST record (a version edit) or its header, `CURRENT`, or the
//! `ENGINE` marker is mutated, its CRC32 recomputed, and the file fed to `inspect` and to
//! `open` and reads.
//!
//! The formats are in `lsm::table` (a block is `contents | type u8 | crc32 u32`, the CRC
//! over the contents and the type byte; the filter block `bits | crc32 u32`; the 48-byte
//! footer `fields | crc32 u32 | magic`), `lsm::manifest` and `lsm::wal` (records are
//! `sstable::frame`s: `crc32 u32 | length u32 | payload`). A resized WAL or manifest
//! payload gets its frame's length updated, or, as a test of that mismatch too, not; a
//! resized block keeps the handle the index holds for it.
//!
//! `KV_FUZZ_CASES` inputs per decoder go to `inspect`, `KV_FUZZ_OPEN_CASES` to `open` (the
//! defaults are in [`SIZES`]): nine decoders (data, filter and index blocks, footers,
//! version edits, the manifest header, WAL records, `CURRENT`, the marker) make 50,400
//! inputs, 1,008,000 under `KV_LONG=1`.

use kv_testkit::resealed::{self, Seal, Sizes, Unit};

/// The store's size and the default number of inputs per decoder.
const SIZES: Sizes = Sizes {
    writes: 400,
    inspect_cases: 4000,
    open_cases: 1600,
    decoders: 9,
};
/// Bytes of a table's footer.
const FOOTER: usize = 48;
/// Bytes of the footer's fields and CRC32 (the magic after them is not checksummed).
const FOOTER_SEALED: usize = 40;
/// Bytes of a block's trailer: type and CRC32.
const TRAILER: usize = 5;

fn le(b: &[u8], at: usize, width: usize) -> usize {
    (0..width).fold(0, |v, i| v | (b[at + i] as usize) << (8 * i))
}

/// The LEB128 varint at `*pos`, which moves past it.
fn varint(b: &[u8], pos: &mut usize) -> usize {
    let mut v = 0;
    for shift in (0..).step_by(7) {
        let byte = b[*pos];
        *pos += 1;
        v |= ((byte & 0x7F) as usize) << shift;
        if byte < 0x80 {
            break;
        }
    }
    v
}

/// The data block handles (offset, size) the index block's `contents` hold.
fn handles(contents: &[u8]) -> Vec<(usize, usize)> {
    let restarts = le(contents, contents.len() - 4, 4);
    let end = contents.len() - 4 - 4 * restarts;
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < end {
        let _shared = varint(contents, &mut pos);
        let unshared = varint(contents, &mut pos);
        let value_len = varint(contents, &mut pos);
        pos += unshared + 8;
        out.push((le(contents, pos, 8), le(contents, pos + 8, 4)));
        pos += value_len;
    }
    out
}

/// A table's units: every data block, the filter block, the index block, the footer.
fn table(bytes: &[u8]) -> Vec<Unit> {
    let footer = bytes.len() - FOOTER;
    let (filter_at, filter_len) = (le(bytes, footer, 8), le(bytes, footer + 8, 4));
    let (index_at, index_len) = (le(bytes, footer + 12, 8), le(bytes, footer + 20, 4));
    let index = &bytes[index_at..index_at + index_len];
    assert_eq!(
        index[index_len - TRAILER],
        0,
        "an index block is never compressed"
    );
    let mut units: Vec<Unit> = handles(&index[..index_len - TRAILER])
        .into_iter()
        .map(|(at, len)| Unit {
            decoder: "data block",
            start: at,
            end: at + len,
            seal: Seal::Trailer,
        })
        .collect();
    let block = |decoder, start, len, seal| Unit {
        decoder,
        start,
        end: start + len,
        seal,
    };
    units.push(block("filter block", filter_at, filter_len, Seal::Suffix));
    units.push(block("index block", index_at, index_len, Seal::Trailer));
    units.push(block("table footer", footer, FOOTER_SEALED, Seal::Suffix));
    units
}

/// The frames of a record log after its `header` bytes, all of decoder `decoder`.
fn records(bytes: &[u8], header: usize, decoder: &'static str) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut pos = header;
    while pos + 8 <= bytes.len() {
        let len = 8 + le(bytes, pos + 4, 4);
        units.push(Unit {
            decoder,
            start: pos,
            end: pos + len,
            seal: Seal::Frame,
        });
        pos += len;
    }
    assert_eq!(
        pos,
        bytes.len().max(header),
        "a log does not end with a whole record"
    );
    units
}

/// Cuts an lsm store's files into their checksummed units.
fn split(name: &str, bytes: &[u8]) -> Vec<Unit> {
    let mut units = resealed::marker_units(name, bytes);
    if name.ends_with(".sst") {
        units.extend(table(bytes));
    } else if name.ends_with(".wal") && bytes.len() >= 12 {
        units.extend(records(bytes, 12, "wal batch"));
    } else if name.starts_with("MANIFEST-") && bytes.len() >= 16 {
        let seal = Seal::Suffix;
        units.push(Unit {
            decoder: "manifest header",
            start: 0,
            end: 16,
            seal,
        });
        units.extend(records(bytes, 16, "version edit"));
    } else if name == "CURRENT" {
        units.push(Unit {
            decoder: "CURRENT",
            start: 0,
            end: bytes.len(),
            seal: Seal::Suffix,
        });
    }
    units
}

#[test]
fn resealed_inputs() {
    resealed::run::<lsm::LsmTree>(
        concat!(module_path!(), "::resealed_inputs"),
        &kv_shared::Options::new()
            .set("memtable_bytes", "4K")
            .set("table_bytes", "4K")
            .set("level1_bytes", "12K")
            .set("level_ratio", "4")
            .set("l0_trigger", "2")
            .set("block_bytes", "512"),
        lsm::inspect,
        split,
        SIZES,
    );
}

/// Regression (found by `resealed_inputs`: a data block whose bytes were changed under a
/// recomputed block checksum, so that its entries are out of order): a compaction over that
/// table fed the entries to the table builder, whose order check was a `debug_assert`: the
/// compaction thread panicked in a debug build, and a release build wrote a table that
/// breaks its own order and installed a version breaking the level invariants. Now the
/// builder refuses an entry out of order as corruption, and so does installing a version
/// that breaks the invariants.
#[test]
fn a_compaction_over_entries_out_of_order_fails_with_corruption() {
    use kv_shared::Engine;
    let fs = kv_testkit::FaultFs::new(1);
    let options = kv_shared::Options::new().set("l0_trigger", "8");
    let on = |fs: kv_testkit::FaultFs| options.clone().with_file_system(std::sync::Arc::new(fs));
    let dir = kv_testkit::fault_fs::store_path();
    let tree = lsm::LsmTree::open(&dir, &on(fs.clone())).unwrap();
    for i in 0..20 {
        tree.put(format!("key{i:02}").as_bytes(), b"value").unwrap();
    }
    tree.flush().unwrap();
    drop(tree);
    let mut image = fs.image();
    let sst = image
        .iter_mut()
        .find(|(p, _)| p.extension().is_some_and(|e| e == "sst"))
        .map(|(_, bytes)| bytes)
        .expect("the flush wrote a table");
    let first = table(sst)
        .into_iter()
        .find(|u| u.decoder == "data block")
        .unwrap();
    let old = sst[first.start..first.end].to_vec();
    // The first entry: shared 0, unshared 5, value length 5, then "key00": its first key
    // byte set to 0xFF puts it after every later key.
    let mut contents = old[..old.len() - TRAILER].to_vec();
    assert_eq!(&contents[..8], b"\x00\x05\x05key00");
    contents[3] = 0xFF;
    sst[first.start..first.end].copy_from_slice(&Seal::Trailer.reseal(&old, &contents, false));
    let tree = lsm::LsmTree::open(&dir, &on(kv_testkit::FaultFs::from_image(1, &image))).unwrap();
    match tree.full_compaction() {
        Err(kv_shared::Error::Corruption { detail, .. }) => {
            assert!(detail.contains("out of order"))
        }
        Err(e) => panic!("another error: {e}"),
        Ok(()) => panic!("a table with entries out of order was compacted"),
    }
}
