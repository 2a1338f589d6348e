//! Damage on disk: torn tails are cut, anything else is reported, nothing is ever misread.
//!
//! Each test writes the same small log through the engine (`common::OPS`), damages a copy of
//! its data file in every possible way of one kind, and checks the one outcome allowed for
//! that exact damage.

mod common;

use std::os::unix::fs::FileExt;

use common::{Log, OPS, assert_holds, data_path, model, store_with};
use hashlog::HashLog;
use hashlog::data_file::FILE_HEADER_LEN;
use kv_shared::{Engine, Error, Options};

fn torn_tail_bytes(engine: &HashLog) -> u64 {
    engine.stats().unwrap().extra["torn_tail_bytes"]
}

/// Cutting the file at every offset inside its last four records reopens to exactly the
/// records that were whole, cuts the file back to them, and takes new writes after them.
#[test]
fn truncation_at_every_offset_of_the_tail_keeps_the_whole_records() {
    let log = Log::write(OPS);
    let from = log.starts[OPS.len() - 4];
    for cut in from..=log.bytes.len() as u64 {
        let (_tmp, dir) = store_with(&log.bytes[..cut as usize]);
        let whole = log.ends.iter().filter(|&&end| end <= cut).count();
        let valid_len = log.ends[whole - 1];
        let context = format!("cut at {cut}, {whole} whole records");

        let engine = HashLog::open(&dir, &Options::new()).unwrap();
        let mut expected = model(OPS, whole);
        assert_holds(&engine, &expected, &context);
        assert_eq!(torn_tail_bytes(&engine), cut - valid_len, "{context}");
        assert_eq!(std::fs::metadata(data_path(&dir)).unwrap().len(), valid_len);

        engine.put(b"after", b"the cut").unwrap();
        engine.close().unwrap();
        expected.insert(b"after".to_vec(), b"the cut".to_vec());
        let engine = HashLog::open(&dir, &Options::new()).unwrap();
        assert_holds(&engine, &expected, &context);
        assert_eq!(torn_tail_bytes(&engine), 0, "{context}");
        engine.close().unwrap();
    }
}

/// A file cut inside its header was damaged, not torn by a crash (the header is written
/// atomically): open refuses it and leaves it as it was.
#[test]
fn truncation_inside_the_header_is_corruption() {
    let log = Log::write(OPS);
    for cut in 0..FILE_HEADER_LEN as usize {
        let (_tmp, dir) = store_with(&log.bytes[..cut]);
        match HashLog::open(&dir, &Options::new()) {
            Err(Error::Corruption { file, offset, .. }) => {
                assert_eq!((file, offset), (data_path(&dir), 0), "cut at {cut}");
            }
            other => panic!("cut at {cut}: expected corruption, got {other:?}"),
        }
        assert_eq!(std::fs::read(data_path(&dir)).unwrap(), &log.bytes[..cut]);
    }
}

/// Flipping bits of any byte of the file, then opening: damage to the header fails the open
/// with `Corruption` naming the file, and changes nothing on disk; damage to a record makes
/// it and everything after it the file's unsynced tail (the data file is the newest log: a
/// power loss can leave a hole before good records), so the store opens with the records
/// before it, and when records followed, the damaged file was first copied whole into
/// `lost/`. Never a wrong value, never a panic.
#[test]
fn a_flipped_byte_anywhere_is_detected_at_open() {
    let log = Log::write(OPS);
    let last = OPS.len() - 1;
    for offset in 0..log.bytes.len() {
        for mask in [0x01u8, 0x20, 0xff] {
            let mut damaged = log.bytes.clone();
            damaged[offset] ^= mask;
            let (_tmp, dir) = store_with(&damaged);
            let context = format!("flip {mask:#04x} at offset {offset}");
            let result = HashLog::open(&dir, &Options::new());
            // The dump's last line predicts what open does (when the magic is intact, so
            // that the dump recognises the file at all).
            if let Some(dump) = hashlog::inspect(&damaged) {
                assert_eq!(
                    dump.contains("open refuses this file"),
                    result.is_err(),
                    "{context}: dump and open disagree:\n{dump}"
                );
            }
            let lost = dir.join(kv_shared::repair::LOST_DIR).join("data.log");
            match log.record_at(offset as u64) {
                Some(record) => {
                    let engine = result.unwrap_or_else(|e| panic!("{context}: {e}"));
                    assert_holds(&engine, &model(OPS, record), &context);
                    let torn = log.bytes.len() as u64 - log.starts[record];
                    assert_eq!(torn_tail_bytes(&engine), torn, "{context}");
                    engine.close().unwrap();
                    let on_disk = std::fs::read(data_path(&dir)).unwrap();
                    assert_eq!(on_disk.len() as u64, log.starts[record], "{context}");
                    match std::fs::read(&lost) {
                        Ok(copy) => assert!(copy == damaged, "{context}: the copy in lost/"),
                        Err(_) => assert_eq!(record, last, "{context}: no copy in lost/"),
                    }
                }
                None => {
                    match result {
                        Err(Error::Corruption { file, offset, .. }) => {
                            assert_eq!((file, offset), (data_path(&dir), 0), "{context}");
                        }
                        other => panic!("{context}: expected corruption, got {other:?}"),
                    }
                    let on_disk = std::fs::read(data_path(&dir)).unwrap();
                    assert!(on_disk == damaged, "{context}: the file was changed");
                }
            }
        }
    }
}

/// Flipping bits of any byte of the file while the store is open: a `get` or a `scan` that
/// reads the damaged record returns `Corruption` at that record's offset; every other read
/// returns the right value.
#[test]
fn a_flipped_byte_under_an_open_store_is_never_a_wrong_value() {
    let log = Log::write(OPS);
    let (_tmp, dir) = store_with(&log.bytes);
    let engine = HashLog::open(&dir, &Options::new()).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(data_path(&dir))
        .unwrap();
    let expected = model(OPS, OPS.len());
    // The op whose record holds each live key's current value.
    let latest = |key: &[u8]| OPS.iter().rposition(|(k, _)| *k == key).unwrap();

    for offset in 0..log.bytes.len() {
        for mask in [0x01u8, 0xff] {
            let context = format!("flip {mask:#04x} at offset {offset}");
            file.write_all_at(&[log.bytes[offset] ^ mask], offset as u64)
                .unwrap();
            let damaged = log.record_at(offset as u64);

            for key in common::keys() {
                let result = engine.get(key);
                match expected.get(key) {
                    Some(_) if damaged == Some(latest(key)) => match result {
                        Err(Error::Corruption { offset, .. }) => {
                            assert_eq!(offset, log.starts[latest(key)], "{context}");
                        }
                        other => {
                            panic!("{context}: get {key:?}: expected corruption, got {other:?}")
                        }
                    },
                    want => assert_eq!(result.unwrap().as_ref(), want, "{context}: get {key:?}"),
                }
            }

            let mut scanned = Vec::new();
            let mut error = None;
            for item in engine.scan(kv_shared::KeyRange::all()).unwrap() {
                match item {
                    Ok(pair) => scanned.push(pair),
                    Err(e) => error = Some(e),
                }
            }
            let first_damaged = expected.keys().position(|k| damaged == Some(latest(k)));
            let want: Vec<(Vec<u8>, Vec<u8>)> = expected
                .clone()
                .into_iter()
                .take(first_damaged.unwrap_or(expected.len()))
                .collect();
            assert_eq!(scanned, want, "{context}: scan");
            assert_eq!(
                error.as_ref().map(Error::is_corruption),
                first_damaged.map(|_| true),
                "{context}: scan error {error:?}"
            );

            file.write_all_at(&[log.bytes[offset]], offset as u64)
                .unwrap();
        }
    }
    assert_holds(&engine, &expected, "after the damage was undone");
    engine.close().unwrap();
}
