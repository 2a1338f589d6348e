//! The filter block: a table's Bloom filter over its user keys, and a checksum.
//!
//! The filter is built while the table is written ([`crate::table::table_builder`] keeps
//! the hash of every user key) and read once when the table is opened; it stays in memory
//! for the table's life, so `get` asks it before it reads any data block. What the filter's
//! bytes mean is [`crate::bloom`]'s.
//!
//! ## Format
//!
//! | size | field |
//! |---|---|
//! | m / 8 + 1 | the filter bytes ([`crate::bloom`]: bit array, then the probe count) |
//! | 4 | CRC32 of the filter bytes, `u32` LE |

use kv_shared::framing::{DecodeError, crc32, put_crc};

use crate::bloom::BloomFilter;

/// Bytes after the filter bytes: the checksum.
pub const CRC_LEN: usize = 4;

/// The filter block of `filter`.
pub fn encode(filter: &BloomFilter) -> Vec<u8> {
    let mut block = filter.encode();
    put_crc(&mut block);
    block
}

/// Checks a filter block's checksum and decodes the filter.
///
/// # Errors
/// [`DecodeError`] for a block too short, a checksum mismatch, or filter bytes that are
/// not a filter.
pub fn decode(block: &[u8]) -> Result<BloomFilter, DecodeError> {
    if block.len() < CRC_LEN + 1 {
        return Err(DecodeError::new(0, "filter block too short"));
    }
    let (filter, crc) = block.split_at(block.len() - CRC_LEN);
    if u32::from_le_bytes(crc.try_into().unwrap_or_default()) != crc32(filter) {
        return Err(DecodeError::new(filter.len(), "filter checksum mismatch"));
    }
    BloomFilter::decode(filter).ok_or_else(|| DecodeError::new(filter.len() - 1, "bad probe count"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bloom::hash;

    #[test]
    fn round_trip_and_damage() {
        let filter = BloomFilter::build(&[hash(b"a"), hash(b"b")], 10);
        let block = encode(&filter);
        assert_eq!(decode(&block), Ok(filter));
        for i in 0..block.len() {
            let mut bad = block.clone();
            bad[i] ^= 1;
            assert!(decode(&bad).is_err(), "flip at {i}");
        }
        assert!(decode(&block[..4]).is_err());
    }
}
