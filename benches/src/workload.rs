//! The standard workloads, named as in RocksDB's `db_bench`, deterministic from a seed.
//!
//! A workload is a stream of [`Op`]s over a key space of `num` keys. Key `i` is
//! [`key`]`(i)`: the decimal digits of `i`, zero-padded, then the byte `0`; for the default
//! 16-byte keys, key 42 is `"000000000000042" + "0"`. Keys that are never written end in `1`
//! instead ([`missing_key`]), so they interleave with real keys and a reader cannot reject
//! them by range alone. Values are slices of a seeded pool of printable bytes.
//!
//! | workload | ops | store before |
//! |---|---|---|
//! | `fillseq` | put keys `0..num` in order | empty |
//! | `fillrandom` | put keys `0..num` in a random order | empty |
//! | `overwrite` | `num` puts of random existing keys, new values | filled |
//! | `readrandom` | `num` gets of random existing keys | filled |
//! | `readmissing` | `num` gets of random missing keys | filled |
//! | `readseq` | one full scan in key order (counts `num` entries) | filled |
//! | `seekrandom` | `max(1, num / 100)` seeks to a random key, each reading the next 100 | filled |
//! | `deleterandom` | delete keys `0..num` in a random order | filled |
//!
//! "Filled" means keys `0..num` were put (by `fillseq`) before the workload starts. The
//! reads of `readseq` and `seekrandom` (and `kvbench`'s `scan`) walk the engine's
//! [`range_cursor`](kv_shared::DynEngine::range_cursor) and read each pair borrowed, as
//! db_bench reads an iterator ([`crate::runner`]'s `walk`).
//!
//! `kvbench`'s `fillbatch` (batches of 1,000 through `write`) and `bulkload` (one `load`)
//! hand the engine `fillseq`'s pairs, the same keys and values, another way: see
//! [`crate::bench_workload`].

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_shared::{Error, Result};

/// One of the standard workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// Put keys in order into an empty store.
    FillSeq,
    /// Put keys in random order into an empty store.
    FillRandom,
    /// Put random existing keys again, with new values.
    Overwrite,
    /// Get random existing keys.
    ReadRandom,
    /// Get random keys that were never written.
    ReadMissing,
    /// Scan every key in order.
    ReadSeq,
    /// Seek to a random key and read the next 100.
    SeekRandom,
    /// Delete every key, in random order.
    DeleteRandom,
}

/// How many entries each `seekrandom` seek reads.
pub const SEEK_NEXTS: usize = 100;

impl Workload {
    /// Every workload, in the order `kvbench` runs them by default.
    pub const ALL: [Workload; 8] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadMissing,
        Workload::ReadSeq,
        Workload::SeekRandom,
        Workload::DeleteRandom,
    ];

    /// The db_bench name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::Overwrite => "overwrite",
            Workload::ReadRandom => "readrandom",
            Workload::ReadMissing => "readmissing",
            Workload::ReadSeq => "readseq",
            Workload::SeekRandom => "seekrandom",
            Workload::DeleteRandom => "deleterandom",
        }
    }

    /// The workload with this db_bench name.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] listing the known names.
    pub fn from_name(name: &str) -> Result<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
                Error::InvalidArgument(format!(
                    "unknown workload `{name}` (known: {})",
                    names.join(", ")
                ))
            })
    }

    /// True when the workload expects keys `0..num` to be present before it starts.
    pub fn needs_filled_store(self) -> bool {
        !matches!(self, Workload::FillSeq | Workload::FillRandom)
    }

    /// How many key-value entries the workload touches: what its ops/s counts.
    pub fn entries(self, num: u64) -> u64 {
        match self {
            Workload::SeekRandom => seeks(num) * SEEK_NEXTS as u64,
            _ => num,
        }
    }

    /// The workload's operations for `config`.
    pub fn ops(self, config: &WorkloadConfig) -> Ops {
        let mut rng = ChaCha8Rng::seed_from_u64(
            config.seed ^ (self as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let order = match self {
            Workload::FillRandom | Workload::DeleteRandom => {
                let mut order: Vec<u64> = (0..config.num).collect();
                order.shuffle(&mut rng);
                order
            }
            _ => Vec::new(),
        };
        let total = match self {
            Workload::ReadSeq => 1,
            Workload::SeekRandom => seeks(config.num),
            _ => config.num,
        };
        Ops {
            workload: self,
            config: config.clone(),
            values: ValuePool::new(config.seed),
            rng,
            order,
            next: 0,
            total,
        }
    }
}

fn seeks(num: u64) -> u64 {
    (num / SEEK_NEXTS as u64).max(1)
}

/// Sizes and seed of a workload run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Number of keys in the key space.
    pub num: u64,
    /// Bytes per key (at least 8).
    pub key_size: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Seed for every random choice.
    pub seed: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            num: 100_000,
            key_size: 16,
            value_size: 100,
            seed: 42,
        }
    }
}

impl WorkloadConfig {
    /// Checks that the key size can hold `num` distinct keys and that sizes are within limits.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] saying what does not fit.
    pub fn validate(&self) -> Result<()> {
        if self.key_size < 8 || self.key_size > kv_shared::MAX_KEY_LEN {
            return Err(Error::InvalidArgument(format!(
                "key size {} is outside 8..={}",
                self.key_size,
                kv_shared::MAX_KEY_LEN
            )));
        }
        if self.value_size > kv_shared::MAX_VALUE_LEN {
            return Err(Error::InvalidArgument(format!(
                "value size {} is over {}",
                self.value_size,
                kv_shared::MAX_VALUE_LEN
            )));
        }
        let digits = self.key_size - 1;
        if digits < 20 && self.num > 10u64.pow(digits as u32) {
            return Err(Error::InvalidArgument(format!(
                "{}-byte keys hold at most 10^{digits} distinct keys, fewer than num = {}",
                self.key_size, self.num
            )));
        }
        Ok(())
    }

    /// Key `i` of this configuration's key space.
    pub fn key(&self, i: u64) -> Vec<u8> {
        key(i, self.key_size)
    }
}

/// Key `i` of a key space with `key_size`-byte keys: zero-padded digits, then `0` (more
/// digits than fit make a longer key). Written digit by digit: `format!` cost more than
/// some engines' whole `put`, and every workload makes its keys inside its timing.
pub fn key(i: u64, key_size: usize) -> Vec<u8> {
    let digits = i.checked_ilog10().map_or(1, |d| d as usize + 1);
    let width = key_size.saturating_sub(1).max(digits);
    let mut k = vec![b'0'; width + 1];
    let mut n = i;
    for digit in k[..width].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    k
}

/// A key that no workload writes, sorting right after [`key`]`(i)`: digits, then `1`.
pub fn missing_key(i: u64, key_size: usize) -> Vec<u8> {
    let mut k = key(i, key_size);
    if let Some(last) = k.last_mut() {
        *last = b'1';
    }
    k
}

/// One operation of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set a key.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Read a key.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Seek to `start` and read up to `count` entries in order.
    Seek {
        /// First key (inclusive).
        start: Vec<u8>,
        /// Entries to read.
        count: usize,
    },
    /// Read every entry in order.
    ScanAll,
}

/// A seeded pool of printable bytes that values are sliced from.
#[derive(Debug, Clone)]
struct ValuePool {
    bytes: Vec<u8>,
    cursor: usize,
}

impl ValuePool {
    const LEN: usize = 1 << 20;

    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(0xA5A5));
        let bytes = (0..Self::LEN)
            .map(|_| rng.random_range(b' '..=b'~'))
            .collect();
        ValuePool { bytes, cursor: 0 }
    }

    fn next(&mut self, size: usize) -> Vec<u8> {
        if size >= self.bytes.len() {
            return self.bytes.iter().copied().cycle().take(size).collect();
        }
        if self.cursor + size > self.bytes.len() {
            self.cursor = 0;
        }
        let value = self.bytes[self.cursor..self.cursor + size].to_vec();
        // An odd stride so successive values differ and wrap around at different points.
        self.cursor += size.max(1) + 7;
        value
    }
}

/// The operations of one workload run, generated lazily.
#[derive(Debug)]
pub struct Ops {
    workload: Workload,
    config: WorkloadConfig,
    values: ValuePool,
    rng: ChaCha8Rng,
    order: Vec<u64>,
    next: u64,
    total: u64,
}

impl Ops {
    /// How many operations the run has in all.
    pub fn total(&self) -> u64 {
        self.total
    }
}

impl Iterator for Ops {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        if self.next >= self.total {
            return None;
        }
        let n = self.next;
        self.next += 1;
        let c = &self.config;
        let random_index = |rng: &mut ChaCha8Rng| rng.random_range(0..c.num.max(1));
        let op = match self.workload {
            Workload::FillSeq => Op::Put {
                key: key(n, c.key_size),
                value: self.values.next(c.value_size),
            },
            Workload::FillRandom => Op::Put {
                key: key(self.order[n as usize], c.key_size),
                value: self.values.next(c.value_size),
            },
            Workload::Overwrite => Op::Put {
                key: key(random_index(&mut self.rng), c.key_size),
                value: self.values.next(c.value_size),
            },
            Workload::ReadRandom => Op::Get {
                key: key(random_index(&mut self.rng), c.key_size),
            },
            Workload::ReadMissing => Op::Get {
                key: missing_key(random_index(&mut self.rng), c.key_size),
            },
            Workload::ReadSeq => Op::ScanAll,
            Workload::SeekRandom => Op::Seek {
                start: key(random_index(&mut self.rng), c.key_size),
                count: SEEK_NEXTS,
            },
            Workload::DeleteRandom => Op::Delete {
                key: key(self.order[n as usize], c.key_size),
            },
        };
        Some(op)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.total - self.next) as usize;
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_and_interleave() {
        assert_eq!(key(42, 16), b"0000000000000420");
        assert_eq!(missing_key(42, 16), b"0000000000000421");
        assert!(key(9, 16) < missing_key(9, 16) && missing_key(9, 16) < key(10, 16));
    }

    #[test]
    fn workloads_are_deterministic_and_complete() {
        let config = WorkloadConfig {
            num: 1000,
            ..WorkloadConfig::default()
        };
        config.validate().unwrap();
        for w in Workload::ALL {
            let a: Vec<Op> = w.ops(&config).collect();
            let b: Vec<Op> = w.ops(&config).collect();
            assert_eq!(a, b, "{}", w.name());
            assert_eq!(Workload::from_name(w.name()).unwrap(), w);
        }
        let mut filled: Vec<Vec<u8>> = Workload::FillRandom
            .ops(&config)
            .map(|op| match op {
                Op::Put { key, value } => {
                    assert_eq!(value.len(), 100);
                    key
                }
                other => panic!("{other:?}"),
            })
            .collect();
        filled.sort();
        let expected: Vec<Vec<u8>> = (0..1000).map(|i| config.key(i)).collect();
        assert_eq!(filled, expected);
        assert_eq!(Workload::SeekRandom.ops(&config).count(), 10);
        assert!(Workload::from_name("nope").is_err());
        let small = WorkloadConfig {
            num: 1000,
            key_size: 3,
            ..WorkloadConfig::default()
        };
        assert!(small.validate().is_err());
    }
}
