//! Bloom filters: a few bits per key that answer "certainly not here" without any disk read.
//!
//! Each table carries one filter over the user keys it holds. Before `get` reads a data
//! block it asks the filter; a "no" is always right, so the block read is skipped, and a
//! "maybe" is wrong (a *false positive*) with a probability that depends only on the bits
//! spent per key. With `b` bits per key and `k` probes the rate is about
//! `(1 - e^(-k/b))^k`; the best `k` is `b · ln 2`, which for the default `b = 10` gives
//! `k = 6` (rounded down, as LevelDB does) and a rate of about 0.84 %.
//!
//! Probing uses double hashing (Kirsch and Mitzenmacher): one 64-bit hash `h` of the key
//! gives `h1` (its low half) and `h2` (its high half, made odd), and probe `i` sets bit
//! `(h1 + i · h2) mod m`. The hash is FNV-1a followed by the MurmurHash3 64-bit finalizer,
//! written out below so the filter's bits are the same on every build.
//!
//! ## Format (the table's filter block, see [`crate::table`])
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | m / 8 | the bit array; bit `j` is bit `j % 8` of byte `j / 8` |
//! | m / 8 | 1 | number of probes `k` (1 to 30) |

/// Most probes a filter may ask for (a bound checked when reading one).
pub const MAX_PROBES: u8 = 30;

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

/// The number of probes for `bits_per_key`: `bits_per_key · ln 2`, rounded down, in 1..=30.
pub fn probes_for(bits_per_key: usize) -> u8 {
    ((bits_per_key as f64 * std::f64::consts::LN_2) as usize).clamp(1, MAX_PROBES as usize) as u8
}

impl BloomFilter {
    /// A filter over the keys whose [`hash`]es are `hashes`, with `bits_per_key` bits each
    /// (at least 64 bits in all).
    pub fn build(hashes: &[u64], bits_per_key: usize) -> BloomFilter {
        let bits = (hashes.len() * bits_per_key).max(64).div_ceil(8) * 8;
        let mut filter = BloomFilter {
            bits: vec![0; bits / 8],
            probes: probes_for(bits_per_key),
        };
        for &h in hashes {
            for bit in filter.probe_bits(h) {
                filter.bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        filter
    }

    fn probe_bits(&self, h: u64) -> impl Iterator<Item = usize> + use<> {
        let m = (self.bits.len() * 8) as u64;
        let h1 = h & 0xffff_ffff;
        let h2 = (h >> 32) | 1;
        (0..u64::from(self.probes)).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    /// False when the key with hash `h` is certainly not in the set; true when it may be.
    pub fn may_contain_hash(&self, h: u64) -> bool {
        if self.bits.is_empty() {
            return true;
        }
        self.probe_bits(h)
            .all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
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

    /// A filter from its encoded bytes, or `None` when they are not a filter.
    pub fn decode(bytes: &[u8]) -> Option<BloomFilter> {
        let (&probes, bits) = bytes.split_last()?;
        if probes == 0 || probes > MAX_PROBES {
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
        let empty = BloomFilter::build(&[], 10);
        assert!(!empty.may_contain(b"anything"));
    }
}
