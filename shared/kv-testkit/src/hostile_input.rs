//! The hostile-input suite: feed every decoder bytes it was never meant to see.
//!
//! A decoder reads lengths, offsets and counts out of the bytes it decodes. If it trusts
//! them, a damaged or malicious file makes it panic (an index out of bounds), allocate
//! gigabytes (a length field of `0xFFFFFFFF` passed to `Vec::with_capacity`), or loop
//! forever (an offset that points back at itself). Here proptest generates inputs of three
//! kinds ([`Input`]):
//!
//! * random bytes;
//! * the first bytes of a real file (its magic number and version, so decoding gets past the
//!   first check) followed by random bytes;
//! * real files with a few [`Mutation`]s: bit flips, byte sets, 32-bit fields overwritten
//!   with huge or zero values, truncations, insertions and removals.
//!
//! and feeds them to the engine's `inspect` (which must parse any of its files, so it
//! reaches every decoder: records, blocks, indexes, footers, hint files, manifests) and to
//! `open` of a store whose file was replaced by the input, followed by a full read. Any
//! result is fine, `None` or an error included; a **panic** is not, and proptest shrinks it
//! to a minimal input.
//!
//! Huge allocations and endless loops cannot be caught from inside a process without
//! `unsafe`, so [`crate::child_process::run_bounded`] runs the suite in a child process with
//! its address space limited (`ulimit -v`: an allocation sized by an unchecked length then
//! aborts the child) and each case's time bounded by a watchdog in the parent; either way
//! the parent reports the input that was running, which the child writes down before each
//! case.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::fault_fs::{FaultFs, FsImage, store_path};
use kv_shared::{Engine, KeyRange, Options};

/// One change to a real file.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit of the byte at `at` (positions wrap around the input's length).
    Flip {
        /// Position.
        at: usize,
        /// Bit, 0 to 7.
        bit: u8,
    },
    /// Set the byte at `at`.
    Set {
        /// Position.
        at: usize,
        /// New value.
        byte: u8,
    },
    /// Overwrite four bytes at `at` with a little-endian `u32`: where a length, offset or
    /// count field sits, the decoder meets a huge or zero value.
    Field {
        /// Position.
        at: usize,
        /// New value.
        value: u32,
    },
    /// Cut the input at `at`.
    Truncate {
        /// Position.
        at: usize,
    },
    /// Insert bytes at `at`.
    Insert {
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
}

impl Mutation {
    /// Applies the mutation.
    pub fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        let pos = |at: usize| if len == 0 { 0 } else { at % len };
        match self {
            Mutation::Flip { at, bit } if len > 0 => bytes[pos(*at)] ^= 1 << (bit % 8),
            Mutation::Set { at, byte } if len > 0 => bytes[pos(*at)] = *byte,
            Mutation::Field { at, value } => {
                for (i, b) in value.to_le_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(pos(*at) + i) {
                        *slot = b;
                    }
                }
            }
            Mutation::Truncate { at } => bytes.truncate(pos(*at)),
            Mutation::Insert { at, bytes: extra } => {
                let at = if len == 0 { 0 } else { at % (len + 1) };
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Remove { at, n } => {
                let at = pos(*at);
                let end = at.saturating_add(*n).min(len);
                bytes.drain(at..end);
            }
            _ => {}
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop_oneof![
        Just(0u32),
        Just(u32::MAX),
        Just(0x8000_0000u32),
        Just(0x7FFF_FFFFu32),
        Just(1u32 << 24),
        any::<u32>(),
    ];
    prop_oneof![
        3 => (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        3 => (any::<usize>(), field).prop_map(|(at, value)| Mutation::Field { at, value }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<usize>(), vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Remove { at, n }),
    ]
}

/// A generated input: which sample it came from (if any) and its bytes.
#[derive(Debug, Clone)]
pub struct Input {
    /// Index of the real file it derives from, if any.
    pub sample: Option<usize>,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The strategy: random bytes, a real file's head plus random bytes, or a mutated real file.
pub fn input(samples: Arc<Vec<Vec<u8>>>) -> BoxedStrategy<Input> {
    let n = samples.len().max(1);
    let random = vec(any::<u8>(), 0..512).prop_map(|bytes| Input {
        sample: None,
        bytes,
    });
    if samples.is_empty() {
        return random.boxed();
    }
    let heads = samples.clone();
    let head = (0..n, 1..40usize, vec(any::<u8>(), 0..512)).prop_map(move |(i, keep, tail)| {
        let mut bytes: Vec<u8> = heads[i].iter().take(keep).copied().collect();
        bytes.extend(tail);
        Input {
            sample: Some(i),
            bytes,
        }
    });
    let mutated = (0..n, vec(mutation(), 1..6)).prop_map(move |(i, mutations)| {
        let mut bytes = samples[i].clone();
        for m in &mutations {
            m.apply(&mut bytes);
        }
        Input {
            sample: Some(i),
            bytes,
        }
    });
    prop_oneof![1 => random, 1 => head, 4 => mutated].boxed()
}

fn runner(seed: u64, cases: u32) -> TestRunner {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

/// Writes down the case about to run, so that a parent watching a child process can name
/// the input that hung or aborted it (see [`crate::child_process::run_bounded`]).
fn note_case(what: &str, bytes: &[u8]) {
    if let Some(path) = std::env::var_os(crate::child_process::CASE_FILE_ENV) {
        let mut text = format!("{what}, {} bytes: ", bytes.len());
        for b in bytes.iter().take(4096) {
            text.push_str(&format!("{b:02x}"));
        }
        let _ = std::fs::write(path, text);
    }
}

/// Feeds `cases` generated inputs to `inspect`, with `samples` (real files) to mutate.
///
/// # Panics
/// When `inspect` panics on an input; the message holds the shrunk input and the seed.
pub fn hostile_inspect(
    inspect: fn(&[u8]) -> Option<String>,
    samples: Vec<Vec<u8>>,
    seed: u64,
    cases: u32,
) {
    let samples = Arc::new(samples);
    let mut runner = runner(seed, cases);
    let n = std::cell::Cell::new(0u64);
    let result = runner.run(&input(samples), |input| {
        n.set(n.get() + 1);
        note_case(&format!("inspect case {}", n.get()), &input.bytes);
        let _ = inspect(&input.bytes);
        Ok(())
    });
    if let Err(e) = result {
        panic!("inspect failed on a hostile input (replay with KV_TEST_SEED={seed}): {e}");
    }
    eprintln!("inspect: {} hostile inputs, no panic", n.get());
}

/// Replaces one file of the real store `image` by a generated input (mutating that file),
/// then opens the store and reads it all, `cases` times.
///
/// # Panics
/// When the engine panics; the message holds the shrunk input, the file and the seed.
pub fn hostile_open<E: Engine>(options: &Options, image: &FsImage, seed: u64, cases: u32) {
    let paths: Vec<PathBuf> = image.keys().cloned().collect();
    let samples: Vec<Vec<u8>> = paths.iter().map(|p| image[p].clone()).collect();
    let mut runner = runner(seed ^ 1, cases);
    let n = std::cell::Cell::new(0u64);
    let strategy = (input(Arc::new(samples)), 0..paths.len().max(1));
    let result = runner.run(&strategy, |(input, pick)| {
        n.set(n.get() + 1);
        let Some(path) = input
            .sample
            .or(Some(pick))
            .and_then(|i| paths.get(i))
            .cloned()
        else {
            return Ok(());
        };
        note_case(
            &format!("open case {}, as {}", n.get(), path.display()),
            &input.bytes,
        );
        let mut damaged = image.clone();
        damaged.insert(path, input.bytes);
        let fs = FaultFs::from_image(seed, &damaged);
        let opts = options.clone().with_file_system(Arc::new(fs));
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if let Ok(engine) = E::open(&store_path(), &opts) {
                for key in crate::history::key_space() {
                    let _ = engine.get(&key);
                }
                if let Ok(iter) = engine.scan(KeyRange::all()) {
                    for item in iter {
                        if item.is_err() {
                            break;
                        }
                    }
                }
            }
        }));
        prop_assert!(outcome.is_ok(), "the engine panicked");
        Ok(())
    });
    if let Err(e) = result {
        panic!(
            "{}: open of a store holding a hostile file panicked (replay with \
             KV_TEST_SEED={seed}): {e}",
            E::NAME
        );
    }
    eprintln!(
        "{}: {} stores with a hostile file opened and read, no panic",
        E::NAME,
        n.get()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_never_panic_and_stay_in_bounds() {
        let mut runner = runner(5, 2000);
        runner
            .run(
                &(vec(any::<u8>(), 0..64), vec(mutation(), 1..8)),
                |(mut b, ms)| {
                    for m in &ms {
                        m.apply(&mut b);
                    }
                    Ok(())
                },
            )
            .unwrap();
        let mut b = vec![0u8; 8];
        Mutation::Field {
            at: 2,
            value: u32::MAX,
        }
        .apply(&mut b);
        assert_eq!(b, [0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
}
