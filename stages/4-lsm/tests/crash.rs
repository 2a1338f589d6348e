//! Restarts after a crash in the middle of flushes and compactions lose no acknowledged
//! write, and the on-disk leftovers of such crashes (orphan tables, WALs whose deletion
//! never happened) are cleaned up without being mistaken for data.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::table_files;
use kv_shared::{Engine, Error, Fs, KeyRange, Options};
use kv_testkit::conformance::scan_vec;
use kv_testkit::fault_fs::FaultFs;
use kv_testkit::knobs::{env_u64, seed};
use kv_testkit::power_loss::store_path;
use lsm::LsmTree;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tempfile::TempDir;

/// Tiny sizes: a 4 KiB memtable, 4 KiB tables, L1 of 12 KiB growing 3× a level.
fn small() -> Options {
    common::options(
        "memtable_bytes=4K table_bytes=4K level1_bytes=12K level_ratio=3 l0_trigger=2 \
         block_bytes=512",
    )
}

/// A killed process leaves every byte it handed to the OS. The test copies the whole disk
/// at random moments of a write-heavy run, while the background threads are in the middle
/// of writing tables, recording edits and deleting files, and restarts from each copy: the
/// store must hold exactly the writes acknowledged before the copy.
#[test]
fn a_kill_during_flush_or_compaction_loses_no_acknowledged_write() {
    let seed = seed("crash_images", 0xc0ffee);
    let steps = env_u64("KV_LSM_CRASH_STEPS", 4000);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let fs = FaultFs::new(seed);
    let dir = store_path();
    let options = small().with_file_system(Arc::new(fs.clone()));
    let e = LsmTree::open(&dir, &options).unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut images = Vec::new();
    for step in 0..steps {
        let key = format!("key{:04}", rng.random_range(0..500u32)).into_bytes();
        if rng.random_bool(0.2) {
            e.delete(&key).unwrap();
            model.remove(&key);
        } else {
            let value = format!("{step}:{}", "v".repeat(rng.random_range(0..120))).into_bytes();
            e.put(&key, &value).unwrap();
            model.insert(key, value);
        }
        if rng.random_bool(0.01) {
            images.push((fs.image(), model.clone()));
        }
    }
    drop(e);
    images.push((fs.image(), model));
    let (mut orphans, mut stale_wals, mut replayed) = (0, 0, 0);
    for (n, (image, model)) in images.iter().enumerate() {
        let disk = FaultFs::from_image(seed, image);
        let options = small().with_file_system(Arc::new(disk));
        let e =
            LsmTree::open(&dir, &options).unwrap_or_else(|err| panic!("image {n}: open: {err}"));
        let got = scan_vec(&e, KeyRange::all());
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
        assert!(
            got == want,
            "image {n}: the store differs from the acknowledged writes (seed {seed})"
        );
        let stats = e.stats().unwrap();
        orphans += stats.extra["recovery_orphan_tables"];
        stale_wals += stats.extra["recovery_stale_wals"];
        replayed += stats.extra["recovery_wal_records"];
        e.close().unwrap();
    }
    eprintln!(
        "{} images: {orphans} orphan tables and {stale_wals} stale WALs cleaned up, {replayed} WAL records replayed",
        images.len()
    );
}

fn open(dir: &Path) -> LsmTree {
    LsmTree::open(dir, &small()).unwrap()
}

/// A store in a new temporary directory: 600 keys, compacted into tables, closed; and the
/// names of its tables.
fn filled_store() -> (TempDir, Vec<String>) {
    let (tmp, e) = common::new_tree(&small());
    for i in 0..600u32 {
        e.put(
            format!("key{i:04}").as_bytes(),
            format!("value{i}").as_bytes(),
        )
        .unwrap();
    }
    e.compact().unwrap();
    e.close().unwrap();
    let tables = table_files(tmp.path());
    assert!(!tables.is_empty());
    (tmp, tables)
}

/// Opens the store in `dir`, which must be refused as corrupt: the file named and the
/// detail of the error.
fn corruption_at_open(dir: &Path) -> (PathBuf, String) {
    match LsmTree::open(dir, &small()) {
        Err(Error::Corruption { file, detail, .. }) => (file, detail),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

/// A WAL the manifest already counts as flushed (a crash came between the manifest edit and
/// the file's deletion) is deleted, not replayed: replaying it would bring back old writes.
#[test]
fn a_flushed_wal_left_behind_is_not_replayed() {
    let (tmp, _) = filled_store();
    // WAL 1 was the first memtable's; its writes are long in tables. Put it back, holding
    // a write with a sequence number high enough to win if it were replayed.
    let path = tmp.path().join("000001.wal");
    let wal = lsm::wal::Wal::create(&Fs::default(), &path, lsm::wal::KIND).unwrap();
    wal.append(&lsm::wal::encode(1 << 40, b"key0007", Some(b"stale")))
        .unwrap();
    drop(wal);
    let e = open(tmp.path());
    assert_eq!(e.get(b"key0007").unwrap().as_deref(), Some(&b"value7"[..]));
    assert_eq!(e.stats().unwrap().extra["recovery_stale_wals"], 1);
    assert!(!tmp.path().join("000001.wal").exists());
    e.close().unwrap();
}

/// A table the manifest does not name (the output of a flush or compaction whose edit was
/// never recorded) is deleted at open, and the data is unchanged.
#[test]
fn an_orphan_table_is_deleted() {
    let (tmp, live) = filled_store();
    std::fs::copy(tmp.path().join(&live[0]), tmp.path().join("999999.sst")).unwrap();
    let e = open(tmp.path());
    assert_eq!(e.stats().unwrap().extra["recovery_orphan_tables"], 1);
    assert_eq!(table_files(tmp.path()), live);
    assert_eq!(scan_vec(&e, KeyRange::all()).len(), 600);
    e.close().unwrap();
}

/// A table the manifest names that is missing or damaged is a clear corruption error.
#[test]
fn a_missing_or_damaged_table_is_corruption() {
    let (tmp, live) = filled_store();
    let path = tmp.path().join(&live[0]);
    let bytes = std::fs::read(&path).unwrap();

    let mut damaged = bytes.clone();
    let at = damaged.len() - 20; // inside the footer
    damaged[at] ^= 0x01;
    std::fs::write(&path, &damaged).unwrap();
    assert_eq!(corruption_at_open(tmp.path()).0, path);

    std::fs::remove_file(&path).unwrap();
    let (file, detail) = corruption_at_open(tmp.path());
    assert!(file.to_string_lossy().contains("MANIFEST-"), "{file:?}");
    assert!(detail.contains(&live[0]), "{detail}");

    std::fs::write(&path, &bytes).unwrap();
    let e = open(tmp.path());
    assert_eq!(scan_vec(&e, KeyRange::all()).len(), 600);
    e.close().unwrap();
}

/// A store whose `CURRENT` is gone while its tables remain is corruption, not a fresh store:
/// starting empty would treat every table as an orphan and delete it. (`CURRENT` is written
/// before the first write is accepted, so no crash can leave tables without it.)
#[test]
fn a_missing_current_with_tables_left_is_corruption() {
    let (tmp, tables) = filled_store();
    std::fs::remove_file(tmp.path().join("CURRENT")).unwrap();
    let (file, detail) = corruption_at_open(tmp.path());
    assert_eq!(file, tmp.path().join("CURRENT"));
    assert!(detail.contains(".sst"), "{detail}");
    assert_eq!(table_files(tmp.path()), tables, "no table was deleted");
}
