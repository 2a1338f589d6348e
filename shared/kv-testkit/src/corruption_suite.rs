//! The corruption suite: damage any file a store holds, at any byte, and check that the
//! engine notices, or loses no more than the damage destroyed, instead of answering wrong.
//!
//! Disks, controllers and cables flip bits; files get cut short. LevelDB's `corruption_test`
//! and toydb's truncate-at-every-byte test ask what an engine does then. Here a store is
//! built on [`FaultFs`] by a fixed workload (400 writes by default, syncs, compactions) and
//! **synced**, its files grouped by **type** (the name with its digits replaced by `#`:
//! `000012.sst` is `######.sst`), and each type is damaged many times over
//! ([`damage_cases`]), each time in one file drawn uniformly from the files of that type
//! (the first, the last and the middle one always among them):
//!
//! * **flips**: one to three bytes, the first at a random offset (one time in four in the
//!   first 32 or the last 64 bytes, where headers, footers and last records are) and the
//!   others close after it, XOR-ed with random non-zero masks;
//! * **cuts**: the file truncated at a random offset, half the time in its last 64 bytes
//!   (where a torn write would end it), half the time anywhere.
//!
//! ## The bound
//!
//! Everything was synced before the damage, so nothing may be lost *except what the damage
//! destroyed*. The suite knows the damaged file and its **first damaged byte**, and reads the
//! engine's `inspect` dump of the file *as it was* ([`keys_at_or_after`]): a dump is a list of
//! sections (`-- record 7`, `-- data block 2`), each with the offsets of its bytes and the
//! keys it holds. The keys **at risk** are those of the sections that end after the first
//! damaged byte: the damaged record and every one after it in that file. Then, for each
//! damaged copy of the store:
//!
//! * `open` either succeeds, or fails with [`Error::Corruption`] naming the damaged file
//!   and an offset inside it ([`Error::FormatVersion`] is accepted too, when the damage hit a
//!   version field); any other error, or a panic, fails the suite;
//! * after a successful open, every `get` and a full `scan` return either
//!   [`Error::Corruption`] (again naming file and offset) or a value **once written to that
//!   key** (never garbage, never another key's value), and gets agree with the scan;
//! * every key **not at risk** reads its latest value; a key at risk may read any value once
//!   written to it, or absent (an older record of it survived, or none did);
//! * then the store must go on: a `compact` (a merge, a compaction) either succeeds or
//!   reports the damage, new writes succeed (or are refused with a report of the damage),
//!   and after `sync` and a reopen the new writes are all there and every other key reads
//!   what it read before.
//!
//! A file with no keys in its dump (a marker, a `CURRENT` pointer, a manifest, a merge
//! commit) puts no key at risk: damage to it must be refused at open or make no difference.
//! No format needs a looser bound, such as "every key of the damaged file": damage to a
//! table's index, filter or footer, which come after its data blocks, puts few keys at risk,
//! but it makes the table's keys unreadable, not wrong, and a read that reports corruption
//! is accepted for any key.
//!
//! The summary line counts, per file type, the cases and the files they hit, how they ended
//! (refused at open, opened whole, opened with keys at risk lost), the reads that reported
//! corruption, the compactions that succeeded after the damage, and the stores that refused
//! new writes (an engine whose background compaction meets the damage stops taking writes,
//! with [`Error::Background`], until the store is repaired: accepted, as it reports the
//! damage; the writes taken before must survive the reopen).
//!
//! [`check_damaged_store`] keeps the older, looser rule (what the store holds is some prefix
//! of the writes) for regression tests that only know the damage, not its offset.
//!
//! ## Exact counts
//!
//! The bound is what any engine must meet. Where a format allows, a stage's own tests pin
//! more, as LevelDB's `corruption_test` does: a flipped byte in record `n` of a log keeps
//! exactly the records before it, a damaged data block makes exactly its keys unreadable.
//! They build a store of [`numbered_writes`] with [`store_of`] (one record per write, nothing
//! flushed or merged away), find record `n` with [`dump_sections`], damage it, and read the
//! store back with [`open_and_read`] or [`check_bounded`]. The repair suite repairs the very
//! stores [`damage_cases`] makes.

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
    (store_files(&fs), ops)
}

/// The files of the store on `fs`, without its lock and temporary files.
fn store_files(fs: &FaultFs) -> FsImage {
    fs.image()
        .into_iter()
        .filter(|(path, _)| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n != LOCK_FILE && !n.ends_with(".tmp"))
        })
        .collect()
}

/// Writes `ops` to a new store on an in-memory disk, one call each, syncs it and drops the
/// engine without closing it: a store whose files a test damages at a record it chose
/// (with the options it picks, no flush or merge need happen). Returns the store's files.
pub fn store_of<E: Engine>(options: &Options, ops: &[WriteOp]) -> FsImage {
    let fs = FaultFs::new(0);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    let engine = E::open(&store_path(), &opts).expect("open a fresh store");
    for op in ops {
        op.issue(&engine)
            .unwrap_or_else(|e| panic!("{op:?} failed: {e}"));
    }
    engine.sync().expect("sync");
    drop(engine);
    store_files(&fs)
}

/// `n` writes over the first 24 keys of [`key_space`], each a put, a delete of a live key
/// (every fifth) or a batch of two puts and a delete of a live key (every seventh); every
/// value is unique (`w<i>.<part>:`) and `value_len` bytes long at least. Every write changes
/// the store, so an engine that logs each write as one record logs exactly `n` records.
/// Tests that damage a chosen record use them.
pub fn numbered_writes(n: usize, value_len: usize) -> Vec<WriteOp> {
    let keys = key_space();
    let mut state = State::new();
    let put = |i: usize, part: usize| {
        let mut value = format!("w{i}.{part}:").into_bytes();
        value.resize(value.len().max(value_len), b'a' + (i % 26) as u8);
        WriteOp::Put {
            key: keys[(i * 7 + part * 5) % 24].clone(),
            value,
        }
    };
    let mut ops = Vec::new();
    for i in 0..n {
        let live: Vec<&Vec<u8>> = state.keys().collect();
        let delete = |at: usize| WriteOp::Delete {
            key: live[at % live.len()].clone(),
        };
        let op = match i {
            _ if i % 7 == 6 && !live.is_empty() => {
                WriteOp::Batch(vec![delete(i * 3), put(i, 0), put(i, 1)])
            }
            _ if i % 5 == 4 && !live.is_empty() => delete(i),
            _ => put(i, 0),
        };
        op.apply(&mut state);
        ops.push(op);
    }
    ops
}

/// What [`open_and_read`] read of each key of [`key_space`]: its value, absent, or the
/// read's error.
pub type KeyReads = BTreeMap<Vec<u8>, kv_shared::Result<Option<Vec<u8>>>>;

/// Opens a copy of the store `image` and gets every key of [`key_space`].
///
/// # Errors
/// The error of the open.
pub fn open_and_read<E: Engine>(options: &Options, image: &FsImage) -> kv_shared::Result<KeyReads> {
    let fs = FaultFs::from_image(0, image);
    let opts = options.clone().with_file_system(Arc::new(fs));
    let engine = E::open(&store_path(), &opts)?;
    Ok(key_space()
        .into_iter()
        .map(|key| {
            let read = engine.get(&key);
            (key, read)
        })
        .collect())
}

/// The store's contents after the writes `ops`, in order.
pub fn state_after(ops: &[WriteOp]) -> State {
    let mut state = State::new();
    for op in ops {
        op.apply(&mut state);
    }
    state
}

/// Every file of `image`, by type, in name order.
pub fn all_files_by_type(image: &FsImage) -> BTreeMap<String, Vec<PathBuf>> {
    let mut types: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for path in image.keys() {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        types
            .entry(file_type(&name))
            .or_default()
            .push(path.clone());
    }
    types
}

/// The first and last file of each type, by type.
pub fn files_by_type(image: &FsImage) -> BTreeMap<String, Vec<PathBuf>> {
    let mut types = all_files_by_type(image);
    for paths in types.values_mut() {
        if paths.len() > 2 {
            let last = paths.pop().expect("more than two");
            paths.truncate(1);
            paths.push(last);
        }
    }
    types
}

/// One damaged copy of a store: what [`damage_cases`] yields.
#[derive(Debug, Clone)]
pub struct DamageCase {
    /// Every file of the store, one of them damaged.
    pub image: FsImage,
    /// The damage, for messages: `flip 120^0x04,133^0x80`, `truncate to 57 of 300`.
    pub what: String,
    /// The damaged file.
    pub file: PathBuf,
    /// The type of the damaged file ([`file_type`]).
    pub kind: String,
    /// The offset of the first damaged byte (for a cut, the new length).
    pub first_damaged: u64,
}

/// What is done to one file.
#[derive(Debug, Clone)]
enum Damage {
    /// Bytes XOR-ed with non-zero masks: (offset, mask), offsets ascending.
    Flips(Vec<(usize, u8)>),
    /// The file truncated to this length.
    Cut(usize),
}

impl Damage {
    fn apply(&self, original: &[u8]) -> (Vec<u8>, String, u64) {
        match self {
            Damage::Flips(flips) => {
                let mut bytes = original.to_vec();
                for &(at, mask) in flips {
                    bytes[at] ^= mask;
                }
                let what: Vec<String> = flips
                    .iter()
                    .map(|(at, mask)| format!("{at}^{mask:#04x}"))
                    .collect();
                (bytes, format!("flip {}", what.join(",")), flips[0].0 as u64)
            }
            Damage::Cut(cut) => (
                original[..*cut].to_vec(),
                format!("truncate to {cut} of {}", original.len()),
                *cut as u64,
            ),
        }
    }

    /// One to three flips, the others in the 256 bytes after the first. The first is in the
    /// first 32 bytes one time in eight (a header), in the last 64 one time in eight (a
    /// footer, a last record), anywhere otherwise.
    fn random_flips(rng: &mut ChaCha8Rng, len: usize) -> Damage {
        let first = match rng.random_range(0..8) {
            0 => rng.random_range(0..len.min(32)),
            1 => len - rng.random_range(1..=len.min(64)),
            _ => rng.random_range(0..len),
        };
        let mut flips = vec![(first, rng.random_range(1..=255u8))];
        for _ in 1..rng.random_range(1..=3) {
            let at = rng.random_range(first..len.min(first + 256));
            if flips.iter().all(|&(seen, _)| seen != at) {
                flips.push((at, rng.random_range(1..=255u8)));
            }
        }
        flips.sort_unstable();
        Damage::Flips(flips)
    }

    /// A cut in the last 64 bytes half the time, anywhere (zero included) otherwise.
    fn random_cut(rng: &mut ChaCha8Rng, len: usize) -> Damage {
        if rng.random_bool(0.5) {
            Damage::Cut(len - rng.random_range(1..=len.min(64)))
        } else {
            Damage::Cut(rng.random_range(0..len))
        }
    }
}

/// Plans `flips` flip cases and `cuts` cut cases per file type of `image`. The file of a case
/// is drawn uniformly from the non-empty files of its type, except that the first three cases
/// of each kind take the first, the last and the middle file.
fn plan_damage(image: &FsImage, seed: u64, flips: u64, cuts: u64) -> Vec<(PathBuf, Damage)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00DA_4A6E);
    let mut plan = Vec::new();
    for paths in all_files_by_type(image).into_values() {
        let paths: Vec<PathBuf> = paths.into_iter().filter(|p| !image[p].is_empty()).collect();
        if paths.is_empty() {
            continue;
        }
        for (count, cut) in [(flips, false), (cuts, true)] {
            for i in 0..count {
                let path = match i {
                    0 => &paths[0],
                    1 => &paths[paths.len() - 1],
                    2 => &paths[paths.len() / 2],
                    _ => &paths[rng.random_range(0..paths.len())],
                };
                let len = image[path].len();
                let damage = if cut {
                    Damage::random_cut(&mut rng, len)
                } else {
                    Damage::random_flips(&mut rng, len)
                };
                plan.push((path.clone(), damage));
            }
        }
    }
    plan
}

/// The damaged copies of a store the corruption suite checks: `flips` flip cases and `cuts`
/// cut cases for every file type of `image` (see the module docs), deterministic from
/// `seed`. Each case is made when the iterator reaches it, so only one copy is in memory.
pub fn damage_cases(
    image: &FsImage,
    seed: u64,
    flips: u64,
    cuts: u64,
) -> impl Iterator<Item = DamageCase> + '_ {
    plan_damage(image, seed, flips, cuts)
        .into_iter()
        .map(move |(file, damage)| {
            let (bytes, what, first_damaged) = damage.apply(&image[&file]);
            let mut damaged = image.clone();
            damaged.insert(file.clone(), bytes);
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            DamageCase {
                image: damaged,
                what,
                kind: file_type(&name),
                file,
                first_damaged,
            }
        })
}

/// One section of an `inspect` dump: what follows a `-- ` heading line (a record, a block,
/// an entry), or the lines before the first heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading, without its `-- ` (empty for the lines before the first heading).
    pub heading: String,
    /// The offset of its first field line (`0000002c  62 61 ...`); `None` when it has none.
    pub start: Option<u64>,
    /// Where its bytes end: the start of the next section that starts after it; `None` for
    /// the last one (it runs to the end of the file) and for one without a start.
    pub end: Option<u64>,
    /// The keys of [`key_space`] its lines show as `key "..."`, quoted as
    /// [`kv_shared::dump::quoted`] quotes them; and the empty key when a line ends with `key
    /// length 0` (a dump may show no field for an empty key).
    pub keys: BTreeSet<Vec<u8>>,
}

/// Splits a file's `inspect` dump into its [`Section`]s, in order.
pub fn dump_sections(dump: &str) -> Vec<Section> {
    let quoted: BTreeMap<String, Vec<u8>> = key_space()
        .into_iter()
        .map(|k| (kv_shared::dump::quoted(&k, 64), k))
        .collect();
    let mut sections = vec![Section {
        heading: String::new(),
        start: Some(0),
        end: None,
        keys: BTreeSet::new(),
    }];
    for line in dump.lines() {
        if let Some(heading) = line.strip_prefix("-- ") {
            sections.push(Section {
                heading: heading.to_string(),
                start: None,
                end: None,
                keys: BTreeSet::new(),
            });
        }
        let section = sections.last_mut().expect("never empty");
        if section.start.is_none() {
            section.start = field_offset(line);
        }
        if line.trim_end().ends_with("key length 0") {
            // A dump may leave out the field of an empty key: its length says it.
            section.keys.insert(Vec::new());
        }
        section.keys.extend(keys_in_line(line, &quoted));
    }
    for i in 0..sections.len() {
        let start = sections[i].start;
        sections[i].end = sections[i + 1..]
            .iter()
            .find_map(|next| next.start.filter(|n| start.is_some_and(|s| *n >= s)));
    }
    sections
}

/// The keys of `quoted` (a key as [`kv_shared::dump::quoted`] shows it, to the key) that
/// `line` shows as `key "..."`. A quoted string ends at the first `"` not escaped by `\`;
/// one followed by `..` was cut short, and is no key of `quoted`.
fn keys_in_line<'a>(
    line: &'a str,
    quoted: &'a BTreeMap<String, Vec<u8>>,
) -> impl Iterator<Item = Vec<u8>> + 'a {
    line.match_indices("key \"").filter_map(move |(at, _)| {
        let literal = &line[at + 4..];
        let mut escaped = false;
        let end = literal.char_indices().skip(1).find_map(|(i, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes.then_some(i + 1)
        })?;
        if literal[end..].starts_with("..") {
            return None;
        }
        quoted.get(&literal[..end]).cloned()
    })
}

/// The keys of [`key_space`] that a file's `inspect` dump shows in a [`Section`] that ends
/// after `offset`: the keys whose records in that file a damage starting at `offset` can
/// destroy. A section without an end (the last one, or one without field lines) runs to the
/// end of the file.
pub fn keys_at_or_after(dump: &str, offset: u64) -> BTreeSet<Vec<u8>> {
    keys_of_sections_after(&dump_sections(dump), offset)
}

/// The keys of the `sections` that end after `offset`.
fn keys_of_sections_after(sections: &[Section], offset: u64) -> BTreeSet<Vec<u8>> {
    sections
        .iter()
        .filter(|s| s.end.is_none_or(|end| end > offset))
        .flat_map(|s| s.keys.iter().cloned())
        .collect()
}

/// The offset a dump's field line starts with (eight hex digits and two spaces).
fn field_offset(line: &str) -> Option<u64> {
    let hex = line.get(..8)?;
    if line.get(8..10) != Some("  ") || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The keys a damage at `first_damaged` in the file `original` can destroy, by its dump
/// ([`keys_at_or_after`]); none when `inspect` does not know the file.
pub fn keys_at_risk(
    inspect: fn(&[u8]) -> Option<String>,
    original: &[u8],
    first_damaged: u64,
) -> BTreeSet<Vec<u8>> {
    inspect(original).map_or_else(BTreeSet::new, |dump| keys_at_or_after(&dump, first_damaged))
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
/// `ops` that built it) and checks the looser rule of the module docs: it is refused with a
/// typed report, or every read is a value once written to its key and the store holds some
/// prefix of the writes. For regression tests that know the damage but not its offset.
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
    let fs = FaultFs::from_image(seed, image);
    let opts = options.clone().with_file_system(Arc::new(fs));
    catching(context, || {
        let engine = match E::open(&store_path(), &opts) {
            Err(e) => return check_report(&e, image, context),
            Ok(engine) => engine,
        };
        let (seen, _) = read_damaged(&engine, image, context);
        check_values_were_written(ops, &seen, context);
        let found = matching_prefixes(&State::new(), ops, &seen, 0, ops.len());
        assert!(
            !found.is_empty(),
            "{context}: the store opened, but what it holds is no prefix of the writes: \
             writes were lost from the middle of history (a damaged file that is not the \
             newest taken for a torn tail?), so some reads return an older value. \
             Against all writes: {}",
            crate::history::describe_difference(&State::new(), ops, &seen, ops.len())
        );
    });
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
    match scan_all(engine) {
        Ok(state) => {
            for (key, got) in &gets.values {
                assert_get_agrees(key, got, &state, context);
            }
            (Observed::complete(&state), read_errors)
        }
        Err(e) => {
            check_report(&e, image, context);
            (gets, read_errors + 1)
        }
    }
}

/// The whole store, read with one scan.
///
/// # Errors
/// Whatever the engine's scan returns.
fn scan_all<E: Engine>(engine: &E) -> kv_shared::Result<State> {
    engine.scan(KeyRange::all())?.collect()
}

/// Asserts that `got`, what a `get` of `key` returned, is what the scan `state` holds.
fn assert_get_agrees(key: &[u8], got: &Option<Vec<u8>>, state: &State, context: &str) {
    assert!(
        got.as_ref() == state.get(key),
        "{context}: get and scan disagree on key {}",
        kv_shared::dump::quoted(key, 24)
    );
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

/// How one damaged store behaved under [`check_bounded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Open failed with a typed damage report.
    Refused {
        /// The file the report named.
        file: PathBuf,
    },
    /// Open succeeded.
    Opened {
        /// Keys (all at risk) that did not read their latest value.
        lost: usize,
        /// Reads (gets, and the scan) that reported corruption.
        read_errors: usize,
        /// True when `compact` succeeded after the open (false: it reported the damage).
        compacted: bool,
        /// True when every new write after it was taken (false: one was refused with a
        /// report of the damage, as by an engine whose background compaction meets it).
        wrote: bool,
    },
}

/// What one read of each key of [`key_space`] gave: the value, or `None` when the read
/// reported corruption.
type Reads = BTreeMap<Vec<u8>, Option<Option<Vec<u8>>>>;

/// Runs `check` on a clean panic path: a panic of the engine becomes a message naming
/// `context`; a failed check (its message starts with `context`) passes through.
fn catching<T>(context: &str, check: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(AssertUnwindSafe(check)) {
        Ok(t) => t,
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

/// Opens a damaged copy of a store built by [`build_store`] (its files `image`, the writes
/// `ops` that built it, every one synced) and checks the bound of the module docs: every
/// key not in `at_risk` reads its latest value, every read is a value once written to its
/// key or a typed report, and the store goes on after `compact` and new writes, through a
/// reopen. Returns how it went, for a test to pin exact counts.
///
/// # Panics
/// When a rule is broken, with `context` in the message.
pub fn check_bounded<E: Engine>(
    options: &Options,
    image: &FsImage,
    ops: &[WriteOp],
    seed: u64,
    context: &str,
    at_risk: &BTreeSet<Vec<u8>>,
) -> Outcome {
    let fs = FaultFs::from_image(seed, image);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    catching(context, || {
        let engine = match E::open(&store_path(), &opts) {
            Err(e) => {
                check_report(&e, image, context);
                let file = match e {
                    Error::Corruption { file, .. } | Error::FormatVersion { file, .. } => file,
                    _ => PathBuf::new(), // check_report accepts no other error
                };
                return Outcome::Refused { file };
            }
            Ok(engine) => engine,
        };
        let (reads, read_errors) = read_all(&engine, image, context);
        let latest = state_after(ops);
        let lost = check_within_bound(ops, &latest, &reads, at_risk, context);
        let compacted = compact(&engine, &fs, context);
        let context = format!("{context}: after compact, new writes and a reopen");
        let engine = if compacted {
            engine
        } else {
            // A failed background job refuses writes until the store is reopened.
            drop(engine);
            E::open(&store_path(), &opts).unwrap_or_else(|e| {
                panic!("{context}: the store no longer opens after a failed compaction: {e}")
            })
        };
        let after = write_and_reopen(engine, &opts, &fs, &context);
        check_after(&reads, &after, (ops, &latest, at_risk), &context);
        Outcome::Opened {
            lost,
            read_errors,
            compacted,
            wrote: after.refused.is_none() && !after.sync_refused,
        }
    })
}

/// Reads every key of [`key_space`] with `get`, then scans the whole store and checks that
/// the two agree where both answered. Counts the reads that reported corruption.
fn read_all<E: Engine>(engine: &E, image: &FsImage, context: &str) -> (Reads, usize) {
    let mut errors = 0;
    let mut reads = Reads::new();
    for key in key_space() {
        let read = match engine.get(&key) {
            Ok(v) => Some(v),
            Err(e) => {
                check_report(&e, image, context);
                errors += 1;
                None
            }
        };
        reads.insert(key, read);
    }
    match scan_all(engine) {
        Ok(state) => {
            for (key, read) in &mut reads {
                match read {
                    Some(got) => assert_get_agrees(key, got, &state, context),
                    None => *read = Some(state.get(key).cloned()),
                }
            }
            let stray = state.keys().find(|k| !reads.contains_key(*k));
            assert!(
                stray.is_none(),
                "{context}: the scan returned key {}, never written",
                kv_shared::dump::quoted(stray.map_or(&[][..], |k| k), 24)
            );
        }
        Err(e) => {
            check_report(&e, image, context);
            errors += 1;
        }
    }
    (reads, errors)
}

/// Checks every read against the bound; returns how many keys (all at risk) lost their
/// latest value.
fn check_within_bound(
    ops: &[WriteOp],
    latest: &State,
    reads: &Reads,
    at_risk: &BTreeSet<Vec<u8>>,
    context: &str,
) -> usize {
    let seen = Observed {
        values: reads
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect(),
        complete: false,
    };
    check_values_were_written(ops, &seen, context);
    let mut lost = 0;
    for (key, value) in &seen.values {
        if value.as_ref() == latest.get(key) {
            continue;
        }
        assert!(
            at_risk.contains(key),
            "{context}: key {} read as {}, but its latest value is {}, and the damage cannot \
             have destroyed it: the damaged file holds no record of this key at or after the \
             first damaged byte (keys at risk: {})",
            kv_shared::dump::quoted(key, 24),
            value
                .as_ref()
                .map_or("absent".into(), |v| kv_shared::dump::quoted(v, 24)),
            latest
                .get(key)
                .map_or("absent".into(), |v| kv_shared::dump::quoted(v, 24)),
            at_risk.len()
        );
        lost += 1;
    }
    lost
}

/// The keys [`write_and_reopen`] writes to after the damage: every fourth key gets a new value, the
/// one after it is deleted.
fn new_writes() -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    key_space()
        .into_iter()
        .enumerate()
        .filter_map(|(i, key)| match i % 4 {
            0 => Some((key, Some(format!("after-damage:{i}").into_bytes()))),
            1 => Some((key, None)),
            _ => None,
        })
        .collect()
}

/// Runs the engine's `compact` on the damaged store: true when it succeeded, false when it
/// reported the damage ([`check_damage_report`]).
fn compact<E: Engine>(engine: &E, fs: &FaultFs, context: &str) -> bool {
    match engine.compact() {
        Ok(()) => true,
        Err(e) => {
            check_damage_report(&e, &fs.image(), &format!("{context}: compact"));
            false
        }
    }
}

/// Checks that `e` reports the damage: a typed report naming a file of the store
/// ([`check_report`]), or, from an engine whose background job met the damage,
/// [`Error::Background`] whose detail reports corruption in a file of the store.
fn check_damage_report(e: &Error, image: &FsImage, context: &str) {
    if let Error::Background { detail, .. } = e {
        let named = image
            .keys()
            .any(|path| detail.contains(&path.display().to_string()));
        assert!(
            detail.contains("corruption") && named,
            "{context}: `{e}`, expected a report of the damage naming a file of the store"
        );
    } else {
        check_report(e, image, context);
    }
}

/// What [`write_and_reopen`] did: the new writes the store took, the one it refused (with
/// a report of the damage; it stops there), whether the `sync` after them reported the
/// damage, and what every key read after the reopen.
struct AfterDamage {
    taken: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    refused: Option<(Vec<u8>, Option<Vec<u8>>)>,
    sync_refused: bool,
    reads: Reads,
}

/// Writes [`new_writes`] to the damaged store until one is refused (an engine whose
/// background compaction keeps meeting the damage may refuse writes until it is repaired),
/// syncs, drops the engine, reopens the store (which must open: it opened before) and
/// reads every key again.
fn write_and_reopen<E: Engine>(
    engine: E,
    opts: &Options,
    fs: &FaultFs,
    context: &str,
) -> AfterDamage {
    let mut taken = BTreeMap::new();
    let mut refused = None;
    for (key, value) in new_writes() {
        let done = match &value {
            Some(v) => engine.put(&key, v),
            None => engine.delete(&key),
        };
        if let Err(e) = done {
            check_damage_report(&e, &fs.image(), &format!("{context}: a new write"));
            refused = Some((key, value));
            break;
        }
        taken.insert(key, value);
    }
    let sync = if refused.is_none() {
        engine.sync()
    } else {
        Ok(())
    };
    let sync_refused = sync.is_err();
    if let Err(e) = sync {
        // A background job that met the damage after the last write is reported by `sync`
        // (an engine's `sync` still syncs, then reports it).
        check_damage_report(
            &e,
            &fs.image(),
            &format!("{context}: sync after the damage"),
        );
    }
    drop(engine);
    let engine = E::open(&store_path(), opts)
        .unwrap_or_else(|e| panic!("{context}: the store no longer opens: {e}"));
    let reads = read_all(&engine, &fs.image(), context).0;
    AfterDamage {
        taken,
        refused,
        sync_refused,
        reads,
    }
}

/// Checks the reads after the new writes and the reopen: every new write taken is there, a
/// refused one is there or not, every other key reads what it read before them; a key that
/// read as corrupt before may read as corrupt again, or as a value the bound allows.
fn check_after(
    before: &Reads,
    after: &AfterDamage,
    bound: (&[WriteOp], &State, &BTreeSet<Vec<u8>>),
    context: &str,
) {
    let (ops, latest, at_risk) = bound;
    let mut unknown = Reads::new();
    for (key, read) in &after.reads {
        let expected = match after.taken.get(key) {
            Some(value) => Some(value.clone()),
            None if before[key].is_none() => {
                unknown.insert(key.clone(), read.clone());
                continue;
            }
            None => before[key].clone(),
        };
        let refused = after
            .refused
            .as_ref()
            .is_some_and(|(k, v)| k == key && *read == Some(v.clone()));
        assert!(
            *read == expected || refused,
            "{context}: key {} reads {}, expected {}",
            kv_shared::dump::quoted(key, 24),
            shown_read(read),
            shown_read(&expected)
        );
    }
    check_within_bound(ops, latest, &unknown, at_risk, context);
}

/// A read as a message shows it.
fn shown_read(read: &Option<Option<Vec<u8>>>) -> String {
    match read {
        None => "a corruption report".into(),
        Some(None) => "absent".into(),
        Some(Some(v)) => kv_shared::dump::quoted(v, 24),
    }
}

/// The counts of one file type, for the summary line.
#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    files: BTreeSet<PathBuf>,
    refused: usize,
    whole: usize,
    with_loss: usize,
    keys_lost: usize,
    read_errors: usize,
    compacted: usize,
    refused_writes: usize,
}

impl Tally {
    fn add(&mut self, file: &Path, outcome: Outcome) {
        self.cases += 1;
        self.files.insert(file.to_path_buf());
        match outcome {
            Outcome::Refused { .. } => self.refused += 1,
            Outcome::Opened {
                lost,
                read_errors,
                compacted,
                wrote,
            } => {
                if lost == 0 {
                    self.whole += 1;
                } else {
                    self.with_loss += 1;
                }
                self.keys_lost += lost;
                self.read_errors += read_errors;
                self.compacted += usize::from(compacted);
                self.refused_writes += usize::from(!wrote);
            }
        }
    }
}

/// Damages every file type of a store built by [`build_store`] with `writes` writes: `flips`
/// flip cases and `cuts` cut cases per type ([`damage_cases`]), each checked by [`check_bounded`] with the
/// keys at risk read from the original file's dump by `inspect`. Prints a summary line per
/// file type.
///
/// # Panics
/// On the first case that breaks a rule, naming the file, the damage and the seed.
pub fn corruption<E: Engine>(
    options: &Options,
    inspect: fn(&[u8]) -> Option<String>,
    seed: u64,
    (writes, flips, cuts): (u64, u64, u64),
) {
    let (image, ops) = build_store::<E>(options, seed, writes as usize);
    let mut files = all_files_by_type(&image);
    for paths in files.values_mut() {
        paths.retain(|p| !image[p].is_empty()); // nothing to damage in an empty file
    }
    let mut summary: BTreeMap<String, Tally> = BTreeMap::new();
    let mut dumps: BTreeMap<PathBuf, Vec<Section>> = BTreeMap::new();
    for case in damage_cases(&image, seed, flips, cuts) {
        let context = format!(
            "{}: corruption of {} ({}, first damaged byte {}) (replay with KV_TEST_SEED={seed})",
            E::NAME,
            display(&case.file),
            case.what,
            case.first_damaged
        );
        let sections = dumps.entry(case.file.clone()).or_insert_with(|| {
            inspect(&image[&case.file]).map_or_else(Vec::new, |dump| dump_sections(&dump))
        });
        let at_risk = keys_of_sections_after(sections, case.first_damaged);
        let outcome = check_bounded::<E>(options, &case.image, &ops, seed, &context, &at_risk);
        if let Outcome::Refused { file } = &outcome {
            assert_eq!(
                file, &case.file,
                "{context}: the store was refused, but the report names another file"
            );
        }
        summary
            .entry(case.kind.clone())
            .or_default()
            .add(&case.file, outcome);
    }
    for (kind, t) in summary {
        eprintln!(
            "{}: corruption of `{kind}`: {} cases in {} of its {} non-empty files: {} refused at \
             open, {} opened whole, {} opened with {} keys at risk lost; {} reads reported \
             corruption; after the damage {} compactions succeeded, {} stores refused new writes",
            E::NAME,
            t.cases,
            t.files.len(),
            files[&kind].len(),
            t.refused,
            t.whole,
            t.with_loss,
            t.keys_lost,
            t.read_errors,
            t.compacted,
            t.refused_writes
        );
        // The first and the last file of a type, and one in between, at least.
        let wanted = files[&kind].len().min(3).min(t.cases);
        assert!(
            t.files.len() >= wanted,
            "{}: the cases hit only {} of the {} `{kind}` files",
            E::NAME,
            t.files.len(),
            files[&kind].len()
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
        assert_eq!(all_files_by_type(&image)["a#.log"].len(), 3);
    }

    /// A dump in the shape every stage's `inspect` prints: a header, then sections.
    const DUMP: &str = "\
log, 80 bytes
00000000  4b 56                                                    magic
-- record 0 at offset 16: put
00000010  75 a3 97 8c                                              crc32 ok
0000001a  6b 65 79 30 30 32                                        key \"key002\"
-- record 1 at offset 34: batch
00000022  83 b8 95 62                                              crc32 ok
0000002c  6b 65 79 30 30 33                                        key \"key003\"
00000032  00 01                                                    key \"\\x00\\x10\"
-- record 2 at offset 56: put
00000038  61 64 00 72                                              crc32 ok
00000042  6b 65 79 30 30 34                                        key \"key004\"
00000048  00 00                                                    key length 0
   summary: 3 records, key \"key005\" in a note of the last section
";

    #[test]
    fn keys_at_risk_are_those_of_the_damaged_section_and_after() {
        let keys = |offset| -> Vec<String> {
            keys_at_or_after(DUMP, offset)
                .iter()
                .map(|k| kv_shared::dump::quoted(k, 8))
                .collect()
        };
        let late = ["\"\"", "\"key004\"", "\"key005\""];
        let middle = [
            "\"\"",
            "\"\\x00\\x10\"",
            "\"key003\"",
            "\"key004\"",
            "\"key005\"",
        ];
        let mut all = middle.to_vec();
        all.insert(2, "\"key002\"");
        assert_eq!(keys(0), all);
        assert_eq!(keys(16), all);
        assert_eq!(keys(33), all);
        assert_eq!(keys(34), middle);
        assert_eq!(keys(55), middle);
        assert_eq!(keys(56), late);
        assert_eq!(keys(1000), late);
        assert!(keys_at_or_after("not a dump", 0).is_empty());
    }

    /// The example engine's log of [`numbered_writes`], cut in the middle: the writes after
    /// the cut are lost, so the bound holds only with the keys of the log's tail at risk.
    fn cut_example_log() -> (FsImage, Vec<WriteOp>, BTreeSet<Vec<u8>>) {
        use crate::example_engine::{ExampleEngine, LOG_FILE, inspect};
        let ops = numbered_writes(40, 10);
        let image = store_of::<ExampleEngine>(&Options::new(), &ops);
        let path = store_path().join(LOG_FILE);
        let cut = image[&path].len() / 2;
        let at_risk = keys_at_risk(inspect, &image[&path], cut as u64);
        let mut damaged = image.clone();
        damaged.get_mut(&path).expect("the log").truncate(cut);
        (damaged, ops, at_risk)
    }

    #[test]
    fn a_loss_within_the_keys_at_risk_passes() {
        let (damaged, ops, at_risk) = cut_example_log();
        let outcome = check_bounded::<crate::example_engine::ExampleEngine>(
            &Options::new(),
            &damaged,
            &ops,
            0,
            "cut log",
            &at_risk,
        );
        assert!(
            matches!(outcome, Outcome::Opened { lost, .. } if lost > 0),
            "{outcome:?}"
        );
    }

    #[test]
    #[should_panic(expected = "the damage cannot have destroyed it")]
    fn a_loss_outside_the_keys_at_risk_fails_the_check() {
        let (damaged, ops, _) = cut_example_log();
        check_bounded::<crate::example_engine::ExampleEngine>(
            &Options::new(),
            &damaged,
            &ops,
            0,
            "cut log",
            &BTreeSet::new(),
        );
    }

    #[test]
    fn damage_cases_reach_every_type_and_middle_files() {
        let image: FsImage = (0..10)
            .map(|i| (PathBuf::from(format!("/d/{i:02}.log")), vec![7u8; 100 + i]))
            .chain([(PathBuf::from("/d/ENGINE"), vec![1u8; 20])])
            .collect();
        let cases: Vec<DamageCase> = damage_cases(&image, 1, 20, 10).collect();
        assert_eq!(cases.len(), 2 * 30);
        let hit: BTreeSet<&PathBuf> = cases.iter().map(|c| &c.file).collect();
        assert!(hit.len() >= 8, "only {} files hit", hit.len());
        for case in &cases {
            let original = &image[&case.file];
            let damaged = &case.image[&case.file];
            let first = case.first_damaged as usize;
            assert_eq!(
                damaged[..first.min(damaged.len())],
                original[..first.min(damaged.len())]
            );
            if damaged.len() == original.len() {
                assert_ne!(damaged[first], original[first], "{}", case.what);
            } else {
                assert_eq!(damaged.len(), first, "{}", case.what);
            }
        }
    }
}
