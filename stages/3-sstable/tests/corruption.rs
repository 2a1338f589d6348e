//! Damaged files are detected: the last WAL's unsynced tail (from its first damaged record
//! on) is dropped, a flipped byte in an older WAL or a table is an error, and no damage ever
//! yields a wrong value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kv_shared::{Engine, Error, KeyRange, Options};
use kv_testkit::conformance::assert_corruption_in;
use sstable::SstableStore;

fn options() -> Options {
    Options::new()
        .set("memtable_bytes", "1K")
        .set("block_bytes", "256")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

/// A store with a few tables and a memtable, closed, in a new temporary directory: the
/// guard, the store's directory and the model of its contents.
fn build() -> (tempfile::TempDir, PathBuf, BTreeMap<Vec<u8>, Vec<u8>>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let e = SstableStore::open(&dir, &options()).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..150u32 {
        let (k, v) = (
            format!("key{i:03}"),
            format!("value-{i}-{}", "x".repeat(i as usize % 20)),
        );
        e.put(k.as_bytes(), v.as_bytes()).unwrap();
        model.insert(k.into_bytes(), v.into_bytes());
    }
    for i in (0..150u32).step_by(4) {
        let k = format!("key{i:03}");
        e.delete(k.as_bytes()).unwrap();
        model.remove(k.as_bytes());
    }
    e.close().unwrap();
    (tmp, dir, model)
}

/// Every answer is either right or a corruption error: never a wrong value.
fn right_or_corruption(dir: &Path, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> usize {
    let e = match SstableStore::open(dir, &options()) {
        Ok(e) => e,
        Err(Error::Corruption { .. }) => return 1,
        Err(other) => panic!("open: expected Ok or Corruption, got {other}"),
    };
    let mut errors = 0;
    for i in 0..160u32 {
        let k = format!("key{i:03}").into_bytes();
        match e.get(&k) {
            Ok(v) => assert_eq!(v.as_ref(), model.get(&k), "wrong value for {k:?}"),
            Err(Error::Corruption { .. }) => errors += 1,
            Err(other) => panic!("get: {other}"),
        }
    }
    match e
        .scan(KeyRange::all())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(all) => assert_eq!(all, model.clone().into_iter().collect::<Vec<_>>()),
        Err(Error::Corruption { .. }) => errors += 1,
        Err(other) => panic!("scan: {other}"),
    }
    errors
}

#[test]
fn a_flipped_byte_in_a_table_is_never_a_wrong_value() {
    let (_tmp, dir, model) = build();
    let tables = files(&dir, ".sst");
    assert!(
        tables.len() >= 3,
        "the store has several tables: {tables:?}"
    );
    let victim = &tables[tables.len() / 2];
    let original = std::fs::read(victim).unwrap();
    let step = (original.len() / 200).max(1);
    for at in (0..original.len()).step_by(step) {
        let mut bad = original.clone();
        bad[at] ^= 0x04;
        std::fs::write(victim, &bad).unwrap();
        let errors = right_or_corruption(&dir, &model);
        assert!(
            errors > 0,
            "flip at byte {at} of {} went unnoticed",
            victim.display()
        );
    }
    std::fs::write(victim, &original).unwrap();
    assert_eq!(right_or_corruption(&dir, &model), 0);
}

#[test]
fn a_corrupt_block_names_file_and_offset() {
    let (_tmp, dir, _) = build();
    let table = files(&dir, ".sst")[0].clone();
    let mut bytes = std::fs::read(&table).unwrap();
    bytes[20] ^= 0xff; // inside the first data block
    std::fs::write(&table, &bytes).unwrap();
    let e = SstableStore::open(&dir, &options()).unwrap();
    let errors: Vec<Error> = (0..150u32)
        .filter_map(|i| e.get(format!("key{i:03}").as_bytes()).err())
        .collect();
    assert!(!errors.is_empty());
    for err in errors {
        match err {
            Error::Corruption { file, offset, .. } => {
                assert_eq!(file, table);
                assert_eq!(offset, 0, "the first block starts at offset 0");
            }
            other => panic!("expected corruption, got {other}"),
        }
    }
}

#[test]
fn a_truncated_table_is_refused_at_open() {
    let (_tmp, dir, _) = build();
    let table = files(&dir, ".sst")[0].clone();
    let bytes = std::fs::read(&table).unwrap();
    for cut in [0, 1, 59, 60, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&table, &bytes[..cut]).unwrap();
        let opened = SstableStore::open(&dir, &options());
        assert_corruption_in(opened, &table, &format!("cut at {cut}"));
    }
}

#[test]
fn a_foreign_file_with_a_table_name_is_refused_by_magic() {
    let (_tmp, dir, _) = build();
    let foreign = dir.join("999999.sst");
    std::fs::write(&foreign, vec![b'z'; 500]).unwrap();
    let (_, detail) =
        assert_corruption_in(SstableStore::open(&dir, &options()), &foreign, "foreign");
    assert!(detail.contains("magic"), "{detail}");
}

/// A store in a new temporary directory whose last WAL holds `n` puts (the memtable never
/// fills), dropped without close: the guard, the store's directory and the WAL's path.
fn wal_only(n: u32) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let e = SstableStore::open(&dir, &Options::new()).unwrap();
    for i in 0..n {
        e.put(format!("k{i}").as_bytes(), format!("v{i}").as_bytes())
            .unwrap();
    }
    drop(e);
    let wal = files(&dir, ".wal").pop().unwrap();
    (tmp, dir, wal)
}

#[test]
fn a_torn_wal_tail_loses_only_the_torn_record() {
    let (_tmp, dir, wal) = wal_only(10);
    let whole = std::fs::read(&wal).unwrap();
    let last_len = 8 + 3 + 2 + 2; // frame, kind and key length, "k9", "v9"
    for cut in whole.len() - last_len..whole.len() {
        std::fs::write(&wal, &whole[..cut]).unwrap();
        let e = SstableStore::open(&dir, &Options::new()).unwrap();
        for i in 0..9 {
            assert_eq!(
                e.get(format!("k{i}").as_bytes()).unwrap(),
                Some(format!("v{i}").into_bytes())
            );
        }
        assert_eq!(e.get(b"k9").unwrap(), None, "cut at {cut}");
        let s = e.stats().unwrap();
        assert_eq!(
            s.extra["wal_torn_tail_bytes"],
            (cut - (whole.len() - last_len)) as u64
        );
        e.close().unwrap();
        // Put the whole WAL back for the next cut, and drop the empty WAL that open made.
        std::fs::write(&wal, &whole).unwrap();
        for extra in files(&dir, ".wal") {
            if extra != wal {
                std::fs::remove_file(extra).unwrap();
            }
        }
    }
}

/// The last WAL written is the store's newest log: a power loss can leave a hole in its
/// unsynced tail with valid records after it. So a flipped byte in any of its records makes
/// that record and everything after it the unsynced tail: the store opens with the records
/// before it, after a copy of the whole damaged WAL was put in `lost/`. (Older WALs keep
/// refusing damage: see the next test.)
#[test]
fn a_flipped_byte_before_the_last_wal_record_keeps_the_prefix_and_a_copy_in_lost() {
    let (_tmp, dir, wal) = wal_only(10);
    let lost = dir.join(kv_shared::repair::LOST_DIR);
    let whole = std::fs::read(&wal).unwrap();
    let record_len = 8 + 3 + 2 + 2; // frame, kind and key length, "kN", "vN"
    assert_eq!(whole.len(), 12 + 10 * record_len);
    let last_start = whole.len() - record_len;
    for at in 12..last_start {
        let mut bad = whole.clone();
        bad[at] ^= 0x20;
        std::fs::write(&wal, &bad).unwrap();
        let _ = std::fs::remove_dir_all(&lost);
        let context = format!("flip at {at}");
        let damaged = (at - 12) / record_len;
        let e =
            SstableStore::open(&dir, &Options::new()).unwrap_or_else(|e| panic!("{context}: {e}"));
        for i in 0..10 {
            let want = (i < damaged).then(|| format!("v{i}").into_bytes());
            assert_eq!(
                e.get(format!("k{i}").as_bytes()).unwrap(),
                want,
                "{context}: k{i}"
            );
        }
        drop(e);
        let copy = std::fs::read(lost.join(wal.file_name().unwrap())).unwrap();
        assert!(copy == bad, "{context}: the copy in lost/");
    }
    let mut foreign = whole;
    foreign[..8].copy_from_slice(b"NOTAWAL!");
    std::fs::write(&wal, &foreign).unwrap();
    assert!(matches!(
        SstableStore::open(&dir, &Options::new()),
        Err(Error::Corruption { .. })
    ));
}

/// Regression: two WALs to replay (the first session's, kept because its memtable never
/// filled, and the second session's), and the end of the **older** one cut off. It was
/// synced before the newer one took a write (here by the replay at the second open), so its
/// end cannot be a torn write: open used to take it for one, losing the older write while
/// keeping the newer one (`k9` gone, `k10`, written after it, there: a state no prefix of
/// the writes ever had), and to drop an older WAL cut to nothing as if it had never held a
/// record. Both are
/// corruption, reported on the older WAL, which is left as it was found.
#[test]
fn damage_at_the_end_of_a_wal_that_is_not_the_last_written_is_corruption() {
    let (_tmp, dir, older) = wal_only(10);
    let e = SstableStore::open(&dir, &Options::new()).unwrap();
    e.put(b"k10", b"v10").unwrap();
    drop(e);
    let wals = files(&dir, ".wal");
    assert_eq!(wals.len(), 2, "the older WAL and the newer one: {wals:?}");
    assert_eq!(wals[0], older);
    let whole = std::fs::read(&older).unwrap();
    let last_len = 8 + 3 + 2 + 2; // frame, kind and key length, "k9", "v9"
    // Every cut inside the last record, and cuts into the header. (A cut exactly between two
    // records leaves a whole, shorter log: a stage-3 WAL has no sequence numbers to miss.)
    let mut cuts: Vec<usize> = (whole.len() - last_len + 1..whole.len()).collect();
    cuts.extend([0, 5]);
    for cut in cuts {
        std::fs::write(&older, &whole[..cut]).unwrap();
        let opened = SstableStore::open(&dir, &Options::new());
        assert_corruption_in(opened, &older, &format!("cut at {cut}"));
        assert_eq!(
            std::fs::read(&older).unwrap(),
            &whole[..cut],
            "left as found"
        );
    }
    // A hole with valid records after it, which the newest WAL would take for its unsynced
    // tail, is corruption here too: this WAL was synced before the newer one took a write.
    for at in [12, 12 + 3 * last_len + 9] {
        let mut bad = whole.clone();
        bad[at] ^= 0x20;
        std::fs::write(&older, &bad).unwrap();
        let opened = SstableStore::open(&dir, &Options::new());
        assert_corruption_in(opened, &older, &format!("flip at {at}"));
        assert_eq!(std::fs::read(&older).unwrap(), bad, "left as found");
        assert!(!dir.join(kv_shared::repair::LOST_DIR).exists());
    }
    // Whole again, it opens with every write.
    std::fs::write(&older, &whole).unwrap();
    let e = SstableStore::open(&dir, &Options::new()).unwrap();
    assert_eq!(e.get(b"k9").unwrap(), Some(b"v9".to_vec()));
    assert_eq!(e.get(b"k10").unwrap(), Some(b"v10".to_vec()));
}
