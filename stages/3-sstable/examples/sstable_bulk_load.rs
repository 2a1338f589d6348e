//! Measures a bulk load into an empty sstable store: 1,000,000 pairs of 16-byte keys and
//! 100-byte values, by table ingestion ([`sstable::ingest`]).
//!
//! ```text
//! cargo run --release -p sstable --example sstable_bulk_load [sorted|unsorted|batches] [PAIRS]
//! ```
//!
//! `sorted` (the default) gives the keys in order; `unsorted` gives them scrambled, so the
//! load sorts them first (an external merge sort within `memtable_bytes`); `batches` loads
//! the sorted pairs the default way, write batches through the WAL and memtable, for
//! comparison. The store lives in a temporary directory, removed at the end. Prints the
//! load's report and its speed in MB/s of keys and values (1 MB = 10^6 bytes).

use std::time::Instant;

use kv_shared::bulk::{LoadOrder, LoadReport, load_in_batches};
use kv_shared::{Engine, Options, Result};
use sstable::SstableStore;

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;

/// Pair `i` of the input: a 16-digit key, a 100-byte value derived from it.
fn pair(i: u64) -> (Vec<u8>, Vec<u8>) {
    let key = format!("{i:016}").into_bytes();
    let fill = b'a' + (i % 26) as u8;
    let mut value = vec![fill; VALUE_LEN];
    value[..KEY_LEN].copy_from_slice(&key);
    (key, value)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "sorted".to_string());
    let pairs: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().map_err(|e| kv_shared::Error::io("<tempdir>", e))?;
    let e = SstableStore::open(&tmp.path().join("db"), &Options::new())?;
    // Multiplying by an odd number modulo a power of two above `pairs` visits every number
    // below it once, in a scrambled order; the ones at or past `pairs` are skipped.
    let span = pairs.next_power_of_two();
    let scrambled = (0..span)
        .map(move |i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % span)
        .filter(move |&i| i < pairs);
    let start = Instant::now();
    let report: LoadReport = match mode.as_str() {
        "sorted" => e.load(&mut (0..pairs).map(|i| Ok(pair(i))), LoadOrder::Sorted)?,
        "unsorted" => e.load(&mut scrambled.map(|i| Ok(pair(i))), LoadOrder::Unsorted)?,
        "batches" => load_in_batches(&e, &mut (0..pairs).map(|i| Ok(pair(i))))?,
        other => {
            return Err(kv_shared::Error::InvalidArgument(format!(
                "unknown mode {other:?}: sorted, unsorted or batches"
            )));
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let stats = e.stats()?;
    assert_eq!(stats.live_keys, pairs, "every pair loaded");
    println!("mode: {mode}, {report:?}");
    println!(
        "{} pairs, {:.1} MB of keys and values in {seconds:.2} s: {:.1} MB/s; {:.1} MB written \
         to disk ({} tables)",
        report.pairs,
        report.bytes as f64 / 1e6,
        report.bytes as f64 / 1e6 / seconds,
        stats.disk_bytes_written as f64 / 1e6,
        stats.extra["tables"],
    );
    Ok(())
}
