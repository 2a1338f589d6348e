//! The scaling chart: how one workload's rate changes with the number of keys.
//!
//! A run over several key counts (`kvbench --num 200000,400000,800000`) measures every engine
//! on every workload at each count. For one workload, this chart puts the count on the
//! horizontal axis and ops/s on the vertical one, and draws one line per engine through its
//! points, in the engine's colour of the run's other charts. A flat line is an engine whose
//! rate does not depend on the data's size; a falling one pays for it (more levels to
//! search, a cache that no longer holds the working set, an index that outgrows memory).
//!
//! * **Keys**: a logarithmic scale (counts usually grow by factors), with a grid line and a
//!   label at each count that was run.
//! * **Rates**: a logarithmic scale with a line at each power of ten when they span more
//!   than a factor of [`LOG_SPREAD`], else a linear one from 0, as in the amplification chart.
//! * **Points** are filled, or hollow when the time limit stopped that workload (its rate is
//!   over the operations done, as `*` says in the table); each has a tooltip with its figures.
//!
//! Rows without a rate (an error, `compact`) are left out; a workload with fewer than two
//! counts that have a rate gets no chart.

use std::fmt::Write;

use super::{
    LEFT, PALETTE, PLOT_WIDTH, Scale, distinct, escape, header, header_height, linear_scale,
    log_scale_of, short,
};
use crate::measurement::Measurement;
use crate::report;

/// Height of the plot area.
const PLOT_HEIGHT: f64 = 280.0;

/// Rates spanning more than this factor go on a logarithmic scale.
pub const LOG_SPREAD: f64 = 10.0;

/// One engine's points: `(key count, ops/s, stopped by the time limit)`, by key count.
type Line = Vec<(u64, f64, bool)>;

/// The SVG chart of `workload`'s ops/s against the number of keys across `rows` (every row
/// of the run: the engines' colours follow their order in it), one line per engine; `None`
/// when fewer than two key counts have a rate for this workload.
pub fn scaling_chart(title: &str, workload: &str, rows: &[Measurement]) -> Option<String> {
    let engines = distinct(rows, |r| &r.engine);
    let lines: Vec<(usize, Line)> = engines
        .iter()
        .enumerate()
        .filter_map(|(i, engine)| {
            let mut points: Line = rows
                .iter()
                .filter(|r| &r.engine == engine && r.workload == workload)
                .filter_map(|r| {
                    let rate = r.ops_per_sec.filter(|v| v.is_finite() && *v > 0.0)?;
                    Some((r.num, rate, r.time_limited))
                })
                .collect();
            points.sort_by_key(|p| p.0);
            (!points.is_empty()).then_some((i, points))
        })
        .collect();
    let mut nums: Vec<u64> = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .filter(|n| *n > 0)
        .collect();
    nums.sort_unstable();
    nums.dedup();
    if nums.len() < 2 {
        return None;
    }
    let rates = || lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (lo, hi) = rates().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let log = hi > LOG_SPREAD * lo;
    let (scale, ticks) = if log {
        log_scale_of(rates())
    } else {
        linear_scale(hi)
    };
    // Rates are large numbers: `1.25M` reads better than `1250000`.
    let ticks: Vec<(f64, String)> = ticks.into_iter().map(|(v, _)| (v, short(v))).collect();
    let plot = Plot::new(&engines, &nums, scale);
    let mut out = header(title, &engines, plot.bottom + 50.0);
    plot.frame(&mut out, workload, log, &ticks, &nums);
    for (engine, points) in &lines {
        plot.line(&mut out, &engines[*engine], *engine, points);
    }
    out.push_str("</svg>\n");
    Some(out)
}

/// Where the plot sits and how figures map onto it.
struct Plot {
    top: f64,
    bottom: f64,
    /// `log10` of the key counts at the left and right edges.
    x_range: (f64, f64),
    scale: Scale,
}

impl Plot {
    /// The plot under the chart's header, for key counts `nums` (sorted, at least two) and
    /// rates on `scale`.
    fn new(engines: &[String], nums: &[u64], scale: Scale) -> Plot {
        let top = header_height(engines) + 28.0;
        let first = (nums[0] as f64).log10();
        let last = (nums[nums.len() - 1] as f64).log10();
        // A margin of 8 % of the span on each side keeps the end points off the frame.
        let pad = (last - first) * 0.08;
        Plot {
            top,
            bottom: top + PLOT_HEIGHT,
            x_range: (first - pad, last + pad),
            scale,
        }
    }

    fn x(&self, num: u64) -> f64 {
        let (lo, hi) = self.x_range;
        LEFT + ((num as f64).log10() - lo) / (hi - lo) * PLOT_WIDTH
    }

    fn y(&self, rate: f64) -> f64 {
        self.bottom - self.scale.at(rate).clamp(0.0, 1.0) * PLOT_HEIGHT
    }

    /// The panel's title, the grid with its labels, and the axes' captions.
    fn frame(
        &self,
        out: &mut String,
        workload: &str,
        log: bool,
        ticks: &[(f64, String)],
        nums: &[u64],
    ) {
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}: operations per second against the number of keys</text>"#,
            self.top - 12.0,
            escape(workload)
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
        for &num in nums {
            let x = self.x(num);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#666">{}</text>"##,
                self.top,
                self.bottom,
                self.bottom + 14.0,
                report::thousands(num)
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{:.1}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" fill="none" stroke="#999"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">number of keys (log scale); ops/s on a {} scale; hollow: stopped by the time limit</text>"##,
            self.top,
            LEFT + PLOT_WIDTH / 2.0,
            self.bottom + 32.0,
            if log { "log" } else { "linear" }
        );
    }

    /// One engine's line and its points, in its colour.
    fn line(&self, out: &mut String, engine: &str, index: usize, points: &[(u64, f64, bool)]) {
        let colour = PALETTE[index % PALETTE.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(num, rate, _)| format!("{:.1},{:.1}", self.x(num), self.y(rate)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"><title>{}</title></polyline>"#,
            path.join(" "),
            escape(engine)
        );
        for &(num, rate, limited) in points {
            let fill = if limited { "white" } else { colour };
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{fill}" stroke="{colour}" stroke-width="1.5"><title>{}: {} keys, {} ops/s{}</title></circle>"#,
                self.x(num),
                self.y(rate),
                escape(engine),
                report::thousands(num),
                report::rate(rate),
                if limited { "*" } else { "" }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(engine: &str, workload: &str, num: u64, ops: Option<f64>, limited: bool) -> Measurement {
        Measurement {
            engine: engine.into(),
            workload: workload.into(),
            num,
            ops_per_sec: ops,
            time_limited: limited,
            ..Measurement::default()
        }
    }

    #[test]
    fn a_line_per_engine_and_a_point_per_count() {
        let rows = vec![
            row("lsm", "fillrandom", 2000, Some(400_000.0), false),
            row("lsm", "compact", 2000, None, false),
            row("b<x>", "fillrandom", 2000, Some(900.0), false),
            row("lsm", "fillrandom", 4000, Some(350_000.0), true),
            row("lsm", "compact", 4000, None, false),
            row("b<x>", "fillrandom", 4000, Some(800.0), false),
        ];
        let svg = scaling_chart("run", "fillrandom", &rows).unwrap();
        assert!(
            svg.starts_with("<svg ") && svg.ends_with("</svg>\n"),
            "{svg}"
        );
        assert_eq!(svg.matches("<polyline ").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle ").count(), 4, "{svg}");
        assert_eq!(
            svg.matches(r##"fill="white" stroke="#4e79a7""##).count(),
            1,
            "one hollow point: {svg}"
        );
        // Both counts are labelled on the key axis, the rates are on decades (900 to 400k).
        assert!(
            svg.contains(">2,000</text>") && svg.contains(">4,000</text>"),
            "{svg}"
        );
        assert!(
            svg.contains(">100</text>") && svg.contains(">1M</text>"),
            "{svg}"
        );
        assert!(svg.contains("ops/s on a log scale;"), "{svg}");
        assert!(svg.contains("b&lt;x&gt;") && !svg.contains("b<x>"), "{svg}");
        // The legend is the ops chart's: one swatch per engine, in the run's order.
        assert!(
            svg.contains(r##"fill="#4e79a7"/><text x="166.0" y="46.0">lsm</text>"##),
            "{svg}"
        );
        // Left to right by count: the 4,000-key point is right of the 2,000-key one.
        let xs: Vec<f64> = svg
            .match_indices("<circle cx=\"")
            .map(|(i, m)| {
                let rest = &svg[i + m.len()..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(xs[0] < xs[1] && xs[2] < xs[3], "{xs:?}");
        // A workload without rates, or with one count, gets no chart.
        assert!(scaling_chart("run", "compact", &rows).is_none());
        assert!(scaling_chart("run", "fillrandom", &rows[..3]).is_none());
    }

    #[test]
    fn close_rates_stay_on_a_linear_scale_from_zero() {
        let rows = vec![
            row("lsm", "readrandom", 1000, Some(300.0), false),
            row("lsm", "readrandom", 10_000, Some(200.0), false),
        ];
        let svg = scaling_chart("run", "readrandom", &rows).unwrap();
        assert!(svg.contains("ops/s on a linear scale;"), "{svg}");
        assert!(
            svg.contains(">0</text>") && svg.contains(">500</text>"),
            "{svg}"
        );
        let big: Vec<Measurement> = rows
            .iter()
            .map(|r| Measurement {
                ops_per_sec: r.ops_per_sec.map(|v| v * 10_000.0),
                ..r.clone()
            })
            .collect();
        let svg = scaling_chart("run", "readrandom", &big).unwrap();
        assert!(
            svg.contains(">1.25M</text>") && svg.contains(">5M</text>"),
            "{svg}"
        );
        // The higher rate is drawn higher (a smaller y).
        let ys: Vec<f64> = svg
            .match_indices(" cy=\"")
            .map(|(i, m)| {
                let rest = &svg[i + m.len()..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(ys[0] < ys[1], "{ys:?}");
    }
}
