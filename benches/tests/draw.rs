//! `kv draw`: the pictures of a small fixed store of each stage, and of one SSTable file,
//! pinned by insta snapshots (the stores are built the same way every time: fixed keys and
//! values, thresholds shrunk so a stage has a few segments or tables); the structure of one
//! store as JSON, the shape served to other tools; and drawing as a reader only (a foreign
//! directory refused with nothing created, a store open elsewhere drawn, nothing changed).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use kv_shared::{DynEngine, Error, Options, WriteBatch};
use kvbench::draw::{self, Request};
use kvbench::engines::{ENGINES, find};

/// One change to a store.
enum Op {
    Put(&'static str, &'static str),
    Delete(&'static str),
    Batch(&'static [(&'static str, Option<&'static str>)]),
    Compact,
    Flush,
}

use Op::{Batch, Compact, Delete, Flush, Put};

/// Fruit and colours, overwritten and deleted, with a batch: every kind of record.
const FRUIT: &[Op] = &[
    Put("apple", "red"),
    Put("banana", "yellow"),
    Put("cherry", "dark red"),
    Put("apple", "green"),
    Delete("banana"),
    Batch(&[
        ("date", Some("brown")),
        ("elder", Some("black")),
        ("cherry", None),
    ]),
    Put("fig", "purple"),
    Put("apple", "golden"),
    Put("grape", "green"),
];

fn open(engine: &str, dir: &Path, settings: &[(&str, &str)]) -> Box<dyn DynEngine> {
    let mut options = Options::new();
    for (name, value) in settings {
        options = options.set(*name, value);
    }
    (find(ENGINES, engine).unwrap().open)(dir, &options).unwrap()
}

/// Applies `ops` to the store in `dir`, then closes it.
fn build(engine: &str, dir: &Path, settings: &[(&str, &str)], ops: &[Op]) {
    let store = open(engine, dir, settings);
    for op in ops {
        apply(store.as_ref(), op);
    }
    store.close().unwrap();
}

/// Applies one change to `store`.
fn apply(store: &dyn DynEngine, op: &Op) {
    match op {
        Put(key, value) => store.put(key.as_bytes(), value.as_bytes()).unwrap(),
        Delete(key) => store.delete(key.as_bytes()).unwrap(),
        Batch(ops) => {
            let mut batch = WriteBatch::new();
            for (key, value) in *ops {
                match value {
                    Some(value) => batch.put(key.as_bytes(), value.as_bytes()).unwrap(),
                    None => batch.delete(key.as_bytes()).unwrap(),
                }
            }
            store.write(&batch).unwrap();
        }
        Compact => store.compact().unwrap(),
        Flush => assert!(store.flush().unwrap(), "the engine has a memtable"),
    }
}

/// `n` puts of `key000`..`key099` in a fixed scrambled order, values numbered.
fn scrambled_puts(n: u32) -> Vec<(String, String)> {
    (1..=n)
        .map(|i| (format!("key{:03}", (i * 37) % 100), format!("value{i}")))
        .collect()
}

fn put_all(engine: &str, dir: &Path, settings: &[(&str, &str)], pairs: &[(String, String)]) {
    let store = open(engine, dir, settings);
    for (key, value) in pairs {
        store.put(key.as_bytes(), value.as_bytes()).unwrap();
    }
    store.close().unwrap();
}

/// What `kv draw` draws for `--dir dir --engine engine --file file` with `options`.
fn drawn(
    dir: Option<&Path>,
    engine: Option<&str>,
    file: Option<&Path>,
    options: &Options,
) -> kv_shared::Result<String> {
    let request = Request { dir, engine, file };
    draw::draw(ENGINES, request, options)
}

fn picture(dir: &Path) -> String {
    drawn(Some(dir), None, None, &Options::new()).unwrap()
}

fn file_picture(dir: &Path, file: &str) -> String {
    drawn(Some(dir), None, Some(Path::new(file)), &Options::new()).unwrap()
}

/// Every file of `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn hashlog_store() {
    let tmp = tempfile::tempdir().unwrap();
    build("hashlog", tmp.path(), &[], FRUIT);
    insta::assert_snapshot!("hashlog", picture(tmp.path()));
    let structure = draw::structure(ENGINES, tmp.path(), None, &Options::new()).unwrap();
    let json = serde_json::to_string_pretty(&structure).unwrap();
    insta::assert_snapshot!("hashlog_structure_json", json);
    let back: kv_shared::Structure = serde_json::from_str(&json).unwrap();
    assert_eq!(back, structure);
}

#[test]
fn bitcask_store_before_and_after_a_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = [("segment_bytes", "160"), ("background_merge", "false")];
    build("bitcask", tmp.path(), &settings, FRUIT);
    insta::assert_snapshot!("bitcask_before_merge", picture(tmp.path()));
    build("bitcask", tmp.path(), &settings, &[Compact]);
    insta::assert_snapshot!("bitcask_after_merge", picture(tmp.path()));
}

#[test]
fn sstable_store_and_one_table() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = [("memtable_bytes", "200"), ("block_bytes", "64")];
    put_all("sstable", tmp.path(), &settings, &scrambled_puts(60));
    insta::assert_snapshot!("sstable", picture(tmp.path()));
    let first_table = contents(tmp.path())
        .into_keys()
        .find(|name| name.ends_with(".sst"))
        .unwrap();
    insta::assert_snapshot!("sstable_file", file_picture(tmp.path(), &first_table));
}

#[test]
fn lsm_store_before_and_after_a_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = [
        ("memtable_bytes", "64K"),
        ("table_bytes", "1K"),
        ("level1_bytes", "2K"),
        ("level_ratio", "4"),
        ("block_bytes", "256"),
        // Fixed targets: the picture shows every level against its own target.
        ("dynamic_levels", "false"),
    ];
    // Each session's writes stay in its WAL; the next open flushes them to an L0 table, so
    // which file gets which number never depends on the background threads' timing.
    let writes: Vec<(String, String)> = (0..600)
        .map(|i: u32| (format!("key{:03}", (i * 37) % 1000), format!("value{i}")))
        .collect();
    let mut sessions = writes.chunks(60);
    for round in 0..3 {
        for session in sessions.by_ref().take(4) {
            put_all("lsm", tmp.path(), &settings, session);
        }
        if round < 2 {
            build("lsm", tmp.path(), &settings, &[Compact]);
        }
    }
    let options = settings
        .iter()
        .fold(Options::new(), |o, (name, value)| o.set(*name, value));
    let lsm = || drawn(Some(tmp.path()), Some("lsm"), None, &options).unwrap();
    insta::assert_snapshot!("lsm_before_compaction", lsm());
    build("lsm", tmp.path(), &settings, &[Compact]);
    insta::assert_snapshot!("lsm_after_compaction", lsm());
    let table = contents(tmp.path())
        .into_keys()
        .find(|name| name.ends_with(".sst"))
        .unwrap();
    insta::assert_snapshot!("lsm_table_file", file_picture(tmp.path(), &table));
}

#[test]
fn wisckey_store_tree_above_value_log() {
    let tmp = tempfile::tempdir().unwrap();
    // Values of 6 bytes or more go to the value log ("yellow", "dark red", "purple",
    // "golden"), shorter ones stay in the tree; segments of 160 bytes; no background
    // collection, so the store is the same every time.
    let settings = [
        ("value_threshold", "6"),
        ("vlog_segment_bytes", "160"),
        ("gc_dead_ratio", "0"),
    ];
    let ops: Vec<&Op> = FRUIT.iter().chain([&Flush]).collect();
    let store = open("wisckey", tmp.path(), &settings);
    for op in ops {
        apply(store.as_ref(), op);
    }
    store.close().unwrap();
    let svg = picture(tmp.path());
    insta::assert_snapshot!("wisckey", svg);
    let structure = draw::structure(ENGINES, tmp.path(), None, &Options::new()).unwrap();
    let live: Vec<(&str, Option<bool>)> = (structure.files.iter())
        .filter(|f| f.kind == kv_shared::structure::FileKind::Segment)
        .flat_map(|f| &f.parts)
        .filter(|p| p.kind == kv_shared::structure::PartKind::Put)
        .map(|p| (p.keys[0].as_str(), p.live))
        .collect();
    // Live: the values in the log the tree still points at. Dead: the small values (kept
    // in the tree), the deleted banana and cherry, the overwritten apples.
    let expected = [
        ("apple", false),
        ("banana", false),
        ("cherry", false),
        ("apple", false),
        ("date", false),
        ("elder", false),
        ("fig", true),
        ("apple", true),
        ("grape", false),
    ];
    assert_eq!(live, expected.map(|(key, live)| (key, Some(live))));
    let segment = Path::new("vlog/00000001.seg");
    let one = file_picture(tmp.path(), segment.to_str().unwrap());
    assert!(one.contains("vlog/00000001.seg: segment"), "{one}");
    assert_eq!(
        file_picture(tmp.path(), "00000001.seg"),
        one,
        "a unique file name"
    );
}

#[test]
fn drawing_changes_nothing_and_reads_a_store_open_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    build("hashlog", tmp.path(), &[], FRUIT);
    let before = contents(tmp.path());
    let closed = picture(tmp.path());
    let open_elsewhere = open("hashlog", tmp.path(), &[]);
    assert_eq!(picture(tmp.path()), closed, "the lock is not taken");
    open_elsewhere.close().unwrap();
    assert_eq!(contents(tmp.path()), before);
}

#[test]
fn a_store_of_another_engine_or_a_missing_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    build("hashlog", tmp.path(), &[], FRUIT);
    let err = drawn(Some(tmp.path()), Some("bitcask"), None, &Options::new()).unwrap_err();
    assert!(matches!(err, Error::WrongEngine { .. }), "{err}");
    let missing = Some(Path::new("000001.sst"));
    let err = drawn(Some(tmp.path()), None, missing, &Options::new()).unwrap_err();
    assert!(
        err.to_string().contains("holds no file 000001.sst"),
        "{err}"
    );
}

#[test]
fn kv_draw_refuses_a_foreign_directory_without_creating_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let missing = tmp.path().join("missing");
    let out = tmp.path().join("out.svg");
    for dir in [&foreign, &missing] {
        let output = Command::new(env!("CARGO_BIN_EXE_kv"))
            .args([
                "draw",
                "--dir",
                dir.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let err = String::from_utf8(output.stderr).unwrap();
        assert!(err.starts_with("kv: error: invalid argument: "), "{err}");
    }
    assert_eq!(
        contents(&foreign).into_keys().collect::<Vec<_>>(),
        ["notes.txt"]
    );
    assert!(!missing.exists() && !out.exists());
}

#[test]
fn kv_draw_writes_the_picture() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    build("hashlog", &dir, &[], FRUIT);
    let out = tmp.path().join("store.svg");
    let status = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["--engine", "hashlog", "--dir", dir.to_str().unwrap()])
        .args(["draw", "-o", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), picture(&dir));
}

#[test]
fn a_bitcask_merge_caught_in_the_directory_is_described() {
    use kv_shared::structure::MergeInProgress;
    let tmp = tempfile::tempdir().unwrap();
    let settings = [("segment_bytes", "160"), ("background_merge", "false")];
    build("bitcask", tmp.path(), &settings, FRUIT);
    let dir = tmp.path();
    std::fs::copy(dir.join("00000002.seg"), dir.join("00000009.seg.merge")).unwrap();
    let s = bitcask::inspect::structure(dir).unwrap();
    let writing = MergeInProgress {
        inputs: Vec::new(),
        outputs: vec!["00000009.seg.merge".into()],
        committed: false,
    };
    assert_eq!(s.merge, Some(writing));
    let output = s.file("00000009.seg.merge").unwrap();
    assert_eq!(
        (output.live_bytes, output.parts[1].live),
        (None, Some(false))
    );

    std::fs::remove_file(dir.join("00000009.seg.merge")).unwrap();
    let commit = bitcask::merge_commit::MergeCommit {
        inputs: vec![1],
        outputs: vec![2],
    };
    std::fs::write(dir.join("merge-00000009.commit"), commit.encode()).unwrap();
    let s = bitcask::inspect::structure(dir).unwrap();
    let committed = MergeInProgress {
        inputs: vec!["00000001.seg".into()],
        outputs: vec!["00000002.seg".into()],
        committed: true,
    };
    assert_eq!(s.merge, Some(committed));
    let input = s.file("00000001.seg").unwrap();
    assert_eq!(input.live_bytes, Some(0));
    assert!(input.note.as_deref().unwrap().starts_with("obsolete"));
}

#[test]
fn a_standalone_sstable_is_drawn_without_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fruit.sst");
    let pairs = [
        ("apple", "red"),
        ("banana", "yellow"),
        ("cherry", "dark red"),
    ];
    let pairs = pairs.map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()));
    sstable::standalone::build_from_pairs(pairs, &path).unwrap();
    let svg = drawn(None, None, Some(&path), &Options::new()).unwrap();
    let title = format!(
        "fruit.sst: SSTable, {} bytes, 3 entries, keys apple .. cherry",
        { std::fs::metadata(&path).unwrap().len() }
    );
    assert!(svg.contains(&title), "{svg}");
    assert!(svg.contains("footer: where the index is"), "{svg}");
}
