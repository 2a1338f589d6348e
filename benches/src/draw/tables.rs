//! The picture of an sstable store: the memtable (and the WALs it replays from) on top,
//! then every table, newest first, as a bar spanning its key range on one key axis. Where
//! bars overlap, a read of a key there must look in each of those tables: the picture shows
//! why stage 3's reads slow down as tables pile up, and what its compaction (all into one)
//! undoes.

use kv_shared::Structure;
use kv_shared::structure::{FileKind, KeySpan, PartKind, StoreFile};

use super::LEFT;
use super::key_axis::KeyAxis;
use super::svg::{Anchor, Svg, Swatch, bytes, colour, fit};

const WIDTH: f64 = 960.0;
/// Where the key axis starts: the row names go before.
const AXIS_LEFT: f64 = 230.0;
const BAR_HEIGHT: f64 = 22.0;
const ROW_STEP: f64 = 34.0;

/// The picture of an sstable store.
pub fn draw(s: &Structure) -> String {
    let mut tables: Vec<&StoreFile> = s
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Table)
        .collect();
    tables.reverse(); // newest (highest number) first, the order a read looks in
    let mut svg = Svg::new(WIDTH);
    let (axis, mut y) = top(
        &mut svg,
        0.0,
        s,
        &tables,
        (&title(s, &tables), &LEGEND),
        AXIS_LEFT,
    );
    for table in &tables {
        table_row(&mut svg, table, &axis, y);
        y += ROW_STEP;
    }
    axis.draw(&mut svg, y + 6.0);
    let note = "A get looks in the memtable, then in each table whose key range covers the key, newest first.";
    svg.muted(LEFT, svg.bottom() + 18.0, note, Anchor::Start, 11.0);
    svg.finish(12.0)
}

/// The top of a picture of tables on a key axis (this one and [`super::levels`]'s), drawn
/// into `svg` from `y0` down: the title, the legend and the memtable's row. Returns the
/// axis, from `axis_left` to 40 px before the picture's right edge, and where the next row
/// goes.
pub fn top(
    svg: &mut Svg,
    y0: f64,
    s: &Structure,
    tables: &[&StoreFile],
    (title, legend): (&str, &[Swatch]),
    axis_left: f64,
) -> (KeyAxis, f64) {
    svg.bold(LEFT, y0 + 24.0, title, Anchor::Start, 14.0);
    svg.legend(LEFT, y0 + 46.0, legend);
    let right = svg.width() - 40.0;
    let axis = KeyAxis::of_tables(tables, s.memtable.as_ref(), axis_left, right);
    memtable_row(svg, s, &axis, y0 + 72.0);
    (axis, y0 + 72.0 + ROW_STEP + 8.0)
}

/// The legend.
const LEGEND: [Swatch; 3] = [
    MEMTABLE_SWATCH,
    Swatch {
        fill: colour::BLOCK,
        hatched: false,
        meaning: "table (disk)",
    },
    Swatch {
        fill: colour::DEAD,
        hatched: true,
        meaning: "table a finished compaction replaced",
    },
];

/// The memtable's swatch.
pub const MEMTABLE_SWATCH: Swatch = Swatch {
    fill: colour::MEMTABLE,
    hatched: false,
    meaning: "memtable (memory), its fill beside its name",
};

/// How a table is filled: blue while the store reads it, hatched grey when it does not.
pub fn table_fill(read: bool) -> (&'static str, bool) {
    if read {
        (colour::BLOCK, false)
    } else {
        (colour::DEAD, true)
    }
}

/// The title: tables and their bytes, the memtable's fill.
fn title(s: &Structure, tables: &[&StoreFile]) -> String {
    let total: u64 = tables.iter().map(|t| t.bytes).sum();
    let memtable = match &s.memtable {
        Some(m) => format!(
            "; memtable {} entries, {} of {}",
            m.entries,
            bytes(m.bytes),
            m.capacity_bytes.map_or("?".to_string(), bytes)
        ),
        None => String::new(),
    };
    format!(
        "{}: {} tables, {}{memtable}",
        s.engine,
        tables.len(),
        bytes(total)
    )
}

/// The memtable's row: its WALs on the left, its key range on the axis.
fn memtable_row(svg: &mut Svg, s: &Structure, axis: &KeyAxis, y: f64) {
    let axis_left = axis.left();
    let Some(m) = &s.memtable else {
        return;
    };
    svg.bold(LEFT, y + 10.0, "memtable", Anchor::Start, 12.0);
    let wals: Vec<String> = m
        .wals
        .iter()
        .map(|name| {
            let records = s.file(name).and_then(|f| f.entries).unwrap_or(0);
            format!("{name} ({records} records)")
        })
        .collect();
    let from = if wals.is_empty() {
        "no WAL to replay".to_string()
    } else {
        format!("replayed from {}", wals.join(", "))
    };
    svg.muted(
        LEFT,
        y + 23.0,
        &fit(&from, axis_left - LEFT - 8.0, 9.0),
        Anchor::Start,
        9.0,
    );
    let gauge = 60.0;
    let fill = m
        .capacity_bytes
        .map_or(0.0, |c| (m.bytes as f64 / c.max(1) as f64).min(1.0));
    svg.rect(axis_left - gauge - 12.0, y + 2.0, gauge, 8.0, "#ffffff");
    svg.rect(
        axis_left - gauge - 12.0,
        y + 2.0,
        gauge * fill,
        8.0,
        colour::MEMTABLE,
    );
    match &m.keys {
        Some(keys) => {
            let (x, w) = axis.span(keys);
            svg.rect(x, y, w, BAR_HEIGHT, colour::MEMTABLE);
            let label = fit(&format!("{} entries", m.entries), w - 4.0, 10.0);
            svg.text(x + w / 2.0, y + 15.0, &label, Anchor::Middle, 10.0);
        }
        None => svg.muted(axis_left, y + 15.0, "(empty)", Anchor::Start, 10.0),
    }
}

/// One table's row: its name and size on the left, its key range on the axis, a line where
/// each of its data blocks starts (the first keys its sparse index holds).
fn table_row(svg: &mut Svg, table: &StoreFile, axis: &KeyAxis, y: f64) {
    let axis_left = axis.left();
    svg.bold(LEFT, y + 10.0, &table.name, Anchor::Start, 12.0);
    let size = format!(
        "{}, {} entries",
        bytes(table.bytes),
        table.entries.unwrap_or(0)
    );
    svg.muted(LEFT, y + 23.0, &size, Anchor::Start, 9.0);
    if let Some(note) = &table.note {
        svg.muted(
            axis_left - 12.0,
            y + 23.0,
            &fit(note, 120.0, 9.0),
            Anchor::End,
            9.0,
        );
    }
    let Some(keys) = &table.keys else {
        svg.muted(axis_left, y + 15.0, "(no entries)", Anchor::Start, 10.0);
        return;
    };
    let (x, w) = axis.span(keys);
    svg.area(x, y, w, BAR_HEIGHT, table_fill(table.live_bytes != Some(0)));
    let blocks: Vec<&KeySpan> = table
        .parts
        .iter()
        .filter(|p| p.kind == PartKind::DataBlock)
        .filter_map(|p| p.key_span.as_ref())
        .collect();
    for block in blocks.iter().skip(1) {
        let at = axis.x(&block.first);
        svg.line((at, y), (at, y + BAR_HEIGHT), colour::MUTED);
    }
    let label = fit(&format!("{} blocks", blocks.len()), w - 4.0, 10.0);
    svg.text(x + w / 2.0, y + 15.0, &label, Anchor::Middle, 10.0);
}
