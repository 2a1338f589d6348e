//! The corruption suite: damage each kind of file a store holds, byte by byte, and check that
//! the engine notices instead of answering wrong.
//!
//! Disks, controllers and cables flip bits; files get cut short. LevelDB's `corruption_test`
//! and toydb's truncate-at-every-byte test ask what an engine does then. Here a store is
//! built on [`FaultFs`] by a fixed workload (about 400 writes, syncs, compactions), its
//! files grouped by **type** (the name with its digits replaced by `#`: `000012.sst` is
//! `######.sst`), and for the first and last file of each type:
//!
//! * **flips**: a few random bytes XOR-ed with random non-zero masks, many times over;
//! * **truncations**: the file cut at every byte offset of its last `tail` bytes, and at
//!   zero, and at half its length.
//!
//! For each damaged copy of the store:
//!
//! * `open` either succeeds, or fails with [`Error::Corruption`] naming a file of the store
//!   and an offset inside it ([`Error::FormatVersion`] is accepted too, when the damage hit a
//!   version field); any other error, or a panic, fails the suite;
//! * after a successful open, every `get` and a full `scan` return either
//!   [`Error::Corruption`] (again naming file and offset) or a value **once written to that
//!   key** (never garbage, never another key's value), gets agree with the scan, and all
//!   the values are those of **one prefix** of the writes.
//!
//! Damage that looks like a torn write (the end of the newest log cut off, its last record
//! flipped) cannot be told from one, so a store may open with writes lost *from the end*.
//! Losing them from the middle is a wrong answer: a read returns a value that was
//! overwritten, or a deleted key comes back. That happens when an engine takes damage in a
//! file that is *not* the newest of its kind for a torn tail (a sealed segment, an older
//! WAL, a compacted log cut short), which it can only avoid by knowing that such files must
//! be whole.
//!
//! The summary line counts the cases: refused at open, opened whole, opened with writes lost
//! from the end, and reads that reported corruption.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fault_fs::{FaultFs, FsImage, store_path};
use crate::history::{
    Observed, State, Step, WriteOp, fixed_workload, key_space, matching_prefixes,
};
use kv_shared::store_dir::LOCK_FILE;
use kv_shared::{Engine, Error, KeyRange, Options};

/// A file's type: its name with every ASCII digit replaced by `#`.
pub fn file_type(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

/// Builds a store on an in-memory disk with the fixed workload, syncs it and drops the
/// engine without closing it (so logs still hold records). Returns the files and the writes.
pub fn build_store<E: Engine>(
    options: &Options,
    seed: u64,
    writes: usize,
) -> (FsImage, Vec<WriteOp>) {
    let fs = FaultFs::new(seed);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    let engine = E::open(&store_path(), &opts).expect("open a fresh store");
    let mut ops = Vec::new();
    for step in fixed_workload(seed, writes) {
        step.run(&engine)
            .unwrap_or_else(|e| panic!("{step:?} failed: {e}"));
        if let Step::Write(op) = step {
            ops.push(op);
        }
    }
    engine.sync().expect("sync");
    drop(engine);
    let image = fs
        .image()
        .into_iter()
        .filter(|(path, _)| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n != LOCK_FILE && !n.ends_with(".tmp"))
        })
        .collect();
    (image, ops)
}

/// The first and last file of each type, by type.
pub fn files_by_type(image: &FsImage) -> BTreeMap<String, Vec<PathBuf>> {
    let mut types: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for path in image.keys() {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        types
            .entry(file_type(&name))
            .or_default()
            .push(path.clone());
    }
    for paths in types.values_mut() {
        if paths.len() > 2 {
            let last = paths.pop().expect("more than two");
            paths.truncate(1);
            paths.push(last);
        }
    }
    types
}

/// How one damaged store behaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Open failed with a typed damage report.
    Refused,
    /// Open succeeded; `lost` writes missing from the end.
    Opened { lost: usize, read_errors: usize },
}

/// Checks that `e` is a typed damage report naming a file of `image` and an offset in it.
fn check_report(e: &Error, image: &FsImage, context: &str) {
    match e {
        Error::Corruption { file, offset, .. } => {
            let len = image.get(file).map(Vec::len);
            assert!(
                len.is_some_and(|len| *offset <= len as u64),
                "{context}: {e}: the error must name a file of the store and an offset in it \
                 (file length {len:?})"
            );
        }
        Error::FormatVersion { file, .. } => assert!(
            image.contains_key(file),
            "{context}: {e}: must name a file of the store"
        ),
        other => {
            panic!("{context}: got `{other}`, expected a Corruption error naming file and offset")
        }
    }
}

/// Opens a damaged copy of a store built by [`build_store`] (its files `image`, the writes
/// `ops` that built it) and checks the rules above (a failure found by a long run becomes a
/// regression test with this).
///
/// # Panics
/// When a rule is broken, with `context` in the message.
pub fn check_damaged_store<E: Engine>(
    options: &Options,
    image: &FsImage,
    ops: &[WriteOp],
    seed: u64,
    context: &str,
) {
    check_case::<E>(options, image, ops, seed, context);
}

fn check_case<E: Engine>(
    options: &Options,
    image: &FsImage,
    ops: &[WriteOp],
    seed: u64,
    context: &str,
) -> Outcome {
    let fs = FaultFs::from_image(seed, image);
    let opts = options.clone().with_file_system(Arc::new(fs));
    let run = || {
        let engine = match E::open(&store_path(), &opts) {
            Err(e) => {
                check_report(&e, image, context);
                return Outcome::Refused;
            }
            Ok(engine) => engine,
        };
        let (seen, read_errors) = read_damaged(&engine, image, context);
        check_values_were_written(ops, &seen, context);
        let found = matching_prefixes(&State::new(), ops, &seen, 0, ops.len());
        let Some(&p) = found.last() else {
            panic!(
                "{context}: the store opened, but what it holds is no prefix of the writes: \
                 writes were lost from the middle of history (a damaged file that is not the \
                 newest taken for a torn tail?), so some reads return an older value. \
                 Against all writes: {}",
                crate::history::describe_difference(&State::new(), ops, &seen, ops.len())
            );
        };
        drop(engine);
        Outcome::Opened {
            lost: ops.len() - p,
            read_errors,
        }
    };
    match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            if msg.starts_with(context) {
                std::panic::resume_unwind(panic);
            }
            panic!("{context}: the engine panicked: {msg}")
        }
    }
}

/// Reads every key of [`key_space`] and scans the whole damaged store: what it holds (the
/// scan, or the gets when the scan failed), and how many reads reported corruption.
fn read_damaged<E: Engine>(engine: &E, image: &FsImage, context: &str) -> (Observed, usize) {
    let mut read_errors = 0;
    let mut gets = Observed::default();
    for key in key_space() {
        match engine.get(&key) {
            Ok(v) => {
                gets.values.insert(key, v);
            }
            Err(e) => {
                check_report(&e, image, context);
                read_errors += 1;
            }
        }
    }
    let scanned = engine
        .scan(KeyRange::all())
        .and_then(|it| it.collect::<kv_shared::Result<Vec<_>>>());
    match scanned {
        Ok(pairs) => {
            let state: State = pairs.into_iter().collect();
            for (key, got) in &gets.values {
                assert!(
                    got.as_ref() == state.get(key),
                    "{context}: get and scan disagree on key {}",
                    kv_shared::dump::quoted(key, 24)
                );
            }
            (Observed::complete(&state), read_errors)
        }
        Err(e) => {
            check_report(&e, image, context);
            (gets, read_errors + 1)
        }
    }
}

/// Checks that every value `seen` was once written to its key (never garbage, never
/// another key's value).
fn check_values_were_written(ops: &[WriteOp], seen: &Observed, context: &str) {
    let written: BTreeSet<(&[u8], &[u8])> = ops
        .iter()
        .flat_map(WriteOp::effect)
        .filter_map(|(key, value)| Some((key, value?)))
        .collect();
    for (key, value) in &seen.values {
        if let Some(value) = value {
            assert!(
                written.contains(&(key.as_slice(), value.as_slice())),
                "{context}: key {} read as {}, a value never written to it",
                kv_shared::dump::quoted(key, 24),
                kv_shared::dump::quoted(value, 24)
            );
        }
    }
}

/// Damages every file type of a store built by [`build_store`]: `flips` random flip cases
/// per file, and a truncation at each of the last `tail` byte offsets.
///
/// # Panics
/// On the first case that breaks a rule above, naming the file, the damage and the seed.
pub fn corruption<E: Engine>(options: &Options, seed: u64, flips: u64, tail: u64) {
    let (image, ops) = build_store::<E>(options, seed, 400);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut summary: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for (kind, paths) in files_by_type(&image) {
        for path in paths {
            let original = &image[&path];
            let len = original.len();
            let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
            for _ in 0..flips {
                if len == 0 {
                    break;
                }
                let mut bytes = original.clone();
                let mut what = Vec::new();
                for _ in 0..rng.random_range(1..=3) {
                    let at = rng.random_range(0..len);
                    let mask = rng.random_range(1..=255u8);
                    bytes[at] ^= mask;
                    what.push(format!("{at}^{mask:#04x}"));
                }
                cases.push((format!("flip {}", what.join(",")), bytes));
            }
            let mut cuts: Vec<usize> = (len.saturating_sub(tail as usize)..len).collect();
            cuts.extend([0, len / 2]);
            cuts.sort_unstable();
            cuts.dedup();
            for cut in cuts {
                cases.push((
                    format!("truncate to {cut} of {len}"),
                    original[..cut].to_vec(),
                ));
            }
            for (what, bytes) in cases {
                let context = format!(
                    "{}: corruption of {} ({what}) (replay with KV_TEST_SEED={seed})",
                    E::NAME,
                    display(&path)
                );
                let mut damaged = image.clone();
                damaged.insert(path.clone(), bytes);
                let counts = summary.entry(kind.clone()).or_default();
                match check_case::<E>(options, &damaged, &ops, seed, &context) {
                    Outcome::Refused => counts[0] += 1,
                    Outcome::Opened { lost, read_errors } => {
                        counts[if lost == 0 { 1 } else { 2 }] += 1;
                        counts[3] += read_errors;
                    }
                }
            }
        }
    }
    for (kind, [refused, whole, tail, read_errors]) in summary {
        eprintln!(
            "{}: corruption of `{kind}`: {} cases: {refused} refused at open, {whole} opened \
             whole, {tail} opened with writes lost from the end; {read_errors} reads reported \
             corruption",
            E::NAME,
            refused + whole + tail
        );
    }
}

fn display(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_hide_numbers() {
        assert_eq!(file_type("000012.sst"), "######.sst");
        assert_eq!(file_type("MANIFEST-3"), "MANIFEST-#");
        let image: FsImage = ["a1.log", "a2.log", "a3.log", "ENGINE"]
            .iter()
            .map(|n| (PathBuf::from("/d").join(n), Vec::new()))
            .collect();
        let types = files_by_type(&image);
        assert_eq!(types["a#.log"].len(), 2);
        assert_eq!(types["ENGINE"].len(), 1);
    }
}
