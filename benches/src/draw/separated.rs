//! The picture of a wisckey store, keys and values separated: its two parts, one above the
//! other.
//!
//! * On top, the **tree** (`tree/`), drawn as [`super::levels`] draws an LSM tree: the
//!   memtable, then the levels with the pyramid of their sizes against their targets, the
//!   tables placed by key range. Its entries are keys with 17-byte value pointers, or small
//!   values themselves, so its tables are small.
//! * Below, the **value log** (`vlog/`): one strip of segments side by side in id order,
//!   the whole log scaled to the picture's width, so each segment is as wide as its bytes.
//!   Where there is room, a segment shows its records at their offsets, as
//!   [`super::segments`] draws a bitcask segment: a value the tree points at green, a dead
//!   one hatched grey, a tombstone hatched red. Where its records would average under
//!   [`MIN_PART_WIDTH`] pixels, it shows two bands instead, its live bytes and its dead
//!   bytes (their share, not their place). When the reading did not compute which values
//!   are live (a large tree, [`mod@wisckey::inspect`]), a segment is one band marked so.
//!   Under the strip, the first [`LISTED`] segments' bytes and records, a line each.
//! * A caption saying which part holds what, and the store's other files.

use kv_shared::Structure;
use kv_shared::structure::{FileKind, PartKind, StoreFile};

use super::LEFT;
use super::levels;
use super::segments::{BOX_HEIGHT, counts, draw_file};
use super::svg::{Anchor, Svg, Swatch, bytes, colour, fit};

const WIDTH: f64 = levels::WIDTH;
/// The strip's right edge.
const RIGHT: f64 = WIDTH - 40.0;
/// The widest gap between two segments of the strip.
const GAP: f64 = 6.0;
/// Segments listed line by line under the strip; the rest are counted.
pub const LISTED: usize = 8;
/// Segments drawn in the strip; the rest are counted.
const DRAWN: usize = 400;
/// The narrowest a record may be drawn, on average over its segment.
pub const MIN_PART_WIDTH: f64 = 2.0;
const LINE: f64 = 15.0;

/// The fill of a segment whose values' liveness was not computed.
const UNKNOWN: &str = colour::BATCH;

/// The picture of a wisckey store.
pub fn draw(s: &Structure) -> String {
    let mut svg = Svg::new(WIDTH);
    let title = "wisckey: the tree (tree/, keys)";
    let y = levels::draw_into(&mut svg, s, 0.0, title);
    let y = value_log(&mut svg, s, y + 20.0);
    caption(&mut svg, s, y + 8.0);
    svg.finish(12.0)
}

/// Draws the value log from `y` down: its title, legend, strip and segment lines. Returns
/// where the next line goes.
fn value_log(svg: &mut Svg, s: &Structure, y: f64) -> f64 {
    let segments: Vec<&StoreFile> = s
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Segment)
        .collect();
    svg.line((LEFT, y), (RIGHT, y), colour::MUTED);
    svg.bold(LEFT, y + 24.0, &title(&segments), Anchor::Start, 14.0);
    svg.legend(LEFT, y + 46.0, &legend(&segments));
    let strip = y + 74.0;
    let drawn = &segments[..segments.len().min(DRAWN)];
    let total = drawn.iter().map(|f| f.bytes).sum::<u64>().max(1);
    let room = RIGHT - LEFT;
    let gap = GAP.min(0.25 * room / drawn.len().max(1) as f64);
    let gaps = gap * drawn.len().saturating_sub(1) as f64;
    let scale = (room - gaps) / total as f64;
    let mut x = LEFT;
    for segment in drawn {
        let w = (segment.bytes as f64 * scale).max(1.0);
        draw_segment(svg, segment, x, strip, w);
        x += w + gap;
    }
    if segments.is_empty() {
        svg.muted(LEFT, strip + 19.0, "(no segment yet)", Anchor::Start, 11.0);
    }
    let mut line = strip + BOX_HEIGHT + 20.0;
    if segments.len() > DRAWN {
        let more = format!("+{} segments not drawn", segments.len() - DRAWN);
        svg.muted(RIGHT, line - 6.0, &more, Anchor::End, 9.0);
    }
    for segment in segments.iter().take(LISTED) {
        let mut text = format!("{}  {}", segment.name, counts(segment));
        if let Some(note) = &segment.note {
            text.push_str(&format!(" ({note})"));
        }
        svg.muted(LEFT, line, &fit(&text, room, 10.0), Anchor::Start, 10.0);
        line += LINE;
    }
    if segments.len() > LISTED {
        let more = format!("… and {} more segments", segments.len() - LISTED);
        svg.muted(LEFT, line, &more, Anchor::Start, 10.0);
        line += LINE;
    }
    line
}

/// The value log's title: its segments and bytes, live, dead, and the headers and seals
/// that are neither, when known.
fn title(segments: &[&StoreFile]) -> String {
    let total: u64 = segments.iter().map(|f| f.bytes).sum();
    let noun = if segments.len() == 1 {
        "segment"
    } else {
        "segments"
    };
    let head = format!(
        "the value log (vlog/, values): {} {noun}, {}",
        segments.len(),
        bytes(total)
    );
    let known: Option<Vec<(u64, u64)>> = segments
        .iter()
        .map(|f| f.live_bytes.zip(f.dead_bytes))
        .collect();
    match known {
        Some(known) => {
            let live: u64 = known.iter().map(|(live, _)| live).sum();
            let dead: u64 = known.iter().map(|(_, dead)| dead).sum();
            let framing = total.saturating_sub(live + dead);
            format!(
                "{head}: {} live, {} dead, {} headers and seals",
                bytes(live),
                bytes(dead),
                bytes(framing)
            )
        }
        None => format!("{head}; which values are live was not computed"),
    }
}

/// The value log's legend: what its records' colours mean, and the marks of a segment
/// whose liveness is unknown and of a torn tail when there is one.
fn legend(segments: &[&StoreFile]) -> Vec<Swatch> {
    let swatch = |fill, hatched, meaning| Swatch {
        fill,
        hatched,
        meaning,
    };
    let mut legend = vec![
        swatch(colour::LIVE, false, "live value (the tree points at it)"),
        swatch(colour::DEAD, true, "dead (overwritten, deleted, or small)"),
        swatch(colour::DELETE, true, "tombstone"),
        swatch(colour::HEADER, false, "header"),
        swatch(colour::SEAL, false, "seal"),
    ];
    if segments.iter().any(|f| f.live_bytes.is_none()) {
        legend.push(swatch(UNKNOWN, false, "liveness not computed"));
    }
    let parts = segments.iter().flat_map(|f| &f.parts);
    if parts.clone().any(|p| p.kind == PartKind::Unreadable) {
        legend.push(swatch(colour::UNREADABLE, true, "torn tail"));
    }
    legend
}

/// One segment of the strip, `w` wide at (`x`, `y`): its records where they fit, else its
/// live and dead bands; its id above it where that fits.
fn draw_segment(svg: &mut Svg, segment: &StoreFile, x: f64, y: f64, w: f64) {
    let parts = segment.parts.len().max(1) as f64;
    let known = segment.live_bytes.zip(segment.dead_bytes);
    let scale = w / segment.bytes.max(1) as f64;
    match known {
        Some(_) if w / parts >= MIN_PART_WIDTH => draw_file(svg, segment, x, y, scale),
        Some((live, dead)) => {
            svg.rect(x, y, w, BOX_HEIGHT, "#ffffff");
            let (live_w, dead_w) = (live as f64 * scale, dead as f64 * scale);
            svg.area(x, y, live_w, BOX_HEIGHT, (colour::LIVE, false));
            svg.area(x + live_w, y, dead_w, BOX_HEIGHT, (colour::DEAD, true));
            svg.outline(x, y, w, BOX_HEIGHT, false);
        }
        None => {
            svg.area(x, y, w, BOX_HEIGHT, (UNKNOWN, false));
            svg.outline(x, y, w, BOX_HEIGHT, false);
        }
    }
    let id = segment
        .name
        .trim_start_matches("vlog/")
        .trim_end_matches(".seg")
        .trim_start_matches('0');
    let label = fit(&format!("segment {id}"), w, 9.0);
    let label = if label.is_empty() {
        fit(id, w, 9.0)
    } else {
        label
    };
    svg.muted(x + w / 2.0, y - 4.0, &label, Anchor::Middle, 9.0);
}

/// Under the value log: which part holds what, and the store's other files.
fn caption(svg: &mut Svg, s: &Structure, mut y: f64) {
    let lines = [
        "The tree holds every key, with a 17-byte pointer to its value's record in the value log, \
         or with the value itself when it is small.",
        "The value log holds every write once, in order: a value is live while the tree points at \
         it; small values and deletes are dead at once.",
        "Garbage collection copies a sealed segment's live values to the log's head, points the \
         tree at the copies and deletes the segment.",
    ];
    for line in lines {
        y += LINE;
        svg.text(LEFT, y, line, Anchor::Start, 11.0);
    }
    let others: Vec<String> = s
        .files
        .iter()
        .filter(|f| !matches!(f.kind, FileKind::Segment | FileKind::Table))
        .map(|f| format!("{} ({})", f.name, bytes(f.bytes)))
        .collect();
    let also = format!("also: {}", others.join(", "));
    svg.muted(
        LEFT,
        y + LINE + 4.0,
        &fit(&also, RIGHT - LEFT, 10.0),
        Anchor::Start,
        10.0,
    );
}

#[cfg(test)]
mod tests {
    use kv_shared::structure::{Part, STRUCTURE_VERSION};

    use super::*;

    /// A store of one segment of `records` 40-byte puts, the first `live` of them live
    /// (`None`: liveness not computed).
    fn store(records: u64, live: Option<u64>) -> Structure {
        let mut segment = StoreFile::new("vlog/00000001.seg", 16 + 40 * records);
        segment.kind = FileKind::Segment;
        segment.push_part(Part::new(PartKind::Header, 0, 16));
        for i in 0..records {
            let mut part = Part::new(PartKind::Put, 16 + 40 * i, 40);
            part.live = live.map(|live| i < live);
            segment.push_part(part);
        }
        if let Some(live) = live {
            segment.set_live(40 * live, 40 * records);
        }
        Structure {
            version: STRUCTURE_VERSION,
            engine: "wisckey".into(),
            format_version: 1,
            files: vec![segment],
            index: Vec::new(),
            index_omitted: 0,
            memtable: None,
            levels: Vec::new(),
            merge: None,
        }
    }

    #[test]
    fn records_too_thin_to_draw_become_live_and_dead_bands() {
        let few = draw(&store(4, Some(1)));
        assert_eq!(few.matches(r#"fill="url(#hatch)""#).count(), 3 + 3, "{few}");
        let many = draw(&store(1000, Some(250)));
        // One hatched band, and the legend's three hatched swatches.
        assert_eq!(many.matches(r#"fill="url(#hatch)""#).count(), 1 + 3);
        assert!(many.contains("39.1 KiB: 9.8 KiB live, 29.3 KiB dead, 0 records"));
        assert!(!many.contains("liveness not computed"));
        let unknown = draw(&store(1000, None));
        assert!(unknown.contains("which values are live was not computed"));
        assert!(unknown.contains(&format!(r#"fill="{UNKNOWN}""#)));
    }
}
