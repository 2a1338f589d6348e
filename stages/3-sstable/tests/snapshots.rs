//! The annotated dumps of a small WAL and a small table, pinned by insta snapshots: any
//! change to either format shows up as a diff in review.

use kv_shared::{Fs, WriteBatch};
use sstable::entry::Entry;
use sstable::table_builder::write_table;
use sstable::wal::{WAL_KIND, Wal};
use sstable::wal_entry;

/// The bytes of a WAL holding one record per payload.
fn wal_of(payloads: &[Vec<u8>]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("000001.wal");
    let wal = Wal::create(&Fs::default(), &path, WAL_KIND).unwrap();
    for payload in payloads {
        wal.append(payload).unwrap();
    }
    std::fs::read(&path).unwrap()
}

fn small_wal() -> Vec<u8> {
    wal_of(&[
        wal_entry::encode_put(b"apple", b"red"),
        wal_entry::encode_put(b"fig", b""),
        wal_entry::encode_delete(b"apple"),
    ])
}

/// A WAL with a put, then a write batch of a put, a delete and a put of an empty value:
/// one record holding all three.
fn wal_with_batch() -> Vec<u8> {
    let mut batch = WriteBatch::new();
    batch.put(b"banana", b"yellow").unwrap();
    batch.delete(b"apple").unwrap();
    batch.put(b"cherry", b"").unwrap();
    wal_of(&[
        wal_entry::encode_put(b"apple", b"red"),
        wal_entry::encode_batch(&batch).unwrap(),
    ])
}

fn small_table() -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("000005.sst");
    let entries = [
        ("apple", Some("red")),
        ("banana", None),
        ("cherry", Some("dark red")),
        ("date", Some("brown")),
        ("elder", Some("")),
    ]
    .map(|(k, v)| {
        let entry = v.map_or(Entry::Tombstone, |v| Entry::Value(v.as_bytes().to_vec()));
        Ok((k.as_bytes().to_vec(), entry))
    });
    // 40-byte blocks, so five entries make three blocks and the index has three entries.
    write_table(&Fs::default(), &path, 40, 3, 4, entries).unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn wal_dump() {
    insta::assert_snapshot!(sstable::inspect(&small_wal()).unwrap());
}

#[test]
fn wal_batch_dump() {
    insta::assert_snapshot!(sstable::inspect(&wal_with_batch()).unwrap());
}

#[test]
fn table_dump() {
    insta::assert_snapshot!(sstable::inspect(&small_table()).unwrap());
}

#[test]
fn inspect_recognises_only_its_own_files_and_never_panics() {
    assert_eq!(sstable::inspect(b""), None);
    assert_eq!(sstable::inspect(b"KVHASHLG\x01\x00\x00\x00"), None);
    assert_eq!(sstable::inspect(&[0u8; 100]), None);
    for bytes in [small_wal(), wal_with_batch(), small_table()] {
        for cut in 0..=bytes.len() {
            let _ = sstable::inspect(&bytes[..cut]);
            let _ = sstable::inspect(&bytes[cut..]);
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x81;
            let _ = sstable::inspect(&bad);
        }
    }
}
