//! The merging cursor: many sorted sources in, one sorted view out, newest version winning,
//! in both directions.
//!
//! A read walks the memtable, the frozen memtable and every table at once. Each source is
//! an [`EntryCursor`]; the merge is given them **newest first** (rank 0 is the memtable,
//! higher ranks older tables), and shows each key once, in the version of the lowest rank
//! that holds it: older versions are shadowed. Tombstones are entries like any other here;
//! [`crate::cursor::LiveCursor`] hides them.
//!
//! ## How it moves (LevelDB's `MergingIterator`)
//!
//! Going **forward**, every source sits at its smallest key at or after the current key,
//! and the current entry is the smallest of their keys (on a tie, the lowest rank). `next`
//! moves on every source that sits *at* the current key (the winner and the versions it
//! shadows) and picks the smallest again. Going **backward** it is the mirror image: every
//! source sits at its largest key at or before the current key; `prev` moves back every
//! source at the current key and picks the largest (on a tie, again the lowest rank).
//!
//! A change of direction breaks that arrangement: going forward, the other sources sit
//! *after* the current key, where a `prev` cannot use them. So the first `prev` after
//! forward moves re-positions every source relative to the current key `k`: each seeks to
//! `k` and steps back once, to its largest key below `k` (or, when every key of it is
//! below `k`, goes to its last). The first `next` after backward moves re-positions each
//! source to its smallest key above `k`. Then the moves go on as above.
//!
//! Picking the smallest or largest is a linear scan over the sources, as in LevelDB: simple,
//! and cheap beside the block read each table costs a seek. (A store with very many tables
//! would do fewer key comparisons per step with a heap.)

use kv_shared::{Direction, Result};

use crate::cursor::{BoxEntryCursor, EntryCursor, step};

/// The merge of sources given newest first.
pub struct MergingCursor {
    sources: Vec<BoxEntryCursor>,
    /// The source whose entry the cursor shows; `None` when not valid.
    current: Option<usize>,
    /// Which way the last move went.
    direction: Direction,
    /// The current key, copied out when every source must be re-positioned around it.
    scratch: Vec<u8>,
}

impl MergingCursor {
    /// A merge of `sources`, the newest first: on equal keys, the lower index wins. Not yet
    /// positioned.
    pub fn new(sources: Vec<BoxEntryCursor>) -> MergingCursor {
        MergingCursor {
            sources,
            current: None,
            direction: Direction::Forward,
            scratch: Vec::new(),
        }
    }

    // Exercise 3.7: pick the source the merge is at. Read: chapter 3, "Design".
    // Tests: lib::merging_cursor::tests::newest_version_wins_both_ways
    // Tests: cursor::random_walks_over_every_layer_agree_with_the_model
    // Tests: compaction::compaction_keeps_only_the_newest_live_versions
    /// Makes the source at the smallest key (going forward) or the largest (going back)
    /// the current one; on a tie, the lowest rank.
    fn pick(&mut self, direction: Direction) {
        self.direction = direction;
        self.current = None;
        for (rank, source) in self.sources.iter().enumerate() {
            let better = source.valid()
                && self.current.is_none_or(|best| {
                    let best = self.sources[best].key();
                    match direction {
                        Direction::Forward => source.key() < best,
                        Direction::Reverse => source.key() > best,
                    }
                });
            if better {
                self.current = Some(rank);
            }
        }
    }

    /// Moves every source with `each`, then picks the current one going `direction`.
    fn move_all(
        &mut self,
        direction: Direction,
        mut each: impl FnMut(&mut dyn EntryCursor) -> Result<()>,
    ) -> Result<()> {
        let moved = self.sources.iter_mut().try_for_each(|s| each(s.as_mut()));
        self.pick(direction);
        self.ended(moved)
    }

    /// `next` or `prev`: see the module documentation.
    fn step_all(&mut self, direction: Direction) -> Result<()> {
        let Some(current) = self.current else {
            return Ok(());
        };
        let moved = if self.direction == direction {
            self.step_sources_at(current, direction)
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(self.sources[current].key());
            let key = &self.scratch;
            self.sources
                .iter_mut()
                .try_for_each(|s| place_beside(s.as_mut(), key, direction))
        };
        self.pick(direction);
        self.ended(moved)
    }

    /// Steps every source that sits at the current key: the winner last, as the others
    /// compare against its key.
    fn step_sources_at(&mut self, current: usize, direction: Direction) -> Result<()> {
        for rank in (0..self.sources.len()).filter(|&r| r != current) {
            let source = &self.sources[rank];
            if source.valid() && source.key() == self.sources[current].key() {
                step(self.sources[rank].as_mut(), direction)?;
            }
        }
        step(self.sources[current].as_mut(), direction)
    }

    /// Ends a move: an error leaves the cursor not valid.
    fn ended(&mut self, result: Result<()>) -> Result<()> {
        if result.is_err() {
            self.current = None;
        }
        result
    }
}

/// Puts `source` at its first key beyond `key` going `direction`: its smallest key above
/// `key`, or its largest below.
fn place_beside(source: &mut dyn EntryCursor, key: &[u8], direction: Direction) -> Result<()> {
    source.seek(key)?;
    match direction {
        Direction::Forward if source.valid() && source.key() == key => source.next(),
        Direction::Forward => Ok(()),
        Direction::Reverse if source.valid() => source.prev(),
        // Every key of this source is below `key`.
        Direction::Reverse => source.seek_to_last(),
    }
}

impl EntryCursor for MergingCursor {
    fn valid(&self) -> bool {
        self.current.is_some()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.move_all(Direction::Forward, |s| s.seek_to_first())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.move_all(Direction::Reverse, |s| s.seek_to_last())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.move_all(Direction::Forward, |s| s.seek(target))
    }
    fn next(&mut self) -> Result<()> {
        self.step_all(Direction::Forward)
    }
    fn prev(&mut self) -> Result<()> {
        self.step_all(Direction::Reverse)
    }
    fn key(&self) -> &[u8] {
        self.sources[self.current.expect("a valid cursor")].key()
    }
    fn value(&self) -> Option<&[u8]> {
        self.sources[self.current.expect("a valid cursor")].value()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::entry::Entry;
    use crate::memtable::MemCursor;

    fn source(items: &[(&str, Option<&str>)]) -> BoxEntryCursor {
        let map: BTreeMap<Vec<u8>, Entry> = items
            .iter()
            .map(|(k, v)| {
                let entry = v.map_or(Entry::Tombstone, |v| Entry::Value(v.as_bytes().to_vec()));
                (k.as_bytes().to_vec(), entry)
            })
            .collect();
        Box::new(MemCursor::new(Arc::new(map)))
    }

    fn merge() -> MergingCursor {
        let newest = source(&[("b", Some("new")), ("d", None)]);
        let middle = source(&[("a", Some("mid")), ("b", Some("mid")), ("e", Some("mid"))]);
        let oldest = source(&[("b", Some("old")), ("d", Some("old")), ("f", Some("old"))]);
        MergingCursor::new(vec![newest, middle, oldest])
    }

    fn here(c: &MergingCursor) -> Option<(String, Option<String>)> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        c.valid().then(|| (text(c.key()), c.value().map(text)))
    }

    /// Every entry of `c`, walked from one end to the other going `direction`, in key order.
    fn walk(c: &mut MergingCursor, direction: Direction) -> Vec<(String, Option<String>)> {
        match direction {
            Direction::Forward => c.seek_to_first().unwrap(),
            Direction::Reverse => c.seek_to_last().unwrap(),
        }
        let mut seen = Vec::new();
        while let Some(entry) = here(c) {
            seen.push(entry);
            step(c, direction).unwrap();
        }
        if direction == Direction::Reverse {
            seen.reverse();
        }
        seen
    }

    #[test]
    fn newest_version_wins_both_ways() {
        let want: Vec<(String, Option<String>)> = [
            ("a", Some("mid")),
            ("b", Some("new")),
            ("d", None),
            ("e", Some("mid")),
            ("f", Some("old")),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
        let mut c = merge();
        assert_eq!(walk(&mut c, Direction::Forward), want);
        assert_eq!(walk(&mut c, Direction::Reverse), want);
        let mut empty = MergingCursor::new(Vec::new());
        empty.seek_to_first().unwrap();
        assert!(!empty.valid());
    }

    #[test]
    fn changes_of_direction_land_beside_the_current_key() {
        let mut c = merge();
        c.seek(b"c").unwrap();
        assert_eq!(here(&c).unwrap().0, "d");
        c.prev().unwrap();
        assert_eq!(here(&c).unwrap(), ("b".into(), Some("new".into())));
        c.next().unwrap();
        assert_eq!(here(&c).unwrap().0, "d");
        c.next().unwrap();
        c.prev().unwrap();
        assert_eq!(here(&c).unwrap().0, "d");
        c.seek_to_last().unwrap();
        c.next().unwrap();
        assert!(!c.valid());
        c.prev().unwrap();
        assert!(
            !c.valid(),
            "prev on a cursor that is not valid does nothing"
        );
    }
}
