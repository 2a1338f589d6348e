//! The line plot the sweep charts share: one figure of one workload against a size that
//! grows by factors (the number of keys in [`super::scaling_chart`], the value size in
//! [`super::value_size_chart`]), one line per engine.
//!
//! * **The size** goes on a logarithmic horizontal axis, with a grid line and a label at
//!   each size that was run, and a margin of 8 % of the span on each side.
//! * **The figure** goes on a logarithmic vertical axis with a line at each power of ten
//!   when its values span more than a factor of [`LOG_SPREAD`], else on a linear one from 0
//!   ([`y_scale`]).
//! * **Points** are filled, or hollow when the time limit stopped that workload (its figures
//!   are over the operations done, as `*` says in the table); each has a tooltip.
//!
//! A chart stacks one or more plots under the common header ([`super::header`]); each plot
//! takes [`PLOT_HEIGHT`] plus [`Plot::HEAD`] above it for its title and [`Plot::FOOT`]
//! below for the size labels and the caption.

use std::fmt::Write;

use super::{Figure, LEFT, PALETTE, PLOT_WIDTH, Scale, escape, linear_scale, log_scale_of};
use crate::measurement::Measurement;

/// Height of a plot area.
pub const PLOT_HEIGHT: f64 = 280.0;

/// Values spanning more than this factor go on a logarithmic scale.
pub const LOG_SPREAD: f64 = 10.0;

/// One engine's points: `(size, figure, stopped by the time limit)`, by size.
pub(super) type Line = Vec<(u64, f64, bool)>;

/// For each engine of `engines` (by index) with a point, `workload`'s `figure` against
/// `size` over `rows`: the rows where the figure is finite and positive, sorted by size.
pub(super) fn lines(
    rows: &[Measurement],
    engines: &[String],
    workload: &str,
    size: fn(&Measurement) -> u64,
    figure: Figure,
) -> Vec<(usize, Line)> {
    engines
        .iter()
        .enumerate()
        .filter_map(|(i, engine)| {
            let mut points: Line = rows
                .iter()
                .filter(|r| &r.engine == engine && r.workload == workload)
                .filter_map(|r| {
                    let value = figure(r).filter(|v| v.is_finite() && *v > 0.0)?;
                    Some((size(r), value, r.time_limited))
                })
                .collect();
            points.sort_by_key(|p| p.0);
            (!points.is_empty()).then_some((i, points))
        })
        .collect()
}

/// The distinct positive sizes of `lines`, in increasing order.
pub(super) fn sizes(lines: &[(usize, Line)]) -> Vec<u64> {
    let mut sizes: Vec<u64> = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .filter(|n| *n > 0)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// The vertical scale for the values of `lines`, its grid lines labelled by `label`, and
/// whether it is logarithmic (the values span more than [`LOG_SPREAD`]).
pub(super) fn y_scale(
    lines: &[(usize, Line)],
    label: fn(f64) -> String,
) -> (Scale, Vec<(f64, String)>, bool) {
    let values = || lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (lo, hi) = values().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let log = hi > LOG_SPREAD * lo;
    let (scale, ticks) = if log {
        log_scale_of(values())
    } else {
        linear_scale(hi)
    };
    let ticks = ticks.into_iter().map(|(v, _)| (v, label(v))).collect();
    (scale, ticks, log)
}

/// Where one plot sits and how figures map onto it.
pub(super) struct Plot {
    /// The top of the plot area.
    pub(super) top: f64,
    /// The bottom of the plot area.
    pub(super) bottom: f64,
    /// `log10` of the sizes at the left and right edges.
    x_range: (f64, f64),
    scale: Scale,
}

impl Plot {
    /// Room above the plot area for its title.
    pub(super) const HEAD: f64 = 28.0;
    /// Room below the plot area for the size labels and the caption.
    pub(super) const FOOT: f64 = 50.0;

    /// A plot whose title sits at `top` (the plot area [`Plot::HEAD`] below), for the
    /// sizes `sizes` (sorted, at least two) and figures on `scale`.
    pub(super) fn new(top: f64, sizes: &[u64], scale: Scale) -> Plot {
        let top = top + Self::HEAD;
        let first = (sizes[0] as f64).log10();
        let last = (sizes[sizes.len() - 1] as f64).log10();
        let pad = (last - first) * 0.08;
        Plot {
            top,
            bottom: top + PLOT_HEIGHT,
            x_range: (first - pad, last + pad),
            scale,
        }
    }

    /// Where the next plot's title goes.
    pub(super) fn end(&self) -> f64 {
        self.bottom + Self::FOOT
    }

    fn x(&self, size: u64) -> f64 {
        let (lo, hi) = self.x_range;
        LEFT + ((size as f64).log10() - lo) / (hi - lo) * PLOT_WIDTH
    }

    fn y(&self, value: f64) -> f64 {
        self.bottom - self.scale.at(value).clamp(0.0, 1.0) * PLOT_HEIGHT
    }

    /// The plot's `title`, the grid with its labels (`ticks` on the figure's axis, `sizes`
    /// named by `size_label` on the other), and the `caption` under it.
    pub(super) fn frame(
        &self,
        out: &mut String,
        title: &str,
        ticks: &[(f64, String)],
        sizes: &[u64],
        size_label: fn(u64) -> String,
        caption: &str,
    ) {
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"#,
            self.top - 12.0,
            escape(title)
        );
        let right = LEFT + PLOT_WIDTH;
        for (value, label) in ticks {
            let y = self.y(*value);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#666">{label}</text>"##,
                LEFT - 6.0,
                y + 3.0
            );
        }
        for &size in sizes {
            let x = self.x(size);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#666">{}</text>"##,
                self.top,
                self.bottom,
                self.bottom + 14.0,
                size_label(size)
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{:.1}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" fill="none" stroke="#999"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">{}</text>"##,
            self.top,
            LEFT + PLOT_WIDTH / 2.0,
            self.bottom + 32.0,
            escape(caption)
        );
    }

    /// One engine's line and its points, in the colour of engine number `index`; `tooltip`
    /// says what a point is (already escaped).
    pub(super) fn line(
        &self,
        out: &mut String,
        engine: &str,
        index: usize,
        points: &[(u64, f64, bool)],
        tooltip: impl Fn(u64, f64, bool) -> String,
    ) {
        let colour = PALETTE[index % PALETTE.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(size, value, _)| format!("{:.1},{:.1}", self.x(size), self.y(value)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"><title>{}</title></polyline>"#,
            path.join(" "),
            escape(engine)
        );
        for &(size, value, limited) in points {
            let fill = if limited { "white" } else { colour };
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{fill}" stroke="{colour}" stroke-width="1.5"><title>{}</title></circle>"#,
                self.x(size),
                self.y(value),
                tooltip(size, value, limited)
            );
        }
    }
}
