//! The k-way merge: many sorted streams in, one sorted stream out, newest version winning.
//!
//! A scan reads the memtable and every table at once. Each of them yields its entries in
//! key order; the merge keeps the current head of each source in a min-heap ordered by
//! key, and on a tie by source rank, where rank 0 is the newest source (the memtable) and
//! higher ranks are older tables. Popping the heap gives the smallest key in its newest
//! version; every other source's head with the same key is an older, shadowed version and
//! is skipped. Each source is advanced only when its head is consumed, so the merge is
//! lazy: it holds one entry per source, whatever the size of the data.
//!
//! The merge yields tombstones too; the caller decides what they mean (a scan hides the
//! key, a compaction that merges every table drops them).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use kv_shared::Result;

use crate::entry::Entry;

/// A sorted stream of entries, one of the merge's sources.
pub type Source<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Entry)>> + Send + 'a>;

/// The head of one source.
struct Head {
    key: Vec<u8>,
    entry: Entry,
    rank: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    /// Reversed, so `BinaryHeap` (a max-heap) pops the smallest key, then the lowest rank.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then_with(|| other.rank.cmp(&self.rank))
    }
}

/// Merges sources given newest first.
pub struct MergeIter<'a> {
    sources: Vec<Source<'a>>,
    heap: BinaryHeap<Head>,
    started: bool,
    failed: bool,
}

impl<'a> MergeIter<'a> {
    /// A merge of `sources`, the newest first: on equal keys, the lower index wins.
    pub fn new(sources: Vec<Source<'a>>) -> Self {
        MergeIter {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            started: false,
            failed: false,
        }
    }

    /// Moves source `rank` on by one entry, onto the heap.
    fn pull(&mut self, rank: usize) -> Result<()> {
        if let Some(item) = self.sources[rank].next() {
            let (key, entry) = item?;
            self.heap.push(Head { key, entry, rank });
        }
        Ok(())
    }

    fn advance(&mut self) -> Result<Option<(Vec<u8>, Entry)>> {
        if !self.started {
            self.started = true;
            for rank in 0..self.sources.len() {
                self.pull(rank)?;
            }
        }
        let Some(head) = self.heap.pop() else {
            return Ok(None);
        };
        while self.heap.peek().is_some_and(|older| older.key == head.key) {
            let older = self.heap.pop().expect("peeked");
            self.pull(older.rank)?;
        }
        self.pull(head.rank)?;
        Ok(Some((head.key, head.entry)))
    }
}

impl Iterator for MergeIter<'_> {
    type Item = Result<(Vec<u8>, Entry)>;

    /// The next key in its newest version. After an error, the merge ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.advance().transpose();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(items: &[(&str, Option<&str>)]) -> Source<'static> {
        let v: Vec<Result<(Vec<u8>, Entry)>> = items
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.as_bytes().to_vec(),
                    v.map_or(Entry::Tombstone, |v| Entry::Value(v.as_bytes().to_vec())),
                ))
            })
            .collect();
        Box::new(v.into_iter())
    }

    #[test]
    fn newest_version_wins_and_order_holds() {
        let newest = source(&[("b", Some("new")), ("d", None)]);
        let middle = source(&[("a", Some("mid")), ("b", Some("mid")), ("e", Some("mid"))]);
        let oldest = source(&[("b", Some("old")), ("d", Some("old")), ("f", Some("old"))]);
        let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = MergeIter::new(vec![newest, middle, oldest])
            .map(|r| {
                let (k, e) = r.unwrap();
                (k, e.into_value())
            })
            .collect();
        let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = [
            ("a", Some("mid")),
            ("b", Some("new")),
            ("d", None),
            ("e", Some("mid")),
            ("f", Some("old")),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
        .collect();
        assert_eq!(got, want);
        assert_eq!(MergeIter::new(Vec::new()).count(), 0);
    }

    #[test]
    fn an_error_ends_the_merge() {
        let bad: Source<'static> = Box::new(
            vec![
                Ok((b"a".to_vec(), Entry::Tombstone)),
                Err(kv_shared::Error::InvalidArgument("boom".into())),
            ]
            .into_iter(),
        );
        let mut m = MergeIter::new(vec![bad, source(&[("z", Some("1"))])]);
        assert!(m.next().unwrap().is_err());
        assert!(m.next().is_none());
    }
}
