//! `repair`: a tree with tables on L0 and on the last level and a live WAL, damaged in one
//! file at a time (a data block, a footer or index, the manifest, `CURRENT`, the WAL),
//! opens again after a repair, with no value that was not written for its key, every key
//! whose records lie only in undamaged files at its latest value, and the damaged file
//! whole in `lost/`. A dry run, a clean store, a foreign directory and an open store change
//! nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kv_shared::repair::LOST_DIR;
use kv_shared::{Engine, Error, Fs, KeyRange, Options};
use lsm::LsmTree;

/// No background compaction (L0 may hold many tables), small blocks and tables.
fn options() -> Options {
    common::options(
        "memtable_bytes=64K table_bytes=1K block_bytes=256 l0_trigger=50 l0_slowdown=60 \
         l0_stop=70",
    )
}

/// Every value each key was ever given (`None` for a delete), oldest first.
type History = BTreeMap<Vec<u8>, Vec<Option<Vec<u8>>>>;

/// Writes one round of puts (and deletes of every fifth key in odd rounds).
fn round(tree: &LsmTree, history: &mut History, r: u32, keys: u32) {
    for i in 0..keys {
        let k = format!("key{i:03}").into_bytes();
        let v = if r % 2 == 1 && i % 5 == 0 {
            tree.delete(&k).unwrap();
            None
        } else {
            let v = format!("r{r}-{i}-{}", "x".repeat((i % 13) as usize)).into_bytes();
            tree.put(&k, &v).unwrap();
            Some(v)
        };
        history.entry(k).or_default().push(v);
    }
}

/// A closed tree: two rounds compacted into the last level (several tables), three more
/// rounds flushed to three L0 tables, and a last round in the WAL.
fn build(dir: &Path) -> History {
    let mut history = History::new();
    let tree = LsmTree::open(dir, &options()).unwrap();
    for r in 0..2 {
        round(&tree, &mut history, r, 60);
        tree.flush().unwrap();
    }
    tree.full_compaction().unwrap();
    for r in 2..5 {
        round(&tree, &mut history, r, 60);
        tree.flush().unwrap();
    }
    round(&tree, &mut history, 5, 20);
    let levels = tree.levels_summary();
    assert_eq!(levels[0].files, 3, "{levels:?}");
    assert!(levels[6].files > 1, "{levels:?}");
    tree.close().unwrap();
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

/// The user keys table `path` holds (read before it is damaged).
fn table_keys(path: &Path) -> BTreeSet<Vec<u8>> {
    let name = path.file_name().unwrap().to_string_lossy();
    let number = name.trim_end_matches(".sst").parse().unwrap();
    let table = lsm::repair::scan::scan_table(&Fs::default(), path.parent().unwrap(), number);
    let table = table.unwrap();
    assert!(table.damage.is_none());
    table.entries.into_iter().map(|(k, _, _)| k).collect()
}

fn flip(path: &Path, at: usize) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// True when the tree in `dir` refuses to open, or opens but fails a scan or a read (a
/// damaged data block is found only when read).
fn refuses(dir: &Path, history: &History) -> bool {
    let Ok(tree) = LsmTree::open(dir, &options()) else {
        return true;
    };
    let scan_fails = tree
        .scan(KeyRange::all())
        .map_or(true, |mut scan| scan.any(|item| item.is_err()));
    scan_fails || history.keys().any(|k| tree.get(k).is_err())
}

/// Repairs the store in `dir`, whose one damaged file `damaged` held `bytes`, and checks it
/// against `history`: keys `exact` says yes to must have their latest value, every other
/// one a value it was given. Returns the records salvaged from the damaged file and the
/// keys not at their latest value.
fn repair_and_check(
    dir: &Path,
    damaged: &Path,
    bytes: &[u8],
    history: &History,
    exact: &dyn Fn(&[u8]) -> bool,
) -> (u64, usize) {
    let before = image(dir);
    let dry = lsm::repair(dir, &options(), true).unwrap();
    assert!(dry.dry_run);
    assert_eq!(image(dir), before, "a dry run changes nothing");
    let report = lsm::repair(dir, &options(), false).unwrap();
    println!("{report}");
    assert_eq!(
        (&dry.kept, &dry.damaged, &dry.written),
        (&report.kept, &report.damaged, &report.written),
        "the dry run says what the repair does"
    );
    let name = damaged.file_name().unwrap().to_string_lossy().into_owned();
    assert!(report.damaged.iter().any(|d| d.file == name), "{report}");
    assert_eq!(
        std::fs::read(dir.join(LOST_DIR).join(&name)).unwrap(),
        bytes
    );
    // (`CURRENT` is written anew, naming the repaired manifest.)
    assert!(std::fs::read(damaged).ok().is_none_or(|now| now != bytes));
    let tree = LsmTree::open(dir, &options()).unwrap();
    tree.debug_check_invariants().unwrap();
    let (mut stale, mut present) = (0, 0);
    for (k, values) in history {
        let got = tree.get(k).unwrap();
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
    let scanned: Vec<_> = tree.scan(KeyRange::all()).unwrap().collect();
    assert_eq!(scanned.len(), present, "a scan shows what reads do");
    assert!(
        scanned.iter().all(|item| item.is_ok()),
        "a scan reads every block"
    );
    tree.close().unwrap();
    let again = lsm::repair(dir, &options(), true).unwrap();
    assert!(again.is_clean(), "a second repair finds nothing: {again}");
    let salvaged = report.damaged.iter().filter(|d| d.file == name);
    (salvaged.map(|d| d.records).sum(), stale)
}

/// The tables of `dir` on L0 (the three newest) and below, by file number.
fn tables(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut all = files(dir, ".sst");
    let l0 = all.split_off(all.len() - 3);
    (l0, all)
}

/// Builds the tree, damages an L0 table (`deep` false; 0 is the oldest of three) or a
/// last-level one (`deep` true) by flipping the byte `at` (from the end when negative),
/// repairs it and checks the result. Returns the table's entries, the entries salvaged and
/// the keys not at their latest value.
fn damage_table(which: usize, deep: bool, at: isize) -> (u64, u64, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let history = build(&dir);
    let (l0, deeper) = tables(&dir);
    let table = if deep { &deeper[which] } else { &l0[which] };
    let entries = table_keys(table).len() as u64;
    let len = std::fs::metadata(table).unwrap().len() as isize;
    let bytes = flip(table, if at < 0 { len + at } else { at } as usize);
    assert!(refuses(&dir, &history));
    // Every key is written again in the newest L0 table: an older table rebuilt in its
    // place changes no answer, whatever it lost.
    let newest = !deep && which == l0.len() - 1;
    let (salvaged, stale) = repair_and_check(&dir, table, &bytes, &history, &|_| !newest);
    (entries, salvaged, stale)
}

#[test]
fn a_damaged_data_block_loses_only_its_entries() {
    // Byte 500 of the newest L0 table lies in a block whose keys (past 20) no WAL writes
    // again.
    for (which, deep, at) in [
        (1, false, 12),
        (0, false, 12),
        (0, true, 12),
        (2, false, 500),
    ] {
        let (entries, salvaged, stale) = damage_table(which, deep, at);
        let case = format!("table {which}, deep {deep}: {salvaged} of {entries} salvaged");
        assert!(salvaged > 0 && salvaged < entries, "{case}");
        assert!(
            stale as u64 <= entries - salvaged,
            "{case}, {stale} keys stale"
        );
        assert_eq!(
            stale > 0,
            which == 2 && !deep,
            "{case}: only the newest table's loss shows"
        );
    }
}

#[test]
fn a_damaged_footer_or_index_loses_nothing() {
    for (which, deep, at) in [
        (1, false, -10),
        (1, false, -52),
        (2, false, -30),
        (0, true, -10),
    ] {
        let (entries, salvaged, stale) = damage_table(which, deep, at);
        assert_eq!(
            (salvaged, stale),
            (entries, 0),
            "table {which}, deep {deep}, byte {at}"
        );
    }
}

#[test]
fn a_table_cut_short_after_its_data_blocks_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let history = build(&dir);
    let (l0, _) = tables(&dir);
    let table = &l0[1];
    let entries = table_keys(table).len() as u64;
    let bytes = std::fs::read(table).unwrap();
    // The footer's first field: where the filter block starts, the data blocks end.
    let footer = &bytes[bytes.len() - 48..];
    let data_end = u64::from_le_bytes(footer[..8].try_into().unwrap()) as usize;
    std::fs::write(table, &bytes[..data_end + 2]).unwrap();
    assert!(refuses(&dir, &history));
    let (salvaged, stale) =
        repair_and_check(&dir, table, &bytes[..data_end + 2], &history, &|_| true);
    assert_eq!((salvaged, stale), (entries, 0));
}

#[test]
fn a_damaged_manifest_or_current_loses_nothing() {
    for name in ["MANIFEST-", "CURRENT"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let history = build(&dir);
        let file = files(&dir, "")
            .into_iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(name))
            .unwrap();
        let len = std::fs::metadata(&file).unwrap().len() as usize;
        let bytes = flip(&file, len / 2);
        assert!(refuses(&dir, &history));
        repair_and_check(&dir, &file, &bytes, &history, &|_| true);
    }
}

#[test]
fn a_damaged_wal_becomes_a_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let history = build(&dir);
    let wals = files(&dir, ".wal");
    assert_eq!(wals.len(), 1, "{wals:?}");
    let len = std::fs::metadata(&wals[0]).unwrap().len() as usize;
    let bytes = flip(&wals[0], len / 2);
    let holds = |k: &[u8]| bytes.windows(k.len()).any(|w| w == k);
    let (salvaged, stale) = repair_and_check(&dir, &wals[0], &bytes, &history, &|k| !holds(k));
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
        let report = lsm::repair(&dir, &options(), dry_run).unwrap();
        assert!(report.is_clean(), "{report}");
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
        lsm::repair(&foreign, &options(), false),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        image(&foreign).len(),
        1,
        "nothing created in a foreign directory"
    );
    let missing = tmp.path().join("missing");
    assert!(lsm::repair(&missing, &options(), false).is_err());
    assert!(!missing.exists());
    let dir = tmp.path().join("db");
    let tree = LsmTree::open(&dir, &options()).unwrap();
    assert!(matches!(
        lsm::repair(&dir, &options(), false),
        Err(Error::Locked { .. })
    ));
    drop(tree);
    let other = tmp.path().join("other");
    sstable::SstableStore::open(&other, &Options::new()).unwrap();
    assert!(matches!(
        lsm::repair(&other, &options(), false),
        Err(Error::WrongEngine { .. })
    ));
}
