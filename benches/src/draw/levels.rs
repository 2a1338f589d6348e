//! The picture of an LSM tree: the memtable on top, then one row per level, L0 first, its
//! tables placed by key range on one shared key axis, each as tall as its size allows. On
//! the left, the pyramid: each level's target size as a bar (on a logarithmic scale, as the
//! targets grow tenfold a level), filled as far as the level's bytes go. L0's tables, one
//! flushed memtable each, may overlap, so each gets a row of its own, newest first; below
//! L0 a level is one sorted run whose tables never overlap.

use kv_shared::Structure;
use kv_shared::structure::{FileKind, Level, StoreFile};

use super::LEFT;
use super::key_axis::KeyAxis;
use super::svg::{Anchor, Svg, Swatch, bytes, colour, fit};
use super::tables::{MEMTABLE_SWATCH, table_fill, top};

/// The picture's width.
pub const WIDTH: f64 = 1000.0;
/// Centre of the pyramid's bars, and their widest.
const PYRAMID_CENTRE: f64 = 100.0;
const PYRAMID_WIDTH: f64 = 110.0;
/// Where a level's counts are written.
const COUNTS: f64 = 168.0;
const AXIS_LEFT: f64 = 270.0;
const ROW_STEP: f64 = 36.0;
const TALLEST: f64 = 28.0;
const SHORTEST: f64 = 8.0;

/// The picture of an LSM tree.
pub fn draw(s: &Structure) -> String {
    let mut svg = Svg::new(WIDTH);
    draw_into(&mut svg, s, 0.0, "lsm");
    svg.finish(12.0)
}

/// Draws the tree of `s` into `svg` (at least [`WIDTH`] wide) from `y0` down: the title
/// (starting `name:`), the legend, the memtable, the levels with the pyramid, the key
/// axis. Returns the lowest edge drawn. [`super::separated`] draws a wisckey store's tree
/// with it.
pub fn draw_into(svg: &mut Svg, s: &Structure, y0: f64, name: &str) -> f64 {
    let tables: Vec<&StoreFile> = s
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Table)
        .collect();
    let title = title(name, s, &tables);
    let (axis, mut y) = top(svg, y0, s, &tables, (&title, &LEGEND), AXIS_LEFT);
    let largest = tables.iter().map(|t| t.bytes).max().unwrap_or(1).max(1);
    // Every level down to the deepest that holds a table (L0 at least).
    let deepest = s.levels.iter().rposition(|l| l.tables > 0).unwrap_or(0);
    let shown = &s.levels[..s.levels.len().min(deepest + 1)];
    let pyramid = Pyramid::of(shown);
    for level in shown {
        let on_level: Vec<&StoreFile> = tables
            .iter()
            .copied()
            .filter(|t| t.level == Some(level.level))
            .collect();
        pyramid.bar(svg, level, y);
        let rows = level_rows(&on_level, level.level);
        for row in &rows {
            for table in row {
                table_box(svg, table, &axis, y, largest);
            }
            y += ROW_STEP;
        }
        if rows.is_empty() {
            y += ROW_STEP;
        }
        svg.line((LEFT, y - 4.0), (WIDTH - 40.0, y - 4.0), "#e0e0e0");
    }
    let unplaced: Vec<&StoreFile> = tables
        .iter()
        .copied()
        .filter(|t| t.level.is_none())
        .collect();
    if !unplaced.is_empty() {
        svg.bold(LEFT, y + 14.0, "in no level", Anchor::Start, 12.0);
        for table in unplaced {
            table_box(svg, table, &axis, y, largest);
        }
        y += ROW_STEP;
    }
    axis.draw(svg, y + 6.0);
    svg.bottom()
}

/// The legend.
const LEGEND: [Swatch; 4] = [
    MEMTABLE_SWATCH,
    Swatch {
        fill: colour::BLOCK,
        hatched: false,
        meaning: "table (height: its size)",
    },
    Swatch {
        fill: colour::DEAD,
        hatched: true,
        meaning: "table no level holds (obsolete)",
    },
    Swatch {
        fill: colour::LIVE,
        hatched: false,
        meaning: "level's bytes against its target",
    },
];

/// The title, `name:` then the tables, levels, bytes, the memtable's fill.
fn title(name: &str, s: &Structure, tables: &[&StoreFile]) -> String {
    let total: u64 = tables.iter().map(|t| t.bytes).sum();
    let levels = s.levels.iter().filter(|l| l.tables > 0).count();
    let memtable = s.memtable.as_ref().map_or(String::new(), |m| {
        format!(
            "; memtable {}, {}",
            counted(m.entries, "entry", "entries"),
            bytes(m.bytes)
        )
    });
    format!(
        "{name}: {} on {}, {}{memtable}",
        counted(tables.len() as u64, "table", "tables"),
        counted(levels as u64, "level", "levels"),
        bytes(total)
    )
}

/// `n` and the noun that goes with it: `1 table`, `3 tables`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The rows a level's tables are drawn in: one per table on L0 (newest first), one for
/// the whole sorted run below it.
fn level_rows<'a>(tables: &[&'a StoreFile], level: u32) -> Vec<Vec<&'a StoreFile>> {
    if tables.is_empty() {
        Vec::new()
    } else if level == 0 {
        tables.iter().rev().map(|t| vec![*t]).collect()
    } else {
        vec![tables.to_vec()]
    }
}

/// A table as a box on the axis, centred in its row, as tall as its size allows.
fn table_box(svg: &mut Svg, table: &StoreFile, axis: &KeyAxis, y: f64, largest: u64) {
    let Some(keys) = &table.keys else {
        return;
    };
    let (x, w) = axis.span(keys);
    let h = SHORTEST + (TALLEST - SHORTEST) * table.bytes as f64 / largest as f64;
    let top = y + (TALLEST - h) / 2.0;
    svg.area(x, top, w, h, table_fill(table.level.is_some()));
    // The table's number: its name without a directory (a wisckey tree's `tree/`), extension
    // and leading zeros.
    let name = table.name.rsplit('/').next().unwrap_or(&table.name);
    let number = name.trim_end_matches(".sst").trim_start_matches('0');
    let label = fit(number, w - 4.0, 9.0);
    if h >= 12.0 && !label.is_empty() {
        svg.text(
            x + w / 2.0,
            top + h / 2.0 + 4.0,
            &label,
            Anchor::Middle,
            9.0,
        );
    }
}

/// The pyramid's scale: a level's target as a bar width, on a logarithmic scale.
struct Pyramid {
    smallest: f64,
    largest: f64,
}

impl Pyramid {
    fn of(levels: &[Level]) -> Pyramid {
        let targets = levels
            .iter()
            .filter_map(|l| l.target_bytes)
            .map(|t| (t.max(1) as f64).ln());
        let (smallest, largest) =
            targets.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        Pyramid { smallest, largest }
    }

    /// Draws `level`'s name, counts and bar in the row at `y`.
    fn bar(&self, svg: &mut Svg, level: &Level, y: f64) {
        svg.bold(
            LEFT,
            y + 18.0,
            &format!("L{}", level.level),
            Anchor::Start,
            13.0,
        );
        let noun = if level.tables == 1 { "table" } else { "tables" };
        let tables = format!("{} {noun}, {}", level.tables, bytes(level.bytes));
        svg.muted(COUNTS, y + 11.0, &tables, Anchor::Start, 9.0);
        let Some(target) = level.target_bytes else {
            svg.muted(
                COUNTS,
                y + 23.0,
                "trigger: a table count",
                Anchor::Start,
                9.0,
            );
            return;
        };
        svg.muted(
            COUNTS,
            y + 23.0,
            &format!("target {}", bytes(target)),
            Anchor::Start,
            9.0,
        );
        let spread = self.largest - self.smallest;
        let share = if spread > 0.0 {
            ((target.max(1) as f64).ln() - self.smallest) / spread
        } else {
            1.0
        };
        let w = 30.0 + (PYRAMID_WIDTH - 30.0) * share.clamp(0.0, 1.0);
        let x = PYRAMID_CENTRE - w / 2.0;
        svg.rect(x, y + 6.0, w, 16.0, "#ffffff");
        let fill = (level.bytes as f64 / target.max(1) as f64).min(1.0);
        svg.rect(x, y + 6.0, w * fill, 16.0, colour::LIVE);
        svg.outline(x, y + 6.0, w, 16.0, false);
    }
}
