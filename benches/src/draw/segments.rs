//! The picture of a bitcask store: one row per segment, in id order, each a box as wide as
//! its bytes with its records inside at their offsets (the keydir's live records green, dead
//! ones hatched grey), its live and dead bytes under it, and its hint file beside it at the
//! same scale. A merge caught in the directory, and the files that are neither, are listed.

use kv_shared::Structure;
use kv_shared::structure::{FileKind, StoreFile};

use super::svg::{Anchor, Svg, bytes, fit};
use super::{LEFT, fill_of, legend, short_label};

/// Where the segment boxes start: the names go before.
const BOXES: f64 = 230.0;
/// Width of the largest segment.
const SEGMENT_WIDTH: f64 = 560.0;
const GAP: f64 = 24.0;
const ROW_STEP: f64 = 66.0;

/// The picture of a bitcask store.
pub fn draw(s: &Structure) -> String {
    let segments: Vec<&StoreFile> = s
        .files
        .iter()
        .filter(|f| matches!(f.kind, FileKind::Segment) || is_merge_segment(f))
        .collect();
    let hint_of = |segment: &StoreFile| {
        let final_name = segment.name.trim_end_matches(".merge");
        s.files.iter().find(|f| {
            f.describes.as_deref() == Some(final_name) && is_merge(f) == is_merge(segment)
        })
    };
    let largest = segments.iter().map(|f| f.bytes).max().unwrap_or(1).max(1);
    let scale = SEGMENT_WIDTH / largest as f64;
    let widest_hint = segments
        .iter()
        .filter_map(|f| hint_of(f))
        .map(|h| h.bytes)
        .max()
        .unwrap_or(0);
    let hints_at = BOXES + SEGMENT_WIDTH + GAP;
    let width = (hints_at + widest_hint as f64 * scale).max(hints_at + 260.0) + LEFT;
    let mut svg = Svg::new(width);
    svg.bold(LEFT, 24.0, &title(s, &segments), Anchor::Start, 14.0);
    let parts = s
        .files
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FileKind::Segment | FileKind::Hint | FileKind::MergeOutput
            )
        })
        .flat_map(|f| &f.parts);
    svg.legend(LEFT, 46.0, &legend(parts));
    svg.bold(
        BOXES,
        76.0,
        "segments, records at their offsets",
        Anchor::Start,
        12.0,
    );
    let hints = if widest_hint > 0 {
        "hint files"
    } else {
        "hint files: none (a merge writes them)"
    };
    svg.bold(hints_at, 76.0, hints, Anchor::Start, 12.0);
    let mut y = 88.0;
    for segment in &segments {
        row(&mut svg, segment, y, scale);
        if let Some(hint) = hint_of(segment) {
            draw_file(&mut svg, hint, hints_at, y, scale);
            let text = format!("{}: {} entries", hint.name, hint.entries.unwrap_or(0));
            svg.muted(hints_at, y + BOX_HEIGHT + 13.0, &text, Anchor::Start, 10.0);
        }
        y += ROW_STEP;
    }
    footer(&mut svg, s, y);
    svg.finish(12.0)
}

fn is_merge(f: &StoreFile) -> bool {
    f.kind == FileKind::MergeOutput
}

fn is_merge_segment(f: &StoreFile) -> bool {
    is_merge(f) && f.describes.is_none()
}

/// The title: segments, their bytes (live, dead, and the headers and seals that are
/// neither), and the keydir's size.
fn title(s: &Structure, segments: &[&StoreFile]) -> String {
    let sum = |f: fn(&StoreFile) -> u64| segments.iter().map(|s| f(s)).sum::<u64>();
    let (total, live) = (sum(|f| f.bytes), sum(|f| f.live_bytes.unwrap_or(0)));
    let dead = sum(|f| f.dead_bytes.unwrap_or(0));
    let framing = total.saturating_sub(live + dead);
    format!(
        "bitcask: {} segments, {}: {} live, {} dead, {} headers and seals; the keydir holds {} keys",
        segments.len(),
        bytes(total),
        bytes(live),
        bytes(dead),
        bytes(framing),
        s.index.len() as u64 + s.index_omitted
    )
}

/// One segment's row: its name and note, its box, its byte counts.
fn row(svg: &mut Svg, segment: &StoreFile, y: f64, scale: f64) {
    svg.bold(LEFT, y + 13.0, &segment.name, Anchor::Start, 12.0);
    if let Some(note) = &segment.note {
        svg.muted(
            LEFT,
            y + 27.0,
            &fit(note, BOXES - LEFT - 8.0, 9.0),
            Anchor::Start,
            9.0,
        );
    }
    draw_file(svg, segment, BOXES, y, scale);
    let counts = counts(segment);
    svg.muted(BOXES, y + BOX_HEIGHT + 13.0, &counts, Anchor::Start, 10.0);
}

/// A segment's bytes, live and dead where known, and records: `612 B: 217 B live, 360 B
/// dead, 5 records`.
pub fn counts(segment: &StoreFile) -> String {
    match (segment.live_bytes, segment.dead_bytes) {
        (Some(live), Some(dead)) => format!(
            "{}: {} live, {} dead, {} records",
            bytes(segment.bytes),
            bytes(live),
            bytes(dead),
            segment.entries.unwrap_or(0)
        ),
        _ => format!(
            "{}, {} records",
            bytes(segment.bytes),
            segment.entries.unwrap_or(0)
        ),
    }
}

/// The height of a file's box.
pub const BOX_HEIGHT: f64 = 30.0;

/// A file as a box `bytes × scale` wide and [`BOX_HEIGHT`] high at (`x`, `y`), its parts
/// inside at their offsets (each labelled where its label fits).
pub fn draw_file(svg: &mut Svg, file: &StoreFile, x: f64, y: f64, scale: f64) {
    let w = file.bytes as f64 * scale;
    svg.rect(x, y, w, BOX_HEIGHT, "#ffffff");
    for part in &file.parts {
        let (px, pw) = (x + part.offset as f64 * scale, part.bytes as f64 * scale);
        svg.area(px, y, pw, BOX_HEIGHT, fill_of(part));
        let label = fit(&short_label(part), pw - 2.0, 10.0);
        if !label.is_empty() {
            svg.text(px + pw / 2.0, y + 19.0, &label, Anchor::Middle, 10.0);
        }
    }
    if file.parts_omitted > 0 {
        let text = format!("+{} records not drawn", file.parts_omitted);
        svg.muted(x + w + 4.0, y + 19.0, &text, Anchor::Start, 9.0);
    }
    svg.outline(x, y, w, BOX_HEIGHT, false);
}

/// Under the rows: a merge in the directory, and the other files.
fn footer(svg: &mut Svg, s: &Structure, mut y: f64) {
    if let Some(merge) = &s.merge {
        let state = if merge.committed {
            "committed: the next open finishes it"
        } else {
            "writing its outputs: not committed yet"
        };
        let text = format!(
            "merge in progress ({state}): {} → {}",
            list(&merge.inputs),
            list(&merge.outputs)
        );
        svg.text(LEFT, y + 4.0, &text, Anchor::Start, 11.0);
        y += 20.0;
    }
    let others: Vec<String> = s
        .files
        .iter()
        .filter(|f| {
            !matches!(
                f.kind,
                FileKind::Segment | FileKind::Hint | FileKind::MergeOutput
            )
        })
        .map(|f| format!("{} ({})", f.name, bytes(f.bytes)))
        .collect();
    svg.muted(
        LEFT,
        y + 4.0,
        &format!("also: {}", others.join(", ")),
        Anchor::Start,
        10.0,
    );
}

/// Names joined by commas, or "(none yet)".
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(not known yet)".to_string()
    } else {
        names.join(", ")
    }
}
