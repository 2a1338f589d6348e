//! A key axis: where a key range lies, for the pictures that place tables by their keys.
//!
//! Keys are bytes, not numbers, so the axis is **ordinal**: every first and last key of
//! what is drawn (tables, their data blocks, the memtable) is a tick, the ticks are sorted
//! and spaced evenly, and a range spans from its first key's tick to its last's. The
//! blocks' keys make the spacing follow where the data is. Two ranges overlap on the axis exactly when they
//! overlap as key ranges, which is what the pictures are for (a read must look in every
//! table whose range covers its key).

use kv_shared::structure::{KeySpan, Memtable, StoreFile, key_bytes};

use super::svg::{Anchor, Svg, fit};

/// Narrowest range drawn: a table of one key still shows.
const MIN_SPAN: f64 = 10.0;
/// Most tick labels written; with more ticks, every n-th is labelled.
const MAX_LABELS: usize = 28;

/// An ordinal axis over a set of keys, from `left` to `right` pixels.
#[derive(Debug, Clone)]
pub struct KeyAxis {
    ticks: Vec<String>,
    left: f64,
    right: f64,
}

impl KeyAxis {
    /// The axis whose ticks are the first and last keys of `spans`.
    pub fn new<'a>(spans: impl IntoIterator<Item = &'a KeySpan>, left: f64, right: f64) -> Self {
        let mut ticks: Vec<String> = spans
            .into_iter()
            .flat_map(|s| [s.first.clone(), s.last.clone()])
            .collect();
        ticks.sort_unstable_by(|a, b| key_order(a, b));
        ticks.dedup();
        KeyAxis { ticks, left, right }
    }

    /// The axis of `tables` (their key ranges and their data blocks') and the memtable's.
    pub fn of_tables(
        tables: &[&StoreFile],
        memtable: Option<&Memtable>,
        left: f64,
        right: f64,
    ) -> Self {
        let blocks = tables
            .iter()
            .flat_map(|t| &t.parts)
            .filter_map(|p| p.key_span.as_ref());
        let spans = tables
            .iter()
            .filter_map(|t| t.keys.as_ref())
            .chain(blocks)
            .chain(memtable.and_then(|m| m.keys.as_ref()));
        KeyAxis::new(spans, left, right)
    }

    /// The axis's left edge.
    pub fn left(&self) -> f64 {
        self.left
    }

    /// Where `key` (one of the ticks) lies.
    pub fn x(&self, key: &str) -> f64 {
        let i = self.ticks.partition_point(|t| key_order(t, key).is_lt());
        match self.ticks.len() {
            0 | 1 => (self.left + self.right) / 2.0,
            n => self.left + (self.right - self.left) * i as f64 / (n - 1) as f64,
        }
    }

    /// The left edge and width of `span` on the axis (at least a few pixels).
    pub fn span(&self, span: &KeySpan) -> (f64, f64) {
        let (from, to) = (self.x(&span.first), self.x(&span.last));
        let w = to - from;
        if w >= MIN_SPAN {
            (from, w)
        } else {
            ((from + to - MIN_SPAN) / 2.0, MIN_SPAN)
        }
    }

    /// Draws the axis line at `y`, its ticks, and their keys slanted under it.
    pub fn draw(&self, svg: &mut Svg, y: f64) {
        svg.line((self.left, y), (self.right, y), "#333333");
        let every = self.ticks.len().div_ceil(MAX_LABELS).max(1);
        for (i, key) in self.ticks.iter().enumerate() {
            let x = self.x(key);
            svg.line((x, y - 3.0), (x, y + 3.0), "#333333");
            if i % every == 0 || i + 1 == self.ticks.len() {
                let label = fit(key, 100.0, 10.0);
                svg.slanted(x + 3.0, y + 14.0, &label, 10.0);
            }
        }
        svg.muted(self.right, y - 6.0, "keys →", Anchor::End, 10.0);
    }
}

/// The order of two keys written by [`kv_shared::structure::key_text`]: their bytes' order.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    key_bytes(a).cmp(&key_bytes(b))
}
