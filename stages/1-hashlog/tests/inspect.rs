//! The annotated dump of a data file: pinned by snapshots, and never a panic.

mod common;

use std::ops::Range;
use std::sync::OnceLock;

use common::{BatchLog, Log, Op};
use hashlog::data_file::{MAGIC, encode_header};
use proptest::prelude::*;

/// A few puts, an overwrite, a delete and an empty value.
const SMALL: &[Op] = &[
    (b"apple", Some(b"red")),
    (b"banana", Some(b"yellow")),
    (b"apple", Some(b"green")),
    (b"banana", None),
    (b"empty", Some(b"")),
];

#[test]
fn dump_of_a_small_log() {
    let log = Log::write(SMALL);
    insta::assert_snapshot!("small_log", hashlog::inspect(&log.bytes).unwrap());
}

/// The same log with its last record cut short, as a crash in the middle of an append
/// leaves it: a torn tail.
#[test]
fn dump_of_a_torn_log() {
    let log = Log::write(SMALL);
    let torn = &log.bytes[..log.bytes.len() - 3];
    insta::assert_snapshot!("torn_log", hashlog::inspect(torn).unwrap());
}

/// The same log with one bit of the second record's value flipped: a BAD checksum with
/// valid records after it, which open refuses.
#[test]
fn dump_of_a_corrupt_log() {
    let log = Log::write(SMALL);
    let mut bytes = log.bytes.clone();
    bytes[log.ends[1] as usize - 1] ^= 0x20; // "yellow" -> "yelloW"
    insta::assert_snapshot!("corrupt_log", hashlog::inspect(&bytes).unwrap());
}

/// A write batch: an overwrite, a delete and a new key.
const BATCH: &[Op] = &[
    (b"apple", Some(b"green")),
    (b"banana", None),
    (b"fig", Some(b"purple")),
];

/// A batch record between single records: shown op by op, counted in the summary.
#[test]
fn dump_of_a_log_with_a_batch() {
    let log = BatchLog::write(&SMALL[..2], BATCH, &SMALL[4..]);
    insta::assert_snapshot!("batch_log", hashlog::inspect(&log.bytes).unwrap());
}

#[test]
fn other_files_are_not_claimed() {
    assert_eq!(hashlog::inspect(b""), None);
    assert_eq!(hashlog::inspect(b"KVHASHL"), None);
    assert_eq!(
        hashlog::inspect(&kv_shared::marker::encode("hashlog", 1)),
        None
    );
    assert!(hashlog::inspect(MAGIC).is_some());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(hashlog::inspect(&bytes).is_some(), bytes.starts_with(MAGIC));
    }

    #[test]
    fn a_header_and_random_records_never_panic(
        header_len in 8usize..=16,
        tail in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = encode_header()[..header_len].to_vec();
        bytes.extend_from_slice(&tail);
        prop_assert!(hashlog::inspect(&bytes).is_some());
    }

    /// Each of two real logs, one with a batch record, damaged: the plain one anywhere
    /// after its magic, the other inside its batch record.
    #[test]
    fn a_damaged_real_log_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for (bytes, within) in real_logs() {
            let damaged = damage(bytes, within.clone(), &flips, cut);
            prop_assert!(hashlog::inspect(&damaged).is_some());
        }
    }
}

/// The bytes of two logs written by the engine, `common::OPS` and one with a batch, each
/// with the part of it to damage.
fn real_logs() -> &'static [(Vec<u8>, Range<usize>); 2] {
    static LOGS: OnceLock<[(Vec<u8>, Range<usize>); 2]> = OnceLock::new();
    LOGS.get_or_init(|| {
        let plain = Log::write(common::OPS).bytes;
        let after_magic = MAGIC.len()..plain.len();
        let with_batch = BatchLog::write(&SMALL[..2], BATCH, &SMALL[4..]);
        let batch = with_batch.start as usize..with_batch.end as usize;
        [(plain, after_magic), (with_batch.bytes, batch)]
    })
}

/// `bytes` with `flips` (a position, a mask) applied inside `within`, then cut anywhere
/// after the magic.
fn damage(
    bytes: &[u8],
    within: Range<usize>,
    flips: &[(prop::sample::Index, u8)],
    cut: prop::sample::Index,
) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for (at, mask) in flips {
        bytes[within.start + at.index(within.len())] ^= *mask;
    }
    bytes.truncate(MAGIC.len() + cut.index(bytes.len() - MAGIC.len()));
    bytes
}
