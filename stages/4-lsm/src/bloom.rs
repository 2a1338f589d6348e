//! Bloom filters: a few bits per key that answer "certainly not here" without any disk read.
//!
//! Each table carries one filter over the user keys it holds. Before `get` reads a data
//! block it asks the filter; a "no" is always right, so the block read is skipped, and a
//! "maybe" is wrong (a *false positive*) with a probability that depends only on the bits
//! spent per key. With `b` bits per key and `k` probes the rate is about
//! `(1 - e^(-k/b))^k`; the best `k` is `b · ln 2`, which for the default `b = 10` gives
//! `k = 6` (rounded down, as LevelDB does) and a rate of about 0.84 % for a plain filter.
//!
//! The filter is **blocked** (as RocksDB's current filters are): the bit array is cut into
//! 512-bit blocks of 64 bytes, one cache line each, and all of a key's probes fall in one
//! block, so a check costs one memory access rather than one per probe. A `get` asks the
//! filter of every L0 table and of one table per deeper level, so this matters more than
//! the slightly higher false-positive rate it costs (about 1.0 % instead of 0.84 % at 10
//! bits per key).
//!
//! One 64-bit hash `h` of the key picks everything: the block is `(h mod 2^32) mod blocks`;
//! then `g = h · 0x9e3779b97f4a7c15` (mod 2^64) gives `a = (g >> 23) mod 512` and an odd
//! step `b = ((g >> 41) mod 512) | 1`, and probe `i` (0 to `k - 1`) sets bit
//! `(a + i · b) mod 512` of the block (double hashing, Kirsch and Mitzenmacher; an odd step
//! never repeats a bit within 512). The hash is FNV-1a followed by the MurmurHash3 64-bit
//! finalizer, written out below so the filter's bits are the same on every build.
//!
//! ## Format (the table's filter block, see [`crate::table`])
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | m / 8 | the bit array, a whole number of 64-byte blocks (at least one); bit `j` of a block is bit `j % 8` of its byte `j / 8` |
//! | m / 8 | 1 | number of probes `k` (1 to 30) |

/// Most probes a filter may ask for (a bound checked when reading one).
pub const MAX_PROBES: u8 = 30;
/// Bytes per block: one cache line.
pub const BLOCK_BYTES: usize = 64;
/// Bits per block.
const BLOCK_BITS: u64 = (BLOCK_BYTES * 8) as u64;

/// A built or loaded Bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BloomFilter {
    bits: Vec<u8>,
    probes: u8,
}

/// The 64-bit hash of a key that the filter probes with.
pub fn hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // MurmurHash3's fmix64: spreads every input bit over every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Where the key with hash `h` falls in a blocked filter of `blocks` blocks: the block's
/// index, and the bits of that block (0 to 511) its `probes` probes set (see the module
/// documentation). Shared by the tables' filters and the memtables' ([`crate::memtable_filter`]).
pub fn block_probes(h: u64, blocks: u64, probes: u8) -> (usize, impl Iterator<Item = u64>) {
    let block = ((h & 0xffff_ffff) % blocks) as usize;
    let g = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let a = (g >> 23) % BLOCK_BITS;
    let b = ((g >> 41) % BLOCK_BITS) | 1;
    let bits = (0..u64::from(probes)).map(move |i| a.wrapping_add(i.wrapping_mul(b)) % BLOCK_BITS);
    (block, bits)
}

/// The number of probes for `bits_per_key`: `bits_per_key · ln 2`, rounded down, in 1..=30.
pub fn probes_for(bits_per_key: usize) -> u8 {
    ((bits_per_key as f64 * std::f64::consts::LN_2) as usize).clamp(1, MAX_PROBES as usize) as u8
}

impl BloomFilter {
    /// A filter over the keys whose [`hash`]es are `hashes`, with `bits_per_key` bits each
    /// (rounded up to whole blocks, at least one).
    pub fn build(hashes: &[u64], bits_per_key: usize) -> BloomFilter {
        let blocks = (hashes.len() * bits_per_key)
            .div_ceil(BLOCK_BYTES * 8)
            .max(1);
        let mut filter = BloomFilter {
            bits: vec![0; blocks * BLOCK_BYTES],
            probes: probes_for(bits_per_key),
        };
        for &h in hashes {
            for (byte, mask) in filter.probe_bits(h) {
                filter.bits[byte] |= mask;
            }
        }
        filter
    }

    /// The (byte, bit mask) of each probe of the key with hash `h`, all in one block (see
    /// [`block_probes`]).
    fn probe_bits(&self, h: u64) -> impl Iterator<Item = (usize, u8)> + use<> {
        let (block, bits) = block_probes(h, (self.bits.len() / BLOCK_BYTES) as u64, self.probes);
        let base = block * BLOCK_BYTES;
        bits.map(move |bit| (base + (bit / 8) as usize, 1u8 << (bit % 8)))
    }

    // Exercise 4.4: probe a bloom filter. Read: chapter 4b, "Bloom filters".
    // Tests: lib::bloom::tests::no_false_negatives_and_round_trip
    // Tests: bloom::filter_false_positive_rate_is_near_one_percent
    // Tests: bloom::engine_reports_the_false_positive_rate
    /// False when the key with hash `h` is certainly not in the set; true when it may be.
    pub fn may_contain_hash(&self, h: u64) -> bool {
        self.probe_bits(h)
            .all(|(byte, mask)| self.bits[byte] & mask != 0)
    }

    /// False when `key` is certainly not in the set; true when it may be.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(hash(key))
    }

    /// The filter's bytes, as the filter block stores them (without the block's checksum).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.bits.clone();
        out.push(self.probes);
        out
    }

    /// A filter from its encoded bytes, or `None` when they are not a filter (a probe count
    /// out of range, or a bit array that is not a whole number of blocks).
    pub fn decode(bytes: &[u8]) -> Option<BloomFilter> {
        let (&probes, bits) = bytes.split_last()?;
        if probes == 0 || probes > MAX_PROBES {
            return None;
        }
        if bits.is_empty() || bits.len() % BLOCK_BYTES != 0 {
            return None;
        }
        Some(BloomFilter {
            bits: bits.to_vec(),
            probes,
        })
    }

    /// Size of the bit array in bits.
    pub fn bit_len(&self) -> usize {
        self.bits.len() * 8
    }

    /// Bytes of memory the bit array holds.
    pub fn memory_bytes(&self) -> u64 {
        self.bits.len() as u64
    }

    /// Number of probes per key.
    pub fn probes(&self) -> u8 {
        self.probes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_round_trip() {
        let keys: Vec<Vec<u8>> = (0..2000u32)
            .map(|i| format!("key{i}").into_bytes())
            .collect();
        let hashes: Vec<u64> = keys.iter().map(|k| hash(k)).collect();
        let filter = BloomFilter::build(&hashes, 10);
        assert!(keys.iter().all(|k| filter.may_contain(k)));
        assert_eq!(filter.probes(), 6);
        assert_eq!(BloomFilter::decode(&filter.encode()), Some(filter));
        assert_eq!(BloomFilter::decode(&[]), None);
        assert_eq!(BloomFilter::decode(&[0, 0, 99]), None);
        assert_eq!(BloomFilter::decode(&[0, 0, 6]), None, "not a whole block");
        let empty = BloomFilter::build(&[], 10);
        assert!(!empty.may_contain(b"anything"));
    }
}
