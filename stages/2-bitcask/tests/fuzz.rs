//! Structure-aware fuzzing behind valid checksums ([`kv_testkit::resealed`]): one record of
//! a segment (a put, a tombstone, a seal or a write batch), one hint file entry, a merge's
//! commit record or the `ENGINE` marker is mutated, its CRC32 recomputed, and the file fed
//! to `inspect` and to `open` and reads.
//!
//! The formats are in `bitcask::record` (a record: `crc32 u32 | seq u64 | expiry u64 | kind
//! u8 | key length u16 | value length u32 | key | value`, the CRC over everything after it;
//! a batch's value is a `u32` op count and the ops in the shared batch ops format) and
//! `bitcask::hint` (an entry: `crc32 u32 | seq u64 | expiry u64 | offset u64 | length u32 |
//! kind u8 | key length u16 | key`). A resized payload gets its value (or key) length field
//! updated, or, as a test of that mismatch too, not. The store is built with background
//! merges off and one merge halfway, so it holds hint files and the run is deterministic.
//!
//! `KV_FUZZ_CASES` inputs per decoder go to `inspect`, `KV_FUZZ_OPEN_CASES` to `open` (the
//! defaults are in [`SIZES`]): six decoders (put, tombstone, seal and batch records, hint
//! entries, the marker; a merge commit record when the store holds one) make 51,000 inputs,
//! 1,020,000 under `KV_LONG=1`.

use kv_testkit::resealed::{self, LenField, Seal, Sizes, Unit};

/// The store's size and the default number of inputs per decoder.
const SIZES: Sizes = Sizes {
    writes: 300,
    inspect_cases: 6000,
    open_cases: 2500,
    decoders: 6,
};
/// Bytes before the first record of a segment or entry of a hint: magic, version, id.
const HEADER: usize = 16;
/// Bytes of a record before its key.
const RECORD_HEADER: usize = 27;
/// Bytes of a hint entry before its key.
const HINT_HEADER: usize = 35;

fn le(b: &[u8], at: usize, width: usize) -> Option<usize> {
    let mut v = 0usize;
    for (i, byte) in b.get(at..at + width)?.iter().enumerate() {
        v |= (*byte as usize) << (8 * i);
    }
    Some(v)
}

/// The record at `pos` of a segment: its decoder name and its length.
fn record(bytes: &[u8], pos: usize) -> Option<(&'static str, usize)> {
    let kind = *bytes.get(pos + 20)?;
    let len = RECORD_HEADER + le(bytes, pos + 21, 2)? + le(bytes, pos + 23, 4)?;
    let name = match kind {
        0 => "put record",
        1 => "tombstone record",
        2 => "seal record",
        _ => "batch record",
    };
    (pos + len <= bytes.len()).then_some((name, len))
}

/// Cuts a segment, a hint file or a record log into units of `len_of` each, after `HEADER`.
fn entries(
    bytes: &[u8],
    next: impl Fn(&[u8], usize) -> Option<(&'static str, usize, LenField)>,
) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut pos = HEADER;
    while let Some((decoder, len, field)) = next(bytes, pos) {
        let seal = Seal::Prefix(Some(field));
        units.push(Unit {
            decoder,
            start: pos,
            end: pos + len,
            seal,
        });
        pos += len;
    }
    assert_eq!(
        pos,
        bytes.len().max(HEADER),
        "a file does not end with a whole entry"
    );
    units
}

/// Cuts a bitcask store's files into their checksummed units.
fn split(name: &str, bytes: &[u8]) -> Vec<Unit> {
    let mut units = resealed::marker_units(name, bytes);
    if name.ends_with(".seg") {
        units.extend(entries(bytes, |b, pos| {
            let (decoder, len) = record(b, pos)?;
            let k = le(b, pos + 21, 2)?;
            Some((
                decoder,
                len,
                LenField {
                    at: 19,
                    width: 4,
                    base: 0,
                    minus: 23 + k,
                },
            ))
        }));
    } else if name.ends_with(".hint") {
        units.extend(entries(bytes, |b, pos| {
            let len = HINT_HEADER + le(b, pos + 33, 2)?;
            let field = LenField {
                at: 29,
                width: 2,
                base: 0,
                minus: 31,
            };
            (pos + len <= b.len()).then_some(("hint entry", len, field))
        }));
    } else if name.ends_with(".commit") {
        units.push(Unit {
            decoder: "merge commit",
            start: 0,
            end: bytes.len(),
            seal: Seal::Suffix,
        });
    }
    units
}

#[test]
fn resealed_inputs() {
    resealed::run::<bitcask::Bitcask>(
        concat!(module_path!(), "::resealed_inputs"),
        &kv_shared::Options::new()
            .set("segment_bytes", "4K")
            .set("background_merge", "false"),
        bitcask::inspect,
        split,
        SIZES,
    );
}

/// Regression (found by `resealed_inputs`: a hint entry whose sequence number was set to
/// `u64::MAX` under a recomputed CRC): open computed the next sequence number as the
/// largest one found plus one, which overflowed and panicked (and would wrap to 0 without
/// overflow checks, numbering later writes below earlier ones). A sequence number that
/// leaves no room for the next is damage: open refuses it as corruption.
#[test]
fn a_sequence_number_at_its_maximum_is_corruption() {
    let fs = kv_testkit::FaultFs::new(1);
    let options = kv_shared::Options::new().with_file_system(std::sync::Arc::new(fs.clone()));
    let dir = kv_testkit::fault_fs::store_path();
    let engine = <bitcask::Bitcask as kv_shared::Engine>::open(&dir, &options).unwrap();
    kv_shared::Engine::put(&engine, b"fruit", b"apple").unwrap();
    kv_shared::Engine::sync(&engine).unwrap();
    drop(engine);
    let mut image = fs.image();
    let (path, segment) = image
        .iter_mut()
        .find(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    // The one record: its sequence number is the 8 bytes after its CRC.
    let record = segment.split_off(HEADER);
    let mut payload = record[4..].to_vec();
    payload[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    segment.extend(Seal::Prefix(None).reseal(&record, &payload, false));
    let path = path.clone();
    let damaged = kv_testkit::FaultFs::from_image(1, &image);
    let options = kv_shared::Options::new().with_file_system(std::sync::Arc::new(damaged));
    match <bitcask::Bitcask as kv_shared::Engine>::open(&dir, &options) {
        Err(kv_shared::Error::Corruption { .. }) => {}
        Err(e) => panic!("{}: another error: {e}", path.display()),
        Ok(_) => panic!(
            "{}: a sequence number of u64::MAX was accepted",
            path.display()
        ),
    }
}

/// Regression (found by `resealed_inputs` under `KV_LONG=1`: a batch record whose first
/// sequence number was set to `u64::MAX` under a recomputed CRC): numbering the batch's ops
/// `first + i` overflowed and panicked as soon as open read the record. A batch whose ops'
/// sequence numbers overflow is now refused by the record decoder, like any malformed
/// record: in the newest segment it is where the unsynced tail starts, anywhere else it is
/// corruption.
#[test]
fn a_batch_whose_sequence_numbers_overflow_is_refused() {
    use kv_shared::Engine;
    let fs = kv_testkit::FaultFs::new(1);
    let options = kv_shared::Options::new().with_file_system(std::sync::Arc::new(fs.clone()));
    let dir = kv_testkit::fault_fs::store_path();
    let engine = bitcask::Bitcask::open(&dir, &options).unwrap();
    let mut batch = kv_shared::WriteBatch::new();
    batch.put(b"fruit", b"apple").unwrap();
    batch.put(b"tree", b"oak").unwrap();
    engine.write(&batch).unwrap();
    engine.sync().unwrap();
    drop(engine);
    let mut image = fs.image();
    let segment = image
        .iter_mut()
        .find(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
        .map(|(_, bytes)| bytes)
        .unwrap();
    // The one record, the batch: its first sequence number is the 8 bytes after its CRC.
    let record = segment.split_off(HEADER);
    assert_eq!(record[20], 3, "the record is a batch");
    let mut payload = record[4..].to_vec();
    payload[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    segment.extend(Seal::Prefix(None).reseal(&record, &payload, false));
    let damaged = kv_testkit::FaultFs::from_image(1, &image);
    let options = kv_shared::Options::new().with_file_system(std::sync::Arc::new(damaged));
    match bitcask::Bitcask::open(&dir, &options) {
        Ok(store) => assert_eq!(store.get(b"fruit").unwrap(), None, "the batch was kept"),
        Err(kv_shared::Error::Corruption { .. }) => {}
        Err(e) => panic!("another error: {e}"),
    }
}
