//! The value-size chart: how one workload's rate and write amplification change with the
//! size of the values.
//!
//! A run over several value sizes (`kvbench --value-size 100,1K,16K`) measures every engine
//! on every workload at each size. For one workload, this chart stacks two plots with the
//! value size on the horizontal axis, one line per engine in its colour of the run's other
//! charts:
//!
//! 1. **ops/s** against the value size. Every engine slows as values grow (there are more
//!    bytes to move per operation); the tooltips add the user bytes per second, which is the
//!    figure that should grow with the size.
//! 2. **write amplification** (disk bytes written / user bytes written) against the value
//!    size, for the workloads that write. This is where key-value separation shows: an LSM
//!    tree that keeps values in its tables rewrites them at every compaction, so its write
//!    amplification does not fall as values grow; a store that writes each value once to a
//!    value log and compacts only keys and pointers sees its write amplification fall
//!    towards 1 (plus the log's garbage collection) as the values outweigh the keys. At small
//!    values the pointer is as big as the value, and the separated store pays a second read
//!    per `get` for nothing: there it loses.
//!
//! Both plots are the sweep charts' common plot ([`super::lines`]): sizes on a logarithmic
//! scale, labelled at each size run (`100`, `1K`, `16K`); figures on a logarithmic scale when
//! they span more than a factor of ten, else linear from 0; hollow points where the time
//! limit stopped the workload. A plot with fewer than two sizes that have the figure is left
//! out (no write amplification for `readrandom`); a workload left with no plot gets no chart.

use super::lines::{self, Line, Plot};
use super::{distinct, escape, header, header_height, short};
use crate::measurement::Measurement;
use crate::report;

/// The SVG chart of `workload`'s ops/s and write amplification against the value size
/// across `rows` (every row of the run: the engines' colours follow their order in it), one
/// line per engine; `None` when neither figure has two value sizes for this workload.
pub fn value_size_chart(title: &str, workload: &str, rows: &[Measurement]) -> Option<String> {
    let engines = distinct(rows, |r| &r.engine);
    let size = |r: &Measurement| r.value_size as u64;
    let rates = lines::lines(rows, &engines, workload, size, |r| r.ops_per_sec);
    let amps = lines::lines(rows, &engines, workload, size, |r| r.write_amp);
    let mut body = String::new();
    let mut top = header_height(&engines);
    if lines::sizes(&rates).len() >= 2 {
        top = rate_plot(&mut body, top, workload, &engines, &rates).end();
    }
    if lines::sizes(&amps).len() >= 2 {
        top = amp_plot(&mut body, top, workload, &engines, &amps).end();
    }
    if body.is_empty() {
        return None;
    }
    let mut out = header(title, &engines, top);
    out.push_str(&body);
    out.push_str("</svg>\n");
    Some(out)
}

/// `1024` → `1K`, `16384` → `16K`, `100` → `100`: sizes as `--value-size` takes them.
pub fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

/// The ops/s plot, its title at `top`; returns it for the next plot's place.
fn rate_plot(
    out: &mut String,
    top: f64,
    workload: &str,
    engines: &[String],
    lines: &[(usize, Line)],
) -> Plot {
    let sizes = lines::sizes(lines);
    let (scale, ticks, log) = lines::y_scale(lines, short);
    let plot = Plot::new(top, &sizes, scale);
    plot.frame(
        out,
        &format!("{workload}: operations per second against the value size"),
        &ticks,
        &sizes,
        size_label,
        &format!(
            "value size in bytes (log scale); ops/s on a {} scale; hollow: stopped by the time limit",
            scale_name(log)
        ),
    );
    for (index, points) in lines {
        let engine = &engines[*index];
        plot.line(out, engine, *index, points, |size, rate, limited| {
            format!(
                "{}: {}-byte values, {} ops/s{} ({:.1} MB/s of values)",
                escape(engine),
                report::thousands(size),
                report::rate(rate),
                if limited { "*" } else { "" },
                rate * size as f64 / 1e6
            )
        });
    }
    plot
}

/// The write amplification plot, its title at `top`; returns it for the next plot's place.
fn amp_plot(
    out: &mut String,
    top: f64,
    workload: &str,
    engines: &[String],
    lines: &[(usize, Line)],
) -> Plot {
    let sizes = lines::sizes(lines);
    let (scale, ticks, log) = lines::y_scale(lines, |v| format!("{}", (v * 100.0).round() / 100.0));
    let plot = Plot::new(top, &sizes, scale);
    plot.frame(
        out,
        &format!("{workload}: write amplification against the value size"),
        &ticks,
        &sizes,
        size_label,
        &format!(
            "value size in bytes (log scale); disk bytes written / user bytes written on a {} scale",
            scale_name(log)
        ),
    );
    for (index, points) in lines {
        let engine = &engines[*index];
        plot.line(out, engine, *index, points, |size, amp, limited| {
            format!(
                "{}: {}-byte values, W-amp {}{}",
                escape(engine),
                report::thousands(size),
                report::amp(amp),
                if limited { "*" } else { "" }
            )
        });
    }
    plot
}

fn scale_name(log: bool) -> &'static str {
    if log { "log" } else { "linear" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        engine: &str,
        workload: &str,
        value_size: usize,
        ops: f64,
        w: Option<f64>,
    ) -> Measurement {
        Measurement {
            engine: engine.into(),
            workload: workload.into(),
            num: 1000,
            value_size,
            ops_per_sec: Some(ops),
            write_amp: w,
            ..Measurement::default()
        }
    }

    /// The `attr` values of every `<circle>`, in order.
    fn circles(svg: &str, attr: &str) -> Vec<f64> {
        let needle = format!(" {attr}=\"");
        svg.split("<circle")
            .skip(1)
            .map(|c| {
                let rest = &c[c.find(&needle).unwrap() + needle.len()..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn two_plots_a_line_per_engine_and_a_point_per_size() {
        let rows = vec![
            row("lsm", "fillrandom", 100, 400_000.0, Some(8.0)),
            row("kv<sep>", "fillrandom", 100, 200_000.0, Some(9.0)),
            row("lsm", "fillrandom", 1024, 100_000.0, Some(8.5)),
            row("kv<sep>", "fillrandom", 1024, 150_000.0, Some(1.5)),
            row("lsm", "readrandom", 100, 500_000.0, None),
            row("lsm", "readrandom", 1024, 300_000.0, None),
        ];
        let svg = value_size_chart("run", "fillrandom", &rows).unwrap();
        assert!(
            svg.starts_with("<svg ") && svg.ends_with("</svg>\n"),
            "{svg}"
        );
        assert_eq!(svg.matches("<polyline ").count(), 4, "{svg}");
        assert_eq!(svg.matches("<circle ").count(), 8, "{svg}");
        assert!(svg.contains("fillrandom: operations per second against the value size"));
        assert!(svg.contains("fillrandom: write amplification against the value size"));
        assert!(
            svg.contains(">100</text>") && svg.contains(">1K</text>"),
            "{svg}"
        );
        assert!(
            svg.contains("kv&lt;sep&gt;") && !svg.contains("kv<sep>"),
            "{svg}"
        );
        // The tooltip gives the bytes per second: 150,000 × 1,024 bytes = 153.6 MB/s.
        assert!(
            svg.contains("kv&lt;sep&gt;: 1,024-byte values, 150,000 ops/s (153.6 MB/s of values)"),
            "{svg}"
        );
        // W-amp 1.5 to 9: within a factor of ten, so linear from 0.
        assert!(svg.contains("on a linear scale</text>"), "{svg}");
        // Left to right by size, and the W-amp plot lies below the ops/s plot.
        let (xs, ys) = (circles(&svg, "cx"), circles(&svg, "cy"));
        assert!(xs[0] < xs[1] && xs[4] < xs[5], "{xs:?}");
        assert!(
            ys[4..].iter().all(|y| ys[..4].iter().all(|top| top < y)),
            "{ys:?}"
        );
        // In the W-amp plot the separated store's 1.5 is drawn lower than lsm's 8.5.
        assert!(ys[7] > ys[5], "{ys:?}");
        // A read workload has rates but no W-amp: one plot.
        let reads = value_size_chart("run", "readrandom", &rows).unwrap();
        assert_eq!(reads.matches("<polyline ").count(), 1, "{reads}");
        assert!(!reads.contains("write amplification against"), "{reads}");
        // One size, or no such workload: no chart.
        assert!(value_size_chart("run", "fillrandom", &rows[..2]).is_none());
        assert!(value_size_chart("run", "compact", &rows).is_none());
    }

    #[test]
    fn sizes_read_as_the_command_line_writes_them() {
        assert_eq!(size_label(100), "100");
        assert_eq!(size_label(1024), "1K");
        assert_eq!(size_label(16 << 10), "16K");
        assert_eq!(size_label(1000), "1000");
        assert_eq!(size_label(1 << 20), "1M");
        assert_eq!(size_label(1536), "1536");
    }
}
