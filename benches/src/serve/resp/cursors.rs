//! `SCAN`'s cursors: numbers that stand for "resume after this key".
//!
//! Redis walks its hash table by bucket, so its cursor is a bucket index: a number carries
//! the whole position, and the server keeps nothing. Our engines walk keys in sorted order,
//! and the position is the last key seen, which can be any bytes up to 64 KiB: it does not
//! fit the unsigned integer that clients (`redis-cli` among them) parse a cursor as. So
//! the server keeps a table from cursor number to resume key:
//!
//! * `SCAN 0` starts at the first key. When the walk reaches the end, the reply's cursor
//!   is `0`, which ends the scan.
//! * Otherwise the reply's cursor is a fresh number (1, 2, 3, ... never reused) filed
//!   with the last key the call examined; `SCAN n` resumes just after that key. A cursor
//!   may be used again (a retry gives the same keys, plus or minus what was written since).
//! * The table is bounded: at most [`MAX_CURSORS`] entries and [`MAX_CURSOR_BYTES`] bytes of
//!   keys; past either, the oldest cursors are forgotten, and `SCAN` with a forgotten (or
//!   never issued) cursor answers `-ERR invalid cursor`. A scan in progress only needs its
//!   newest cursor, so this bites only when thousands of scans interleave.
//! * The table is shared by every connection, so a cursor works from any of them, as in
//!   Redis; it is not kept across a restart.
//!
//! Since the walk resumes after a key rather than at a bucket, the guarantee is the one
//! Redis gives and a little more: a key present for the whole scan is returned exactly
//! once, and keys come in ascending byte order.

use std::collections::BTreeMap;

/// The most cursors the table remembers.
pub const MAX_CURSORS: usize = 4096;

/// The most key bytes the table holds: 16 MiB, room for 256 keys of the largest size.
pub const MAX_CURSOR_BYTES: usize = 16 << 20;

/// Cursor numbers and their resume keys (see the module documentation).
#[derive(Debug)]
pub struct CursorTable {
    entries: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
    next_id: u64,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for CursorTable {
    fn default() -> Self {
        CursorTable::new(MAX_CURSORS, MAX_CURSOR_BYTES)
    }
}

impl CursorTable {
    /// An empty table that keeps at most `max_entries` cursors and `max_bytes` key bytes.
    pub fn new(max_entries: usize, max_bytes: usize) -> CursorTable {
        CursorTable {
            entries: BTreeMap::new(),
            bytes: 0,
            next_id: 1,
            max_entries,
            max_bytes,
        }
    }

    /// Files `resume_after` under a new cursor number (never 0) and returns the number,
    /// forgetting the oldest cursors if the table is over a bound.
    pub fn insert(&mut self, resume_after: Vec<u8>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.bytes += resume_after.len();
        self.entries.insert(id, resume_after);
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            match self.entries.pop_first() {
                Some((_, key)) => self.bytes -= key.len(),
                None => break,
            }
        }
        id
    }

    /// The key cursor `id` resumes after, `None` if it was never issued or is forgotten.
    pub fn get(&self, id: u64) -> Option<&[u8]> {
        self.entries.get(&id).map(Vec::as_slice)
    }

    /// How many cursors the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_new_numbers_and_the_oldest_are_forgotten() {
        let mut table = CursorTable::new(2, 10);
        assert_eq!(table.insert(b"a".to_vec()), 1);
        assert_eq!(table.insert(b"b".to_vec()), 2);
        assert_eq!(table.get(1), Some(&b"a"[..]));
        assert_eq!(table.insert(b"c".to_vec()), 3);
        assert_eq!((table.get(1), table.len()), (None, 2));
        assert_eq!(table.get(3), Some(&b"c"[..]));
        // Bytes bound: a 10-byte key leaves room for nothing else.
        assert_eq!(table.insert(b"0123456789".to_vec()), 4);
        assert_eq!((table.get(2), table.get(3), table.len()), (None, None, 1));
        assert_eq!(table.get(0), None);
        assert!(!table.is_empty());
    }
}
