//! [`RangeCursor`]: the course's [`Cursor`] over a peer that walks ranges of a fixed view of
//! its keys (fjall's snapshot, a redb read transaction, sled's tree with its undo log).
//!
//! Those peers do not have a cursor that moves both ways; what they have is a *range*: the
//! pairs between two bounds, walked forward or backward. A cursor is built on that by opening
//! a new walk at each seek and at each change of direction, and stepping along the open walk
//! otherwise:
//!
//! | call | walk opened |
//! |---|---|
//! | `seek(k)` | `[k, ..)` forward |
//! | `seek_for_prev(k)` | `(.., k]` backward |
//! | `seek_to_first` / `seek_to_last` | everything, forward / backward |
//! | `next` after walking backward from `k` | `(k, ..)` forward |
//! | `prev` after walking forward from `k` | `(.., k)` backward |
//! | `next` forward, `prev` backward | none: the next pair of the open walk |
//!
//! So a scan, which seeks once and steps one way, costs one walk of the peer's own, as a
//! native range scan would. Every walk reads the same view (the source's), so the cursor
//! sees one snapshot however many walks it opens.
//!
//! A cursor may also be given bounds ([`RangeCursor::within`]) that every walk stays inside:
//! a scan's cursor passes its range down, so that the peer can stop reading at its end
//! rather than at the end of the store.

use std::cmp::Ordering;
use std::ops::Bound;

use kv_shared::{Cursor, Direction, KeyRange, Result};

/// One walk of a [`RangeSource`]: its pairs in one direction.
pub type Walk<K, V> = Box<dyn Iterator<Item = Result<(K, V)>>>;

/// The start and end bounds of a range, borrowed.
pub type Bounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// A fixed view of a peer's keys that opens walks over ranges of them.
pub trait RangeSource {
    /// A key as the walks hand it out (the peer's own buffer type, borrowed as bytes).
    type Key: AsRef<[u8]>;
    /// A value as the walks hand it out.
    type Value: AsRef<[u8]>;

    /// The pairs with keys within `bounds`, in `direction`. The range is never empty (the
    /// cursor checks with [`holds_nothing`] first: some peers panic on an inverted range).
    ///
    /// # Errors
    /// The peer's error opening the walk.
    fn walk(
        &self,
        bounds: Bounds<'_>,
        direction: Direction,
    ) -> Result<Walk<Self::Key, Self::Value>>;
}

/// A [`Cursor`] over a [`RangeSource`]; see the module documentation.
pub struct RangeCursor<S: RangeSource> {
    // Field order is drop order: the pair and the walk may hold parts of the source's view
    // (a redb key holds a page of its read transaction), so they go before the source.
    /// The pair the cursor is at; `None` when it is not valid.
    current: Option<(S::Key, S::Value)>,
    /// The open walk: the pairs ahead of the cursor in `direction`.
    walk: Option<Walk<S::Key, S::Value>>,
    direction: Direction,
    /// The bounds every walk stays inside.
    bounds: KeyRange,
    source: S,
}

impl<S: RangeSource> RangeCursor<S> {
    /// A cursor over every key of `source`, not yet positioned.
    pub fn new(source: S) -> Self {
        RangeCursor::within(source, KeyRange::all())
    }

    /// A cursor over the keys of `source` that lie in `bounds`, not yet positioned: it
    /// behaves as a cursor over a store holding only those keys.
    pub fn within(source: S, bounds: KeyRange) -> Self {
        RangeCursor {
            current: None,
            walk: None,
            direction: Direction::Forward,
            bounds,
            source,
        }
    }

    /// Opens the walk over `start..end` (inside the cursor's bounds) in `direction`, and
    /// steps to its first pair.
    fn open(&mut self, start: Bound<&[u8]>, end: Bound<&[u8]>, direction: Direction) -> Result<()> {
        self.current = None;
        self.walk = None;
        let start = later_start(start, self.bounds.start.as_ref().map(Vec::as_slice));
        let end = earlier_end(end, self.bounds.end.as_ref().map(Vec::as_slice));
        if holds_nothing(start, end) {
            return Ok(());
        }
        let walk = self.source.walk((start, end), direction)?;
        self.walk = Some(walk);
        self.direction = direction;
        self.step()
    }

    /// Moves to the next pair of the open walk; past its end, or on an error, the cursor
    /// is not valid and the walk is closed.
    fn step(&mut self) -> Result<()> {
        let next = self.walk.as_mut().and_then(Iterator::next);
        match next {
            Some(Ok(pair)) => {
                self.current = Some(pair);
                Ok(())
            }
            Some(Err(e)) => {
                (self.current, self.walk) = (None, None);
                Err(e)
            }
            None => {
                (self.current, self.walk) = (None, None);
                Ok(())
            }
        }
    }

    /// Moves one pair in `direction`: along the open walk when it goes that way, otherwise
    /// by opening a walk from the current key.
    fn advance(&mut self, direction: Direction) -> Result<()> {
        let Some((key, _)) = &self.current else {
            return Ok(());
        };
        if self.direction == direction {
            return self.step();
        }
        let key = key.as_ref().to_vec();
        match direction {
            Direction::Forward => self.open(Bound::Excluded(&key), Bound::Unbounded, direction),
            Direction::Reverse => self.open(Bound::Unbounded, Bound::Excluded(&key), direction),
        }
    }

    /// The pair the cursor is at.
    fn pair(&self) -> &(S::Key, S::Value) {
        self.current
            .as_ref()
            .expect("key() or value() of a cursor that is not valid")
    }
}

impl<S: RangeSource> Cursor for RangeCursor<S> {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.open(Bound::Unbounded, Bound::Unbounded, Direction::Forward)
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.open(Bound::Unbounded, Bound::Unbounded, Direction::Reverse)
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.open(
            Bound::Included(target),
            Bound::Unbounded,
            Direction::Forward,
        )
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.open(
            Bound::Unbounded,
            Bound::Included(target),
            Direction::Reverse,
        )
    }

    fn next(&mut self) -> Result<()> {
        self.advance(Direction::Forward)
    }

    fn prev(&mut self) -> Result<()> {
        self.advance(Direction::Reverse)
    }

    fn key(&self) -> &[u8] {
        self.pair().0.as_ref()
    }

    fn value(&self) -> &[u8] {
        self.pair().1.as_ref()
    }
}

/// The tighter of two start bounds: the one that lets fewer keys in.
pub fn later_start<'a>(a: Bound<&'a [u8]>, b: Bound<&'a [u8]>) -> Bound<&'a [u8]> {
    tighter(a, b, Ordering::Greater)
}

/// The tighter of two end bounds: the one that lets fewer keys in.
pub fn earlier_end<'a>(a: Bound<&'a [u8]>, b: Bound<&'a [u8]>) -> Bound<&'a [u8]> {
    tighter(a, b, Ordering::Less)
}

/// The one of two bounds of the same end of a range that lets fewer keys in, where the
/// keys let in lie on the `inward` side of a bound (after a start, before an end).
fn tighter<'a>(a: Bound<&'a [u8]>, b: Bound<&'a [u8]>, inward: Ordering) -> Bound<&'a [u8]> {
    use Bound::{Excluded, Included, Unbounded};
    let further_in = |x: &'a [u8], y: &'a [u8]| if x.cmp(y) == inward { x } else { y };
    match (a, b) {
        (Unbounded, other) | (other, Unbounded) => other,
        (Included(x), Included(y)) => Included(further_in(x, y)),
        (Excluded(x), Excluded(y)) => Excluded(further_in(x, y)),
        // On the same key, the excluding bound is the tighter.
        (Included(i), Excluded(e)) | (Excluded(e), Included(i)) if i.cmp(e) == inward => {
            Included(i)
        }
        (Included(_), Excluded(e)) | (Excluded(e), Included(_)) => Excluded(e),
    }
}

/// `pairs` as a walk in `direction`: as they come, or from the back.
pub fn directed<K, V, I>(pairs: I, direction: Direction) -> Walk<K, V>
where
    I: DoubleEndedIterator<Item = Result<(K, V)>> + 'static,
{
    match direction {
        Direction::Forward => Box::new(pairs),
        Direction::Reverse => Box::new(pairs.rev()),
    }
}

/// True when no key lies between `start` and `end` (an inverted range, or one key
/// excluded at either end).
pub fn holds_nothing(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use kv_shared::{CursorIter, Error, VecCursor};

    use super::*;

    /// A map whose walks fail at `poisoned`, if set.
    struct MapSource {
        map: Arc<BTreeMap<Vec<u8>, Vec<u8>>>,
        poisoned: Option<Vec<u8>>,
    }

    impl RangeSource for MapSource {
        type Key = Vec<u8>;
        type Value = Vec<u8>;

        fn walk(&self, bounds: Bounds<'_>, direction: Direction) -> Result<Walk<Vec<u8>, Vec<u8>>> {
            let pairs = self.map.range::<[u8], _>(bounds);
            let mut pairs: Vec<_> = pairs.map(|(k, v)| (k.clone(), v.clone())).collect();
            if direction == Direction::Reverse {
                pairs.reverse();
            }
            let poisoned = self.poisoned.clone();
            Ok(Box::new(pairs.into_iter().map(move |(k, v)| {
                if Some(&k) == poisoned.as_ref() {
                    Err(Error::InvalidArgument("poisoned".into()))
                } else {
                    Ok((k, v))
                }
            })))
        }
    }

    fn map() -> Arc<BTreeMap<Vec<u8>, Vec<u8>>> {
        let keys: [&[u8]; 5] = [b"", b"b", b"d", b"f", b"h"];
        Arc::new(keys.iter().map(|k| (k.to_vec(), k.repeat(2))).collect())
    }

    fn cursor(bounds: KeyRange) -> RangeCursor<MapSource> {
        let source = MapSource {
            map: map(),
            poisoned: None,
        };
        RangeCursor::within(source, bounds)
    }

    /// The same moves on the cursor and on a `VecCursor` over the pairs in `bounds`.
    fn same_as_vec_cursor(bounds: KeyRange) {
        let inside = map()
            .iter()
            .filter(|(k, _)| bounds.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut expected = VecCursor::new(inside);
        let mut actual = cursor(bounds.clone());
        let targets: [&[u8]; 6] = [b"", b"a", b"b", b"c", b"h", b"z"];
        let moves = ["next", "prev", "prev", "next", "next", "next", "prev"];
        let start = |c: &mut dyn Cursor, how: usize, target: &[u8]| match how {
            0 => c.seek(target),
            1 => c.seek_for_prev(target),
            2 => c.seek_to_first(),
            _ => c.seek_to_last(),
        };
        for how in 0..4 {
            for target in targets {
                start(&mut expected, how, target).unwrap();
                start(&mut actual, how, target).unwrap();
                for step in moves {
                    let at =
                        |c: &dyn Cursor| c.valid().then(|| (c.key().to_vec(), c.value().to_vec()));
                    assert_eq!(
                        at(&actual),
                        at(&expected),
                        "{bounds:?} {how} {target:?} {step}"
                    );
                    let (e, a): (&mut dyn Cursor, &mut dyn Cursor) = (&mut expected, &mut actual);
                    if step == "next" {
                        e.next().unwrap();
                        a.next().unwrap();
                    } else {
                        e.prev().unwrap();
                        a.prev().unwrap();
                    }
                }
            }
        }
    }

    #[test]
    fn moves_like_a_cursor_over_a_sorted_list() {
        use Bound::*;
        let r = |s: Bound<&[u8]>, e: Bound<&[u8]>| {
            KeyRange::new(s.map(<[u8]>::to_vec), e.map(<[u8]>::to_vec))
        };
        same_as_vec_cursor(KeyRange::all());
        same_as_vec_cursor(r(Included(b"b"), Excluded(b"h")));
        same_as_vec_cursor(r(Excluded(b"b"), Included(b"f")));
        same_as_vec_cursor(r(Excluded(b""), Unbounded));
        same_as_vec_cursor(r(Included(b"e"), Excluded(b"c")));
    }

    #[test]
    fn scans_through_it_keep_their_bounds() {
        let range = KeyRange::half_open(b"b".to_vec(), b"g".to_vec());
        let keys = |direction| -> Vec<Vec<u8>> {
            let c = Box::new(cursor(range.clone()));
            CursorIter::new(c, range.clone(), direction)
                .map(|pair| pair.unwrap().0)
                .collect()
        };
        assert_eq!(keys(Direction::Forward), [b"b", b"d", b"f"]);
        assert_eq!(keys(Direction::Reverse), [b"f", b"d", b"b"]);
    }

    #[test]
    fn an_error_leaves_it_not_valid() {
        let source = MapSource {
            map: map(),
            poisoned: Some(b"d".to_vec()),
        };
        let mut c = RangeCursor::new(source);
        c.seek(b"b").unwrap();
        assert_eq!(c.key(), b"b");
        assert!(c.next().is_err());
        assert!(!c.valid());
        c.next().unwrap();
        assert!(
            !c.valid(),
            "next on a cursor that is not valid does nothing"
        );
        c.seek(b"e").unwrap();
        assert_eq!((c.key(), c.value()), (&b"f"[..], &b"ff"[..]));
    }

    #[test]
    fn bounds_combine_and_empty_ranges_are_seen() {
        use Bound::*;
        let (a, b): (&[u8], &[u8]) = (b"a", b"b");
        assert_eq!(later_start(Included(a), Excluded(a)), Excluded(a));
        assert_eq!(later_start(Included(b), Excluded(a)), Included(b));
        assert_eq!(later_start(Unbounded, Included(a)), Included(a));
        assert_eq!(earlier_end(Included(a), Excluded(a)), Excluded(a));
        assert_eq!(earlier_end(Included(a), Excluded(b)), Included(a));
        assert_eq!(earlier_end(Excluded(b), Unbounded), Excluded(b));
        assert!(holds_nothing(Included(b), Included(a)));
        assert!(holds_nothing(Included(a), Excluded(a)));
        assert!(!holds_nothing(Included(a), Included(a)));
        assert!(!holds_nothing(Unbounded, Excluded(a)));
    }
}
