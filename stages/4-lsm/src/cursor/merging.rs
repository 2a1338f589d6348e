//! The merging iterator: many sorted streams in, one sorted stream out.
//!
//! This is the backbone of the engine. A scan merges the active memtable, the immutable
//! memtables, every L0 table and one [`crate::cursor::level::ConcatIter`] per deeper level; a
//! flush "merges" one memtable; a compaction merges its input tables. All of them are
//! streams of [`Entry`]s in internal-key order (user key ascending, sequence number
//! descending), and so is the merge, so every version of a key comes out newest first and
//! whoever reads the merge keeps the first version of each key it wants.
//!
//! It is a k-way merge with a binary heap holding the head of each source: `next` takes the
//! smallest head and pulls the next entry of that one source into its place, so each step
//! costs one sift of the heap (`log k` comparisons), and none when one source runs far
//! ahead of the others. Nothing is read ahead beyond
//! one entry per source (and whatever block that source has loaded), so a merge over
//! gigabytes of tables runs in a few blocks of memory, and a scan that stops after ten keys
//! reads ten keys' worth.
//!
//! Two sources never hold the same (key, sequence number); if they did, the one listed
//! first would come out first.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use kv_shared::Result;

use crate::key::{Entry, EntryIter};

/// The head of one source in the heap.
struct Head {
    entry: Entry,
    source: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap pops the largest: reverse, so the smallest internal key comes first.
        self.entry
            .cmp_internal(&other.entry)
            .then(self.source.cmp(&other.source))
            .reverse()
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// A k-way merge of entry streams (see the module documentation).
pub struct MergeIter<'a> {
    sources: Vec<EntryIter<'a>>,
    heap: BinaryHeap<Head>,
    started: bool,
    failed: bool,
}

impl<'a> MergeIter<'a> {
    /// Merges `sources`, each in internal-key order. Earlier sources win ties.
    pub fn new(sources: Vec<EntryIter<'a>>) -> MergeIter<'a> {
        MergeIter {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            started: false,
            failed: false,
        }
    }

    /// Pulls the next entry of source `i` into the heap.
    fn pull(&mut self, i: usize) -> Result<()> {
        if let Some(item) = self.sources[i].next() {
            self.heap.push(Head {
                entry: item?,
                source: i,
            });
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Entry>> {
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.pull(i)?;
            }
        }
        let Some(mut top) = self.heap.peek_mut() else {
            return Ok(None);
        };
        // The smallest head's source moves on: its next entry takes the head's place and
        // sinks to where it belongs when `top` is dropped (one sift instead of pop + push).
        match self.sources[top.source].next() {
            Some(next) => Ok(Some(std::mem::replace(&mut top.entry, next?))),
            None => Ok(Some(PeekMut::pop(top).entry)),
        }
    }
}

impl Iterator for MergeIter<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.failed {
            return None;
        }
        let item = self.step().transpose();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(entries: &[(&str, u64)]) -> EntryIter<'static> {
        let v: Vec<kv_shared::Result<Entry>> = entries
            .iter()
            .map(|&(k, s)| {
                Ok(Entry {
                    key: k.as_bytes().to_vec(),
                    seq: s,
                    value: Some(vec![]),
                })
            })
            .collect();
        Box::new(v.into_iter())
    }

    #[test]
    fn merges_in_internal_key_order() {
        let merged: Vec<(String, u64)> = MergeIter::new(vec![
            source(&[("a", 1), ("c", 5)]),
            source(&[]),
            source(&[("a", 7), ("b", 2), ("c", 3)]),
        ])
        .map(|e| {
            let e = e.unwrap();
            (String::from_utf8(e.key).unwrap(), e.seq)
        })
        .collect();
        let want = [("a", 7), ("a", 1), ("b", 2), ("c", 5), ("c", 3)];
        assert_eq!(merged, want.map(|(k, s)| (k.to_string(), s)));
    }

    #[test]
    fn an_error_ends_the_merge() {
        let bad: EntryIter<'static> =
            Box::new(vec![Err(kv_shared::Error::corruption("t", 0, "bad"))].into_iter());
        let mut m = MergeIter::new(vec![source(&[("a", 1)]), bad]);
        assert!(m.next().unwrap().is_err());
        assert!(m.next().is_none());
    }
}
