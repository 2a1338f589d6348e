//! Structure-aware fuzzing behind valid checksums ([`kv_testkit::resealed`]): one record of
//! the data file (a put, a delete or a write batch), its header, or the `ENGINE` marker is
//! mutated, its CRC32 recomputed, and the file fed to `inspect` and to `open` and reads.
//!
//! The record format is in `hashlog::record`: `crc32 u32 | key length u16 | value length
//! u32 | key | value`, the CRC over everything after it; a batch record has `BATCH + b` as
//! its value length field, a `u32` op count and `b` bytes of ops in the shared batch ops
//! format. A resized payload gets its value length (or ops length) field updated, or, as a
//! test of that mismatch too, not.
//!
//! `KV_FUZZ_CASES` inputs per decoder go to `inspect`, `KV_FUZZ_OPEN_CASES` to `open` (the
//! defaults are in [`SIZES`]): five decoders (put, delete and batch records, the header,
//! the marker) make 50,000 inputs, 1,000,000 under `KV_LONG=1`.

use kv_testkit::resealed::{self, LenField, Seal, Sizes, Unit};

/// The store's size and the default number of inputs per decoder.
const SIZES: Sizes = Sizes {
    writes: 60,
    inspect_cases: 7000,
    open_cases: 3000,
    decoders: 5,
};
/// Bytes before the first record: magic, version, CRC32.
const HEADER: usize = 16;
/// The value length field of a batch record is `BATCH` plus the ops' length.
const BATCH: u32 = 0x8000_0000;

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The record at `pos`: its decoder name, its length and its length field.
fn record(bytes: &[u8], pos: usize) -> Option<(&'static str, usize, Option<LenField>)> {
    let k = u16_at(bytes, pos + 4)?;
    let v = u32_at(bytes, pos + 6)?;
    let (name, len, field) = match v {
        u32::MAX => ("delete record", 10 + k, None),
        v if v >= BATCH => {
            let b = (v - BATCH) as usize;
            let field = LenField {
                at: 2,
                width: 4,
                base: BATCH,
                minus: 10,
            };
            ("batch record", 14 + b, Some(field))
        }
        v => {
            let field = LenField {
                at: 2,
                width: 4,
                base: 0,
                minus: 6 + k,
            };
            ("put record", 10 + k + v as usize, Some(field))
        }
    };
    (pos + len <= bytes.len()).then_some((name, len, field))
}

/// Cuts a hashlog store's files into their checksummed units.
fn split(name: &str, bytes: &[u8]) -> Vec<Unit> {
    let mut units = resealed::marker_units(name, bytes);
    if name != "data.log" || bytes.len() < HEADER {
        return units;
    }
    units.push(Unit {
        decoder: "data file header",
        start: 0,
        end: HEADER,
        seal: Seal::Suffix,
    });
    let mut pos = HEADER;
    while let Some((decoder, len, field)) = record(bytes, pos) {
        units.push(Unit {
            decoder,
            start: pos,
            end: pos + len,
            seal: Seal::Prefix(field),
        });
        pos += len;
    }
    assert_eq!(
        pos,
        bytes.len(),
        "data.log does not end with a whole record"
    );
    units
}

#[test]
fn resealed_inputs() {
    resealed::run::<hashlog::HashLog>(
        concat!(module_path!(), "::resealed_inputs"),
        &kv_shared::Options::new(),
        hashlog::inspect,
        split,
        SIZES,
    );
}
