//! The annotated dumps (`kv inspect`) of each file format, pinned: a table with its filter
//! and index, a manifest, `CURRENT`, and a WAL of stage 4 writes. Any change to a format
//! shows up here as a reviewable diff.

mod common;

use kv_shared::Fs;
use lsm::file_names;
use lsm::manifest::{Manifest, ManifestState};
use lsm::options::LsmOptions;
use lsm::table::table_builder::TableBuilder;
use lsm::version_edit::{TableMeta, VersionEdit};

/// Builds table `number` in a temporary directory with `settings` (as `kv --set` takes
/// them), its entries added by `add`; returns its metadata and its bytes, whose length the
/// metadata must give.
fn build_table(
    number: u64,
    settings: &str,
    add: impl FnOnce(&mut TableBuilder),
) -> (TableMeta, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(file_names::table(number));
    let options = LsmOptions::parse(&common::options(settings)).unwrap();
    let mut b = TableBuilder::create(&Fs::default(), &path, number, &options).unwrap();
    add(&mut b);
    let meta = b.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(meta.size, bytes.len() as u64);
    (meta, bytes)
}

/// A two-block table (64-byte blocks, a restart point every 3 entries) with a tombstone,
/// two versions of one key and keys that share prefixes.
#[test]
fn table_dump() {
    let (meta, bytes) = build_table(7, "block_bytes=64 restart_interval=3", |b| {
        b.add(b"apple", 5, Some(b"red")).unwrap();
        b.add(b"apricot", 7, Some(b"orange")).unwrap();
        b.add(b"banana", 9, None).unwrap();
        b.add(b"banana", 3, Some(b"yellow")).unwrap();
        b.add(b"bandana", 6, Some(b"paisley")).unwrap();
        b.add(b"cherry", 4, Some(b"dark red")).unwrap();
        b.add(b"date", 2, Some(b"brown")).unwrap();
    });
    assert_eq!(
        (meta.smallest.as_slice(), meta.largest.as_slice()),
        (&b"apple"[..], &b"date"[..])
    );
    insta::assert_snapshot!(lsm::inspect(&bytes).unwrap());
}

/// A one-block table compressed with lz4: repetitive values shrink, and the dump shows the
/// decompressed entries.
#[test]
fn lz4_table_dump() {
    let (_, bytes) = build_table(8, "compression=lz4 restart_interval=4", |b| {
        for i in 0..6u64 {
            let value = format!("value {i} ").repeat(8);
            b.add(
                format!("key{i:03}").as_bytes(),
                10 + i,
                Some(value.as_bytes()),
            )
            .unwrap();
        }
    });
    let dump = lsm::inspect(&bytes).unwrap();
    assert!(dump.contains("compression type 1 (lz4)"), "{dump}");
    insta::assert_snapshot!(dump);
}

fn meta(number: u64, smallest: &str, largest: &str) -> TableMeta {
    TableMeta {
        number,
        size: 4096,
        entries: 100,
        smallest: smallest.into(),
        smallest_seq: 10,
        largest: largest.into(),
        largest_seq: 20,
    }
}

/// A manifest holding its opening snapshot, a flush and a compaction; and `CURRENT`.
#[test]
fn manifest_and_current_dumps() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = Fs::default();
    let mut state = ManifestState::new();
    state.log_number = 3;
    state.next_file = 5;
    state.levels[0].insert(4, meta(4, "a", "m"));
    let m = Manifest::create(&fs, tmp.path(), 2, &state).unwrap();
    m.append(&VersionEdit {
        log_number: Some(6),
        next_file: Some(7),
        last_seq: Some(250),
        added: vec![(0, meta(5, "c", "z"))],
        ..VersionEdit::default()
    })
    .unwrap();
    m.append(&VersionEdit {
        next_file: Some(9),
        removed: vec![(0, 4), (0, 5)],
        added: vec![(1, meta(7, "a", "k")), (1, meta(8, "l", "z"))],
        ..VersionEdit::default()
    })
    .unwrap();
    let manifest = std::fs::read(tmp.path().join("MANIFEST-000002")).unwrap();
    insta::assert_snapshot!("manifest_dump", lsm::inspect(&manifest).unwrap());
    let current = std::fs::read(tmp.path().join("CURRENT")).unwrap();
    insta::assert_snapshot!("current_dump", lsm::inspect(&current).unwrap());
}

/// A WAL holding a single put (a batch of one) and a batch of a put, a delete and a put
/// of an empty value, in stage 4's payload format.
#[test]
fn wal_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("000003.wal");
    let wal = lsm::wal::Wal::create(&Fs::default(), &path, lsm::wal::KIND).unwrap();
    wal.append(&lsm::wal::encode(1, b"apple", Some(b"red")))
        .unwrap();
    let mut batch = lsm::wal::encode(2, b"banana", Some(b"yellow"));
    kv_shared::batch::encode_op(&mut batch, b"apple", None);
    kv_shared::batch::encode_op(&mut batch, b"cherry", Some(b""));
    lsm::wal::write_header(&mut batch, 2, 3);
    wal.append(&batch).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    insta::assert_snapshot!(lsm::inspect::dump_wal(&bytes).unwrap());
}

/// `inspect` claims only this engine's files and never panics on a cut or damaged one.
#[test]
fn inspect_refuses_other_bytes_and_survives_damage() {
    assert_eq!(lsm::inspect(b""), None);
    assert_eq!(lsm::inspect(b"KVMARKER and more bytes"), None);
    let (_, bytes) = build_table(1, "block_bytes=32 restart_interval=3", |b| {
        for i in 0..20u32 {
            b.add(format!("k{i:02}").as_bytes(), u64::from(i) + 1, Some(b"v"))
                .unwrap();
        }
    });
    for cut in 0..bytes.len() {
        let _ = lsm::inspect(&bytes[cut..]);
        let _ = lsm::inspect(&bytes[..cut]);
        let mut flipped = bytes.clone();
        flipped[cut] ^= 0x55;
        let _ = lsm::inspect(&flipped);
    }
}
