//! Structure-aware fuzzing behind valid checksums ([`kv_testkit::resealed`]): one data
//! block, the index block or the footer of a table, one WAL record (a put, a delete or a
//! write batch), or the `ENGINE` marker is mutated, its CRC32 recomputed, and the file fed
//! to `inspect` and to `open` and reads.
//!
//! The formats are in `sstable::frame` (every block and WAL record is `crc32 u32 | length
//! u32 | body`, the CRC over the length and the body), `sstable::block`,
//! `sstable::index`, `sstable::footer` (60 bytes: 48 of fields, their CRC32, the magic)
//! and `sstable::wal_entry`. A resized body gets its frame's length updated, or, as a test
//! of that mismatch too, not; the index's block handles are left as they were either way.
//!
//! `KV_FUZZ_CASES` inputs per decoder go to `inspect`, `KV_FUZZ_OPEN_CASES` to `open` (the
//! defaults are in [`SIZES`]): seven decoders (data blocks, index blocks, footers, WAL
//! puts, deletes and batches, the marker) make 50,400 inputs, 1,008,000 under `KV_LONG=1`.

use kv_testkit::resealed::{self, Seal, Sizes, Unit};

/// The store's size and the default number of inputs per decoder.
const SIZES: Sizes = Sizes {
    writes: 300,
    inspect_cases: 5000,
    open_cases: 2200,
    decoders: 7,
};
/// Bytes of a WAL's header: magic and version.
const WAL_HEADER: usize = 12;
/// Bytes of a table's footer: fields, their CRC32, the magic.
const FOOTER: usize = 60;
/// Bytes of the footer's fields and CRC32 (the magic after them is not checksummed).
const FOOTER_SEALED: usize = 52;

/// The frames that tile `bytes[from..to]`, each named by `name` from its body.
fn frames(bytes: &[u8], from: usize, to: usize, name: impl Fn(&[u8]) -> &'static str) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut pos = from;
    while let Some(n) = bytes.get(pos + 4..pos + 8) {
        let len = 8 + u32::from_le_bytes(n.try_into().unwrap()) as usize;
        if pos + len > to {
            break;
        }
        let decoder = name(&bytes[pos + 8..pos + len]);
        units.push(Unit {
            decoder,
            start: pos,
            end: pos + len,
            seal: Seal::Frame,
        });
        pos += len;
    }
    assert_eq!(pos, to, "frames do not tile the region");
    units
}

/// A table's units: data blocks, the index block (the last frame), the footer.
fn table(bytes: &[u8]) -> Vec<Unit> {
    let footer = bytes.len() - FOOTER;
    let mut units = frames(bytes, 0, footer, |_| "data block");
    if let Some(index) = units.last_mut() {
        index.decoder = "index block";
    }
    let seal = Seal::Suffix;
    units.push(Unit {
        decoder: "table footer",
        start: footer,
        end: footer + FOOTER_SEALED,
        seal,
    });
    units
}

/// Cuts an sstable store's files into their checksummed units.
fn split(name: &str, bytes: &[u8]) -> Vec<Unit> {
    let mut units = resealed::marker_units(name, bytes);
    if name.ends_with(".sst") {
        units.extend(table(bytes));
    } else if name.ends_with(".wal") && bytes.len() >= WAL_HEADER {
        units.extend(frames(
            bytes,
            WAL_HEADER,
            bytes.len(),
            |payload| match payload.first() {
                Some(1) => "wal put",
                Some(2) => "wal delete",
                _ => "wal batch",
            },
        ));
    }
    units
}

#[test]
fn resealed_inputs() {
    resealed::run::<sstable::SstableStore>(
        concat!(module_path!(), "::resealed_inputs"),
        &kv_shared::Options::new()
            .set("memtable_bytes", "4K")
            .set("block_bytes", "512"),
        sstable::inspect,
        split,
        SIZES,
    );
}

/// Regression (found by `resealed_inputs`: a table footer whose last WAL number was set to
/// `u64::MAX` under a recomputed CRC): open computed the next file number as the largest
/// one found plus one, which overflowed and panicked (and would wrap to 0 without overflow
/// checks, reusing file numbers). A file number that leaves no room for the next is damage:
/// open refuses it as corruption.
#[test]
fn a_file_number_at_its_maximum_is_corruption() {
    use kv_shared::Engine;
    let fs = kv_testkit::FaultFs::new(1);
    let options = kv_shared::Options::new().with_file_system(std::sync::Arc::new(fs.clone()));
    let dir = kv_testkit::fault_fs::store_path();
    let engine = sstable::SstableStore::open(&dir, &options).unwrap();
    engine.put(b"fruit", b"apple").unwrap();
    engine.flush().unwrap();
    drop(engine);
    let mut image = fs.image();
    let table = image
        .values_mut()
        .find(|bytes| bytes.ends_with(b"KVSSTABL"))
        .expect("the flush wrote a table");
    // The footer's fields and CRC32 are the 52 bytes before the magic; the last WAL number
    // is the u64 at footer offset 36.
    let footer = table.len() - FOOTER;
    let old = table[footer..footer + FOOTER_SEALED].to_vec();
    let mut fields = old[..48].to_vec();
    fields[36..44].copy_from_slice(&u64::MAX.to_le_bytes());
    let sealed = Seal::Suffix.reseal(&old, &fields, false);
    table[footer..footer + FOOTER_SEALED].copy_from_slice(&sealed);
    let damaged = kv_testkit::FaultFs::from_image(1, &image);
    let options = kv_shared::Options::new().with_file_system(std::sync::Arc::new(damaged));
    match sstable::SstableStore::open(&dir, &options) {
        Err(kv_shared::Error::Corruption { .. }) => {}
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("a WAL number of u64::MAX was accepted"),
    }
}
