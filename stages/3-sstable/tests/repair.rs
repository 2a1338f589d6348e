//! `repair`: a store with several tables and WALs, damaged in one file at a time, opens
//! again after a repair, with no value that was not written for its key, every key whose
//! records lie only in undamaged files at its latest value, and the damaged file whole in
//! `lost/`. A dry run, a clean store, a foreign directory and an open store change nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kv_shared::repair::LOST_DIR;
use kv_shared::{Engine, Error, KeyRange, Options};
use sstable::SstableStore;

fn options() -> Options {
    Options::new()
        .set("memtable_bytes", "64K")
        .set("block_bytes", "256")
}

/// Every value each key was ever given (`None` for a delete), oldest first.
type History = BTreeMap<Vec<u8>, Vec<Option<Vec<u8>>>>;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// Writes one round of puts (and deletes of every fifth key in odd rounds).
fn round(store: &SstableStore, history: &mut History, r: u32, keys: u32) {
    for i in 0..keys {
        let k = key(i);
        let v = if r % 2 == 1 && i % 5 == 0 {
            store.delete(&k).unwrap();
            None
        } else {
            let v = format!("r{r}-{i}-{}", "x".repeat((i % 13) as usize)).into_bytes();
            store.put(&k, &v).unwrap();
            Some(v)
        };
        history.entry(k).or_default().push(v);
    }
}

/// A closed store: four tables (one per round, keys overwritten each round), then two WALs
/// not yet flushed (one per session), the older one sealed.
fn build(dir: &Path) -> History {
    let mut history = History::new();
    let store = SstableStore::open(dir, &options()).unwrap();
    for r in 0..4 {
        round(&store, &mut history, r, 60);
        store.flush().unwrap();
    }
    round(&store, &mut history, 4, 20);
    store.close().unwrap();
    let store = SstableStore::open(dir, &options()).unwrap();
    round(&store, &mut history, 5, 10);
    store.close().unwrap();
    history
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

/// Every file under `dir`, by path, with its bytes.
fn image(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(image(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

fn flip(path: &Path, at: usize) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// True when the store in `dir` refuses to open, or opens but fails a scan or a read (a
/// damaged data block is found only when read).
fn refuses(dir: &Path, history: &History) -> bool {
    let Ok(store) = SstableStore::open(dir, &options()) else {
        return true;
    };
    let scan_fails = store
        .scan(KeyRange::all())
        .map_or(true, |mut scan| scan.any(|item| item.is_err()));
    scan_fails || history.keys().any(|k| store.get(k).is_err())
}

/// Repairs the damaged store in `dir` (`damaged`, whose bytes are `bytes`, being the one
/// damaged file) and checks the result against `history`: `exact` keys must have their
/// latest value, every other one a value it was given. Returns the records salvaged and the keys not at their
/// latest value.
fn repair_and_check(
    dir: &Path,
    damaged: &Path,
    bytes: &[u8],
    history: &History,
    exact: &dyn Fn(&[u8]) -> bool,
) -> (u64, usize) {
    let before = image(dir);
    let dry = sstable::repair(dir, &options(), true).unwrap();
    assert!(dry.dry_run);
    assert_eq!(image(dir), before, "a dry run changes nothing");
    let report = sstable::repair(dir, &options(), false).unwrap();
    println!("{report}");
    assert_eq!(
        (dry.kept.clone(), dry.damaged.clone(), dry.written.clone()),
        (
            report.kept.clone(),
            report.damaged.clone(),
            report.written.clone()
        ),
        "the dry run says what the repair does"
    );
    let name = damaged.file_name().unwrap();
    assert!(
        report
            .damaged
            .iter()
            .any(|d| d.file == name.to_string_lossy()),
        "{report}"
    );
    assert_eq!(std::fs::read(dir.join(LOST_DIR).join(name)).unwrap(), bytes);
    assert!(!damaged.exists());
    let store = SstableStore::open(dir, &options()).unwrap();
    let (mut stale, mut present) = (0, 0);
    for (k, values) in history {
        let got = store.get(k).unwrap();
        let shown = String::from_utf8_lossy(k);
        if exact(k) {
            assert_eq!(&got, values.last().unwrap(), "key {shown}");
        } else if got.is_some() {
            assert!(
                values.contains(&got),
                "key {shown}: a value never written for it"
            );
        }
        stale += usize::from(&got != values.last().unwrap());
        present += usize::from(got.is_some());
    }
    let scanned: Vec<_> = store.scan(KeyRange::all()).unwrap().collect();
    assert_eq!(scanned.len(), present, "a scan shows what reads do");
    assert!(
        scanned.iter().all(|item| item.is_ok()),
        "a scan reads every block"
    );
    store.close().unwrap();
    let again = sstable::repair(dir, &options(), true).unwrap();
    assert!(again.is_clean(), "a second repair finds nothing: {again}");
    (report.damaged.iter().map(|d| d.records).sum(), stale)
}

/// True when `bytes` hold `key` (keys are stored as they are in tables and WALs).
fn holds(bytes: &[u8], key: &[u8]) -> bool {
    bytes.windows(key.len()).any(|w| w == key)
}

/// Builds the store, damages the table at position `which` by flipping the byte `at` (from
/// the end when negative), repairs it and checks the result. Returns the entries salvaged
/// and the keys not at their latest value.
fn damage_table(which: usize, at: isize) -> (u64, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let history = build(&dir);
    let tables = files(&dir, ".sst");
    assert_eq!(tables.len(), 4);
    let table = &tables[which];
    let len = std::fs::metadata(table).unwrap().len() as isize;
    let bytes = flip(table, if at < 0 { len + at } else { at } as usize);
    assert!(refuses(&dir, &history));
    // Every key is written again in the newest table: an older table rebuilt in its place
    // changes no answer, whatever it lost.
    let newest = which == tables.len() - 1;
    repair_and_check(&dir, table, &bytes, &history, &|_| !newest)
}

#[test]
fn a_damaged_data_block_loses_only_its_entries() {
    for which in [1, 3] {
        // Byte 600 is in the third block, whose keys (about 24 to 36) no WAL writes again.
        let (salvaged, stale) = damage_table(which, 600);
        assert!(
            (40..60).contains(&salvaged),
            "table {which}: {salvaged} of 60 salvaged"
        );
        assert!(
            stale as u64 <= 60 - salvaged,
            "table {which}: {stale} keys stale"
        );
        assert_eq!(stale > 0, which == 3, "only the newest table's loss shows");
    }
}

#[test]
fn a_damaged_footer_or_index_loses_nothing_and_keeps_the_table_in_its_place() {
    for (which, at) in [(1, -30), (1, -70), (3, -10), (0, -64)] {
        let (salvaged, stale) = damage_table(which, at);
        assert_eq!((salvaged, stale), (60, 0), "table {which}, byte {at}");
    }
}

#[test]
fn a_damaged_older_wal_becomes_a_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let history = build(&dir);
    let wals = files(&dir, ".wal");
    assert_eq!(wals.len(), 2, "{wals:?}");
    let older = &wals[0];
    let len = std::fs::metadata(older).unwrap().len() as usize;
    let bytes = flip(older, len / 2);
    assert!(refuses(&dir, &history));
    let (salvaged, stale) = repair_and_check(&dir, older, &bytes, &history, &|k| !holds(&bytes, k));
    assert_eq!(salvaged, 19, "one record of 20 lost");
    assert!(stale <= 1);
}

#[test]
fn a_clean_store_is_left_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    build(&dir);
    let before = image(&dir);
    for dry_run in [true, false] {
        let report = sstable::repair(&dir, &options(), dry_run).unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.kept.len(), 6, "{report}");
        assert_eq!(image(&dir), before);
    }
}

#[test]
fn a_foreign_missing_or_open_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("000001.sst"), b"mine").unwrap();
    assert!(matches!(
        sstable::repair(&foreign, &options(), false),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        image(&foreign).len(),
        1,
        "nothing created in a foreign directory"
    );
    let missing = tmp.path().join("missing");
    assert!(sstable::repair(&missing, &options(), false).is_err());
    assert!(!missing.exists());
    let dir = tmp.path().join("db");
    let store = SstableStore::open(&dir, &options()).unwrap();
    assert!(matches!(
        sstable::repair(&dir, &options(), false),
        Err(Error::Locked { .. })
    ));
    drop(store);
    let other = tmp.path().join("other");
    kv_testkit::example_engine::ExampleEngine::open(&other, &Options::new()).unwrap();
    assert!(matches!(
        sstable::repair(&other, &options(), false),
        Err(Error::WrongEngine { .. })
    ));
}
