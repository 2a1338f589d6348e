//! What a memtable insert costs: inserts pairs (16-byte keys, 100-byte values, as
//! `kvbench`'s fills write) into a fresh [`Memtable`], and prints, per insert, the heap
//! allocations, the resident memory the process grew by, the bytes the memtable counts
//! ([`Memtable::approximate_bytes`]) and the time.
//!
//! ```text
//! cargo run --release -p lsm --example memtable_inserts [seq|random|none] [PAIRS] [VALUE_BYTES]
//! ```
//!
//! `seq` inserts keys in ascending order (as `fillseq` and `fillbatch` do), `random` in a
//! scattered order (as `fillrandom`), 200,000 pairs of 100-byte values by default; `none` only makes the pairs and
//! the memtable.
//! Every mode makes all its pairs before it inserts any, so under
//! `valgrind --tool=callgrind` the difference between a mode's instruction count and that
//! of `none` is the inserts' alone (the memtable's drop included).

use std::time::Instant;

use lsm::memtable::Memtable;

/// Key `x`: 15 decimal digits, then `0` (the shape of `kvbench`'s keys).
fn key(x: u64) -> Vec<u8> {
    let mut key = format!("{x:015}").into_bytes();
    key.push(b'0');
    key
}

/// SplitMix64: a scattered, repeatable sequence of numbers for the `random` mode.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The process's resident memory in bytes (from `/proc/self/statm`), 0 where unknown.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "seq".into());
    let pairs: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let value_bytes: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let keys: Vec<Vec<u8>> = match mode.as_str() {
        "seq" | "none" => (0..pairs).map(key).collect(),
        "random" => (0..pairs)
            .map(|i| key(mix(i) % 1_000_000_000_000_000))
            .collect(),
        other => {
            eprintln!("unknown mode {other:?}: seq, random or none");
            std::process::exit(2);
        }
    };
    let value = vec![b'v'; value_bytes];
    // Sized (its filter) for about these pairs; nothing here stops at a full memtable.
    let mem = Memtable::new(1, pairs as usize * 240);
    if mode == "none" {
        println!("made {} keys and a memtable, inserted nothing", keys.len());
        return;
    }
    let rss = resident_bytes();
    let began = Instant::now();
    let allocations = allocation_counter::measure(|| {
        for (seq, key) in (1..).zip(&keys) {
            mem.insert(key, seq, Some(&value));
        }
    });
    let elapsed = began.elapsed();
    let grown = resident_bytes().saturating_sub(rss);
    let n = pairs as f64;
    println!("{mode}: {pairs} inserts of 16-byte keys and {value_bytes}-byte values");
    println!(
        "  allocations: {} ({:.3} an insert)",
        allocations.count_total,
        allocations.count_total as f64 / n
    );
    println!(
        "  resident memory grown: {:.1} bytes an insert",
        grown as f64 / n
    );
    println!(
        "  counted by the memtable: {:.1} bytes an insert",
        mem.approximate_bytes() as f64 / n
    );
    println!("  time: {:.0} ns an insert", elapsed.as_nanos() as f64 / n);
    assert_eq!(mem.len() as u64, pairs, "every key is distinct");
}
