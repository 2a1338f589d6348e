//! The merging cursor: many sorted cursors in, one sorted sequence out, both ways.
//!
//! This is the backbone of the read path. A reader's cursor merges the active memtable, the
//! immutable memtables, every L0 table and one [`crate::cursor::level::LevelCursor`] per
//! deeper level; a compaction merges its input tables. All of them are cursors over entries
//! in internal-key order (user key ascending, sequence number descending), and so is the
//! merge: every version of a key comes out newest first, and whoever reads the merge keeps
//! the first version of each key it wants.
//!
//! The children that are valid sit in a binary heap of their indexes, ordered by their
//! current entries: the smallest on top while the cursor moves forward, the largest while
//! it moves backward. The top child's entry is the merge's. `next` moves the top child and
//! sifts it down to its new place: `log k` comparisons for `k` children, and none while one
//! child runs far ahead of the others. Nothing is read ahead beyond each child's current
//! entry (and the block it is in), so a merge over gigabytes of tables runs in a few blocks
//! of memory, and a scan that stops after ten keys reads ten keys' worth.
//!
//! **Turning around** (as LevelDB's `MergingIterator` does). Going forward, every child
//! but the top one is at an entry *after* the current one; going backward, *before* it.
//! So the first `prev` after a `next` (or the reverse) first moves every other child to the
//! far side of the current entry (a seek to it, then one step), and rebuilds the heap in
//! the new order; from then on each step is again one move and one sift.
//!
//! Two children never hold the same internal key; if they did, the one listed first would
//! come out first going forward (and last going backward).

use std::cmp::Ordering;

use kv_shared::Result;

use crate::cursor::{EntryCursor, EntryRef, Source};
use crate::key::compare;

/// A merge of cursors (see the module documentation).
pub struct MergingCursor {
    children: Vec<Source>,
    /// The valid children's indexes, as a binary heap whose top is the current entry.
    heap: Vec<usize>,
    /// The direction of the last move: the heap's order.
    forward: bool,
    /// The current key, copied when the direction turns.
    turn_key: Vec<u8>,
}

impl MergingCursor {
    /// Merges `children`, each over entries in internal-key order. Not yet positioned.
    pub fn new(children: Vec<Source>) -> MergingCursor {
        MergingCursor {
            heap: Vec::with_capacity(children.len()),
            children,
            forward: true,
            turn_key: Vec::new(),
        }
    }

    /// Moves the child at heap position `i` down to its place. The moving child's entry is
    /// read once; each level down costs two comparisons (the two children of the hole, then
    /// the smaller of them against the moving entry), and the heap's slots are shifted up
    /// into the hole rather than swapped.
    fn sift_down(&mut self, mut i: usize) {
        let (children, heap, forward) = (&self.children, &mut self.heap, self.forward);
        let moving = heap[i];
        let moving_entry = (moving, children[moving].entry());
        loop {
            let left = 2 * i + 1;
            if left >= heap.len() {
                break;
            }
            let mut first = left;
            let right = left + 1;
            if right < heap.len() {
                let (l, r) = (heap[left], heap[right]);
                if precedes(forward, (r, children[r].entry()), (l, children[l].entry())) {
                    first = right;
                }
            }
            let f = heap[first];
            if !precedes(forward, (f, children[f].entry()), moving_entry) {
                break;
            }
            heap[i] = f;
            i = first;
        }
        heap[i] = moving;
    }

    /// Builds the heap anew from the children that are valid.
    fn rebuild(&mut self) {
        self.heap.clear();
        self.heap
            .extend((0..self.children.len()).filter(|&i| self.children[i].valid()));
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }

    /// Places every child with `place`, then builds the heap for `forward` travel.
    fn place_all(
        &mut self,
        forward: bool,
        mut place: impl FnMut(&mut Source) -> Result<()>,
    ) -> Result<()> {
        self.forward = forward;
        self.heap.clear();
        self.children.iter_mut().try_for_each(&mut place)?;
        self.rebuild();
        Ok(())
    }

    /// Moves every child but the top one to the far side of the current entry for travel
    /// the other way, and rebuilds the heap in that order (see the module documentation).
    fn turn(&mut self) -> Result<()> {
        let top = self.heap[0];
        let current = self.children[top].entry();
        let seq = current.seq;
        self.turn_key.clear();
        self.turn_key.extend_from_slice(current.key);
        let (key, forward) = (self.turn_key.as_slice(), !self.forward);
        for (i, child) in self.children.iter_mut().enumerate() {
            if i == top {
                continue;
            }
            child.seek(key, seq)?;
            if forward {
                let at_current = |e: EntryRef<'_>| e.key == key && e.seq == seq;
                if child.valid() && at_current(child.entry()) {
                    child.next()?;
                }
            } else if child.valid() {
                child.prev()?;
            } else {
                child.seek_to_last()?;
            }
        }
        self.forward = forward;
        self.rebuild();
        Ok(())
    }

    /// Moves the current child one step in `forward` travel (turning first if needed) and
    /// puts it back in its place in the heap, or out of it past its end.
    fn step(&mut self, forward: bool) -> Result<()> {
        if self.heap.is_empty() {
            return Ok(());
        }
        if self.forward != forward {
            self.turn()?;
        }
        let top = self.heap[0];
        if forward {
            self.children[top].next()?;
        } else {
            self.children[top].prev()?;
        }
        if !self.children[top].valid() {
            self.heap.swap_remove(0);
        }
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        Ok(())
    }

    /// Runs a move, leaving the cursor not valid if it fails.
    fn checked(&mut self, moved: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let result = moved(self);
        if result.is_err() {
            self.heap.clear();
        }
        result
    }
}

impl EntryCursor for MergingCursor {
    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.checked(|m| m.place_all(true, |c| c.seek_to_first()))
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.checked(|m| m.place_all(false, |c| c.seek_to_last()))
    }

    fn seek(&mut self, key: &[u8], seq: u64) -> Result<()> {
        self.checked(|m| m.place_all(true, |c| c.seek(key, seq)))
    }

    fn next(&mut self) -> Result<()> {
        self.checked(|m| m.step(true))
    }

    fn prev(&mut self) -> Result<()> {
        self.checked(|m| m.step(false))
    }

    fn entry(&self) -> EntryRef<'_> {
        self.children[self.heap[0]].entry()
    }
}

/// True when child `a`'s entry comes before child `b`'s in the direction of travel
/// (`forward`: ascending internal keys); between equal keys, the child listed first.
#[inline]
fn precedes(forward: bool, (a, x): (usize, EntryRef<'_>), (b, y): (usize, EntryRef<'_>)) -> bool {
    let order = compare(x.key, x.seq, y.key, y.seq).then(a.cmp(&b));
    order
        == if forward {
            Ordering::Less
        } else {
            Ordering::Greater
        }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::memtable::Memtable;

    /// A cursor over a memtable holding `entries`, `(key, seq)` each, with values equal to
    /// their keys.
    fn memtable(entries: &[(&str, u64)]) -> Source {
        let m = Arc::new(Memtable::new(0, 1 << 20));
        for &(key, seq) in entries {
            m.insert(key.as_bytes(), seq, Some(key.as_bytes()));
        }
        Source::Memtable(m.cursor())
    }

    fn entry(c: &MergingCursor) -> (String, u64) {
        let e = c.entry();
        (String::from_utf8(e.key.to_vec()).unwrap(), e.seq)
    }

    #[test]
    fn merges_in_internal_key_order_both_ways() {
        let mut m = MergingCursor::new(vec![
            memtable(&[("a", 1), ("c", 5)]),
            memtable(&[]),
            memtable(&[("a", 7), ("b", 2), ("c", 3)]),
        ]);
        let want =
            [("a", 7), ("a", 1), ("b", 2), ("c", 5), ("c", 3)].map(|(k, s)| (k.to_string(), s));
        m.seek_to_first().unwrap();
        let mut forward = Vec::new();
        while m.valid() {
            forward.push(entry(&m));
            m.next().unwrap();
        }
        assert_eq!(forward, want);
        m.seek_to_last().unwrap();
        let mut backward = Vec::new();
        while m.valid() {
            backward.push(entry(&m));
            m.prev().unwrap();
        }
        backward.reverse();
        assert_eq!(backward, want);
        // Turning around anywhere steps to the neighbouring entry.
        for at in 0..want.len() {
            m.seek(want[at].0.as_bytes(), want[at].1).unwrap();
            assert_eq!(entry(&m), want[at]);
            m.prev().unwrap();
            if at == 0 {
                assert!(!m.valid());
                continue;
            }
            assert_eq!(entry(&m), want[at - 1]);
            m.next().unwrap();
            assert_eq!(entry(&m), want[at]);
        }
    }
}
