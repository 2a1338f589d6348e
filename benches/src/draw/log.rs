//! The picture of a hashlog store: the in-memory index above, the data file below as a
//! strip of records in file order (widths in proportion to their bytes, wrapped into rows),
//! and an arrow from every index entry to the record holding its key's latest value. What
//! no arrow reaches is dead: overwritten values, deletes, batches whose every op is stale.

use std::collections::HashMap;

use kv_shared::Structure;
use kv_shared::structure::{FileKind, StoreFile};

use super::svg::{Anchor, Svg, bytes, fit, text_width};
use super::{LEFT, fill_of, legend, short_label};

const WIDTH: f64 = 960.0;
/// Narrowest record drawn, so a short record still shows its key.
const MIN_RECORD: f64 = 36.0;
const RECORD_HEIGHT: f64 = 28.0;
/// Vertical distance between two rows of the strip.
const ROW_STEP: f64 = 52.0;
/// Most records drawn; the rest are counted.
const MAX_DRAWN: usize = 240;

/// Where each drawn part of a strip landed: offset in the file → its box.
pub type Placed = HashMap<u64, (f64, f64, f64)>;

/// The picture of a hashlog store.
pub fn draw(s: &Structure) -> String {
    let mut svg = Svg::new(WIDTH);
    let log = s.files.iter().find(|f| f.kind == FileKind::Log);
    let title = match log {
        Some(log) => format!(
            "hashlog: {}, {}, {} records; the index holds {} live keys",
            log.name,
            bytes(log.bytes),
            log.entries.unwrap_or(0),
            s.index.len() as u64 + s.index_omitted
        ),
        None => "hashlog: no data file yet".to_string(),
    };
    svg.bold(LEFT, 24.0, &title, Anchor::Start, 14.0);
    let Some(log) = log else {
        return svg.finish(12.0);
    };
    svg.legend(LEFT, 46.0, &legend(&log.parts));
    svg.bold(
        LEFT,
        78.0,
        "index (in memory): key → offset",
        Anchor::Start,
        12.0,
    );
    let index_top = 86.0;
    let entries = index_row(&mut svg, s, index_top);
    let strip_top = index_top + 96.0;
    svg.bold(
        LEFT,
        strip_top - 10.0,
        &format!("{} (on disk), in file order", log.name),
        Anchor::Start,
        12.0,
    );
    let placed = strip(&mut svg, log, strip_top);
    for (pointer, (x, w)) in s.index.iter().zip(entries) {
        if let Some(&(rx, ry, rw)) = placed.get(&pointer.offset) {
            svg.arrow((x + w / 2.0, index_top + 22.0), (rx + rw / 2.0, ry - 2.0));
        }
    }
    svg.finish(12.0)
}

/// Draws the index entries in one row from `top`; returns each entry's x and width.
fn index_row(svg: &mut Svg, s: &Structure, top: f64) -> Vec<(f64, f64)> {
    let mut x = LEFT;
    let mut placed = Vec::new();
    for (i, pointer) in s.index.iter().enumerate() {
        let label = format!("{} → {}", pointer.key, pointer.offset);
        let w = (text_width(&label, 11.0) + 12.0).max(MIN_RECORD);
        if x + w > WIDTH - LEFT {
            let left = s.index.len() - i + s.index_omitted as usize;
            svg.muted(
                x,
                top + 15.0,
                &format!("… {left} more"),
                Anchor::Start,
                11.0,
            );
            break;
        }
        svg.rect(x, top, w, 22.0, "#f0f0f0");
        svg.text(x + w / 2.0, top + 15.0, &label, Anchor::Middle, 11.0);
        placed.push((x, w));
        x += w + 6.0;
    }
    placed
}

/// Draws `file`'s parts as a strip of boxes from `top`, wrapped into rows, each box as wide
/// as its bytes (at least `MIN_RECORD`), its offset under it; returns where each landed.
pub fn strip(svg: &mut Svg, file: &StoreFile, top: f64) -> Placed {
    let drawn = &file.parts[..file.parts.len().min(MAX_DRAWN)];
    let total: u64 = drawn.iter().map(|p| p.bytes).sum();
    let scale = (WIDTH - 2.0 * LEFT) / total.max(1) as f64;
    let (mut x, mut y) = (LEFT, top);
    let mut placed = Placed::new();
    for part in drawn {
        let w = (part.bytes as f64 * scale).max(MIN_RECORD);
        if x + w > WIDTH - LEFT + 0.5 && x > LEFT {
            (x, y) = (LEFT, y + ROW_STEP);
        }
        svg.area(x, y, w, RECORD_HEIGHT, fill_of(part));
        let label = fit(&short_label(part), w - 4.0, 11.0);
        svg.text(x + w / 2.0, y + 18.0, &label, Anchor::Middle, 11.0);
        svg.muted(
            x + 2.0,
            y + RECORD_HEIGHT + 11.0,
            &part.offset.to_string(),
            Anchor::Start,
            9.0,
        );
        placed.insert(part.offset, (x, y, w));
        x += w;
    }
    let more = (file.parts.len() - drawn.len()) as u64 + file.parts_omitted;
    if more > 0 {
        let text = format!("… and {more} more parts, not drawn");
        svg.muted(LEFT, y + RECORD_HEIGHT + 28.0, &text, Anchor::Start, 11.0);
    }
    placed
}
