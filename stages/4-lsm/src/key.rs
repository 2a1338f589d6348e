//! Internal keys: a user key plus a sequence number and a kind.
//!
//! Every write gets the next **sequence number** (a `u64` counter that only grows and is
//! recorded in the manifest, so it keeps growing across restarts). The same user key can then
//! sit in many places at once: the active memtable, an immutable one, several L0 tables and
//! a table on each deeper level. The copy with the highest sequence number is the current one,
//! everywhere: in `get`, in scans, in flushes and in compaction.
//!
//! To make "newest first" fall out of sorting, entries are ordered by their **internal key**:
//! user key ascending (bytewise), then sequence number **descending**. Seeking to
//! `(key, snapshot)` lands on the newest version of `key` that a reader with that snapshot may
//! see.
//!
//! On disk the sequence number and the kind share one little-endian `u64`, the **trailer**
//! (as in LevelDB): `seq << 8 | kind`, with kind `1` for a put and `0` for a delete (a
//! *tombstone*). Sequence numbers therefore stop at [`MAX_SEQ`] = 2^56 - 1.
//!
//! What every reader shares lives here too: [`LookupKey`], what a point read asks each
//! place it looks in (a memtable, a table, the whole tree), [`Lookup`], what it finds there,
//! and [`key_head`], the 16-byte prefix that binary searches over many keys compare first.

use std::cmp::Ordering;

/// The largest sequence number the 56 bits of a trailer hold.
pub const MAX_SEQ: u64 = (1 << 56) - 1;

/// What an entry records about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The key was deleted (a tombstone); the entry has no value.
    Delete = 0,
    /// The key was set to the entry's value.
    Put = 1,
}

impl Kind {
    /// The kind of an entry with `value` (`None` is a tombstone).
    pub fn of(value: Option<&[u8]>) -> Kind {
        if value.is_some() {
            Kind::Put
        } else {
            Kind::Delete
        }
    }

    /// The kind from its trailer byte, or `None` for an unknown byte.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            _ => None,
        }
    }
}

/// Packs a sequence number and a kind into a trailer.
pub fn trailer(seq: u64, kind: Kind) -> u64 {
    (seq << 8) | kind as u64
}

/// Splits a trailer into its sequence number and kind (`None` for an unknown kind byte).
pub fn split_trailer(trailer: u64) -> (u64, Option<Kind>) {
    (trailer >> 8, Kind::from_byte(trailer as u8))
}

/// Compares two internal keys: user key ascending, then sequence number descending.
#[inline]
pub fn compare(a_key: &[u8], a_seq: u64, b_key: &[u8], b_seq: u64) -> Ordering {
    compare_user_keys(a_key, b_key).then(b_seq.cmp(&a_seq))
}

/// Compares two user keys as byte strings, as `a.cmp(b)` does, but the first 16 bytes of
/// each as one big-endian integer when both keys are that long: a scan's merge compares
/// keys several times a step, and for such keys this is a few instructions inline where
/// `cmp` calls `memcmp`.
#[inline]
pub fn compare_user_keys(a: &[u8], b: &[u8]) -> Ordering {
    if let (Some(x), Some(y)) = (a.first_chunk::<16>(), b.first_chunk::<16>()) {
        let (x, y) = (u128::from_be_bytes(*x), u128::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
        return a[16..].cmp(&b[16..]);
    }
    a.cmp(b)
}

/// A user key and a sequence number, ordered as internal keys are (the memtable's key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InternalKey {
    /// The user's key.
    pub user_key: Vec<u8>,
    /// The sequence number of the write.
    pub seq: u64,
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.user_key, self.seq, &other.user_key, other.seq)
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What a memtable, a table or a whole tree knows about a key at a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The newest visible version is this value.
    Found(Vec<u8>),
    /// The newest visible version is a tombstone: the key is deleted (look no further).
    Deleted,
    /// No visible version here: look in older places.
    Absent,
}

/// What a point read asks every memtable and table it looks in: a key, its
/// [`crate::bloom::hash`] (computed once, for every filter), and the reader's snapshot.
#[derive(Debug, Clone, Copy)]
pub struct LookupKey<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// Its hash, for the memtables' and tables' filters.
    pub hash: u64,
    /// The largest sequence number the reader may see.
    pub snapshot: u64,
}

impl<'a> LookupKey<'a> {
    /// The lookup of `key` at `snapshot`.
    pub fn new(key: &'a [u8], snapshot: u64) -> LookupKey<'a> {
        LookupKey {
            key,
            hash: crate::bloom::hash(key),
            snapshot,
        }
    }
}

/// The first 16 bytes of `key` as a big-endian number, zero-padded: a **key head**. Two
/// keys whose heads differ compare as their heads do (a shorter key padded with zero bytes
/// sorts where its prefix-ness puts it); only keys with equal heads need the whole
/// comparison. Binary searches over many keys (a table's index, a level's tables) compare
/// heads kept side by side in one array, and read whole keys only on equal heads.
pub fn key_head(key: &[u8]) -> u128 {
    let mut head = [0u8; 16];
    let n = key.len().min(16);
    head[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_compare_as_byte_strings() {
        let mut keys: Vec<Vec<u8>> = vec![Vec::new(), vec![0], vec![0xff], b"a".to_vec()];
        for len in [15, 16, 17, 24, 32] {
            for fill in [0u8, b'a', 0xff] {
                let key = vec![fill; len];
                let mut last_changed = key.clone();
                *last_changed.last_mut().unwrap() ^= 1;
                let mut first_changed = key.clone();
                first_changed[0] ^= 0x80;
                keys.extend([key, last_changed, first_changed]);
            }
        }
        for a in &keys {
            for b in &keys {
                assert_eq!(compare_user_keys(a, b), a.cmp(b), "{a:?} against {b:?}");
            }
        }
    }

    #[test]
    fn newest_version_sorts_first() {
        let mut keys = [
            InternalKey {
                user_key: b"b".to_vec(),
                seq: 1,
            },
            InternalKey {
                user_key: b"a".to_vec(),
                seq: 1,
            },
            InternalKey {
                user_key: b"a".to_vec(),
                seq: 9,
            },
        ];
        keys.sort();
        let order: Vec<(u8, u64)> = keys.iter().map(|k| (k.user_key[0], k.seq)).collect();
        assert_eq!(order, vec![(b'a', 9), (b'a', 1), (b'b', 1)]);
        assert_eq!(split_trailer(trailer(77, Kind::Put)), (77, Some(Kind::Put)));
        assert_eq!(
            split_trailer(trailer(MAX_SEQ, Kind::Delete)),
            (MAX_SEQ, Some(Kind::Delete))
        );
        assert_eq!(split_trailer(5 << 8 | 7).1, None);
    }

    #[test]
    fn key_heads_order_as_their_keys_unless_equal() {
        let keys: [&[u8]; 9] = [
            b"",
            b"\0",
            b"a",
            b"a\0",
            b"a\x01",
            b"ab",
            b"0000000000000000",
            b"00000000000000000",
            b"0000000000000001",
        ];
        for x in keys {
            for y in keys {
                let (hx, hy) = (key_head(x), key_head(y));
                if hx != hy {
                    assert_eq!(hx.cmp(&hy), x.cmp(y), "{x:?} {y:?}");
                }
            }
        }
        assert_eq!(
            key_head(b"a"),
            key_head(b"a\0"),
            "equal heads: compare whole keys"
        );
    }
}
