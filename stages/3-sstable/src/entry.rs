//! [`Entry`]: what a key maps to in the memtable and in a table, a value or a tombstone.
//!
//! A delete cannot simply remove a key: an older table may still hold it, and a read that
//! found nothing in the memtable would go on to find that old value. So a delete writes a
//! **tombstone**, which hides every older version of the key. Tombstones are dropped only
//! when nothing older remains to hide, that is by a compaction that merges every table.

/// A key's newest version: a value, or a tombstone saying the key was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The key holds this value.
    Value(Vec<u8>),
    /// The key was deleted.
    Tombstone,
}

impl Entry {
    /// The value, or `None` for a tombstone.
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            Entry::Value(v) => Some(v),
            Entry::Tombstone => None,
        }
    }

    /// The value, consumed, or `None` for a tombstone.
    pub fn into_value(self) -> Option<Vec<u8>> {
        match self {
            Entry::Value(v) => Some(v),
            Entry::Tombstone => None,
        }
    }

    /// Bytes this entry counts for beside its key: the value's length (0 for a tombstone).
    pub fn value_len(&self) -> usize {
        self.value().map_or(0, <[u8]>::len)
    }
}
