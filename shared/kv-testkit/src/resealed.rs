//! Structure-aware fuzzing behind valid checksums: mutate one checksummed unit of a real
//! file, recompute its checksum, and feed the result to the decoders.
//!
//! The [`hostile_input`](crate::hostile_input) suite damages whole files, so almost every
//! input it makes fails the first checksum a decoder checks, and the parser behind that
//! checksum (block entries, index entries, footers, version edits, batch ops, hint entries)
//! only ever sees the bytes the engine wrote. Yet those parsers are where a trusted length
//! allocates gigabytes or an offset indexes past the end: a checksum catches damage, it
//! does not make the bytes behind it well formed (a bug in a writer, a file from another
//! build, or a forged file with a valid CRC). This suite gets past the checksum on purpose:
//!
//! 1. It builds a small store with the engine, on [`FaultFs`], and takes its files.
//! 2. The engine's test cuts each file into **units**, each one checksummed piece of the
//!    format (a record, a block, a footer, a hint entry, a manifest record), and says how
//!    each is sealed ([`Seal`]). Every unit is checked to reseal to exactly its own bytes,
//!    so a wrong description of the format is caught before any fuzzing.
//! 3. A [`Case`] picks one unit of one decoder, applies a few [`Edit`]s to its **payload**
//!    (bit flips; bytes set to 0x00, 0x7F, 0x80 or 0xFF; integers and varints set to zero
//!    or huge values; the payload cut, extended, or a part removed, duplicated or swapped),
//!    then **reseals** it: the checksum is recomputed, and the length field in front of the
//!    payload is updated to its new length or, to test that mismatch too, left as it was.
//!    Sometimes the resealed unit is also written twice in a row.
//! 4. Each input goes to the crate's `inspect` and, in fewer cases, to an `open` of the
//!    store with that file replaced, followed by a `get` of every key of
//!    [`crate::history::key_space`] and a full scan.
//!
//! ## What is asserted
//!
//! * No panic, in `inspect`, `open`, `get` or the scan (caught, and shrunk by proptest),
//!   nor in any thread the engine runs while a case runs (counted by a panic hook: a
//!   background flush or compaction that meets a damaged table must fail with an error).
//! * No hang and no allocation sized by an unchecked length: [`run`] runs in a child
//!   process with its address space limited and each case timed
//!   ([`crate::child_process::run_bounded`]).
//! * Every failure is a typed [`kv_shared::Error`] (the API returns nothing else).
//! * An input equal to the original file (an edit that changed nothing) opens, and reads
//!   the same contents as the original store.
//!
//! A resealed edit may well decode to a different, valid store (a value byte flipped under
//! a recomputed checksum *is* a different value), so values read from a mutated store are
//! not asserted; how many reads differ from the original store is counted and printed.
//!
//! ## What is measured
//!
//! Per decoder: how many dumps `inspect` returned and how many of them report a checksum
//! failure (`BAD` or `mismatch`), and how many stores opened, failed with an error that
//! names a checksum or CRC, or failed with another error, the sign that the input got past
//! the checksum to the parser behind it. A good suite has most inputs past the checksum.
//!
//! ## Sizes
//!
//! | variable | what |
//! |---|---|
//! | `KV_FUZZ_CASES` | inputs per decoder fed to `inspect` (the engine's test sets the default) |
//! | `KV_FUZZ_OPEN_CASES` | inputs per decoder fed to `open` and reads |
//! | `KV_TEST_SEED` | the seed; the run is deterministic given it |
//!
//! Both defaults are multiplied by 20 under `KV_LONG=1` ([`crate::knobs`]).
//!
//! Given the seed, the inputs are a function of the store's files. The store is built by
//! the engine ([`build_store`]); an engine whose background threads flush and compact
//! builds files that depend on their timing, so its corpus (and the cases after it) can
//! differ between two runs with the same seed. A failure's message therefore carries the
//! whole input, not only the seed.

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::fault_fs::{FaultFs, FsImage, store_path};
use crate::history::{State, key_space};
use kv_shared::framing::crc32;
use kv_shared::{Engine, Options};

/// A length field inside a [`Seal::Prefix`] payload that holds the payload's length:
/// `base + (payload length - minus)`, written as `width` little-endian bytes at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenField {
    /// Offset of the field in the payload.
    pub at: usize,
    /// Width in bytes: 2 or 4.
    pub width: usize,
    /// Added to the counted length (a flag such as a batch marker).
    pub base: u32,
    /// Payload bytes the field does not count (the header after the checksum, a key).
    pub minus: usize,
}

/// How a unit is sealed: where its checksum sits and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// `crc32(payload) u32 LE | payload`; the payload may hold its own length field.
    Prefix(Option<LenField>),
    /// `crc32(length and payload) u32 LE | payload length u32 LE | payload`.
    Frame,
    /// `payload | crc32(payload) u32 LE`.
    Suffix,
    /// `payload | type byte | crc32(payload and type byte) u32 LE`: the type byte is kept.
    Trailer,
}

impl Seal {
    fn payload_range(&self, len: usize) -> Range<usize> {
        let (head, tail) = match self {
            Seal::Prefix(_) => (4, 0),
            Seal::Frame => (8, 0),
            Seal::Suffix => (0, 4),
            Seal::Trailer => (0, 5),
        };
        head.min(len)..len.saturating_sub(tail).max(head.min(len))
    }

    /// The unit `old` with its payload replaced by `payload` and its checksum recomputed.
    /// With `adjust`, a length field is set to the new payload's length; without, a length
    /// field keeps its old value (which then disagrees when the length changed).
    pub fn reseal(&self, old: &[u8], payload: &[u8], adjust: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        match self {
            Seal::Prefix(field) => {
                let mut body = payload.to_vec();
                if let Some(f) = field.filter(|_| adjust) {
                    write_len(&mut body, f);
                }
                out.extend_from_slice(&crc32(&body).to_le_bytes());
                out.extend_from_slice(&body);
            }
            Seal::Frame => {
                let len = match (adjust, old.get(4..8)) {
                    (false, Some(l)) => l.to_vec(),
                    _ => (payload.len() as u32).to_le_bytes().to_vec(),
                };
                let crc = crc32(&[&len[..], payload].concat());
                out.extend_from_slice(&crc.to_le_bytes());
                out.extend_from_slice(&len);
                out.extend_from_slice(payload);
            }
            Seal::Suffix => {
                out.extend_from_slice(payload);
                out.extend_from_slice(&crc32(payload).to_le_bytes());
            }
            Seal::Trailer => {
                let kind = old.len().checked_sub(5).map_or(0, |i| old[i]);
                out.extend_from_slice(payload);
                out.push(kind);
                out.extend_from_slice(&crc32(&out).to_le_bytes());
            }
        }
        out
    }
}

fn write_len(body: &mut [u8], f: LenField) {
    let n = f
        .base
        .wrapping_add(body.len().saturating_sub(f.minus) as u32);
    let bytes = n.to_le_bytes();
    for (i, b) in bytes.iter().take(f.width).enumerate() {
        if let Some(slot) = body.get_mut(f.at + i) {
            *slot = *b;
        }
    }
}

/// One checksummed unit of a file: `start..end` in the file, sealed as `seal`, parsed by the
/// decoder named `decoder` (the name the counts are printed under).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The decoder behind the checksum, such as `"record"` or `"index block"`.
    pub decoder: &'static str,
    /// First byte of the unit in its file.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// How it is sealed.
    pub seal: Seal,
}

/// The units of the `ENGINE` marker every store has ([`kv_shared::marker`]): one unit,
/// sealed by the CRC32 at its end. Any other file has none here.
pub fn marker_units(name: &str, bytes: &[u8]) -> Vec<Unit> {
    if name != kv_shared::store_dir::MARKER_FILE || bytes.len() < 4 {
        return Vec::new();
    }
    vec![Unit {
        decoder: "ENGINE marker",
        start: 0,
        end: bytes.len(),
        seal: Seal::Suffix,
    }]
}

/// One change to a unit's payload. Positions wrap around the payload's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Flip bit `bit` of the byte at `at`.
    Flip {
        /// Position.
        at: usize,
        /// Bit, 0 to 7.
        bit: u8,
    },
    /// Set the byte at `at` (to a boundary value, mostly: 0x00, 0x7F, 0x80, 0xFF).
    Set {
        /// Position.
        at: usize,
        /// New value.
        byte: u8,
    },
    /// Overwrite `width` bytes at `at` with `value`, little-endian: a length, count or
    /// offset field set to zero or a huge value.
    Int {
        /// Position.
        at: usize,
        /// 1, 2, 4 or 8.
        width: usize,
        /// The value (its low `width` bytes are written).
        value: u64,
    },
    /// Overwrite the bytes at `at` with `value` as a LEB128 varint.
    Varint {
        /// Position.
        at: usize,
        /// The value.
        value: u64,
    },
    /// Cut the payload at `at`.
    Truncate {
        /// Position.
        at: usize,
    },
    /// Insert `bytes` at `at`.
    Extend {
        /// Position.
        at: usize,
        /// What to insert.
        bytes: Vec<u8>,
    },
    /// Remove up to `n` bytes from `at`.
    Remove {
        /// Position.
        at: usize,
        /// How many.
        n: usize,
    },
    /// Insert a copy of up to `n` bytes from `at` right after them.
    Duplicate {
        /// Position.
        at: usize,
        /// How many.
        n: usize,
    },
    /// Swap the `n` bytes at `a` with the `n` bytes at `b` (when both fit, apart).
    Swap {
        /// First position.
        a: usize,
        /// Second position.
        b: usize,
        /// How many.
        n: usize,
    },
}

impl Edit {
    /// Applies the edit to `p`. Never panics, whatever the positions.
    pub fn apply(&self, p: &mut Vec<u8>) {
        let len = p.len();
        let pos = |at: usize| if len == 0 { 0 } else { at % len };
        match self {
            Edit::Flip { at, bit } if len > 0 => p[pos(*at)] ^= 1 << (bit % 8),
            Edit::Set { at, byte } if len > 0 => p[pos(*at)] = *byte,
            Edit::Int { at, width, value } => {
                overwrite(p, pos(*at), &value.to_le_bytes()[..(*width).min(8)])
            }
            Edit::Varint { at, value } => {
                let mut bytes = Vec::new();
                kv_shared::framing::put_varint(&mut bytes, *value);
                overwrite(p, pos(*at), &bytes);
            }
            Edit::Truncate { at } => p.truncate(pos(*at)),
            Edit::Extend { at, bytes } => {
                let at = at % (len + 1);
                p.splice(at..at, bytes.iter().copied());
            }
            Edit::Remove { at, n } => {
                let at = pos(*at);
                p.drain(at..at.saturating_add(*n).min(len));
            }
            Edit::Duplicate { at, n } => {
                let at = pos(*at);
                let end = at.saturating_add(*n).min(len);
                let copy = p[at..end].to_vec();
                p.splice(end..end, copy);
            }
            Edit::Swap { a, b, n } => {
                let (a, b) = (pos(*a).min(pos(*b)), pos(*a).max(pos(*b)));
                let n = (*n).min(b - a).min(len - b);
                for i in 0..n {
                    p.swap(a + i, b + i);
                }
            }
            _ => {}
        }
    }
}

fn overwrite(p: &mut [u8], at: usize, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if let Some(slot) = p.get_mut(at + i) {
            *slot = *b;
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![Just(0u8), Just(0x7F), Just(0x80), Just(0xFF), any::<u8>()];
    let value = prop_oneof![
        Just(0u64),
        Just(1),
        Just(0x7F),
        Just(0xFFFF),
        Just(0x7FFF_FFFF),
        Just(0x8000_0000),
        Just(u64::from(u32::MAX)),
        Just(1 << 24),
        Just(u64::MAX),
        any::<u64>(),
    ];
    let width = prop_oneof![Just(1usize), Just(2), Just(4), Just(8)];
    let at = any::<usize>();
    prop_oneof![
        3 => (at, 0..8u8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        3 => (at, byte).prop_map(|(at, byte)| Edit::Set { at, byte }),
        3 => (at, width, value.clone())
            .prop_map(|(at, width, value)| Edit::Int { at, width, value }),
        2 => (at, value).prop_map(|(at, value)| Edit::Varint { at, value }),
        1 => at.prop_map(|at| Edit::Truncate { at }),
        1 => (at, vec(any::<u8>(), 1..24))
            .prop_map(|(at, bytes)| Edit::Extend { at, bytes }),
        1 => (at, 1..32usize).prop_map(|(at, n)| Edit::Remove { at, n }),
        1 => (at, 1..48usize).prop_map(|(at, n)| Edit::Duplicate { at, n }),
        1 => (at, at, 1..24usize).prop_map(|(a, b, n)| Edit::Swap { a, b, n }),
    ]
}

/// One generated input: which unit (of the decoder's units, wrapping), the edits, whether a
/// length field follows the new payload length, and whether the unit is written twice.
#[derive(Debug, Clone)]
pub struct Case {
    /// The unit, as an index into the decoder's units (wrapping).
    pub unit: usize,
    /// The edits, applied in order to the payload.
    pub edits: Vec<Edit>,
    /// Whether a length field is set to the new payload's length.
    pub adjust: bool,
    /// Whether the resealed unit is written twice in a row.
    pub duplicate: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (any::<usize>(), vec(edit(), 1..4), any::<bool>(), 0..12u8).prop_map(
        |(unit, edits, adjust, dup)| Case {
            unit,
            edits,
            adjust,
            duplicate: dup == 0,
        },
    )
}

/// The files of a store and their units, grouped by decoder.
#[derive(Debug)]
pub struct Corpus {
    files: Vec<(PathBuf, Vec<u8>)>,
    by_decoder: BTreeMap<&'static str, Vec<(usize, Unit)>>,
}

/// Cuts one file (its name, its bytes) into its checksummed units.
pub type Splitter = fn(&str, &[u8]) -> Vec<Unit>;

impl Corpus {
    /// Cuts every file of `image` into units with `split`.
    ///
    /// # Panics
    /// When a unit does not reseal to its own bytes: `split` describes the format wrongly.
    pub fn new(image: &FsImage, split: Splitter) -> Corpus {
        let mut corpus = Corpus {
            files: Vec::new(),
            by_decoder: BTreeMap::new(),
        };
        for (path, bytes) in image {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            for unit in split(&name, bytes) {
                let old = &bytes[unit.start..unit.end];
                let payload = &old[unit.seal.payload_range(old.len())];
                assert_eq!(
                    unit.seal.reseal(old, payload, true),
                    old,
                    "{name}: the {} at {}..{} does not reseal to itself",
                    unit.decoder,
                    unit.start,
                    unit.end
                );
                let entry = corpus.by_decoder.entry(unit.decoder).or_default();
                entry.push((corpus.files.len(), unit));
            }
            corpus.files.push((path.clone(), bytes.clone()));
        }
        corpus
    }

    /// The decoders with at least one unit, and how many units each has.
    pub fn decoders(&self) -> Vec<(&'static str, usize)> {
        self.by_decoder.iter().map(|(d, u)| (*d, u.len())).collect()
    }

    /// The input `case` makes for `decoder`: the file's path and its new bytes.
    pub fn input(&self, decoder: &str, case: &Case) -> (PathBuf, Vec<u8>) {
        let units = &self.by_decoder[decoder];
        let (file, unit) = &units[case.unit % units.len()];
        let (path, bytes) = &self.files[*file];
        let old = &bytes[unit.start..unit.end];
        let mut payload = old[unit.seal.payload_range(old.len())].to_vec();
        for e in &case.edits {
            e.apply(&mut payload);
        }
        let sealed = unit.seal.reseal(old, &payload, case.adjust);
        let mut out = Vec::with_capacity(bytes.len() + 2 * sealed.len());
        out.extend_from_slice(&bytes[..unit.start]);
        out.extend_from_slice(&sealed);
        if case.duplicate {
            out.extend_from_slice(&sealed);
        }
        out.extend_from_slice(&bytes[unit.end..]);
        (path.clone(), out)
    }
}

/// What one decoder's inputs did.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Inputs fed to `inspect`.
    pub inspected: u64,
    /// Of those, dumps returned.
    pub dumps: u64,
    /// Of the dumps, those reporting a checksum failure.
    pub dumps_with_bad_checksum: u64,
    /// Inputs fed to `open`.
    pub opens: u64,
    /// Stores that opened.
    pub opened: u64,
    /// Opens that failed naming a checksum or CRC.
    pub checksum_errors: u64,
    /// Opens that failed otherwise: a parser behind the checksum refused the input.
    pub other_errors: u64,
    /// Reads (gets of every key, and the scan) that failed after a successful open.
    pub read_errors: u64,
    /// Keys whose value read from an opened store differs from the original store's.
    pub changed_keys: u64,
}

/// Panics seen by the hook [`count_panics`] installs, in any thread: an engine's background
/// thread can panic where no `catch_unwind` of the test reaches.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Installs (once) a panic hook that counts every panic, then reports it as before.
fn count_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

fn runner(seed: u64, cases: u64) -> TestRunner {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: u32::try_from(cases).unwrap_or(u32::MAX),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

fn names_checksum(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("checksum") || t.contains("crc")
}

/// Writes down the case about to run, so that the parent of a bounded child can name the
/// input that hung or aborted it. The case (with the seed and the decoder) determines the
/// input, and is far shorter to write down than the input's bytes, on every case.
fn note(decoder: &str, what: &str, path: &std::path::Path, case: &Case) {
    if let Some(file) = std::env::var_os(crate::child_process::CASE_FILE_ENV) {
        let text = format!("{decoder}: {what} {}, made by {case:?}", path.display());
        let _ = std::fs::write(file, text);
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `cases` inputs made from `decoder`'s units to `inspect`.
///
/// # Panics
/// When `inspect` panics; the message holds the case, the input and the seed.
pub fn fuzz_inspect(
    corpus: &Corpus,
    decoder: &str,
    inspect: fn(&[u8]) -> Option<String>,
    seed: u64,
    cases: u64,
) -> Tally {
    let tally = std::cell::RefCell::new(Tally::default());
    let result = runner(seed, cases).run(&case(), |case| {
        let (path, bytes) = corpus.input(decoder, &case);
        note(decoder, "inspect", &path, &case);
        let dump = std::panic::catch_unwind(|| inspect(&bytes));
        if let Err(panic) = &dump {
            let message = panic_message(&**panic);
            prop_assert!(false, "inspect panicked ({message}) on {}", hex(&bytes));
        }
        let mut t = tally.borrow_mut();
        t.inspected += 1;
        if let Ok(Some(text)) = dump {
            t.dumps += 1;
            let lower = text.to_ascii_lowercase();
            if text.contains("BAD") || lower.contains("mismatch") {
                t.dumps_with_bad_checksum += 1;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!(
            "{decoder}: inspect failed on a resealed input (decoder seed {seed}, from the seed \
             printed above): {e}"
        );
    }
    tally.into_inner()
}

/// What reading a store gave: `None` when open failed (with its message).
fn open_and_read<E: Engine>(
    options: &Options,
    image: &FsImage,
    seed: u64,
) -> std::result::Result<(State, u64), String> {
    let fs = FaultFs::from_image(seed, image);
    let opts = options.clone().with_file_system(Arc::new(fs));
    let engine = E::open(&store_path(), &opts).map_err(|e| e.to_string())?;
    let mut state = State::new();
    let mut errors = 0;
    for key in key_space() {
        match engine.get(&key) {
            Ok(Some(v)) => {
                state.insert(key, v);
            }
            Ok(None) => {}
            Err(_) => errors += 1,
        }
    }
    match engine.scan(kv_shared::KeyRange::all()) {
        Ok(iter) => {
            for item in iter {
                if item.is_err() {
                    errors += 1;
                    break;
                }
            }
        }
        Err(_) => errors += 1,
    }
    Ok((state, errors))
}

/// Everything [`fuzz_open`] needs about the store it damages.
pub struct Store<'a> {
    /// The engine's options (its file system is replaced).
    pub options: &'a Options,
    /// The store's files.
    pub image: &'a FsImage,
    /// Its contents, read before any damage.
    pub contents: &'a State,
}

fn tally_open(t: &mut Tally, outcome: &std::result::Result<(State, u64), String>, orig: &State) {
    t.opens += 1;
    match outcome {
        Ok((state, errors)) => {
            t.opened += 1;
            t.read_errors += errors;
            let keys: std::collections::BTreeSet<_> = state.keys().chain(orig.keys()).collect();
            t.changed_keys += keys
                .iter()
                .filter(|k| state.get(**k) != orig.get(**k))
                .count() as u64;
        }
        Err(e) if names_checksum(e) => t.checksum_errors += 1,
        Err(_) => t.other_errors += 1,
    }
}

/// Opens `cases` stores whose file holding one of `decoder`'s units was replaced by an input
/// made from it, and reads each.
///
/// # Panics
/// When the engine panics, or an input equal to the original file does not read back the
/// original contents.
pub fn fuzz_open<E: Engine>(
    store: &Store<'_>,
    corpus: &Corpus,
    decoder: &str,
    seed: u64,
    cases: u64,
) -> Tally {
    let tally = std::cell::RefCell::new(Tally::default());
    let result = runner(seed ^ 0x0F, cases).run(&case(), |case| {
        let (path, bytes) = corpus.input(decoder, &case);
        let unchanged = store.image.get(&path) == Some(&bytes);
        note(decoder, "open with", &path, &case);
        let panics = PANICS.load(Ordering::SeqCst);
        let mut damaged = store.image.clone();
        damaged.insert(path.clone(), bytes.clone());
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            open_and_read::<E>(store.options, &damaged, seed)
        }));
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(panic) => {
                return Err(TestCaseError::fail(format!(
                    "the engine panicked ({}) with {} = {}",
                    panic_message(&*panic),
                    path.display(),
                    hex(&bytes)
                )));
            }
        };
        prop_assert_eq!(
            PANICS.load(Ordering::SeqCst),
            panics,
            "a thread of the engine panicked with {} = {}",
            path.display(),
            hex(&bytes)
        );
        if unchanged {
            let read = outcome.as_ref().map(|(s, e)| (s, *e));
            prop_assert_eq!(
                read,
                Ok((store.contents, 0)),
                "an unchanged store reads differently"
            );
        }
        tally_open(&mut tally.borrow_mut(), &outcome, store.contents);
        Ok(())
    });
    if let Err(e) = result {
        panic!(
            "{}: {decoder}: open of a store holding a resealed input failed \
             (decoder seed {seed}, from the seed printed above): {e}",
            E::NAME
        );
    }
    tally.into_inner()
}

/// The sizes and defaults of one engine's run of the suite.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Writes of the store the files come from.
    pub writes: usize,
    /// Default inputs per decoder fed to `inspect` (`KV_FUZZ_CASES`).
    pub inspect_cases: u64,
    /// Default inputs per decoder fed to `open` (`KV_FUZZ_OPEN_CASES`).
    pub open_cases: u64,
    /// The decoders the format has. When a seed's store lacks a kind of unit (no write
    /// batch in the WAL, say), the decoders found get proportionally more inputs, so the
    /// total stays what the sizes promise.
    pub decoders: usize,
}

impl Sizes {
    /// `cases` per decoder, scaled up when only `found` of [`Sizes::decoders`] are in the
    /// store (rounded up).
    fn per_decoder(&self, cases: u64, found: usize) -> u64 {
        let (want, found) = (self.decoders.max(found) as u64, found.max(1) as u64);
        (cases * want).div_ceil(found)
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.0}%", 100.0 * part as f64 / whole as f64)
    }
}

fn print_tally(decoder: &str, units: usize, t: &Tally) {
    eprintln!(
        "  {decoder} ({units} units): inspect {} inputs, {} dumps, {} show a bad checksum \
         ({} past it); open {} inputs: {} opened ({} read errors, {} keys changed), {} checksum \
         errors, {} other errors ({} past the checksum)",
        t.inspected,
        t.dumps,
        t.dumps_with_bad_checksum,
        percent(t.dumps - t.dumps_with_bad_checksum, t.dumps),
        t.opens,
        t.opened,
        t.read_errors,
        t.changed_keys,
        t.checksum_errors,
        t.other_errors,
        percent(t.opens - t.checksum_errors, t.opens),
    );
}

/// Builds the store the inputs come from: the corruption suite's fixed workload of `writes`
/// writes, with one [`Engine::compact`] halfway (so a stage with a merge or compaction has
/// written its merged files: hint files, tables of deeper levels), synced, and the engine
/// dropped without closing (so logs still hold records). Returns its files but the lock.
pub fn build_store<E: Engine>(options: &Options, seed: u64, writes: usize) -> FsImage {
    let fs = FaultFs::new(seed);
    let opts = options.clone().with_file_system(Arc::new(fs.clone()));
    let engine = E::open(&store_path(), &opts).expect("open a fresh store");
    let steps = crate::history::fixed_workload(seed, writes);
    for (i, step) in steps.iter().enumerate() {
        if i == steps.len() / 2 {
            engine.compact().expect("compact");
        }
        step.run(&engine)
            .unwrap_or_else(|e| panic!("{step:?} failed: {e}"));
    }
    engine.sync().expect("sync");
    drop(engine);
    fs.image()
        .into_iter()
        .filter(|(path, _)| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name != kv_shared::store_dir::LOCK_FILE && !name.ends_with(".tmp")
        })
        .collect()
}

/// Runs the whole suite for engine `E` in a bounded child process: builds a store, cuts its
/// files with `split`, and fuzzes every decoder through `inspect` and `open`, printing the
/// counts per decoder and the seed.
///
/// # Panics
/// On a panic, a hang, an over-allocation, or a store that reads differently when nothing
/// was changed; also when `split` finds no unit, or misdescribes one.
pub fn run<E: Engine>(
    full_test_path: &str,
    options: &Options,
    inspect: fn(&[u8]) -> Option<String>,
    split: Splitter,
    sizes: Sizes,
) {
    let name = crate::child_process::test_name(full_test_path);
    crate::child_process::run_bounded(name, || {
        let seed = crate::knobs::seed("resealed", 0x5EA1);
        count_panics();
        let image = build_store::<E>(options, seed, sizes.writes);
        let contents = open_and_read::<E>(options, &image, seed)
            .unwrap_or_else(|e| panic!("the undamaged store does not open: {e}"))
            .0;
        let corpus = Corpus::new(&image, split);
        assert!(
            !corpus.decoders().is_empty(),
            "no unit found in {:?}",
            image.keys()
        );
        let store = Store {
            options,
            image: &image,
            contents: &contents,
        };
        let found = corpus.decoders().len();
        let inspect_cases = crate::knobs::env_u64("KV_FUZZ_CASES", sizes.inspect_cases);
        let inspect_cases = sizes.per_decoder(inspect_cases, found);
        let open_cases = crate::knobs::env_u64("KV_FUZZ_OPEN_CASES", sizes.open_cases);
        let open_cases = sizes.per_decoder(open_cases, found);
        let mut total = 0;
        eprintln!(
            "{}: resealed inputs, seed {seed}, {found} of {} decoders in the store:",
            E::NAME,
            sizes.decoders
        );
        for (i, (decoder, units)) in corpus.decoders().into_iter().enumerate() {
            let s = seed.wrapping_add(i as u64 * 0x9E37_79B9);
            let i = fuzz_inspect(&corpus, decoder, inspect, s, inspect_cases);
            let o = fuzz_open::<E>(&store, &corpus, decoder, s, open_cases);
            let t = Tally {
                inspected: i.inspected,
                dumps: i.dumps,
                dumps_with_bad_checksum: i.dumps_with_bad_checksum,
                ..o
            };
            total += t.inspected + t.opens;
            print_tally(decoder, units, &t);
        }
        eprintln!("{}: {total} resealed inputs in all, no panic", E::NAME);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_decoders_give_their_inputs_to_the_others() {
        let sizes = Sizes {
            writes: 10,
            inspect_cases: 5000,
            open_cases: 2200,
            decoders: 7,
        };
        assert_eq!(sizes.per_decoder(5000, 7), 5000);
        assert_eq!(sizes.per_decoder(5000, 6), 5834);
        assert!(sizes.per_decoder(5000, 6) * 6 >= 5000 * 7);
        assert_eq!(
            sizes.per_decoder(2200, 8),
            2200,
            "more than promised: no scaling"
        );
    }

    #[test]
    fn edits_never_panic() {
        let mut runner = runner(7, 3000);
        runner
            .run(
                &(vec(any::<u8>(), 0..40), vec(edit(), 1..6)),
                |(mut p, edits)| {
                    for e in &edits {
                        e.apply(&mut p);
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn seals_recompute_the_checksum_and_the_length() {
        let payload = b"hello".to_vec();
        let frame = Seal::Frame.reseal(&[], &payload, true);
        assert_eq!(&frame[4..8], &5u32.to_le_bytes());
        assert_eq!(&frame[..4], &crc32(&frame[4..]).to_le_bytes());
        let shorter = Seal::Frame.reseal(&frame, b"hell", false);
        assert_eq!(&shorter[4..8], &5u32.to_le_bytes(), "length kept");
        assert_eq!(&shorter[..4], &crc32(&shorter[4..]).to_le_bytes());
        let field = LenField {
            at: 0,
            width: 2,
            base: 0x100,
            minus: 2,
        };
        let prefix = Seal::Prefix(Some(field)).reseal(&[], &[0, 0, 9, 9, 9], true);
        assert_eq!(&prefix[4..6], &0x103u16.to_le_bytes());
        let trailer = Seal::Trailer.reseal(&[1, 1, 7, 0, 0, 0, 0], b"ab", true);
        assert_eq!(trailer[2], 7, "the type byte is kept");
        assert_eq!(&trailer[3..], &crc32(&trailer[..3]).to_le_bytes());
        let suffix = Seal::Suffix.reseal(&[], b"xyz", true);
        assert_eq!(&suffix[3..], &crc32(b"xyz").to_le_bytes());
    }
}
