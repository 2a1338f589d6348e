//! The annotated dump of a data file: pinned by snapshots, and never a panic.

mod common;

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

    #[test]
    fn a_damaged_real_log_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        static LOG: OnceLock<Log> = OnceLock::new();
        let mut bytes = LOG.get_or_init(|| Log::write(common::OPS)).bytes.clone();
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            if i >= 8 {
                bytes[i] ^= mask;
            }
        }
        bytes.truncate(8 + cut.index(bytes.len() - 8));
        prop_assert!(hashlog::inspect(&bytes).is_some());
    }

    #[test]
    fn a_damaged_log_with_a_batch_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        static LOG: OnceLock<BatchLog> = OnceLock::new();
        let log = LOG.get_or_init(|| BatchLog::write(&SMALL[..2], BATCH, &SMALL[4..]));
        let mut bytes = log.bytes.clone();
        for (at, mask) in flips {
            let i = log.start as usize + at.index((log.end - log.start) as usize);
            bytes[i] ^= mask;
        }
        bytes.truncate(8 + cut.index(bytes.len() - 8));
        prop_assert!(hashlog::inspect(&bytes).is_some());
    }
}
