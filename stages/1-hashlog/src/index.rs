//! The in-memory hash index: for every live key, where its latest record is.
//!
//! This is the whole trick of stage 1. The data file is in write order, useless for
//! finding a key; the index maps each live key to the offset and length of the record that
//! holds its current value, so a `get` is one hash lookup and one positioned read of exactly
//! that record. Deleted keys are simply not in the index.
//!
//! The index lives only in memory. It is never written to disk: every open rebuilds it by
//! reading the whole data file ([`crate::recovery`]). It holds every live key in full, so the
//! store's key set must fit in memory (stage 3 lifts that).
//!
//! A key written by a [write batch](crate::record) points at the whole batch record: its
//! checksum covers the batch whole, so that is what a read must check.
//!
//! Besides the map, the index keeps two running sums so that statistics cost nothing to
//! report: the key + value bytes of the live keys, and the bytes of the file they keep
//! alive (a put's whole record, or a put's op inside a batch). What the file holds beyond
//! those (overwritten values, tombstones, batch headers) is dead.

use std::collections::HashMap;

use kv_shared::KeyRange;
use kv_shared::batch::BatchOps;

use crate::record::{RECORD_HEADER_LEN, put_op_len};

/// Where a key's latest value is in the data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Offset of the first byte of the record that holds the value.
    pub offset: u64,
    /// That record's length in bytes: at most 14 + 256 MiB (a batch), so it fits a `u32`.
    pub len: u32,
    /// The value's length.
    pub value_len: u32,
}

impl Location {
    /// The bytes of the data file that the value at this location keeps alive, for a key of
    /// `key_len` bytes: its whole record for a put record, its op for a put in a batch.
    ///
    /// A put record is exactly [`RECORD_HEADER_LEN`] + key + value long; a batch record is
    /// longer than that for every put it holds (its header alone is 14 bytes, and an op
    /// adds a kind byte and two lengths), so `len` tells the two apart.
    pub fn live_bytes(&self, key_len: usize) -> u64 {
        let value_len = self.value_len as usize;
        let put_record = RECORD_HEADER_LEN + key_len + value_len;
        if self.len as usize == put_record {
            put_record as u64
        } else {
            put_op_len(key_len, value_len) as u64
        }
    }
}

/// Live key → [`Location`] of its latest record, with running totals.
#[derive(Debug, Default)]
pub struct Index {
    map: HashMap<Vec<u8>, Location>,
    live_data_bytes: u64,
    live_record_bytes: u64,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the latest record of `key` is, if `key` is live.
    pub fn get(&self, key: &[u8]) -> Option<Location> {
        self.map.get(key).copied()
    }

    /// Records that `key`'s latest value is now a put at `location`. The key may be
    /// borrowed (a put, whose key the caller keeps) or owned (recovery, which decoded it):
    /// a borrowed key is copied only when it is new to the index.
    pub fn insert(&mut self, key: impl AsRef<[u8]> + Into<Vec<u8>>, location: Location) {
        let key_len = key.as_ref().len();
        self.live_data_bytes += (key_len + location.value_len as usize) as u64;
        self.live_record_bytes += location.live_bytes(key_len);
        // `get_mut` first, so that an overwrite never copies the key.
        let old = match self.map.get_mut(key.as_ref()) {
            Some(slot) => Some(std::mem::replace(slot, location)),
            None => self.map.insert(key.into(), location),
        };
        if let Some(old) = old {
            self.forget(key_len, old);
        }
    }

    /// Records that `key` was deleted. Returns true when it was live.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some(old) => {
                self.forget(key.len(), old);
                true
            }
            None => false,
        }
    }

    /// Applies the ops of the batch record at `offset`, `len` bytes long, in order.
    pub fn apply_batch(&mut self, ops: BatchOps<'_>, offset: u64, len: u32) {
        for op in ops {
            match op.value {
                Some(value) => {
                    let value_len = value.len() as u32;
                    let location = Location {
                        offset,
                        len,
                        value_len,
                    };
                    self.insert(op.key, location);
                }
                None => {
                    self.remove(op.key);
                }
            }
        }
    }

    /// Takes out of the totals the value of a `key_len`-byte key that was at `old`.
    fn forget(&mut self, key_len: usize, old: Location) {
        self.live_data_bytes -= (key_len + old.value_len as usize) as u64;
        self.live_record_bytes -= old.live_bytes(key_len);
    }

    /// The live keys in `range` and their locations, in ascending key order.
    ///
    /// A hash map has no order, so this visits every live key, copies those in range, and
    /// sorts them: O(n) for the visit plus O(m log m) for m keys in range, however few of
    /// them the caller then reads. This is stage 1's weak spot for range scans.
    pub fn sorted_range(&self, range: &KeyRange) -> Vec<(Vec<u8>, Location)> {
        if range.is_empty() {
            return Vec::new();
        }
        let mut entries: Vec<(Vec<u8>, Location)> = self
            .map
            .iter()
            .filter(|(key, _)| range.contains(key))
            .map(|(key, location)| (key.clone(), *location))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// Number of live keys.
    pub fn live_keys(&self) -> u64 {
        self.map.len() as u64
    }

    /// Sum of key length + value length over the live keys.
    pub fn live_data_bytes(&self) -> u64 {
        self.live_data_bytes
    }

    /// The bytes of the file the live keys keep alive (see [`Location::live_bytes`]).
    pub fn live_record_bytes(&self) -> u64 {
        self.live_record_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The location of a put record of a one-byte key and a `value_len`-byte value.
    fn at(offset: u64, value_len: u32) -> Location {
        Location {
            offset,
            len: RECORD_HEADER_LEN as u32 + 1 + value_len,
            value_len,
        }
    }

    #[test]
    fn totals_follow_inserts_overwrites_and_removes() {
        let mut index = Index::new();
        index.insert(b"a", at(16, 4));
        index.insert(b"b", at(31, 6));
        index.insert(b"a", at(48, 2));
        assert_eq!(index.get(b"a"), Some(at(48, 2)));
        assert_eq!((index.live_keys(), index.live_data_bytes()), (2, 10));
        assert_eq!(index.live_record_bytes(), 30);
        assert!(index.remove(b"b"));
        assert!(!index.remove(b"b"));
        assert_eq!((index.live_keys(), index.live_data_bytes()), (1, 3));
        assert_eq!(index.get(b"b"), None);
    }

    /// A batch's puts keep their ops alive, not the whole batch record; its deletes and
    /// overwrites act in order.
    #[test]
    fn a_batch_applies_in_order_and_counts_its_ops() {
        let mut batch = kv_shared::WriteBatch::new();
        batch.put(b"a", b"1").unwrap();
        batch.put(b"bb", b"22").unwrap();
        batch.delete(b"a").unwrap();
        batch.put(b"c", b"").unwrap();
        batch.put(b"bb", b"333").unwrap();
        let mut index = Index::new();
        index.insert(b"a", at(16, 4));
        let len = 14 + batch.encoded_ops().len() as u32;
        index.apply_batch(BatchOps::new(batch.encoded_ops(), batch.count()), 31, len);
        assert_eq!(index.get(b"a"), None);
        let bb = Location {
            offset: 31,
            len,
            value_len: 3,
        };
        assert_eq!(index.get(b"bb"), Some(bb));
        assert_eq!((index.live_keys(), index.live_data_bytes()), (2, 6));
        // put ops: kind, key length, key, value length, value.
        assert_eq!(
            index.live_record_bytes(),
            (1 + 1 + 2 + 1 + 3) + (1 + 1 + 1 + 1)
        );
        assert_eq!(bb.live_bytes(2), 8);
        assert_eq!(at(0, 3).live_bytes(1), 14);
    }

    #[test]
    fn sorted_range_orders_and_filters() {
        let mut index = Index::new();
        for (i, key) in [&b"d"[..], b"a", b"\xff", b"", b"c"].iter().enumerate() {
            index.insert(*key, at(i as u64, 0));
        }
        let keys = |range: KeyRange| -> Vec<Vec<u8>> {
            index
                .sorted_range(&range)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(
            keys(KeyRange::all()),
            vec![
                b"".to_vec(),
                b"a".to_vec(),
                b"c".to_vec(),
                b"d".to_vec(),
                b"\xff".to_vec()
            ]
        );
        assert_eq!(
            keys(KeyRange::half_open(b"a".to_vec(), b"d".to_vec())),
            vec![b"a".to_vec(), b"c".to_vec()]
        );
        assert!(keys(KeyRange::half_open(b"d".to_vec(), b"a".to_vec())).is_empty());
    }
}
