//! How fast a bulk load writes tables: loads sorted pairs (16-byte keys, 100-byte values,
//! a million by default) into an empty store in a temporary directory, and prints the
//! key and value bytes per second, the time spent, and where the tables went.
//!
//! ```text
//! cargo run --release -p lsm --example lsm_bulk_load [PAIRS] [sorted|unsorted]
//! ```
//!
//! The time includes everything [`kv_shared::Engine::load`] does: checking the order,
//! building the blocks, filters and indexes, writing and syncing each table, the manifest
//! edit.

use std::time::Instant;

use kv_shared::{Engine, Error, LoadOrder, Options, Result};
use lsm::LsmTree;

/// The `i`th key: 16 bytes, `key` and `i` in 13 decimal digits, ascending with `i`. (Made
/// by hand rather than by `format!`, which would cost more than loading the pair.)
fn key(i: u64) -> Vec<u8> {
    let mut key = *b"key0000000000000";
    write_digits(&mut key[3..], i);
    key.to_vec()
}

/// A 100-byte value for key `i`: its number in 13 digits, then filler.
fn value(i: u64) -> Vec<u8> {
    let mut value = vec![b'v'; 100];
    write_digits(&mut value[..13], i);
    value
}

/// Writes `n` in decimal into `out`, right-aligned, zero-padded.
fn write_digits(out: &mut [u8], mut n: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let pairs: u64 = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("not a number of pairs: {n}")))?,
        None => 1_000_000,
    };
    let order = match args.next().as_deref() {
        None | Some("sorted") => LoadOrder::Sorted,
        Some("unsorted") => LoadOrder::Unsorted,
        Some(other) => {
            return Err(Error::InvalidArgument(format!(
                "sorted or unsorted, not {other}"
            )));
        }
    };
    let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let tree = LsmTree::open(tmp.path(), &Options::new())?;
    // Unsorted: the same keys, in descending order.
    let mut input = (0..pairs).map(|i| {
        let i = match order {
            LoadOrder::Sorted => i,
            LoadOrder::Unsorted => pairs - 1 - i,
        };
        Ok((key(i), value(i)))
    });
    let began = Instant::now();
    let report = tree.load(&mut input, order)?;
    let seconds = began.elapsed().as_secs_f64();
    let mb = report.bytes as f64 / 1e6;
    println!(
        "{} pairs, {mb:.1} MB of keys and values in {seconds:.2} s: {:.0} MB/s; {} (sort runs: {})",
        report.pairs,
        mb / seconds,
        report.method,
        report.sort_runs
    );
    tree.close()
}
