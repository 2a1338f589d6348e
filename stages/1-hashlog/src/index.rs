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
//! Besides the map, the index keeps two running sums so that statistics cost nothing to
//! report: the key + value bytes of the live keys, and the bytes of their records. What the
//! file holds beyond those records (overwritten values, tombstones) is dead.

use std::collections::HashMap;

use kv_shared::KeyRange;

use crate::record::RECORD_HEADER_LEN;

/// Where a key's latest record is in the data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Offset of the record's first byte.
    pub offset: u64,
    /// The record's length in bytes (header, key and value). At most
    /// 10 + 65,535 + 16 MiB, so it fits a `u32`.
    pub len: u32,
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

    /// Records that `key`'s latest record is now a put at `location`. The key may be
    /// borrowed (a put, whose key the caller keeps) or owned (recovery, which decoded it):
    /// a borrowed key is copied only when it is new to the index.
    pub fn insert(&mut self, key: impl AsRef<[u8]> + Into<Vec<u8>>, location: Location) {
        // The key + value bytes of a put are its record minus the record header.
        let data = u64::from(location.len) - RECORD_HEADER_LEN as u64;
        self.live_data_bytes += data;
        self.live_record_bytes += u64::from(location.len);
        // `get_mut` first, so that an overwrite never copies the key.
        let old = match self.map.get_mut(key.as_ref()) {
            Some(slot) => Some(std::mem::replace(slot, location)),
            None => self.map.insert(key.into(), location),
        };
        if let Some(old) = old {
            self.forget(old);
        }
    }

    /// Records that `key` was deleted. Returns true when it was live.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some(old) => {
                self.forget(old);
                true
            }
            None => false,
        }
    }

    fn forget(&mut self, old: Location) {
        self.live_data_bytes -= u64::from(old.len) - RECORD_HEADER_LEN as u64;
        self.live_record_bytes -= u64::from(old.len);
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

    /// Sum of the record lengths of the live keys: the bytes of the file still in use.
    pub fn live_record_bytes(&self) -> u64 {
        self.live_record_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64, data: u32) -> Location {
        Location {
            offset,
            len: RECORD_HEADER_LEN as u32 + data,
        }
    }

    #[test]
    fn totals_follow_inserts_overwrites_and_removes() {
        let mut index = Index::new();
        index.insert(b"a", at(16, 5));
        index.insert(b"b", at(31, 7));
        index.insert(b"a", at(48, 3));
        assert_eq!(index.get(b"a"), Some(at(48, 3)));
        assert_eq!((index.live_keys(), index.live_data_bytes()), (2, 10));
        assert_eq!(index.live_record_bytes(), 30);
        assert!(index.remove(b"b"));
        assert!(!index.remove(b"b"));
        assert_eq!((index.live_keys(), index.live_data_bytes()), (1, 3));
        assert_eq!(index.get(b"b"), None);
    }

    #[test]
    fn sorted_range_orders_and_filters() {
        let mut index = Index::new();
        for (i, key) in [&b"d"[..], b"a", b"\xff", b"", b"c"].iter().enumerate() {
            index.insert(*key, at(i as u64, 1));
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
