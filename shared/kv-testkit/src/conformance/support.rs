//! What the conformance tests share: opening stores, reading them whole, comparing them
//! with a model, and checking one store through compaction and reopening.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use rand::Rng;

use kv_shared::{
    CursorIter, Direction, Engine, Error, KeyRange, MAX_KEY_LEN, MAX_VALUE_LEN, Options,
};

/// A store's contents as the tests model them: key to value.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Collects a scan into a vector, panicking on error.
pub fn scan_vec<E: Engine>(engine: &E, range: KeyRange) -> Vec<(Vec<u8>, Vec<u8>)> {
    engine
        .scan(range)
        .expect("scan")
        .collect::<Result<Vec<_>, _>>()
        .expect("scan item")
}

/// Collects a reverse scan into a vector (descending keys), panicking on error.
pub fn scan_rev_vec<E: Engine>(engine: &E, range: KeyRange) -> Vec<(Vec<u8>, Vec<u8>)> {
    engine
        .scan_rev(range)
        .expect("scan_rev")
        .collect::<Result<Vec<_>, _>>()
        .expect("scan_rev item")
}

/// The pairs of `model` in `range`, ascending.
pub fn model_range(model: &Model, range: &KeyRange) -> Vec<(Vec<u8>, Vec<u8>)> {
    if range.is_empty() {
        return Vec::new();
    }
    model
        .range::<[u8], _>(range.clone())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Checks that `e` holds exactly `model`: a get of every key in `keys` and of the model,
/// a scan and a reverse scan.
pub fn assert_holds<E: Engine>(e: &E, model: &Model, keys: &[&[u8]], context: &str) {
    for key in keys.iter().copied().chain(model.keys().map(Vec::as_slice)) {
        assert_eq!(
            e.get(key).unwrap().as_ref(),
            model.get(key),
            "get {} ({context})",
            kv_shared::dump::quoted(key, 24)
        );
    }
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
    assert!(scan_vec(e, KeyRange::all()) == want, "scan ({context})");
    let mut got = scan_rev_vec(e, KeyRange::all());
    got.reverse();
    assert!(got == want, "reverse scan ({context})");
}

/// Checks `scan` and `scan_rev` of every range of `ranges` against `model`.
pub fn check_scans<E: Engine>(
    engine: &E,
    model: &Model,
    ranges: impl IntoIterator<Item = KeyRange>,
    context: &str,
) {
    for range in ranges {
        let mut want = model_range(model, &range);
        assert_eq!(
            scan_vec(engine, range.clone()),
            want,
            "scan {range:?} ({context})"
        );
        assert_eq!(
            range_cursor_walk(engine, &range),
            want,
            "range_cursor {range:?}, walked borrowed ({context})"
        );
        want.reverse();
        let got = scan_rev_vec(engine, range.clone());
        assert_eq!(got, want, "scan_rev {range:?} ({context})");
    }
}

/// The pairs of `range` read borrowed from the engine's `range_cursor`, forward, as
/// `kvbench` reads them ([`CursorIter::next_borrowed`]).
fn range_cursor_walk<E: Engine>(engine: &E, range: &KeyRange) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cursor = engine.range_cursor(range).expect("range_cursor");
    let mut walk = CursorIter::new(cursor, range.clone(), Direction::Forward);
    let mut pairs = Vec::new();
    while let Some(pair) = walk.next_borrowed() {
        let (key, value) = pair.expect("range_cursor step");
        pairs.push((key.to_vec(), value.to_vec()));
    }
    pairs
}

/// A random range: each bound included, excluded or open, one time in three each, at one
/// of `keys`. Empty and inverted ranges come up too.
pub fn random_range(rng: &mut impl Rng, keys: &[Vec<u8>]) -> KeyRange {
    let mut bound = || {
        let key = keys[rng.random_range(0..keys.len())].clone();
        match rng.random_range(0..3) {
            0 => Bound::Included(key),
            1 => Bound::Excluded(key),
            _ => Bound::Unbounded,
        }
    };
    let start = bound();
    KeyRange::new(start, bound())
}

/// Checks that `result` is an [`Error::Corruption`] in `file`, panicking with `context` on
/// anything else; returns the corruption's offset and detail for further checks.
pub fn assert_corruption_in<T>(
    result: kv_shared::Result<T>,
    file: &Path,
    context: &str,
) -> (u64, String) {
    match result {
        Err(Error::Corruption {
            file: found,
            offset,
            detail,
        }) => {
            assert_eq!(found, file, "the damaged file ({context})");
            (offset, detail)
        }
        Err(other) => panic!("{context}: expected corruption, got {other}"),
        Ok(_) => panic!("{context}: the damage went unnoticed"),
    }
}

/// Opens `dir` as `E`, panicking with the error.
pub(crate) fn open<E: Engine>(dir: &Path, options: &Options) -> E {
    E::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", E::NAME))
}

/// A new temporary directory and the store path inside it.
pub(crate) fn fresh() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    (tmp, dir)
}

/// Runs `check` on `engine` as it is, after a `compact`, after a close and reopen, and
/// after one more `compact`; then closes the store.
pub(crate) fn check_through_compact_and_reopen<E: Engine>(
    engine: E,
    dir: &Path,
    options: &Options,
    check: impl Fn(&E),
) {
    check(&engine);
    engine.compact().expect("compact");
    check(&engine);
    engine.close().expect("close");
    let engine = open::<E>(dir, options);
    check(&engine);
    engine.compact().expect("compact after reopen");
    check(&engine);
    engine.close().expect("close");
}

/// Sets its flag when dropped. The thread that ends a concurrency check holds one, so the
/// threads looping until the flag stop even when it panics: a write that fails then fails
/// the test, rather than leave the other threads spinning and the test hanging.
#[derive(Debug)]
pub struct StopOnDrop<'a>(pub &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Runs `compact` every few milliseconds until `done`: the background churn of the
/// concurrency checks.
pub(crate) fn compact_until<E: Engine>(engine: &E, done: &AtomicBool) {
    while !done.load(SeqCst) {
        engine.compact().expect("compact in the background");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Checks that `write` (a put of `Some(value)`, a delete of `None`) refuses a key one byte
/// over [`MAX_KEY_LEN`] and a value one byte over [`MAX_VALUE_LEN`] with their typed errors:
/// a put and a delete of the long key, puts of the long value to a key that exists
/// (`big`) and to one that does not (`new`).
pub fn assert_refuses_one_byte_over(
    mut write: impl FnMut(&[u8], Option<&[u8]>) -> kv_shared::Result<()>,
) {
    let over_key = vec![b'k'; MAX_KEY_LEN + 1];
    let over_value = vec![0u8; MAX_VALUE_LEN + 1];
    assert!(matches!(
        write(&over_key, Some(b"x")),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        write(&over_key, None),
        Err(Error::KeyTooLarge { .. })
    ));
    for key in [&b"big"[..], b"new"] {
        assert!(matches!(
            write(key, Some(&over_value)),
            Err(Error::ValueTooLarge { .. })
        ));
    }
}
