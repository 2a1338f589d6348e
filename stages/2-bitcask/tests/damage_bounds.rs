//! Exactly what survives damage to a segment or a hint file, as LevelDB's `corruption_test`
//! pins it. A store of numbered writes, one record each, spread over several 4 KiB
//! segments (merges off, so the records stay where they were written):
//!
//! * a sealed segment must be whole: a flipped byte in any of its records, or the file cut
//!   inside one, is refused at open with a corruption error naming that segment and the
//!   damaged record's offset, even in its last record (which in the newest segment would be
//!   a torn tail) and its seal record;
//! * the newest segment cut inside record `n`, or with a byte of record `n` flipped, opens
//!   holding exactly the writes before it (a damaged record with valid ones after it is
//!   taken for the hole of an unsynced tail);
//! * a hint file only speeds up the open: damaged anywhere, it is ignored and the store
//!   opens whole from its segments;
//! * a merge commit record (left by a crash between the commit and the deletion of the
//!   merge's inputs), flipped or cut at any byte, is refused at open or changes nothing:
//!   it holds no key, so the store loses none.

use std::path::PathBuf;
use std::sync::Arc;

use bitcask::Bitcask;
use kv_shared::{Engine, Error, Options};
use kv_testkit::FaultFs;
use kv_testkit::corruption_suite::{
    Outcome, Section, check_bounded, dump_sections, keys_at_risk, numbered_writes, open_and_read,
    state_after, store_of,
};
use kv_testkit::fault_fs::{FsImage, store_path};
use kv_testkit::history::WriteOp;
use kv_testkit::hook_fs::HookFs;

const WRITES: usize = 300;

fn options() -> Options {
    Options::new()
        .set("segment_bytes", "4K")
        .set("background_merge", "false")
}

/// Segments in order, each with the sections of its dump that are records.
type Segments = Vec<(PathBuf, Vec<Section>)>;

/// The segments of `image`.
fn segments(image: &FsImage) -> Segments {
    image
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "seg"))
        .map(|(path, bytes)| {
            let dump = bitcask::inspect(bytes).expect("a segment");
            let records = dump_sections(&dump)
                .into_iter()
                .filter(|s| s.heading.starts_with("record "))
                .collect();
            (path.clone(), records)
        })
        .collect()
}

/// How many of `records` are writes (a sealed segment ends with a seal record).
fn writes_in(records: &[Section]) -> usize {
    records
        .iter()
        .filter(|r| !r.heading.ends_with(": seal"))
        .count()
}

fn store() -> (FsImage, Vec<WriteOp>, Segments) {
    let ops = numbered_writes(WRITES, 40);
    let image = store_of::<Bitcask>(&options(), &ops);
    let segments = segments(&image);
    assert!(segments.len() >= 4, "several segments");
    let records: usize = segments.iter().map(|(_, r)| writes_in(r)).sum();
    assert_eq!(records, WRITES, "one record per write");
    (image, ops, segments)
}

/// Checks that `damaged` is refused with a corruption error at `offset` of `file`.
fn refused_at(damaged: &FsImage, file: &PathBuf, offset: u64, context: &str) {
    match open_and_read::<Bitcask>(&options(), damaged) {
        Err(Error::Corruption {
            file: named,
            offset: at,
            ..
        }) => {
            assert_eq!((&named, at), (file, offset), "{context}");
        }
        Err(e) => panic!("{context}: expected a corruption error, got {e}"),
        Ok(_) => panic!("{context}: a damaged sealed segment must be refused"),
    }
}

#[test]
fn a_flip_in_a_sealed_segment_is_refused_at_the_damaged_record() {
    let (image, _, segments) = store();
    for (path, records) in &segments[..segments.len() - 1] {
        let len = image[path].len() as u64;
        for n in [0, records.len() / 2, records.len() - 1] {
            let start = records[n].start.expect("a record has bytes");
            let end = records[n].end.unwrap_or(len);
            for at in [start, start + 4, end - 1] {
                let mut damaged = image.clone();
                damaged.get_mut(path).expect("the segment")[at as usize] ^= 0x04;
                let context = format!("flip at {at} of {}, in record {n}", path.display());
                refused_at(&damaged, path, start, &context);
            }
        }
    }
}

#[test]
fn a_sealed_segment_cut_short_is_refused_at_the_cut_record() {
    let (image, _, segments) = store();
    for (path, records) in &segments[..segments.len() - 1] {
        for n in [1, records.len() - 1] {
            let start = records[n].start.expect("a record has bytes");
            for cut in [start + 1, start + 9] {
                let mut damaged = image.clone();
                damaged
                    .get_mut(path)
                    .expect("the segment")
                    .truncate(cut as usize);
                let context = format!("cut at {cut} of {}, in record {n}", path.display());
                refused_at(&damaged, path, start, &context);
            }
        }
    }
}

#[test]
fn the_newest_segment_damaged_in_record_n_keeps_exactly_the_writes_before_it() {
    let (image, ops, segments) = store();
    let (path, records) = segments.last().expect("segments");
    let before: usize = segments[..segments.len() - 1]
        .iter()
        .map(|(_, r)| writes_in(r))
        .sum();
    for n in [0, 1, records.len() / 2, records.len() - 1] {
        let start = records[n].start.expect("a record has bytes");
        let end = records[n].end.unwrap_or(image[path].len() as u64);
        let cuts = [start, start + 1, start + 20].map(|cut| (cut, None));
        let flips = [start, start + 5, end - 1].map(|at| (at, Some(0x20u8)));
        for (cut, flip) in cuts.into_iter().chain(flips) {
            let mut damaged = image.clone();
            let segment = damaged.get_mut(path).expect("the segment");
            match flip {
                Some(mask) => segment[cut as usize] ^= mask,
                None => segment.truncate(cut as usize),
            }
            let what = if flip.is_some() { "flip" } else { "cut" };
            let context = format!("{what} at {cut} of {}, in record {n}", path.display());
            let reads = open_and_read::<Bitcask>(&options(), &damaged)
                .unwrap_or_else(|e| panic!("{context}: must open: {e}"));
            let expected = state_after(&ops[..before + n]);
            for (key, read) in &reads {
                let read = read
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{context}: get: {e}"));
                assert_eq!(read.as_ref(), expected.get(key), "{context}: key {key:?}");
            }
            let at_risk = keys_at_risk(bitcask::inspect, &image[path], cut);
            let outcome =
                check_bounded::<Bitcask>(&options(), &damaged, &ops, 0, &context, &at_risk);
            assert!(
                matches!(outcome, Outcome::Opened { read_errors: 0, .. }),
                "{context}"
            );
        }
    }
}

/// A store whose merge wrote hint files: the numbered writes, a merge, and more writes.
fn merged_store() -> (FsImage, Vec<WriteOp>) {
    let ops = numbered_writes(WRITES, 40);
    let fs = FaultFs::new(0);
    let opts = options().with_file_system(Arc::new(fs.clone()));
    let engine = Bitcask::open(&store_path(), &opts).expect("open");
    for (i, op) in ops.iter().enumerate() {
        op.issue(&engine).expect("write");
        if i == WRITES * 2 / 3 {
            engine.compact().expect("merge");
        }
    }
    engine.sync().expect("sync");
    drop(engine);
    let image = fs
        .image()
        .into_iter()
        .filter(|(p, _)| {
            p.extension().is_some_and(|e| e == "seg" || e == "hint") || p.ends_with("ENGINE")
        })
        .collect();
    (image, ops)
}

#[test]
fn a_damaged_hint_file_is_ignored_and_the_store_opens_whole() {
    let (image, ops) = merged_store();
    let latest = state_after(&ops);
    let hints: Vec<&PathBuf> = image
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "hint"))
        .collect();
    assert!(!hints.is_empty(), "the merge wrote hint files");
    for hint in hints {
        let len = image[hint].len();
        for at in (0..len).step_by(7) {
            let mut damaged = image.clone();
            damaged.get_mut(hint).expect("the hint")[at] ^= 0x01;
            let context = format!("flip at {at} of {}", hint.display());
            let reads = open_and_read::<Bitcask>(&options(), &damaged)
                .unwrap_or_else(|e| panic!("{context}: must open: {e}"));
            for (key, read) in &reads {
                let read = read
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{context}: get: {e}"));
                assert_eq!(read.as_ref(), latest.get(key), "{context}: key {key:?}");
            }
        }
    }
}

/// A store cut off in the middle of a merge, just after its commit record was written
/// (before the inputs were deleted), read into an image of the store: on the real disk
/// through [`HookFs`], as the merge's own crash tests do, since only a crash leaves a commit
/// record behind.
fn committed_merge() -> (FsImage, Vec<WriteOp>) {
    let ops = numbered_writes(WRITES, 40);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    for cut in 0..10_000 {
        let dir = tmp.path().join(format!("cut{cut}"));
        let hook = HookFs::new();
        let opts = options().with_file_system(Arc::new(hook.clone()));
        let engine = Bitcask::open(&dir, &opts).expect("open");
        for op in &ops {
            op.issue(&engine).expect("write");
        }
        engine.sync().expect("sync");
        hook.crash_after(cut);
        let _ = engine.compact();
        drop(engine);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .expect("the store")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        if names.iter().any(|n| n.ends_with(".commit")) {
            let image = names
                .iter()
                .filter(|n| *n != kv_shared::store_dir::LOCK_FILE)
                .map(|n| {
                    let bytes = std::fs::read(dir.join(n)).expect("a file");
                    (store_path().join(n), bytes)
                })
                .collect();
            return (image, ops);
        }
        assert!(
            hook.crashed(),
            "the whole merge ran without leaving a commit record"
        );
    }
    panic!("no cut leaves a commit record")
}

#[test]
fn a_damaged_merge_commit_record_is_refused_or_changes_nothing() {
    let (image, ops) = committed_merge();
    let commit = image
        .keys()
        .find(|p| p.extension().is_some_and(|e| e == "commit"))
        .expect("a commit record")
        .clone();
    let original = &image[&commit];
    let (mut refused, mut whole) = (0, 0);
    let mut cases: Vec<(String, Vec<u8>, u64)> = Vec::new();
    for at in 0..original.len() {
        for mask in [0x01, 0x80] {
            let mut bytes = original.clone();
            bytes[at] ^= mask;
            cases.push((format!("flip {mask:#04x} at {at}"), bytes, at as u64));
        }
        cases.push((format!("cut at {at}"), original[..at].to_vec(), at as u64));
    }
    for (what, bytes, at) in cases {
        let mut damaged = image.clone();
        damaged.insert(commit.clone(), bytes);
        let context = format!("{} ({what})", commit.display());
        // A commit record names segments, no key: damage to it may lose nothing.
        let at_risk = keys_at_risk(bitcask::inspect, original, at);
        assert!(
            at_risk.is_empty(),
            "{context}: a commit record holds no key"
        );
        match check_bounded::<Bitcask>(&options(), &damaged, &ops, 0, &context, &at_risk) {
            Outcome::Refused { .. } => refused += 1,
            Outcome::Opened { lost, .. } => {
                assert_eq!(lost, 0, "{context}");
                whole += 1;
            }
        }
    }
    eprintln!("damaged commit record: {refused} refused, {whole} opened whole");
}
