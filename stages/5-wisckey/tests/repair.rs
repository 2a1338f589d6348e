//! `repair` on the value log and the tree's pointers into it: a damaged record of a sealed
//! segment costs its key only, the other records of the segment are salvaged and their keys
//! re-pointed; a sealed segment cut short keeps what lies before the cut; the newest
//! segment keeps the records after a hole; a power loss on top of damage still leaves the
//! tree a prefix of the log; a key whose older value the collector freed, brought back by
//! the tree's repair, is deleted rather than left pointing at nothing; a crash at any step
//! of a repair is finished by the next one; and what is no store, an open store and a clean
//! store are left alone. (The shared repair suite, in `tests/reliability.rs`, damages every
//! kind of file of a store.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use kv_shared::repair::{LOST_DIR, RepairReport};
use kv_shared::store_dir::LOCK_FILE;
use kv_shared::{Engine, Error, KeyRange, Options};
use kv_testkit::conformance::scan_vec;
use kv_testkit::fault_fs::{FaultFs, FsImage, store_path};
use wisckey::Wisckey;
use wisckey::value_pointer::{self, TreeValue, ValuePointer};

/// Values in the log, 1 KiB segments (about seven values each), no background collection,
/// a memtable that never flushes on its own here.
fn options() -> Options {
    common::options(
        "value_threshold=8 vlog_segment_bytes=1K gc_dead_ratio=0 memtable_bytes=256K \
         l0_trigger=50 l0_slowdown=60 l0_stop=70",
    )
}

/// Keys to values.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: usize) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// The value of key `i` written in `round`: 100 bytes.
fn value(i: usize, round: usize) -> Vec<u8> {
    let mut v = format!("value of {i} in round {round}:").into_bytes();
    v.resize(100, b'a' + (i % 26) as u8);
    v
}

/// `options()` on the disk `fs`.
fn on(fs: &FaultFs) -> Options {
    options().with_file_system(Arc::new(fs.clone()))
}

/// The pointer the tree of `store` holds for `key`.
fn pointer_of(store: &Wisckey, key: &[u8]) -> ValuePointer {
    let value = store.tree().get(key).unwrap().unwrap();
    match value_pointer::decode(&value).unwrap() {
        TreeValue::Pointer(p) => p,
        TreeValue::Inline(_) => panic!("an inline value"),
    }
}

/// A closed store on a simulated disk: 40 keys, the first 20 written again. Returns its
/// files, what it holds, each key's pointer and the newest segment's id.
fn build() -> (FsImage, Model, BTreeMap<Vec<u8>, ValuePointer>, u32) {
    let fs = FaultFs::new(5);
    let store = Wisckey::open(&store_path(), &on(&fs)).unwrap();
    let mut model = Model::new();
    for (round, keys) in [(0, 40), (1, 20)] {
        for i in 0..keys {
            store.put(&key(i), &value(i, round)).unwrap();
            model.insert(key(i), value(i, round));
        }
    }
    let pointers = model
        .keys()
        .map(|k| (k.clone(), pointer_of(&store, k)))
        .collect();
    let newest = store.value_log().active_id();
    store.close().unwrap();
    (fs.image(), model, pointers, newest)
}

/// The path of segment `id`.
fn segment(id: u32) -> PathBuf {
    wisckey::file_names::segment(&wisckey::file_names::vlog_dir(&store_path()), id)
}

/// The report's name of segment `id`, as in `vlog/00000003.seg`.
fn segment_name(id: u32) -> String {
    format!("vlog/{id:08}.seg")
}

/// The names of the files a report calls damaged.
fn damaged(report: &RepairReport) -> Vec<&str> {
    report.damaged.iter().map(|f| f.file.as_str()).collect()
}

/// The note of the report's line on the tree's pointers.
fn pointer_line(report: &RepairReport) -> &str {
    let line = report.written.iter().find(|f| f.file == "tree");
    &line
        .unwrap_or_else(|| panic!("no pointer check:\n{report}"))
        .note
}

/// `image` without the `LOCK` files taking a lock creates.
fn without_locks(image: FsImage) -> FsImage {
    image
        .into_iter()
        .filter(|(p, _)| p.file_name().is_none_or(|n| n != LOCK_FILE))
        .collect()
}

/// A dry run on `fs` (checked to change nothing), then the repair; returns its report.
fn dry_run_then_repair(fs: &FaultFs) -> RepairReport {
    let before = without_locks(fs.image());
    let dry = wisckey::repair(&store_path(), &on(fs), true).unwrap();
    assert_eq!(
        without_locks(fs.image()),
        before,
        "the dry run changed files"
    );
    let report = wisckey::repair(&store_path(), &on(fs), false).unwrap();
    assert_eq!(report.damaged, dry.damaged, "{dry}\n{report}");
    report
}

/// Opens the store on `fs` and checks that it holds `model` but the keys `gone`, by gets
/// and by a scan; then that a dry run finds nothing to repair, and that a `compact`
/// (which collects every segment, the salvaged ones too) keeps it all.
fn check(fs: &FaultFs, model: &Model, gone: &BTreeSet<Vec<u8>>) {
    let expected: Model = model
        .iter()
        .filter(|(k, _)| !gone.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let store = Wisckey::open(&store_path(), &on(fs)).unwrap();
    let holds = |store: &Wisckey| {
        for k in model.keys() {
            assert_eq!(store.get(k).unwrap().as_ref(), expected.get(k), "{k:?}");
        }
        let scanned: Model = scan_vec(store, KeyRange::all()).into_iter().collect();
        assert_eq!(scanned, expected);
    };
    holds(&store);
    store.close().unwrap();
    let again = wisckey::repair(&store_path(), &on(fs), true).unwrap();
    assert!(again.is_clean(), "{again}");
    let store = Wisckey::open(&store_path(), &on(fs)).unwrap();
    store.compact().unwrap();
    holds(&store);
    store.close().unwrap();
}

/// The keys whose pointers name segment `id` at `from` or after.
fn keys_in(pointers: &BTreeMap<Vec<u8>, ValuePointer>, id: u32, from: u64) -> BTreeSet<Vec<u8>> {
    pointers
        .iter()
        .filter(|(_, p)| p.segment == id && p.offset >= from)
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn a_damaged_record_of_a_sealed_segment_costs_its_key_only() {
    let (mut image, model, pointers, newest) = build();
    let p = pointers[&key(25)];
    assert!(p.segment < newest, "in a sealed segment");
    let bytes = image.get_mut(&segment(p.segment)).unwrap();
    bytes[p.end() as usize - 3] ^= 0x08;
    let damaged_bytes = bytes.clone();
    let fs = FaultFs::from_image(6, &image);
    {
        // The store opens, but the value reads as corruption, and a collection of its
        // segment fails (forever, without a repair).
        let store = Wisckey::open(&store_path(), &on(&fs)).unwrap();
        assert!(matches!(store.get(&key(25)), Err(Error::Corruption { .. })));
    }
    let report = dry_run_then_repair(&fs);
    assert_eq!(damaged(&report), [segment_name(p.segment)], "{report}");
    let salvaged = &report.written[0];
    assert_eq!(salvaged.file, segment_name(newest + 1), "{report}");
    assert!(pointer_line(&report).contains("1 keys deleted"), "{report}");
    assert!(pointer_line(&report).contains("\"key025\""), "{report}");
    let lost = store_path().join(LOST_DIR).join(segment_name(p.segment));
    assert_eq!(fs.read_file(&lost), Some(damaged_bytes));
    assert_eq!(fs.read_file(&segment(p.segment)), None);
    // The segment's other keys read through their new pointers.
    let store = Wisckey::open(&store_path(), &on(&fs)).unwrap();
    for (k, old) in &pointers {
        if old.segment == p.segment && *k != key(25) {
            assert_eq!(pointer_of(&store, k).segment, newest + 1, "{k:?}");
        }
    }
    drop(store);
    check(&fs, &model, &BTreeSet::from([key(25)]));
}

#[test]
fn a_sealed_segment_cut_short_keeps_what_lies_before_the_cut() {
    let (mut image, model, pointers, newest) = build();
    let p = pointers[&key(25)];
    assert!(p.segment < newest, "in a sealed segment");
    image
        .get_mut(&segment(p.segment))
        .unwrap()
        .truncate(p.offset as usize + 5);
    let fs = FaultFs::from_image(7, &image);
    assert!(
        Wisckey::open(&store_path(), &on(&fs)).is_err(),
        "a sealed segment that lost its end is refused"
    );
    let report = dry_run_then_repair(&fs);
    assert_eq!(damaged(&report), [segment_name(p.segment)], "{report}");
    let gone = keys_in(&pointers, p.segment, p.offset);
    assert!(gone.contains(&key(25)) && gone.len() < 8, "{gone:?}");
    let count = format!("{} keys deleted", gone.len());
    assert!(pointer_line(&report).contains(&count), "{report}");
    check(&fs, &model, &gone);
}

#[test]
fn the_newest_segment_keeps_the_records_after_a_hole() {
    let (mut image, model, pointers, newest) = build();
    let in_newest = keys_in(&pointers, newest, 0);
    assert!(in_newest.len() >= 3, "{in_newest:?}");
    let first = in_newest
        .iter()
        .min_by_key(|k| pointers[*k].offset)
        .unwrap()
        .clone();
    let p = pointers[&first];
    image.get_mut(&segment(newest)).unwrap()[p.end() as usize - 3] ^= 0x08;
    // Opening alone takes the damage for a torn write and loses every later record.
    let opened = FaultFs::from_image(8, &image);
    let store = Wisckey::open(&store_path(), &on(&opened)).unwrap();
    let stale = in_newest
        .iter()
        .filter(|k| store.get(k).unwrap().as_ref() != model.get(*k))
        .count();
    assert_eq!(stale, in_newest.len(), "open cuts at the hole");
    drop(store);
    // Repair keeps the records after the hole.
    let fs = FaultFs::from_image(8, &image);
    let report = dry_run_then_repair(&fs);
    assert_eq!(damaged(&report), [segment_name(newest)], "{report}");
    check(&fs, &model, &BTreeSet::from([first]));
}

#[test]
fn the_newest_segment_cut_at_a_record_boundary_is_found_by_the_tables_pointers() {
    let (image, model, pointers, newest) = build();
    // Flush the tree, so that its pointers are in a table, not in a WAL that opening would
    // cut back to the log.
    let fs = FaultFs::from_image(9, &image);
    let store = Wisckey::open(&store_path(), &on(&fs)).unwrap();
    store.tree().flush().unwrap();
    assert_eq!(store.value_log().active_id(), newest);
    store.close().unwrap();
    let mut image = fs.image();
    let mut in_newest: Vec<u64> = keys_in(&pointers, newest, 0)
        .iter()
        .map(|k| pointers[k].offset)
        .collect();
    in_newest.sort_unstable();
    assert!(in_newest.len() >= 3, "{in_newest:?}");
    let cut = in_newest[1];
    image
        .get_mut(&segment(newest))
        .unwrap()
        .truncate(cut as usize);
    let fs = FaultFs::from_image(10, &image);
    let gone = keys_in(&pointers, newest, cut);
    {
        // The cut leaves whole records only: the store opens, and the keys past the cut
        // read as corruption, never as a wrong value.
        let store = Wisckey::open(&store_path(), &on(&fs)).unwrap();
        for k in &gone {
            assert!(
                matches!(store.get(k), Err(Error::Corruption { .. })),
                "{k:?}"
            );
        }
    }
    let report = dry_run_then_repair(&fs);
    assert_eq!(damaged(&report), [segment_name(newest)], "{report}");
    assert!(report.damaged[0].note.contains("lost records"), "{report}");
    let count = format!("{} keys deleted", gone.len());
    assert!(pointer_line(&report).contains(&count), "{report}");
    check(&fs, &model, &gone);
}

#[test]
fn a_power_loss_on_top_of_damage_leaves_the_tree_a_prefix_of_the_log() {
    let (image, mut model, pointers, _) = build();
    let fs = FaultFs::from_image(9, &image);
    let store = Wisckey::open(&store_path(), &on(&fs)).unwrap();
    let synced = fs.image();
    // Two overwrites whose WAL records reach the disk while the value log's tail does not.
    store.put(&key(0), &value(0, 2)).unwrap();
    store.put(&key(1), &value(1, 2)).unwrap();
    let newest = store.value_log().active_id();
    drop(store);
    let mut image = fs.image();
    match synced.get(&segment(newest)) {
        Some(bytes) => image.insert(segment(newest), bytes.clone()),
        None => image.remove(&segment(newest)), // the puts started it
    };
    let p = pointers[&key(25)];
    image.get_mut(&segment(p.segment)).unwrap()[p.end() as usize - 3] ^= 0x08;
    let fs = FaultFs::from_image(10, &image);
    let report = dry_run_then_repair(&fs);
    assert_eq!(damaged(&report), [segment_name(p.segment)], "{report}");
    assert!(
        pointer_line(&report).contains("2 records cut from the tree's newest WAL"),
        "{report}"
    );
    // Keys 0 and 1 are back at their values before the power loss.
    model.insert(key(0), value(0, 1));
    model.insert(key(1), value(1, 1));
    check(&fs, &model, &BTreeSet::from([key(25)]));
}

#[test]
fn a_key_the_tree_repair_takes_back_to_a_collected_value_is_deleted() {
    let settings = "value_threshold=8 vlog_segment_bytes=64 gc_dead_ratio=0 l0_trigger=50 \
                    l0_slowdown=60 l0_stop=70";
    let opts = |fs: &FaultFs| common::options(settings).with_file_system(Arc::new(fs.clone()));
    let fs = FaultFs::new(11);
    let store = Wisckey::open(&store_path(), &opts(&fs)).unwrap();
    let mut model = Model::new();
    for i in 0..5 {
        store.put(&key(i), &value(i, 0)).unwrap();
        model.insert(key(i), value(i, 0));
    }
    store.flush().unwrap();
    // A newer value of key 0, alone in the newest table; the older one's segment is
    // collected (every segment holds one record).
    let old = pointer_of(&store, &key(0));
    store.put(&key(0), &value(0, 1)).unwrap();
    model.insert(key(0), value(0, 1));
    store.flush().unwrap();
    store.value_log().seal_active().unwrap();
    assert!(store.collect_garbage(0.5).unwrap() >= 1);
    store.close().unwrap();
    let mut image = fs.image();
    assert!(!image.contains_key(&segment(old.segment)), "collected");
    let tree = wisckey::file_names::tree_dir(&store_path());
    let newest_table = image
        .keys()
        .filter(|p| p.starts_with(&tree) && p.extension().is_some_and(|e| e == "sst"))
        .max()
        .unwrap()
        .clone();
    image.get_mut(&newest_table).unwrap()[5] ^= 0x40;
    let fs = FaultFs::from_image(12, &image);
    let report = dry_run_then_repair(&fs);
    let table = format!(
        "tree/{}",
        newest_table.file_name().unwrap().to_string_lossy()
    );
    assert!(damaged(&report).contains(&table.as_str()), "{report}");
    assert!(pointer_line(&report).contains("\"key000\""), "{report}");
    let lost = store_path().join(LOST_DIR).join(&table);
    assert!(fs.read_file(&lost).is_some(), "{}", lost.display());
    let store = Wisckey::open(&store_path(), &opts(&fs)).unwrap();
    assert_eq!(store.get(&key(0)).unwrap(), None, "deleted, not corruption");
    for i in 1..5 {
        assert_eq!(store.get(&key(i)).unwrap(), Some(value(i, 0)));
    }
}

/// Repairs a damaged store on a disk that loses power at its `k`-th file operation
/// (`None`: never), powers back on, repairs again, and checks the store. Returns the
/// operations the first repair made.
fn repair_with_crash(
    image: &FsImage,
    model: &Model,
    gone: &BTreeSet<Vec<u8>>,
    k: Option<u64>,
) -> u64 {
    let fs = FaultFs::from_image(k.unwrap_or(0), image);
    let before = fs.mutations();
    if let Some(k) = k {
        fs.crash_at_mutation(k);
    }
    if let Err(e) = wisckey::repair(&store_path(), &on(&fs), false) {
        assert!(fs.is_down(), "repair failed with the disk up: {e}");
    }
    let made = fs.mutations() - before;
    fs.crash();
    fs.restart();
    let report = wisckey::repair(&store_path(), &on(&fs), false)
        .unwrap_or_else(|e| panic!("crash at operation {k:?}: the second repair: {e}"));
    let store = Wisckey::open(&store_path(), &on(&fs))
        .unwrap_or_else(|e| panic!("crash at operation {k:?}: open: {e}\n{report}"));
    for (key, value) in model {
        let expected = (!gone.contains(key)).then_some(value);
        let got = store.get(key);
        let got = got.unwrap_or_else(|e| panic!("crash at operation {k:?}: {e}\n{report}"));
        assert_eq!(got.as_ref(), expected, "crash at operation {k:?}\n{report}");
    }
    made
}

#[test]
fn a_crash_at_any_step_of_a_repair_is_finished_by_the_next() {
    let (mut image, model, pointers, _) = build();
    let p = pointers[&key(25)];
    image.get_mut(&segment(p.segment)).unwrap()[p.end() as usize - 3] ^= 0x08;
    let gone = BTreeSet::from([key(25)]);
    let total = repair_with_crash(&image, &model, &gone, None);
    assert!(total > 10, "a repair of {total} file operations");
    for k in 1..=total {
        repair_with_crash(&image, &model, &gone, Some(k));
    }
    eprintln!("wisckey: a power loss at each of the {total} file operations of a repair");
}

#[test]
fn no_store_an_open_store_and_a_clean_store_are_left_alone() {
    let fs = FaultFs::new(13);
    let dir = store_path();
    assert!(matches!(
        wisckey::repair(&dir, &on(&fs), false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(fs.image().is_empty(), "nothing written");
    let store = Wisckey::open(&dir, &on(&fs)).unwrap();
    store.put(b"k", &value(1, 0)).unwrap();
    assert!(matches!(
        wisckey::repair(&dir, &on(&fs), false),
        Err(Error::Locked { .. })
    ));
    store.close().unwrap();
    let before = without_locks(fs.image());
    let report = wisckey::repair(&dir, &on(&fs), false).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(without_locks(fs.image()), before);
    // The tree alone is an lsm store, not a wisckey one.
    let tree = wisckey::file_names::tree_dir(&dir);
    assert!(matches!(
        wisckey::repair(&tree, &on(&fs), true),
        Err(Error::WrongEngine { .. })
    ));
}
