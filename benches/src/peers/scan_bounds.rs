//! Scan bounds: turning the course's [`KeyRange`] into the borrowed bounds the peers take.
//!
//! A [`KeyRange`] owns its bound keys (`Bound<Vec<u8>>`); sled, redb and fjall range over
//! `Bound<&[u8]>` pairs borrowed from it. A range that holds no key at all (its start after
//! its end, or an exclusive bound equal to the other) is answered before any peer sees it,
//! with [`empty_scan`], so no peer is ever asked for an inverted range.

use std::ops::Bound;

use kv_shared::{KeyRange, ScanIter};

/// The range's start and end bounds, borrowed as slices.
pub fn borrowed(range: &KeyRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.start.as_ref().map(Vec::as_slice),
        range.end.as_ref().map(Vec::as_slice),
    )
}

/// A scan that yields nothing: the answer for a range that holds no key.
pub fn empty_scan<'a>() -> ScanIter<'a> {
    Box::new(std::iter::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_bounds_keep_kind_and_key() {
        let range = KeyRange {
            start: Bound::Excluded(b"a".to_vec()),
            end: Bound::Included(b"m".to_vec()),
        };
        assert_eq!(
            borrowed(&range),
            (Bound::Excluded(&b"a"[..]), Bound::Included(&b"m"[..]))
        );
        assert_eq!(
            borrowed(&KeyRange::all()),
            (Bound::Unbounded, Bound::Unbounded)
        );
        assert_eq!(empty_scan().count(), 0);
    }
}
