//! The scaling chart: how one workload's rate changes with the number of keys.
//!
//! A run over several key counts (`kvbench --num 200000,400000,800000`) measures every engine
//! on every workload at each count. For one workload, this chart puts the count on the
//! horizontal axis and ops/s on the vertical one, and draws one line per engine through its
//! points, in the engine's colour of the run's other charts. A flat line is an engine whose
//! rate does not depend on the data's size; a falling one pays for it (more levels to
//! search, a cache that no longer holds the working set, an index that outgrows memory).
//!
//! The axes and points are the sweep charts' common plot ([`super::lines`]): the keys on a
//! logarithmic scale with a label at each count that was run; the rates on a logarithmic
//! scale when they span more than a factor of [`super::lines::LOG_SPREAD`], else a linear
//! one from 0; hollow points where the time limit stopped the workload.
//!
//! Rows without a rate (an error, `compact`) are left out; a workload with fewer than two
//! counts that have a rate gets no chart.

use super::lines::{self, Plot};
use super::{distinct, escape, header, header_height, short};
use crate::measurement::Measurement;
use crate::report;

/// The SVG chart of `workload`'s ops/s against the number of keys across `rows` (every row
/// of the run: the engines' colours follow their order in it), one line per engine; `None`
/// when fewer than two key counts have a rate for this workload.
pub fn scaling_chart(title: &str, workload: &str, rows: &[Measurement]) -> Option<String> {
    let engines = distinct(rows, |r| &r.engine);
    let lines = lines::lines(rows, &engines, workload, |r| r.num, |r| r.ops_per_sec);
    let nums = lines::sizes(&lines);
    if nums.len() < 2 {
        return None;
    }
    // Rates are large numbers: `1.25M` reads better than `1250000`.
    let (scale, ticks, log) = lines::y_scale(&lines, short);
    let plot = Plot::new(header_height(&engines), &nums, scale);
    let mut out = header(title, &engines, plot.end());
    plot.frame(
        &mut out,
        &format!("{workload}: operations per second against the number of keys"),
        &ticks,
        &nums,
        report::thousands,
        &format!(
            "number of keys (log scale); ops/s on a {} scale; hollow: stopped by the time limit",
            if log { "log" } else { "linear" }
        ),
    );
    for (index, points) in &lines {
        let engine = &engines[*index];
        plot.line(&mut out, engine, *index, points, |num, rate, limited| {
            format!(
                "{}: {} keys, {} ops/s{}",
                escape(engine),
                report::thousands(num),
                report::rate(rate),
                if limited { "*" } else { "" }
            )
        });
    }
    out.push_str("</svg>\n");
    Some(out)
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
