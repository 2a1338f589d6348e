//! Torn tails and flipped bytes in segments, hint files and commit records: never a wrong
//! value, never a panic, and damage that is not a torn tail is named as corruption.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bitcask::Bitcask;
use common::*;
use kv_shared::{Engine, Error};
use kv_testkit::conformance::assert_corruption_in;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value of {i}: {}", "v".repeat(i as usize % 17)).into_bytes()
}

/// A store of `n` keys written once each, in order; closed.
fn store(dir: &Path, segment: &str, n: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let e = open(dir, &quiet(segment));
    let mut model = BTreeMap::new();
    for i in 0..n {
        e.put(&key(i), &value(i)).unwrap();
        model.insert(key(i), value(i));
    }
    e.close().unwrap();
    model
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

/// A store built by `build` in a new temporary directory, and one copy of it to damage:
/// each case rewrites one file of the copy whole (opening changes no other file). Returns
/// the guard, the copy's directory and what `build` returned.
fn built_and_copied<T>(build: impl FnOnce(&Path) -> T) -> (tempfile::TempDir, PathBuf, T) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let built = build(&base);
    let dir = tmp.path().join("db");
    copy_dir(&base, &dir);
    (tmp, dir, built)
}

/// The one segment of the store in `dir`.
fn only_segment(dir: &Path) -> PathBuf {
    let segments = files_ending(dir, ".seg");
    let [segment] = &segments[..] else {
        panic!("one segment expected: {segments:?}")
    };
    segment.clone()
}

#[test]
fn every_torn_tail_of_the_active_segment_keeps_a_prefix() {
    let (_tmp, dir, model) = built_and_copied(|base| store(base, "1M", 12));
    let path = only_segment(&dir);
    let bytes = std::fs::read(&path).unwrap();
    // Where each record ends: 16-byte header, then 27 + key + value per record.
    let ends: Vec<usize> = (0..12)
        .scan(16, |end, i| {
            *end += 27 + key(i).len() + value(i).len();
            Some(*end)
        })
        .collect();
    assert_eq!(*ends.last().unwrap(), bytes.len());
    for cut in 0..bytes.len() {
        write(&path, &bytes[..cut]);
        let e = open(&dir, &quiet("1M"));
        let whole = ends.iter().filter(|&&end| end <= cut).count() as u32;
        let prefix: BTreeMap<Vec<u8>, Vec<u8>> = (0..whole).map(|i| (key(i), value(i))).collect();
        assert_holds(&e, &prefix, &format!("cut at {cut}"));
        let valid = if whole == 0 {
            16
        } else {
            ends[whole as usize - 1]
        };
        assert_eq!(
            e.stats().unwrap().extra["torn_bytes_truncated"],
            (cut.max(valid) - valid) as u64 + if cut < 16 { cut as u64 } else { 0 },
            "cut at {cut}"
        );
        // Appends continue after the valid prefix. (Dropping instead of closing skips the
        // fsync; the bytes are with the OS either way.)
        e.put(b"later", b"write").unwrap();
        drop(e);
        let e = open(&dir, &quiet("1M"));
        assert_eq!(
            e.get(b"later").unwrap().as_deref(),
            Some(&b"write"[..]),
            "cut at {cut}"
        );
        assert_eq!(contents(&e).len() as u32, whole + 1);
        drop(e);
    }
    drop(model);
}

#[test]
fn damage_in_a_sealed_segment_is_corruption_and_changes_nothing() {
    let (_tmp, dir, _) = built_and_copied(|base| store(base, "512", 40));
    let segments = files_ending(&dir, ".seg");
    assert!(segments.len() >= 3);
    let path = segments[0].clone();
    let bytes = std::fs::read(&path).unwrap();
    let check = |damaged: &[u8], context: &str| {
        write(&path, damaged);
        assert_corruption_in(Bitcask::open(&dir, &quiet("512")), &path, context);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            damaged,
            "{context}: the file was changed"
        );
    };
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x20;
        check(&damaged, &format!("flip at {i}"));
    }
    // Cut anywhere, even at a record boundary: the seal is missing.
    for cut in (0..bytes.len()).step_by(7) {
        check(&bytes[..cut], &format!("cut at {cut}"));
    }
}

/// The active segment is the store's newest log: a power loss can leave a hole in its
/// unsynced tail with valid records after it. So damage to any of its records makes that
/// record and everything after it the unsynced tail: the store opens with the records
/// before it, the segment cut there, and (when records followed) a copy of the whole
/// damaged segment in `lost/`. The header is the segment's first bytes: when it is damaged,
/// the whole segment is the unsynced tail, and the store opens empty with a fresh header.
#[test]
fn damage_inside_the_active_segment_cuts_it_there_and_keeps_a_copy_in_lost() {
    let (_tmp, dir, model) = built_and_copied(|base| store(base, "1M", 10));
    let path = only_segment(&dir);
    let lost = dir.join(kv_shared::repair::LOST_DIR);
    let bytes = std::fs::read(&path).unwrap();
    let mut starts = vec![bitcask::record::SEGMENT_HEADER_LEN as usize];
    for i in 0..10 {
        starts.push(starts[i] + 27 + key(i as u32).len() + value(i as u32).len());
    }
    assert_eq!(starts[10], bytes.len(), "ten puts, no seal");
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x01;
        write(&path, &damaged);
        let _ = std::fs::remove_dir_all(&lost);
        let context = format!("flip at {i}");
        // The damaged record (`None`: the header); the records before it are kept.
        let record = starts[..10].iter().rposition(|&s| s <= i);
        let (cut_at, kept) = match record {
            Some(r) => (starts[r], r as u32),
            None => (starts[0], 0),
        };
        let e = open(&dir, &quiet("1M"));
        let prefix: BTreeMap<_, _> = model
            .iter()
            .filter(|(k, _)| **k < key(kept))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_holds(&e, &prefix, &context);
        drop(e);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert_eq!(len, cut_at, "{context}: cut at the damaged record");
        let copy = std::fs::read(lost.join(path.file_name().unwrap()));
        if record != Some(9) {
            assert!(copy.unwrap() == damaged, "{context}: the copy in lost/");
        } else {
            assert!(
                copy.is_err(),
                "{context}: a damaged last record is only a torn tail"
            );
        }
    }
}

/// A merged store: its segments have hint files. Returns the model and the hint paths.
fn merged_store(dir: &Path) -> (BTreeMap<Vec<u8>, Vec<u8>>, Vec<PathBuf>) {
    let e = open(dir, &quiet("1K"));
    let model = churn(&e, 30, 3);
    e.compact().unwrap();
    e.close().unwrap();
    (model, files_ending(dir, ".hint"))
}

#[test]
fn a_damaged_hint_file_is_ignored_and_its_segment_read_instead() {
    let (_tmp, dir, (model, hints)) = built_and_copied(merged_store);
    let path = dir.join(hints[0].file_name().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let check = |damaged: &[u8], context: &str| {
        write(&path, damaged);
        let e = open(&dir, &quiet("1K"));
        assert_holds(&e, &model, context);
        let s = e.stats().unwrap();
        assert_eq!(s.extra["hint_files_rejected"], 1, "{context}");
        assert_eq!(
            s.extra["hint_files_read"],
            hints.len() as u64 - 1,
            "{context}"
        );
        drop(e);
    };
    for i in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x08;
        check(&damaged, &format!("hint flip at {i}"));
    }
    // Every cut near the ends (header, end entry), every third one in between.
    for cut in (0..bytes.len()).filter(|&c| c < 64 || c + 64 > bytes.len() || c % 3 == 0) {
        check(&bytes[..cut], &format!("hint cut at {cut}"));
    }
}

#[test]
fn damage_in_a_segment_loaded_from_its_hint_is_caught_when_read() {
    let (_tmp, dir, (model, hints)) = built_and_copied(merged_store);
    let path = dir.join(hints[0].with_extension("seg").file_name().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    for i in 16..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x40;
        write(&path, &damaged);
        let context = format!("flip at {i}");
        // Opening trusts the hint; every read still checks its record.
        let e = open(&dir, &quiet("1K"));
        for (k, v) in &model {
            match e.get(k) {
                Ok(got) => assert_eq!(got.as_ref(), Some(v), "{context}"),
                Err(Error::Corruption { file, .. }) => assert_eq!(file, path, "{context}"),
                Err(other) => panic!("{context}: {other}"),
            }
        }
        drop(e);
        // Without hints, the damage is found at open.
        assert_corruption_in(
            Bitcask::open(&dir, &quiet("1K").set("hint_files", "false")),
            &path,
            &context,
        );
    }
}

#[test]
fn a_damaged_commit_record_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    store(&dir, "1K", 5);
    let path = dir.join("merge-00000099.commit");
    let good = bitcask::merge_commit::MergeCommit {
        inputs: vec![1],
        outputs: vec![],
    }
    .encode();
    for i in 0..good.len() {
        let mut damaged = good.clone();
        damaged[i] ^= 0x02;
        write(&path, &damaged);
        assert_corruption_in(
            Bitcask::open(&dir, &quiet("1K")),
            &path,
            &format!("flip at {i}"),
        );
    }
}
