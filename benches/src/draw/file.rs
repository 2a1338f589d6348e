//! The picture of one file: its parts in file order, first as a strip in true proportion
//! (a 60-byte footer beside 4 KiB blocks is a sliver, as it is on disk), then one line per
//! part with its offset, its size and what it holds: a table's data blocks with their key
//! ranges, its index, filter and footer; a log's records with their keys.

use kv_shared::structure::{FileKind, Part, PartKind, StoreFile};

use super::svg::{Anchor, Svg, bytes, fit};
use super::{LEFT, fill_of, legend, short_label};

const WIDTH: f64 = 960.0;
const STRIP_HEIGHT: f64 = 34.0;
const LINE: f64 = 18.0;
/// Most parts listed line by line; the rest are counted.
const MAX_LINES: usize = 64;

/// The picture of `file`.
pub fn draw(file: &StoreFile) -> String {
    let mut svg = Svg::new(WIDTH);
    svg.bold(LEFT, 24.0, &title(file), Anchor::Start, 14.0);
    if let Some(note) = &file.note {
        svg.muted(LEFT, 42.0, note, Anchor::Start, 11.0);
    }
    svg.legend(LEFT, 62.0, &legend(&file.parts));
    let top = 80.0;
    strip(&mut svg, file, top);
    let mut y = top + STRIP_HEIGHT + 34.0;
    svg.bold(LEFT + 18.0, y, "offset", Anchor::Start, 11.0);
    svg.bold(LEFT + 150.0, y, "bytes", Anchor::End, 11.0);
    svg.bold(LEFT + 170.0, y, "part", Anchor::Start, 11.0);
    for part in file.parts.iter().take(MAX_LINES) {
        y += LINE;
        svg.area(LEFT, y - 10.0, 11.0, 11.0, fill_of(part));
        svg.muted(
            LEFT + 18.0,
            y,
            &part.offset.to_string(),
            Anchor::Start,
            11.0,
        );
        svg.text(LEFT + 150.0, y, &part.bytes.to_string(), Anchor::End, 11.0);
        let text = fit(&describe(part), WIDTH - LEFT - 190.0, 11.0);
        svg.text(LEFT + 170.0, y, &text, Anchor::Start, 11.0);
    }
    let more = file.parts.len().saturating_sub(MAX_LINES) as u64 + file.parts_omitted;
    if more > 0 {
        svg.muted(
            LEFT + 170.0,
            y + LINE,
            &format!("… {more} more parts"),
            Anchor::Start,
            11.0,
        );
    }
    svg.finish(12.0)
}

/// The title: name, what it is, size, entries and key range.
fn title(file: &StoreFile) -> String {
    let kind = match file.kind {
        FileKind::Table => "SSTable",
        FileKind::Log => "log",
        FileKind::Segment => "segment",
        FileKind::Hint => "hint file",
        FileKind::Wal => "write-ahead log",
        FileKind::Manifest => "manifest",
        _ => "file",
    };
    let mut title = format!("{}: {kind}, {} bytes", file.name, file.bytes);
    if let Some(entries) = file.entries {
        title.push_str(&format!(", {entries} entries"));
    }
    if let Some(keys) = &file.keys {
        title.push_str(&format!(", keys {} .. {}", keys.first, keys.last));
    }
    title
}

/// What a kind of part is called.
pub fn kind_name(kind: PartKind) -> &'static str {
    match kind {
        PartKind::Header => "header",
        PartKind::Put => "put",
        PartKind::Delete => "delete",
        PartKind::Batch => "batch",
        PartKind::Seal => "seal",
        PartKind::HintEntry => "hint entry",
        PartKind::HintEnd => "end entry",
        PartKind::Edit => "version edit",
        PartKind::DataBlock => "data block",
        PartKind::Index => "index",
        PartKind::Filter => "filter",
        PartKind::Footer => "footer",
        PartKind::Body => "contents",
        PartKind::Unreadable => "not a whole record",
    }
}

/// The strip: every part at its offset, in proportion to the file's size.
fn strip(svg: &mut Svg, file: &StoreFile, top: f64) {
    let scale = (WIDTH - 2.0 * LEFT) / file.bytes.max(1) as f64;
    for part in &file.parts {
        let x = LEFT + part.offset as f64 * scale;
        let w = (part.bytes as f64 * scale).max(1.5);
        svg.area(x, top, w, STRIP_HEIGHT, fill_of(part));
        let label = fit(&short_label(part), w - 2.0, 10.0);
        if !label.is_empty() {
            svg.text(x + w / 2.0, top + 21.0, &label, Anchor::Middle, 10.0);
        }
    }
    svg.outline(LEFT, top, WIDTH - 2.0 * LEFT, STRIP_HEIGHT, false);
    svg.muted(LEFT, top + STRIP_HEIGHT + 13.0, "0", Anchor::Start, 10.0);
    let end = match file.bytes {
        0..1024 => format!("{} bytes", file.bytes),
        n => format!("{n} bytes ({})", bytes(n)),
    };
    svg.muted(
        WIDTH - LEFT,
        top + STRIP_HEIGHT + 13.0,
        &end,
        Anchor::End,
        10.0,
    );
}

/// One line on a part: what it is and holds.
fn describe(part: &Part) -> String {
    let keys = part.keys.join(", ");
    let status = match part.live {
        Some(true) => " (live: the index points here)",
        Some(false) => " (dead)",
        None => "",
    };
    let mut text = match part.kind {
        PartKind::DataBlock => {
            let span = part.key_span.as_ref();
            format!(
                "data block: {} entries, keys {} .. {}",
                part.entries.unwrap_or(0),
                span.map_or("", |s| s.first.as_str()),
                span.map_or("", |s| s.last.as_str())
            )
        }
        PartKind::Header => "header: magic, format version".into(),
        PartKind::Index => {
            "index block: one entry per data block, a key and where the block is".into()
        }
        PartKind::Filter => "filter block: a Bloom filter of the table's keys".into(),
        PartKind::Footer => "footer: where the index is, the counts, the magic".into(),
        PartKind::Batch => format!("batch of {} ops: {keys}", part.entries.unwrap_or(0)),
        PartKind::Put | PartKind::Delete | PartKind::HintEntry => {
            format!("{} {keys}", kind_name(part.kind))
        }
        kind => kind_name(kind).to_string(),
    };
    text.push_str(status);
    text
}
