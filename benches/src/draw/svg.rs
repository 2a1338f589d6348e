//! A tiny SVG writer: rectangles, text, lines and arrows, and nothing else the pictures need.
//!
//! Every number is written with one decimal and every text escaped, so the same picture is
//! always the same bytes (the snapshot tests depend on it). The canvas grows downwards: each
//! element moves the bottom edge, and [`Svg::finish`] sizes the picture to what was drawn.

use std::fmt::Write;

/// Fill colours, one per kind of thing drawn, shared by every picture so a legend reads
/// the same everywhere.
pub mod colour {
    /// A file header, a seal: structure, not data.
    pub const HEADER: &str = "#bab0ac";
    /// A live record, a value the index points at.
    pub const LIVE: &str = "#8cd17d";
    /// A dead record: overwritten, deleted, or replaced.
    pub const DEAD: &str = "#d9d9d9";
    /// A delete (a tombstone).
    pub const DELETE: &str = "#ff9d9a";
    /// A write batch.
    pub const BATCH: &str = "#8fb3de";
    /// A seal record, a hint file.
    pub const SEAL: &str = "#76b7b2";
    /// Bytes that are not a whole record.
    pub const UNREADABLE: &str = "#fabfd2";
    /// A table's data block.
    pub const BLOCK: &str = "#a0cbe8";
    /// A table's index block.
    pub const INDEX: &str = "#ffbe7d";
    /// A table's filter block.
    pub const FILTER: &str = "#edc948";
    /// A table's footer.
    pub const FOOTER: &str = "#d4a6c8";
    /// The memtable.
    pub const MEMTABLE: &str = "#f1ce63";
    /// Outlines and arrows.
    pub const INK: &str = "#333333";
    /// Secondary text.
    pub const MUTED: &str = "#666666";
}

/// Where text is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// At its start.
    Start,
    /// At its middle.
    Middle,
    /// At its end.
    End,
}

/// One entry of a legend: a colour, hatched or not, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swatch {
    /// The fill colour.
    pub fill: &'static str,
    /// Whether it is hatched (dead, obsolete).
    pub hatched: bool,
    /// What it stands for.
    pub meaning: &'static str,
}

/// An SVG picture being drawn.
#[derive(Debug)]
pub struct Svg {
    width: f64,
    bottom: f64,
    body: String,
}

/// Average width of a character of sans-serif text, as a share of the font size.
const CHAR_SHARE: f64 = 0.58;

/// About how wide `text` is in `size` px sans-serif, to fit labels.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * CHAR_SHARE
}

impl Svg {
    /// An empty picture `width` pixels wide.
    pub fn new(width: f64) -> Svg {
        Svg {
            width,
            bottom: 0.0,
            body: String::new(),
        }
    }

    /// The picture's width.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// The lowest edge drawn so far.
    pub fn bottom(&self) -> f64 {
        self.bottom
    }

    fn reach(&mut self, y: f64) {
        self.bottom = self.bottom.max(y);
    }

    /// A rectangle filled with `fill`, outlined in [`colour::INK`].
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str) {
        self.reach(y + h);
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}" stroke="{}" stroke-width="0.5"/>"#,
            colour::INK
        );
    }

    /// A rectangle filled with `fill`, under diagonal hatching when `hatched` (what is dead
    /// or obsolete).
    pub fn area(&mut self, x: f64, y: f64, w: f64, h: f64, (fill, hatched): (&str, bool)) {
        self.rect(x, y, w, h, fill);
        if hatched {
            let _ = writeln!(
                self.body,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="url(#hatch)"/>"#
            );
        }
    }

    /// A rectangle outline with no fill, dashed when `dashed`.
    pub fn outline(&mut self, x: f64, y: f64, w: f64, h: f64, dashed: bool) {
        self.reach(y + h);
        let dash = if dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="{}"{dash}/>"#,
            colour::MUTED
        );
    }

    /// Text at (`x`, `y`), `y` being its baseline, in `size` px.
    pub fn text(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, size: f64) {
        self.styled_text(x, y, text, anchor, size, "");
    }

    /// Bold text, for titles and row names.
    pub fn bold(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, size: f64) {
        self.styled_text(x, y, text, anchor, size, r#" font-weight="bold""#);
    }

    /// Grey text, for offsets, sizes and remarks.
    pub fn muted(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, size: f64) {
        let style = format!(r#" fill="{}""#, colour::MUTED);
        self.styled_text(x, y, text, anchor, size, &style);
    }

    /// Text turned 40 degrees up from its start, for labels along an axis.
    pub fn slanted(&mut self, x: f64, y: f64, text: &str, size: f64) {
        let style = format!(r#" transform="rotate(-40 {x:.1} {y:.1})""#);
        self.styled_text(x, y, text, Anchor::End, size, &style);
        self.reach(y + text_width(text, size) * 0.65);
    }

    fn styled_text(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, size: f64, style: &str) {
        self.reach(y + 4.0);
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size:.1}" text-anchor="{anchor}"{style}>{}</text>"#,
            escape(text)
        );
    }

    /// A straight line.
    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str) {
        self.reach(y1.max(y2));
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="1"/>"#
        );
    }

    /// A curved arrow from `from` down to `to`, its head at `to`.
    pub fn arrow(&mut self, from: (f64, f64), to: (f64, f64)) {
        let (x1, y1) = from;
        let (x2, y2) = to;
        self.reach(y1.max(y2));
        let bend = (y2 - y1) / 2.0;
        let _ = writeln!(
            self.body,
            r#"<path d="M{x1:.1},{y1:.1} C{x1:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y2:.1}" fill="none" stroke="{}" stroke-width="0.8" marker-end="url(#arrow)"/>"#,
            y1 + bend,
            y2 - bend,
            colour::INK
        );
    }

    /// A row of swatches with their meanings, from `x` at baseline `y`.
    pub fn legend(&mut self, x: f64, y: f64, swatches: &[Swatch]) {
        let mut at = x;
        for swatch in swatches {
            self.area(at, y - 9.0, 10.0, 10.0, (swatch.fill, swatch.hatched));
            self.text(at + 14.0, y, swatch.meaning, Anchor::Start, 11.0);
            at += 26.0 + text_width(swatch.meaning, 11.0);
        }
    }

    /// The whole picture, `margin` pixels below the lowest element.
    pub fn finish(self, margin: f64) -> String {
        let (width, height) = (self.width, (self.bottom + margin).ceil());
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
        );
        out.push_str(concat!(
            "<defs>\n",
            r##"<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333333"/></marker>"##,
            "\n",
            r##"<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#888888" stroke-width="1.5"/></pattern>"##,
            "\n</defs>\n",
        ));
        out.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
        out.push('\n');
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }
}

/// `text` with the five characters XML gives a meaning escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut to fit `width` pixels in `size` px, an ellipsis marking the cut; empty when
/// not even two characters fit.
pub fn fit(text: &str, width: f64, size: f64) -> String {
    let room = (width / (size * CHAR_SHARE)).floor() as usize;
    let len = text.chars().count();
    if len <= room {
        text.to_string()
    } else if room < 3 {
        String::new()
    } else {
        let cut: String = text.chars().take(room - 1).collect();
        format!("{cut}…")
    }
}

/// A byte count as people read it: `412 B`, `4.0 KiB`, `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let n_f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n_f < KIB * KIB {
        format!("{:.1} KiB", n_f / KIB)
    } else if n_f < KIB * KIB * KIB {
        format!("{:.1} MiB", n_f / KIB / KIB)
    } else {
        format!("{:.1} GiB", n_f / KIB / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_fitted() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
        assert_eq!(fit("key000123", 100.0, 11.0), "key000123");
        assert_eq!(fit("key000123", 30.0, 11.0), "key…");
        assert_eq!(fit("key000123", 10.0, 11.0), "");
        assert_eq!(bytes(412), "412 B");
        assert_eq!(bytes(4096), "4.0 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }

    #[test]
    fn the_picture_is_sized_to_what_was_drawn() {
        let mut svg = Svg::new(200.0);
        svg.rect(10.0, 10.0, 50.0, 30.0, colour::LIVE);
        svg.text(10.0, 60.0, "a<b", Anchor::Start, 11.0);
        let out = svg.finish(10.0);
        assert!(
            out.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="74""#)
        );
        assert!(out.contains(">a&lt;b</text>"));
        assert!(out.ends_with("</svg>\n"));
    }
}
