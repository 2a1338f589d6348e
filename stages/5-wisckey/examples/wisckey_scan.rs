//! How much reading ahead saves a scan: writes `PAIRS` keys (20,000 by default) with 1 KiB
//! values into a store in a temporary directory, in key order or scrambled, then scans the
//! whole store with windows of 1 (no read-ahead), 8 and 64 values, and prints the time per
//! scan and the read calls it made.
//!
//! ```text
//! cargo run --release -p wisckey --example wisckey_scan [PAIRS]
//! ```
//!
//! The files were just written, so they sit in the operating system's page cache: what the
//! figures show is the cost of one read call per value against a few large ones, and of
//! reading in file order, not the cost of a disk's seeks (which reading ahead saves far
//! more of on a cold cache).

use std::time::Instant;

use kv_shared::{Engine, KeyRange, Options, Result};
use wisckey::Wisckey;

/// The key of number `i`: 16 bytes, ascending with `i`.
fn key(i: usize) -> Vec<u8> {
    format!("key{i:013}").into_bytes()
}

/// A 1 KiB value for key `i`.
fn value(i: usize) -> Vec<u8> {
    let mut v = format!("value {i}").into_bytes();
    v.resize(1024, b'v');
    v
}

/// Writes `pairs` pairs, in key order or scrambled (a stride prime to `pairs`), in
/// batches of 100.
fn fill(store: &Wisckey, pairs: usize, in_order: bool) -> Result<()> {
    let stride = (1..)
        .map(|s| 7919 * s)
        .find(|s| gcd(*s, pairs) == 1)
        .unwrap_or(1);
    let mut batch = kv_shared::WriteBatch::new();
    for j in 0..pairs {
        let i = if in_order { j } else { (j * stride) % pairs };
        batch.put(&key(i), &value(i))?;
        if batch.len() == 100 {
            store.write(&batch)?;
            batch.clear();
        }
    }
    store.write(&batch)
}

/// The greatest common divisor of `a` and `b`.
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Scans the store `reps` times; returns the milliseconds per scan and the read calls the
/// scans made per scan.
fn scans(store: &Wisckey, pairs: usize, reps: u32) -> Result<(f64, u64)> {
    let reads_before = store.stats()?.extra["prefetch_reads"];
    let started = Instant::now();
    for _ in 0..reps {
        let mut n = 0;
        for pair in store.scan(KeyRange::all())? {
            pair?;
            n += 1;
        }
        assert_eq!(n, pairs, "a scan missed pairs");
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(reps);
    let reads = store.stats()?.extra["prefetch_reads"] - reads_before;
    Ok((ms, reads / u64::from(reps)))
}

fn main() -> Result<()> {
    let pairs: usize = std::env::args()
        .nth(1)
        .map_or(Ok(20_000), |a| a.parse())
        .map_err(|e| kv_shared::Error::InvalidArgument(format!("PAIRS: {e}")))?;
    for in_order in [true, false] {
        let order = if in_order {
            "in key order"
        } else {
            "scrambled"
        };
        let tmp =
            tempfile::tempdir().map_err(|e| kv_shared::Error::io("temporary directory", e))?;
        {
            let store = Wisckey::open(tmp.path(), &Options::new())?;
            fill(&store, pairs, in_order)?;
            store.close()?;
        }
        for prefetch in [1, 8, 64] {
            let options = Options::new().set("scan_prefetch", prefetch);
            let store = Wisckey::open(tmp.path(), &options)?;
            scans(&store, pairs, 1)?; // warm up the tree's block cache
            let (ms, reads) = scans(&store, pairs, 5)?;
            println!(
                "{pairs} values written {order}, scan_prefetch={prefetch:>2}: \
                 {ms:7.1} ms per scan, {reads:>6} read calls"
            );
            store.close()?;
        }
    }
    Ok(())
}
