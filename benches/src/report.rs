//! Printing the measurements: a terminal table, a Markdown table, and JSON.
//!
//! The terminal and Markdown tables have the same columns:
//!
//! | column | meaning |
//! |---|---|
//! | engine, workload | the engine's label (spec) and the workload's name |
//! | ops/s | entries handled per second of the timed part (`*`: cut short by the time limit) |
//! | p50 µs, p99 µs | latency of one operation (one put, get, delete, seek of 100, scan step, range scan) |
//! | W-amp | disk bytes written / user bytes written, over the workload |
//! | R-amp | disk reads / `get` calls, over the workload (`n/a`: the engine cannot count its disk reads) |
//! | S-amp | bytes on disk / live bytes, after the workload |
//! | peak RSS | the process's peak resident memory during the workload |
//! | notes | the time limit, the writer's rate, a bulk load's share of the disk's bandwidth, open times, keys a non-durable peer lost to a kill, compaction time, the theoretical write amplification, an I/O accounting mismatch, an error |
//!
//! For an engine that reports the write amplification theory predicts for its shape
//! (`extra["write_amp_theory_milli"]`, thousandths: `lsm`, see [`write_amp_theory`]), the
//! notes set the measured W-amp against it: `W-amp theory 17.50: measured 0.62× (within
//! 1.2×)`. "Within 1.2×" means the measured figure is at most 1.2 times the theory: the
//! theory charges every flushed byte for every level it will pass through, at the levels'
//! current sizes, so a workload that ends with compaction work still owed (L0 tables not
//! yet merged, levels over their targets) measures below it; the engine is doing more work
//! than leveled compaction needs only when it measures above.
//!
//! A `-` is a figure that does not apply. Each engine's full settings follow the table, with
//! what the memory budget set on it ([`crate::budget`]: `budget: memtable_bytes=32M (×2:
//! active + 1 immutable) block_cache_bytes=64M`, or why it does not apply) and a peer's own
//! settings line ([`crate::peers::Peer::settings`]) under its options. Above the table, after
//! the run's parameters, come the budget's mode and figures, and the peers this build lacks
//! ([`crate::peers::not_built`]), so a reader knows they were not left out by choice.
//!
//! A run over several key counts (`kvbench --num 2000,4000`) prints one table per count,
//! headed `num=2000`, in the order the counts ran; the columns line up across them. A run
//! over several value sizes (`kvbench --value-size 100,1024`) prints one table per size the
//! same way, headed `value_size=100`; rows that differ in both (made other than by the
//! command line, which refuses that) get headings naming both, `num=2000 value_size=100`.

use std::fmt::Write;

use crate::budget::Budget;
use crate::measurement::Measurement;
use crate::peers;

/// What a run was asked to do, printed above the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// `--num`.
    pub num: u64,
    /// `--key-size`.
    pub key_size: usize,
    /// `--value-size`.
    pub value_size: usize,
    /// `--seed`.
    pub seed: u64,
    /// `--time-limit` in seconds, `None` for none.
    pub time_limit_secs: Option<u64>,
}

impl RunInfo {
    /// One line: `num=... key_size=... value_size=... seed=... time_limit=...`.
    pub fn line(&self) -> String {
        self.line_with_nums(&[self.num])
    }

    /// [`RunInfo::line`] for a run over the key counts `nums`: `num=2000,4000 ...`.
    pub fn line_with_nums(&self, nums: &[u64]) -> String {
        self.line_with(nums, &[self.value_size])
    }

    /// [`RunInfo::line`] for a run over the key counts `nums` and the value sizes
    /// `value_sizes`: `num=2000 key_size=16 value_size=100,1024 ...`.
    pub fn line_with(&self, nums: &[u64], value_sizes: &[usize]) -> String {
        let nums: Vec<String> = nums.iter().map(u64::to_string).collect();
        let value_sizes: Vec<String> = value_sizes.iter().map(usize::to_string).collect();
        format!(
            "num={} key_size={} value_size={} seed={} time_limit={}",
            nums.join(","),
            self.key_size,
            value_sizes.join(","),
            self.seed,
            self.time_limit_secs
                .map_or("none".to_string(), |s| format!("{s}s"))
        )
    }
}

const HEADERS: [&str; 10] = [
    "engine", "workload", "ops/s", "p50 µs", "p99 µs", "W-amp", "R-amp", "S-amp", "peak RSS",
    "notes",
];

/// The cells of one row, in [`HEADERS`] order.
fn cells(row: &Measurement) -> [String; 10] {
    let mut rate = row.ops_per_sec.map_or("-".to_string(), rate);
    if row.time_limited {
        rate.push('*');
    }
    [
        row.engine.clone(),
        row.workload.clone(),
        rate,
        opt(row.p50_us, micros),
        opt(row.p99_us, micros),
        opt(row.write_amp, amp),
        if row.read_amp_unknown {
            "n/a".to_string()
        } else {
            opt(row.read_amp, amp)
        },
        opt(row.space_amp, amp),
        opt(row.peak_rss_bytes, bytes),
        notes(row),
    ]
}

/// Everything about a row that does not fit a column.
pub fn notes(row: &Measurement) -> String {
    let mut notes = Vec::new();
    if row.time_limited {
        notes.push(format!(
            "time limit: {} ops in {:.1} s",
            thousands(row.ops),
            row.elapsed_secs
        ));
    }
    if let Some(w) = row.write_ops_per_sec {
        notes.push(format!("writes {}/s", rate(w)));
    }
    notes.extend(row.disk_note());
    if let Some(ms) = row.open_ms {
        notes.push(format!("open {ms:.1} ms"));
    }
    if let Some(ms) = row.open_after_kill_ms {
        notes.push(format!("after kill {ms:.1} ms"));
    }
    if let Some(live) = row.live_keys_after_kill
        && live < row.num
        && row.error.is_none()
    {
        // Only an engine not durable against a kill gets here without an error row.
        notes.push(format!(
            "after kill: {} of {} keys (expected: not durable against a kill in this configuration)",
            thousands(live),
            thousands(row.num)
        ));
    }
    if row.workload == "compact" && row.error.is_none() {
        notes.push(format!(
            "took {:.3} s, wrote {}",
            row.elapsed_secs,
            bytes(row.disk_bytes_written)
        ));
    }
    if let Some(theory) = write_amp_theory(row) {
        let versus = row.write_amp.map_or(String::new(), |measured| {
            let ratio = measured / theory;
            let within = ratio <= 1.2;
            format!(
                ": measured {ratio:.2}× ({} 1.2×)",
                if within { "within" } else { "over" }
            )
        });
        notes.push(format!("W-amp theory {}{versus}", amp(theory)));
    }
    if row.io_mismatch {
        notes.push(format!(
            "I/O MISMATCH: engine counted {}, OS {}",
            bytes(row.disk_bytes_written),
            row.os_bytes_written.map_or("-".to_string(), bytes)
        ));
    }
    if let Some(e) = &row.error {
        notes.push(format!("ERROR: {e}"));
    }
    notes.join("; ")
}

/// The write amplification theory predicts for the engine's shape after the workload, when
/// the engine reports one (`extra["write_amp_theory_milli"]`) and the workload wrote user
/// bytes (a W-amp to compare it with).
pub fn write_amp_theory(row: &Measurement) -> Option<f64> {
    row.write_amp?;
    let milli = *row.extra.get("write_amp_theory_milli")?;
    Some(milli as f64 / 1000.0)
}

/// The distinct values of `f` over `rows`, in the order they first appear.
fn distinct<T: PartialEq>(rows: &[Measurement], f: impl Fn(&Measurement) -> T) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    for row in rows {
        let value = f(row);
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// The lines above the tables: the run's parameters (with every key count and value size
/// the rows hold), the budget, and the peers this build lacks.
fn preamble(info: &RunInfo, rows: &[Measurement]) -> Vec<String> {
    let nums = distinct(rows, |r| r.num);
    let value_sizes = distinct(rows, |r| r.value_size);
    let mut lines = vec![if nums.len() > 1 || value_sizes.len() > 1 {
        let nums = if nums.is_empty() {
            vec![info.num]
        } else {
            nums
        };
        let value_sizes = if value_sizes.is_empty() {
            vec![info.value_size]
        } else {
            value_sizes
        };
        info.line_with(&nums, &value_sizes)
    } else {
        info.line()
    }];
    lines.extend(budget_line(rows));
    lines.extend(peers::not_built().map(|peer| peer.not_built_line()));
    lines
}

/// The budget's line, from the first row the command line stamped.
fn budget_line(rows: &[Measurement]) -> Option<String> {
    let row = rows.iter().find(|r| !r.budget_mode.is_empty())?;
    let budget = match (row.budget_cache_bytes, row.budget_write_buffer_bytes) {
        (Some(cache), Some(write)) if row.budget_mode == "matched" => Budget::matched(cache, write),
        _ => Budget::OWN,
    };
    Some(budget.line())
}

/// The rows grouped by key count and value size, in order, each group with its heading
/// (`num=2000`, `value_size=100`, or both when both vary): one group of every row, without
/// a heading, when they share both.
fn groups(rows: &[Measurement]) -> Vec<(Option<String>, Vec<&Measurement>)> {
    let sizes = distinct(rows, |r| (r.num, r.value_size));
    if sizes.len() <= 1 {
        return vec![(None, rows.iter().collect())];
    }
    let nums_vary = distinct(rows, |r| r.num).len() > 1;
    let values_vary = distinct(rows, |r| r.value_size).len() > 1;
    sizes
        .into_iter()
        .map(|(num, value_size)| {
            let heading = match (nums_vary, values_vary) {
                (true, true) => format!("num={num} value_size={value_size}"),
                (true, false) => format!("num={num}"),
                _ => format!("value_size={value_size}"),
            };
            let group = rows
                .iter()
                .filter(|r| (r.num, r.value_size) == (num, value_size))
                .collect();
            (Some(heading), group)
        })
        .collect()
}

/// The terminal table (one per key count or value size), then each engine's settings.
pub fn table(info: &RunInfo, rows: &[Measurement]) -> String {
    let body: Vec<[String; 10]> = rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in preamble(info, rows) {
        let _ = writeln!(out, "{line}");
    }
    let line = |out: &mut String, row: &[String]| {
        let mut text = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            let last = i + 1 == row.len();
            // Names and notes read left to right; numbers line up on the right.
            if i < 2 || last {
                text.push_str(cell);
                if !last {
                    text.push_str(&" ".repeat(pad));
                }
            } else {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
            if !last {
                text.push_str("  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    for (heading, group) in groups(rows) {
        if let Some(heading) = heading {
            let _ = writeln!(out, "\n{heading}");
        }
        line(&mut out, &HEADERS.map(String::from));
        line(&mut out, &rule);
        for row in group {
            line(&mut out, &cells(row));
        }
    }
    if rows.iter().any(|r| r.time_limited) {
        let _ = writeln!(
            out,
            "* stopped by the time limit: ops/s over the operations done"
        );
    }
    out.push_str(&settings(rows));
    out
}

/// Each engine label once, with its settings; a peer's settings line below its own.
fn settings(rows: &[Measurement]) -> String {
    let mut out = String::from("settings:\n");
    let mut seen: Vec<&str> = Vec::new();
    for row in rows {
        if seen.contains(&row.engine.as_str()) {
            continue;
        }
        seen.push(&row.engine);
        let settings = if row.settings.is_empty() {
            "(no options)"
        } else {
            &row.settings
        };
        let _ = writeln!(out, "  {}: {settings}", row.engine);
        if !row.budget_settings.is_empty() {
            let _ = writeln!(out, "    budget: {}", row.budget_settings);
        }
        if let Some(peer) = peers::find(&row.engine_name) {
            let _ = writeln!(out, "    {}", peer.settings);
        }
    }
    out
}

/// The same table in Markdown (one per key count or value size), with the run's
/// parameters and settings.
pub fn markdown(info: &RunInfo, rows: &[Measurement]) -> String {
    let mut out = String::new();
    let mut preamble = preamble(info, rows).into_iter();
    if let Some(first) = preamble.next() {
        let _ = writeln!(out, "`{first}`\n");
    }
    let mut listed = false;
    for line in preamble {
        let _ = writeln!(out, "- {line}");
        listed = true;
    }
    if listed {
        out.push('\n');
    }
    for (heading, group) in groups(rows) {
        let grouped = heading.is_some();
        if let Some(heading) = heading {
            let _ = writeln!(out, "**{heading}**\n");
        }
        let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            HEADERS
                .iter()
                .enumerate()
                .map(|(i, _)| if (2..9).contains(&i) { "---:|" } else { "---|" })
                .collect::<String>()
        );
        for row in group {
            let cells = cells(row).map(|c| c.replace('|', "\\|"));
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        if grouped {
            out.push('\n');
        }
    }
    if rows.iter().any(|r| r.time_limited) {
        let _ = writeln!(
            out,
            "\n\\* stopped by the time limit: ops/s over the operations done"
        );
    }
    out.push('\n');
    for line in settings(rows).lines().skip(1) {
        // Engines are the list; the budget's and a peer's lines are nested under their engine.
        let indent = if line.starts_with("    ") { "  " } else { "" };
        let _ = writeln!(out, "{indent}- {}", line.trim());
    }
    out
}

/// The rows as a JSON array (the `--json` file).
///
/// # Errors
/// Never in practice: every field serialises.
pub fn json(rows: &[Measurement]) -> serde_json::Result<String> {
    serde_json::to_string_pretty(rows)
}

fn opt<T: Copy>(value: Option<T>, f: fn(T) -> String) -> String {
    value.map_or("-".to_string(), f)
}

/// An operation rate: whole numbers with thousands separators, one decimal below 100.
pub fn rate(per_sec: f64) -> String {
    if per_sec < 100.0 {
        format!("{per_sec:.1}")
    } else {
        thousands(per_sec.round() as u64)
    }
}

/// A latency in microseconds, with more decimals for small figures.
pub fn micros(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 1000.0 {
        format!("{us:.1}")
    } else {
        thousands(us.round() as u64)
    }
}

/// An amplification factor.
pub fn amp(x: f64) -> String {
    format!("{x:.2}")
}

/// A byte count in B, KiB, MiB or GiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_for_reading() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(rate(123456.7), "123,457");
        assert_eq!(micros(0.456), "0.46");
        assert_eq!(micros(45.66), "45.7");
        assert_eq!(micros(12345.0), "12,345");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(amp(1.0), "1.00");
    }

    #[test]
    fn rows_of_several_value_sizes_get_a_table_each() {
        let info = RunInfo {
            num: 500,
            key_size: 16,
            value_size: 100,
            seed: 1,
            time_limit_secs: None,
        };
        let row = |num: u64, value_size: usize| Measurement {
            engine: "lsm".into(),
            workload: "fillrandom".into(),
            num,
            value_size,
            ops_per_sec: Some(1000.0),
            ..Measurement::default()
        };
        let rows = vec![row(500, 100), row(500, 1024)];
        let table = table(&info, &rows);
        assert!(
            table.starts_with("num=500 key_size=16 value_size=100,1024 seed=1 time_limit=none\n"),
            "{table}"
        );
        let first = table.find("\nvalue_size=100\n").expect(&table);
        assert!(table[first..].contains("\nvalue_size=1024\n"), "{table}");
        let md = markdown(&info, &rows);
        assert!(md.contains("**value_size=1024**"), "{md}");
        // One size: no headings, the line as before.
        let one = super::table(&info, &rows[..1]);
        assert!(!one.contains("\nvalue_size="), "{one}");
        assert!(one.starts_with(&format!("{}\n", info.line())), "{one}");
        // Rows that differ in both (not from the command line) name both.
        let both = super::table(&info, &[row(500, 100), row(900, 1024)]);
        assert!(both.contains("\nnum=900 value_size=1024\n"), "{both}");
    }

    #[test]
    fn notes_set_write_amplification_against_theory() {
        let mut row = Measurement {
            write_amp: Some(5.4),
            ..Measurement::default()
        };
        assert_eq!(notes(&row), "", "no theory reported: no note");
        row.extra.insert("write_amp_theory_milli".into(), 6100);
        assert_eq!(
            notes(&row),
            "W-amp theory 6.10: measured 0.89× (within 1.2×)"
        );
        row.write_amp = Some(8.0);
        assert_eq!(notes(&row), "W-amp theory 6.10: measured 1.31× (over 1.2×)");
        row.write_amp = Some(3.05);
        assert_eq!(
            notes(&row),
            "W-amp theory 6.10: measured 0.50× (within 1.2×)",
            "below the theory is within it: the workload left compaction work owed"
        );
        row.write_amp = None;
        assert_eq!(notes(&row), "", "nothing written: nothing to compare");
    }
}
