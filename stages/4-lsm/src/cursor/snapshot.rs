//! From versions to values: what a reader with a snapshot sees of a merged stream.
//!
//! A merged stream ([`crate::merge_iter`]) yields every version of every key, newest first.
//! A scan wants one pair per live key as of its **snapshot**, the last sequence number
//! visible when it started. [`SnapshotIter`] skips versions newer than the snapshot, keeps
//! the first (newest) remaining version of each key, hides the key when that version is a
//! tombstone, and stops at the end of the scan's range.

use kv_shared::{KeyRange, Result};

use crate::key::EntryIter;

/// The visible `(key, value)` pairs of a merged stream at a snapshot, within a range.
pub struct SnapshotIter<'a> {
    inner: EntryIter<'a>,
    snapshot: u64,
    range: KeyRange,
    /// The key of the last version kept (a buffer reused from key to key, so skipping
    /// older versions costs no allocation); meaningful once `seen_any` is set.
    last_key: Vec<u8>,
    seen_any: bool,
    done: bool,
}

impl<'a> SnapshotIter<'a> {
    /// Reads `inner` (positioned at or before the range's start) as of `snapshot`.
    pub fn new(inner: EntryIter<'a>, snapshot: u64, range: KeyRange) -> SnapshotIter<'a> {
        SnapshotIter {
            inner,
            snapshot,
            range,
            last_key: Vec::new(),
            seen_any: false,
            done: false,
        }
    }
}

impl Iterator for SnapshotIter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let entry = match self.inner.next() {
                None => break,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(entry)) => entry,
            };
            if entry.seq > self.snapshot || (self.seen_any && self.last_key == entry.key) {
                continue; // written after the snapshot, or an older version of a key seen
            }
            if self.range.is_past_end(&entry.key) {
                break;
            }
            if !self.range.contains(&entry.key) {
                continue;
            }
            self.last_key.clear();
            self.last_key.extend_from_slice(&entry.key);
            self.seen_any = true;
            if let Some(value) = entry.value {
                return Some(Ok((entry.key, value)));
            }
        }
        self.done = true;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Entry;

    #[test]
    fn newest_visible_version_wins_and_tombstones_hide() {
        let entries = vec![
            ("a", 9, Some("a9")),
            ("a", 4, Some("a4")),
            ("b", 5, None),
            ("b", 2, Some("b2")),
            ("c", 3, Some("c3")),
            ("d", 1, Some("d1")),
        ];
        let make = || -> EntryIter<'static> {
            Box::new(
                entries
                    .clone()
                    .into_iter()
                    .map(|(k, s, v)| {
                        Ok(Entry {
                            key: k.into(),
                            seq: s,
                            value: v.map(Into::into),
                        })
                    })
                    .collect::<Vec<_>>()
                    .into_iter(),
            )
        };
        let read = |snapshot, range| -> Vec<(String, String)> {
            SnapshotIter::new(make(), snapshot, range)
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
                })
                .collect()
        };
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            read(10, KeyRange::all()),
            pairs(&[("a", "a9"), ("c", "c3"), ("d", "d1")])
        );
        assert_eq!(
            read(4, KeyRange::all()),
            pairs(&[("a", "a4"), ("b", "b2"), ("c", "c3"), ("d", "d1")])
        );
        assert_eq!(
            read(10, KeyRange::half_open("b", "d")),
            pairs(&[("c", "c3")])
        );
    }
}
