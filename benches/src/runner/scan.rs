//! `scan`: bounded range scans of [`SCAN_KEYS`] keys, `[key(i), key(i + 100))`, from random
//! starts `i`. Each scan is timed as one operation and checked: it must return every key
//! its range holds, each value of the workload's size. The pairs are read borrowed from the
//! engine's range cursor ([`super::standard::walk`]), as db_bench reads an iterator.

use std::ops::Bound;
use std::time::Instant;

use kv_shared::{DynEngine, KeyRange, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::standard::walk;
use super::{BenchConfig, Clock, Outcome};
use crate::bench_workload::SCAN_KEYS;
use crate::latency::Latency;
use crate::progress::Progress;
use crate::workload::key;

/// `scan`: bounded range scans of [`SCAN_KEYS`] keys from random starts.
pub(super) fn scan(
    db: &dyn DynEngine,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let c = &config.workload;
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x5CA7_5CA7);
    let mut latency = Latency::new();
    let mut clock = Clock::start(config, progress);
    let (mut entries, mut limited, mut wrong) = (0u64, false, None);
    for _ in 0..scans(c.num) {
        let i = rng.random_range(0..c.num.max(1));
        let end = if i + SCAN_KEYS < c.num {
            Bound::Excluded(key(i + SCAN_KEYS, c.key_size))
        } else {
            Bound::Unbounded
        };
        let t = Instant::now();
        let range = KeyRange::new(Bound::Included(key(i, c.key_size)), end);
        let (mut n, mut wrong_size) = (0u64, 0u64);
        let mut walk = walk(db, range)?;
        while let Some(pair) = walk.next_borrowed() {
            let (_, value) = pair?;
            wrong_size += u64::from(value.len() != c.value_size);
            n += 1;
        }
        let now = Instant::now();
        latency.record(now - t);
        entries += n;
        let expected = SCAN_KEYS.min(c.num - i);
        if n != expected && wrong.is_none() {
            wrong = Some(format!(
                "scan: the range from key {i} returned {n} entries, it holds {expected}"
            ));
        }
        if wrong_size > 0 && wrong.is_none() {
            wrong = Some(format!(
                "scan: the range from key {i} returned {wrong_size} values of a size other \
                 than {}",
                c.value_size
            ));
        }
        if clock.tick(now) {
            limited = true;
            break;
        }
    }
    let elapsed = clock.elapsed();
    Ok(Outcome::timed(entries, latency, elapsed, limited, wrong))
}

/// How many scans a `scan` workload makes over `num` keys.
pub(super) fn scans(num: u64) -> u64 {
    (num / SCAN_KEYS).max(1)
}
