//! The keydir: Bitcask's in-memory hash map from every live key to where its latest
//! record sits on disk.
//!
//! Every key in the store has one [`Entry`]: which segment, at which offset, how many bytes,
//! with which sequence number and expiry. A `get` looks the key up here and then does
//! **one** positioned read of exactly that record (two for a value still inside a batch
//! record, whose checksum covers the whole batch: see [`Entry`]). Deleted keys have no
//! entry; their tombstones live only on disk.
//!
//! ## Memory per key
//!
//! The map is a `std::collections::HashMap<Box<[u8]>, Entry>` (a SwissTable). Each slot
//! holds the boxed key (pointer + length, 16 bytes) and the [`Entry`] (32 bytes), plus one
//! control byte; the table keeps at most 7/8 of its slots full, and grows by doubling. The
//! key bytes themselves are a separate heap allocation. So a key of `k` bytes costs about
//! `(48 + 1) / load + k + allocator overhead` bytes, where `load` is between 7/16 and 7/8:
//! 56 to 112 bytes plus the key. [`KeyDir::estimated_bytes`] computes the figure from the
//! table's actual size (allocator overhead not included). At one million keys the table has
//! 2^21 slots: 2,097,152 × 49 bytes / 1,000,000 ≈ 103 bytes per key, plus the key.

use std::collections::HashMap;

use kv_shared::KeyRange;

use crate::expiry;
use crate::record::{self, RECORD_HEADER_LEN};

/// Where the latest record of a key is.
///
/// A key written by a put has a record to itself. A key written by a write batch shares
/// the batch's record with the other ops: its entry points at the batch record, and its
/// sequence number says which op is its (op `seq - first`, see [`crate::record`]). What
/// such a key keeps alive on disk is only its op, so that is what turns into dead bytes
/// when the key is overwritten or deleted ([`Entry::live_bytes`]).
///
/// The entry stays 32 bytes either way: one bit of the length field says which kind it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The record's sequence number (for a put of a batch: its op's).
    pub seq: u64,
    /// The record's expiry (ms since the Unix epoch, 0 for never).
    pub expiry: u64,
    /// Offset of the record's first byte in its segment (for a put of a batch: of the batch
    /// record's first byte).
    pub offset: u64,
    /// The record's length; for a put of a batch, its value's length with [`IN_BATCH`] set.
    len: u32,
    /// The segment holding the record.
    pub segment: u32,
}

/// The bit of an [`Entry`]'s length that marks a put inside a batch record. Record and value
/// lengths stay far below it (at most 27 + 64 KiB + 16 MiB).
const IN_BATCH: u32 = 1 << 31;

impl Entry {
    /// The entry of a whole record: `len` bytes at `offset` of `segment`.
    pub fn record(segment: u32, offset: u64, len: u32, seq: u64, expiry: u64) -> Entry {
        debug_assert!(len < IN_BATCH);
        Entry {
            seq,
            expiry,
            offset,
            len,
            segment,
        }
    }

    /// The entry of a put of `value_len` bytes inside the batch record at `offset` of
    /// `segment`, the op with sequence number `seq`.
    pub fn batch_put(segment: u32, offset: u64, value_len: u32, seq: u64) -> Entry {
        debug_assert!(value_len < IN_BATCH);
        Entry {
            seq,
            expiry: expiry::NEVER,
            offset,
            len: value_len | IN_BATCH,
            segment,
        }
    }

    /// True for a put inside a batch record.
    pub fn in_batch(&self) -> bool {
        self.len & IN_BATCH != 0
    }

    /// The length of the whole record (for a put of a batch, the length of its value: the
    /// batch's own length is in its header).
    pub fn record_len(&self) -> u32 {
        self.len & !IN_BATCH
    }

    /// Bytes of the value, given the key's length.
    pub fn value_len(&self, key_len: usize) -> u64 {
        if self.in_batch() {
            self.record_len() as u64
        } else {
            (self.len as u64).saturating_sub((RECORD_HEADER_LEN + key_len) as u64)
        }
    }

    /// The bytes on disk this entry keeps alive, given the key's length: its whole record,
    /// or its op inside a batch record. They become dead bytes of the segment when the key
    /// is overwritten or deleted.
    pub fn live_bytes(&self, key_len: usize) -> u64 {
        if self.in_batch() {
            record::op_len(key_len, Some(self.record_len() as usize))
        } else {
            self.len as u64
        }
    }

    /// True when this entry is at `segment`, `offset`.
    pub fn is_at(&self, segment: u32, offset: u64) -> bool {
        self.segment == segment && self.offset == offset
    }

    /// True when the key's time to live has passed at `now` (ms).
    pub fn is_expired(&self, now: u64) -> bool {
        expiry::is_expired(self.expiry, now)
    }
}

/// The in-memory index: key → [`Entry`], plus running totals for the statistics.
#[derive(Debug, Default)]
pub struct KeyDir {
    map: HashMap<Box<[u8]>, Entry>,
    /// Sum of key + value bytes over all entries.
    data_bytes: u64,
    /// Sum of key bytes over all entries.
    key_bytes: u64,
    /// Number of entries with an expiry.
    expiring: u64,
}

impl KeyDir {
    /// An empty keydir.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    /// Number of entries (expired ones included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn count(&mut self, key_len: usize, entry: &Entry, sign: i8) {
        let bytes = key_len as u64 + entry.value_len(key_len);
        let expiring = u64::from(entry.expiry != expiry::NEVER);
        if sign > 0 {
            self.data_bytes += bytes;
            self.expiring += expiring;
        } else {
            self.data_bytes -= bytes;
            self.expiring -= expiring;
        }
    }

    /// Sets `key`'s entry; returns the entry it replaced.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        let old = match self.map.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, entry)),
            None => {
                self.map.insert(key.into(), entry);
                self.key_bytes += key.len() as u64;
                None
            }
        };
        if let Some(old) = &old {
            self.count(key.len(), old, -1);
        }
        self.count(key.len(), &entry, 1);
        old
    }

    /// Sets `key`'s entry unless the keydir already holds one with the same or a higher
    /// sequence number; true if it did. Recovery's form of [`KeyDir::insert`]: records
    /// arrive in any order and the newest wins; one hash lookup, and the key's buffer is
    /// kept rather than copied.
    pub fn insert_if_newer(&mut self, key: Vec<u8>, entry: Entry) -> bool {
        use std::collections::hash_map::Entry as Slot;
        let key_len = key.len();
        match self.map.entry(key.into_boxed_slice()) {
            Slot::Occupied(mut slot) => {
                if slot.get().seq >= entry.seq {
                    return false;
                }
                let old = slot.insert(entry);
                self.count(key_len, &old, -1);
            }
            Slot::Vacant(slot) => {
                slot.insert(entry);
                self.key_bytes += key_len as u64;
            }
        }
        self.count(key_len, &entry, 1);
        true
    }

    /// Removes `key`'s entry; returns it.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let old = self.map.remove(key)?;
        self.key_bytes -= key.len() as u64;
        self.count(key.len(), &old, -1);
        Some(old)
    }

    /// Moves `key` to `to` only if it still points at `segment`, `offset`; true if it did.
    /// This is how a merge switches keys to their copies without undoing newer writes.
    pub fn repoint(&mut self, key: &[u8], segment: u32, offset: u64, to: Entry) -> bool {
        match self.map.get_mut(key) {
            Some(slot) if slot.is_at(segment, offset) => {
                *slot = to;
                true
            }
            _ => false,
        }
    }

    /// Removes `key` only if it still points at `segment`, `offset`; returns the entry.
    pub fn remove_if_at(&mut self, key: &[u8], segment: u32, offset: u64) -> Option<Entry> {
        match self.map.get(key) {
            Some(entry) if entry.is_at(segment, offset) => self.remove(key),
            _ => None,
        }
    }

    /// The unexpired entries in `range` at time `now`, sorted by key.
    pub fn sorted_range(&self, range: &KeyRange, now: u64) -> Vec<(Box<[u8]>, Entry)> {
        if range.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<(Box<[u8]>, Entry)> = self
            .map
            .iter()
            .filter(|(k, e)| range.contains(k) && !e.is_expired(now))
            .map(|(k, e)| (k.clone(), *e))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every entry, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.map.iter().map(|(k, e)| (&**k, e))
    }

    /// Live keys and their key + value bytes at time `now` (expired keys left out).
    pub fn live(&self, now: u64) -> (u64, u64) {
        let (mut keys, mut bytes) = (self.map.len() as u64, self.data_bytes);
        if self.expiring > 0 {
            for (k, e) in &self.map {
                if e.is_expired(now) {
                    keys -= 1;
                    bytes -= k.len() as u64 + e.value_len(k.len());
                }
            }
        }
        (keys, bytes)
    }

    /// True when some entry has an expiry.
    pub fn has_expiring(&self) -> bool {
        self.expiring > 0
    }

    /// An estimate of the keydir's memory: the table's slots, each with its control byte,
    /// plus the key bytes (allocator overhead not included). The table has a power-of-two
    /// number of slots and fills at most 7/8 of them, which is what `capacity` reports.
    pub fn estimated_bytes(&self) -> u64 {
        let slot = std::mem::size_of::<(Box<[u8]>, Entry)>() as u64 + 1;
        let capacity = self.map.capacity() as u64;
        let slots = if capacity == 0 {
            0
        } else {
            (capacity * 8 / 7).next_power_of_two()
        };
        slots * slot + self.key_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(segment: u32, offset: u64, value_len: u32) -> Entry {
        let len = RECORD_HEADER_LEN as u32 + 1 + value_len;
        Entry::record(segment, offset, len, offset, 0)
    }

    #[test]
    fn the_documented_sizes_hold() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<(Box<[u8]>, Entry)>(), 48);
        let mut kd = KeyDir::new();
        for i in 0..1000u32 {
            kd.insert(&i.to_be_bytes(), entry(1, 16, 0));
        }
        // 1000 keys need 1024 slots of 49 bytes (filled at most 7/8: 896 < 1000 -> 2048).
        assert_eq!(kd.estimated_bytes(), 2048 * 49 + 4000);
    }

    #[test]
    fn totals_follow_inserts_and_removes() {
        let mut kd = KeyDir::new();
        kd.insert(b"a", entry(1, 16, 10));
        kd.insert(b"b", entry(1, 54, 3));
        assert_eq!(kd.live(0), (2, 11 + 4));
        kd.insert(b"a", entry(2, 16, 1));
        assert_eq!(kd.live(0), (2, 2 + 4));
        assert!(kd.remove(b"b").is_some());
        assert_eq!(kd.live(0), (1, 2));
        assert!(kd.estimated_bytes() > 48);
    }

    #[test]
    fn insert_if_newer_keeps_the_highest_sequence_number() {
        let mut kd = KeyDir::new();
        let (old, new) = (entry(1, 16, 4), entry(2, 90, 1));
        assert!(kd.insert_if_newer(b"k".to_vec(), new));
        assert!(!kd.insert_if_newer(b"k".to_vec(), old));
        assert!(!kd.insert_if_newer(b"k".to_vec(), new));
        assert_eq!(kd.get(b"k"), Some(&new));
        assert_eq!(kd.live(0), (1, 2));
    }

    #[test]
    fn repoint_only_moves_an_unchanged_entry() {
        let mut kd = KeyDir::new();
        kd.insert(b"k", entry(1, 16, 1));
        assert!(kd.repoint(b"k", 1, 16, entry(9, 16, 1)));
        assert!(!kd.repoint(b"k", 1, 16, entry(10, 16, 1)));
        assert_eq!(kd.get(b"k").unwrap().segment, 9);
        assert!(kd.remove_if_at(b"k", 1, 16).is_none());
        assert!(kd.remove_if_at(b"k", 9, 16).is_some());
        assert!(kd.is_empty());
    }

    #[test]
    fn expired_entries_are_not_live() {
        let mut kd = KeyDir::new();
        let mut e = entry(1, 16, 5);
        e.expiry = 100;
        kd.insert(b"x", e);
        kd.insert(b"y", entry(1, 60, 5));
        assert_eq!(kd.live(99).0, 2);
        assert_eq!(kd.live(100), (1, 6));
        assert_eq!(kd.sorted_range(&KeyRange::all(), 100).len(), 1);
    }

    #[test]
    fn a_put_of_a_batch_counts_its_value_and_its_op() {
        let mut kd = KeyDir::new();
        let e = Entry::batch_put(3, 16, 5, 40);
        assert!(e.in_batch() && !entry(3, 16, 5).in_batch());
        assert_eq!((e.value_len(2), e.live_bytes(2)), (5, 1 + 1 + 2 + 1 + 5));
        assert_eq!(e.expiry, expiry::NEVER);
        kd.insert(b"kk", e);
        assert_eq!(kd.live(0), (1, 7));
    }
}
