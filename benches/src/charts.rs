//! SVG charts of a run, to open in any browser: throughput and amplification per workload,
//! the engines side by side.
//!
//! * [`ops_chart`]: ops/s per workload, one bar per engine, on a logarithmic scale (the
//!   engines differ by orders of magnitude on some workloads).
//! * [`amp_chart`]: three panels, write, read and space amplification, one bar per engine
//!   for every workload where the figure applies, on a linear scale, or a logarithmic one
//!   when a panel's figures span more than two orders of magnitude (a B-tree's write
//!   amplification of hundreds beside an LSM tree's few would flatten every other bar).
//! * [`scaling_chart`] (in `charts/scaling.rs`): for a run over several key counts
//!   (`kvbench --num 2000,4000`), one workload's ops/s against the number of keys, one line
//!   per engine, the keys on a logarithmic scale and the rates on one too when they span
//!   more than a factor of ten.
//! * [`value_size_chart`] (in `charts/value_size.rs`): for a run over several value sizes
//!   (`kvbench --value-size 100,1K,16K`), one workload's ops/s and write amplification
//!   against the value size, one line per engine: where key-value separation wins and where
//!   it loses. It and the scaling chart draw the same line plot (`charts/lines.rs`).
//!
//! Every chart opens the same way (`header`: the title, then the engines' colours, an
//! engine keeping its colour in every chart of a run), so they read as one set.
//!
//! The SVG is written by hand (a few rectangles, lines and text elements), so it needs no
//! dependency and diffs as text.

mod lines;
mod scaling;
mod value_size;

use std::fmt::Write;

use crate::measurement::Measurement;
use crate::report;

pub use scaling::scaling_chart;
pub use value_size::{size_label, value_size_chart};

/// Fill colours of the engines' bars, in the order the engines first appear.
const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

const LEFT: f64 = 150.0;
const PLOT_WIDTH: f64 = 560.0;
const RIGHT: f64 = 90.0;
const BAR: f64 = 11.0;
const GROUP_GAP: f64 = 10.0;
const WIDTH: f64 = LEFT + PLOT_WIDTH + RIGHT;

/// The distinct values of `f` over `rows`, in order of first appearance.
fn distinct(rows: &[Measurement], f: fn(&Measurement) -> &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for row in rows {
        if !seen.iter().any(|s| s == f(row)) {
            seen.push(f(row).to_string());
        }
    }
    seen
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A figure read from a row.
type Figure = fn(&Measurement) -> Option<f64>;

/// One workload's bars: `(workload, [(engine index, value, cut short by the time limit)])`.
type Group = (String, Vec<(usize, f64, bool)>);

/// How values map to the plot's width.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// `10^lo` at the left edge, `10^(lo + decades)` at the right.
    Log { lo: i32, decades: i32 },
    /// 0 at the left edge, `max` at the right.
    Linear { max: f64 },
}

impl Scale {
    /// Where `v` falls, from 0.0 (left) to 1.0 (right).
    fn at(self, v: f64) -> f64 {
        match self {
            Scale::Log { lo, decades } => {
                ((v.log10() - f64::from(lo)) / f64::from(decades)).clamp(0.0, 1.0)
            }
            Scale::Linear { max } => v / max,
        }
    }
}

/// One panel of grouped horizontal bars: a group per workload, a bar per engine.
struct Panel {
    title: String,
    groups: Vec<Group>,
    scale: Scale,
    /// Vertical grid lines: `(value, label)`.
    ticks: Vec<(f64, String)>,
    label: fn(f64) -> String,
}

impl Panel {
    fn height(&self) -> f64 {
        let bars: f64 = self
            .groups
            .iter()
            .map(|(_, bars)| bars.len().max(1) as f64 * BAR + GROUP_GAP)
            .sum();
        40.0 + bars + 20.0
    }

    fn draw(&self, out: &mut String, top: f64, engines: &[String]) {
        let height = self.height();
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#,
            top + 16.0,
            escape(&self.title)
        );
        let plot_top = top + 28.0;
        let plot_bottom = top + height - 20.0;
        for (value, label) in &self.ticks {
            let x = LEFT + self.scale.at(*value) * PLOT_WIDTH;
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{plot_top}" x2="{x:.1}" y2="{plot_bottom}" stroke="#ddd"/><text x="{x:.1}" y="{}" font-size="10" text-anchor="middle" fill="#666">{label}</text>"##,
                plot_bottom + 12.0
            );
        }
        let mut y = plot_top;
        for (workload, bars) in &self.groups {
            let group_height = bars.len().max(1) as f64 * BAR;
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
                LEFT - 8.0,
                y + group_height / 2.0,
                escape(workload)
            );
            for (i, (engine, value, limited)) in bars.iter().enumerate() {
                let text = format!(
                    "{}{}",
                    (self.label)(*value),
                    if *limited { "*" } else { "" }
                );
                let width = (self.scale.at(*value).clamp(0.0, 1.0) * PLOT_WIDTH).max(1.0);
                let bar_y = y + i as f64 * BAR;
                let _ = writeln!(
                    out,
                    r#"<rect x="{LEFT}" y="{bar_y:.1}" width="{width:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" font-size="9" dominant-baseline="middle">{}</text>"#,
                    BAR - 1.0,
                    PALETTE[engine % PALETTE.len()],
                    escape(&engines[*engine]),
                    text,
                    LEFT + width + 3.0,
                    bar_y + BAR / 2.0,
                    text
                );
            }
            y += group_height + GROUP_GAP;
        }
    }
}

fn svg(title: &str, engines: &[String], panels: &[Panel]) -> String {
    let total: f64 = header_height(engines) + panels.iter().map(Panel::height).sum::<f64>();
    let mut out = header(title, engines, total);
    let mut top = header_height(engines);
    for panel in panels {
        panel.draw(&mut out, top, engines);
        top += panel.height();
    }
    out.push_str("</svg>\n");
    out
}

/// The height of [`header`]: the title and the engines' legend, three to a row.
fn header_height(engines: &[String]) -> f64 {
    50.0 + engines.len().div_ceil(3) as f64 * 16.0
}

/// The opening of every chart, `total` pixels high: the `<svg>` element, a white
/// background, the title, and the legend of the engines' colours.
fn header(title: &str, engines: &[String], total: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{total:.0}" viewBox="0 0 {WIDTH} {total:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="20" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (i, engine) in engines.iter().enumerate() {
        let x = LEFT + (i % 3) as f64 * (PLOT_WIDTH / 3.0);
        let y = 36.0 + (i / 3) as f64 * 16.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{y:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            PALETTE[i % PALETTE.len()],
            x + 16.0,
            y + 10.0,
            escape(engine)
        );
    }
    out
}

/// Bars of `figure` per workload and engine, for the rows where it is known.
fn groups(rows: &[Measurement], engines: &[String], figure: Figure) -> Vec<Group> {
    distinct(rows, |r| &r.workload)
        .into_iter()
        .filter_map(|workload| {
            let bars: Vec<(usize, f64, bool)> = engines
                .iter()
                .enumerate()
                .filter_map(|(i, engine)| {
                    let row = rows
                        .iter()
                        .find(|r| &r.engine == engine && r.workload == workload)?;
                    let value = figure(row).filter(|v| v.is_finite())?;
                    Some((i, value, row.time_limited))
                })
                .collect();
            (!bars.is_empty()).then_some((workload, bars))
        })
        .collect()
}

/// Ops/s per workload across engines, on a logarithmic scale.
pub fn ops_chart(title: &str, rows: &[Measurement]) -> String {
    let engines = distinct(rows, |r| &r.engine);
    let bars = groups(rows, &engines, |r| r.ops_per_sec.filter(|v| *v > 0.0));
    let (scale, ticks) = log_scale(&bars);
    let panel = Panel {
        title: "operations per second (log scale; * stopped by the time limit)".to_string(),
        groups: bars,
        scale,
        ticks,
        label: report::rate,
    };
    svg(title, &engines, &[panel])
}

/// A logarithmic scale from the power of ten at or below the smallest bar to the one at or
/// above the largest (at least one decade), and a tick at each power of ten.
fn log_scale(bars: &[Group]) -> (Scale, Vec<(f64, String)>) {
    log_scale_of(bars.iter().flat_map(|(_, b)| b.iter().map(|(_, v, _)| *v)))
}

/// [`log_scale`] over any values.
fn log_scale_of(values: impl Iterator<Item = f64>) -> (Scale, Vec<(f64, String)>) {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo_exp, hi_exp) = if lo > hi {
        (0, 1)
    } else {
        let lo_exp = lo.log10().floor() as i32;
        (lo_exp, (hi.log10().ceil() as i32).max(lo_exp + 1))
    };
    let scale = Scale::Log {
        lo: lo_exp,
        decades: hi_exp - lo_exp,
    };
    let ticks = (lo_exp..=hi_exp)
        .map(|e| {
            let v = 10f64.powi(e);
            (v, short(v))
        })
        .collect();
    (scale, ticks)
}

/// Write, read and space amplification per workload across engines.
pub fn amp_chart(title: &str, rows: &[Measurement]) -> String {
    let engines = distinct(rows, |r| &r.engine);
    let figures: [(&str, Figure); 3] = [
        (
            "write amplification (disk bytes written / user bytes written)",
            |r| r.write_amp,
        ),
        ("read amplification (disk reads per get)", |r| r.read_amp),
        (
            "space amplification after the workload (disk bytes / live bytes)",
            |r| r.space_amp,
        ),
    ];
    let panels: Vec<Panel> = figures
        .into_iter()
        .map(|(name, figure)| {
            let bars = groups(rows, &engines, figure);
            let values = || bars.iter().flat_map(|(_, b)| b.iter().map(|(_, v, _)| *v));
            let max = values().fold(0.0f64, f64::max);
            let min_positive = values().filter(|v| *v > 0.0).fold(f64::MAX, f64::min);
            if max > 100.0 * min_positive {
                let (scale, ticks) = log_scale(&bars);
                return Panel {
                    title: format!("{name} (log scale)"),
                    groups: bars,
                    scale,
                    ticks,
                    label: report::amp,
                };
            }
            let (scale, ticks) = linear_scale(max);
            Panel {
                title: name.to_string(),
                groups: bars,
                scale,
                ticks,
                label: report::amp,
            }
        })
        .collect();
    svg(title, &engines, &panels)
}

/// A linear scale from 0 to a round number at or above `max`, with five ticks.
fn linear_scale(max: f64) -> (Scale, Vec<(f64, String)>) {
    let max = nice_max(max);
    let ticks = (0..=4)
        .map(|i| {
            let v = max * f64::from(i) / 4.0;
            (v, format!("{}", (v * 1000.0).round() / 1000.0))
        })
        .collect();
    (Scale::Linear { max }, ticks)
}

/// A round number at or above `max` (1, 2 or 5 times a power of ten), for an axis end.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * power)
}

/// `1000` → `1k`, `1000000` → `1M`.
fn short(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{}G", v / 1e9),
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(engine: &str, workload: &str, ops: Option<f64>, w: Option<f64>) -> Measurement {
        Measurement {
            engine: engine.into(),
            workload: workload.into(),
            ops_per_sec: ops,
            write_amp: w,
            space_amp: Some(1.5),
            ..Measurement::default()
        }
    }

    #[test]
    fn charts_have_a_bar_per_known_figure() {
        let rows = vec![
            row("a", "fillseq", Some(250_000.0), Some(1.1)),
            row("a", "compact", None, None),
            row("b<x>", "fillseq", Some(900.0), Some(3.0)),
        ];
        let ops = ops_chart("run", &rows);
        assert!(ops.starts_with("<svg ") && ops.ends_with("</svg>\n"));
        assert_eq!(ops.matches("<rect x=\"150\"").count(), 2, "{ops}");
        assert!(ops.contains("b&lt;x&gt;") && !ops.contains("b<x>"));
        assert!(
            ops.contains(">100k</text>") && ops.contains(">1M</text>"),
            "{ops}"
        );
        let amp = amp_chart("run", &rows);
        // Two write-amp bars, no read-amp bar, three space-amp bars.
        assert_eq!(amp.matches("<rect x=\"150\"").count(), 5, "{amp}");
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(1.0), 1.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(short(1e6), "1M");
        assert!(!amp.contains("log scale"), "1.1 to 3.0: linear");
    }

    #[test]
    fn amplification_spanning_orders_of_magnitude_goes_to_a_log_scale() {
        let rows = vec![
            row("lsm", "fillrandom", Some(1.0), Some(5.0)),
            row("btree", "fillrandom", Some(1.0), Some(2500.0)),
        ];
        let amp = amp_chart("run", &rows);
        assert!(
            amp.contains(
                "write amplification (disk bytes written / user bytes written) (log scale)"
            ),
            "{amp}"
        );
        assert!(
            amp.contains(">1k</text>") && amp.contains(">10k</text>"),
            "{amp}"
        );
        // The space panel (1.5 everywhere) stays linear.
        assert!(
            amp.contains(">space amplification after the workload (disk bytes / live bytes)<"),
            "{amp}"
        );
    }
}
