//! The figures the course book quotes cannot drift from the run they come from.
//!
//! Every number the notes (`notes/src/**/*.md`) quote from a benchmark comes from a kvbench
//! report kept beside them (`notes/src/results/NAME.json`, above all `run.json`, the
//! reference run the results page shows), or from a page that includes a generated file
//! (`{{#include ...}}` of a kvbench table or an insta snapshot). This test reads every page,
//! checks every tagged figure against its report, and fails on a figure that looks measured
//! but says nowhere where it comes from.
//!
//! # The convention
//!
//! **A measured figure is followed at once by an HTML comment naming its source**, which
//! the rendered book does not show:
//!
//! ```text
//! 489,808 ops/s<!-- run: hashlog fillseq ops_per_sec -->
//! space amplification **2.17**<!-- run: hashlog overwrite space_amp -->
//! opened in 1.8 s<!-- run: hashlog recovery open_ms in s -->
//! 163.7 MiB<!-- run: hashlog fillseq peak_rss_bytes in MiB -->
//! some 783 times<!-- run: bitcask seekrandom p50_us / sstable seekrandom p50_us --> faster
//! ```
//!
//! * The tag belongs to the **last number before it** on its line, after the previous
//!   comment: a unit, bold markers or a `×` may sit between them (`**3.3 s**<!-- ... -->`).
//! * `run:` names `notes/src/results/run.json`; any `NAME:` names
//!   `notes/src/results/NAME.json` (`speed:` for `speed.json`). A comment of the form
//!   `word: ...` whose word names no report is an error, so a misspelt tag cannot hide.
//! * Then the **source**: one or more terms joined by `/`, `*`, `+` or `-`, evaluated left
//!   to right. A term is a plain number, or `ENGINE WORKLOAD FIELD`: `ENGINE` is the row's
//!   `engine` exactly as the JSON has it, settings included (`sstable`,
//!   `sstable[search=linear]`), `WORKLOAD` its `workload` (`WORKLOAD@BYTES` for the row
//!   of that `value_size`, in a report of several value sizes), `FIELD` a numeric field of the
//!   row (`ops_per_sec`, `p50_us`, `p99_us`, `write_amp`, `read_amp`, `space_amp`,
//!   `peak_rss_bytes`, `disk_bytes`, `open_ms`, `open_after_kill_ms`, `ops`, `live_keys`,
//!   `write_ops_per_sec`, ...) or `extra.NAME` for an engine's own counter.
//! * An optional **`in UNIT`** at the end converts the result: `k`, `M`, `G` (thousands,
//!   millions, billions), `KB`, `MB`, `GB` (powers of 1000), `KiB`, `MiB`, `GiB` (powers of
//!   1024), `%` (times 100), and `µs`, `ms`, `s` (from a first field whose name ends in `_us`,
//!   `_ms` or `_secs`).
//!
//! **Rounding and format.** A figure may be written with any number of decimals, and must
//! equal its source rounded to that many (a tie may go either way): `1.8 s` checks against
//! 1,771.6 ms, `1.09` against 1.0862. Integer parts of four digits or more are grouped
//! with commas (`1,771.6`, `489,808`), as kvbench prints them; an amplification quoted on
//! its own (a single `*_amp` field, no unit) has exactly two decimals, as in kvbench's
//! tables.
//!
//! **Not measured.** Numbers that only look measured (a theory prediction, a limit, a size
//! that is a definition, a setting) are exempted explicitly:
//!
//! * `<!-- not measured -->` (or `<!-- not measured: why -->`) after them exempts every
//!   number on its line before it, back to the previous comment on that line;
//! * the same comment alone on a line exempts the block that follows, up to the next blank
//!   line (a paragraph, a list, a table).
//!
//! **What looks measured**, outside fenced code blocks, inline code and `{{#include}}`d
//! files (kvbench's tables, insta snapshots): a number followed by a rate (`ops/s`,
//! `entries/s`, `k reads/s`, `per second`), a time (`µs`, `ms`, `s`), a size in `MB`,
//! `MiB`, `GB` or `GiB`, a `×` glued to it (`0.64×`; `4 × n` is a product), `times`, `%`,
//! `million` or `reads per get`; a decimal number within the sentence after an
//! amplification (`write amplification`, `space amp`, `W-amp`, ...); and in a table, a
//! number in a column whose header, or a row whose first cell, names such a quantity.
//!
//! The placeholder `<!-- figures: ... -->` is refused: a section either has its figures,
//! tagged, or says none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The workspace root (this crate lives in `benches/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The kvbench reports a tag may name, by name (`run` for `run.json`): their rows.
type Reports = BTreeMap<String, Vec<Value>>;

/// Every `*.json` report in `dir`.
fn load_reports(dir: &Path) -> Reports {
    let mut reports = Reports::new();
    for entry in std::fs::read_dir(dir).expect("notes/src/results") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("a report");
            let rows: Vec<Value> = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a kvbench report: {e}", path.display()));
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            reports.insert(name, rows);
        }
    }
    reports
}

/// Every `*.md` file below `dir`.
fn pages_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a notes directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            pages_below(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The files the pages include (`{{#include FILE}}`, `{{#include FILE:5:}}`): they are
/// generated, and checked where they are generated, not here.
fn included_files(pages: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut included = BTreeSet::new();
    for page in pages {
        let text = std::fs::read_to_string(page).expect("a page");
        for piece in text.split("{{#include ").skip(1) {
            let target = piece.split(['}', ':']).next().unwrap_or_default().trim();
            let path = page.parent().unwrap().join(target);
            included.extend(path.canonicalize().ok());
        }
    }
    included
}

/// A number in the text: where it is, and its value and decimals as written.
#[derive(Debug, Clone, PartialEq)]
struct Number {
    /// Byte offsets of the number in its line.
    start: usize,
    /// One past its last byte.
    end: usize,
    /// The value written.
    value: f64,
    /// Digits after the decimal point.
    decimals: usize,
    /// The integer part has four digits or more and is not grouped with commas.
    ungrouped: bool,
}

/// The numbers of `text`: digits not glued to a word (`p99`, `L0`, `2^21`, `7/16` are not
/// numbers), with commas between groups of three and an optional decimal part.
fn numbers(text: &str) -> Vec<Number> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let glued =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || b"_.^/#".contains(&bytes[i - 1]));
        if !bytes[i].is_ascii_digit() || glued {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let mut grouped = false;
        while i + 3 < bytes.len()
            && bytes[i] == b','
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
            && !bytes.get(i + 4).is_some_and(u8::is_ascii_digit)
        {
            grouped = true;
            i += 4;
        }
        let int_end = i;
        let mut decimals = 0;
        if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
                decimals += 1;
            }
        }
        let digits: String = text[start..i].chars().filter(|c| *c != ',').collect();
        found.push(Number {
            start,
            end: i,
            value: digits.parse().expect("digits"),
            decimals,
            ungrouped: !grouped && int_end - start >= 4,
        });
    }
    found
}

/// Whether the text right after a number makes it look measured: a rate, a time, a size, a
/// ratio or a share.
fn unit_looks_measured(after: &str) -> bool {
    let rest = after.trim_start_matches([' ', '*', '\u{a0}', '\u{202f}']);
    let word_ends = |unit: &str| {
        rest.strip_prefix(unit)
            .is_some_and(|tail| !tail.starts_with(|c: char| c.is_alphanumeric()))
    };
    // A `×` glued to the number is a ratio (`0.64×`); with a space it multiplies (`4 × n`).
    if after.starts_with('×') || rest.starts_with('%') {
        return true;
    }
    let words = [
        "µs", "us", "ms", "s", "MB", "MiB", "GB", "GiB", "times", "million",
    ];
    let phrases = ["per second", "a second", "reads per get", "reads/get"];
    words.iter().any(|u| word_ends(u))
        || phrases.iter().any(|p| rest.starts_with(p))
        || is_rate(rest)
}

/// `ops/s`, `k/s`, `entries/s`, `k reads/s`, `M entries/s`: an optional `k`, `M` or `G`,
/// an optional word, then `/s`.
fn is_rate(rest: &str) -> bool {
    let mut rest = rest;
    for scale in ["k", "M", "G"] {
        if let Some(tail) = rest.strip_prefix(scale)
            && (tail.starts_with(' ') || tail.starts_with('/'))
        {
            rest = tail.trim_start();
            break;
        }
    }
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    rest.strip_prefix("/s")
        .is_some_and(|tail| !tail.starts_with(|c: char| c.is_alphanumeric()))
}

/// The byte ranges of `line` after each mention of an amplification (`amp`, `amps`,
/// `amplification`, `W-amp`), to the end of its sentence or 100 bytes on: decimal numbers
/// there are amplification figures.
fn amplification_windows(line: &str) -> Vec<(usize, usize)> {
    // ASCII lowering keeps every byte offset.
    let lower = line.to_ascii_lowercase();
    let mut windows = Vec::new();
    for (at, _) in lower.match_indices("amp") {
        let before = lower[..at].chars().next_back();
        let after = &lower[at + 3..];
        let after = ["lifications", "lification", "s"]
            .iter()
            .find_map(|suffix| after.strip_prefix(suffix))
            .unwrap_or(after);
        if before.is_some_and(char::is_alphabetic) || after.starts_with(char::is_alphabetic) {
            continue;
        }
        let from = at + 3;
        let mut to = (from + 100).min(line.len());
        while !line.is_char_boundary(to) {
            to -= 1;
        }
        let end = [". ", "; "]
            .iter()
            .filter_map(|end| line[from..to].find(end))
            .min()
            .map_or(to, |end| from + end);
        windows.push((from, end));
    }
    windows
}

/// Whether a table header or a row's first cell names a measured quantity.
fn label_looks_measured(label: &str) -> bool {
    let lower = format!(" {}", label.to_lowercase());
    [
        "ops/s",
        "/s",
        "µs",
        " amp",
        "-amp",
        "amplification",
        "mib",
        " mb",
        "(mb)",
        " ms",
        "(ms)",
        "reads/get",
        "per get",
        "rss",
        "memory",
        "×",
        "open time",
        "latency",
        "p50",
        "p99",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// A comment in a line: where it is and what it says.
#[derive(Debug)]
struct Comment {
    /// Byte offset of `<!--`.
    start: usize,
    /// One past `-->`.
    end: usize,
    /// The text between the markers, trimmed.
    body: String,
}

/// The comments of a line (a comment left open runs to the end of the line), and whether
/// the line ends inside one.
fn comments(line: &str, mut open: bool) -> (Vec<Comment>, bool) {
    let mut found = Vec::new();
    let mut at = 0;
    loop {
        let start = if open {
            0
        } else {
            match line[at..].find("<!--") {
                Some(i) => at + i,
                None => return (found, false),
            }
        };
        let body_from = if open { start } else { start + 4 };
        match line[body_from..].find("-->") {
            Some(i) => {
                let end = body_from + i + 3;
                let body = line[body_from..body_from + i].trim().to_string();
                found.push(Comment { start, end, body });
                at = end;
                open = false;
            }
            None => {
                found.push(Comment {
                    start,
                    end: line.len(),
                    body: String::new(),
                });
                return (found, true);
            }
        }
    }
}

/// `line` with its inline code spans blanked (their bytes replaced by spaces, so offsets
/// stay the same).
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(' ');
        } else if in_code {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

/// The table column of byte `at` in a table row (the first cell is column 0).
fn column_at(row: &str, at: usize) -> usize {
    let bytes = row.as_bytes();
    let pipes = (0..at)
        .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
        .count();
    pipes.saturating_sub(1)
}

/// The cells of a table row.
fn cells(row: &str) -> Vec<String> {
    row.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// Whether `line` is a `<!-- not measured -->` comment and nothing else: it exempts the
/// block that follows.
fn is_exemption_line(line: &str) -> bool {
    let (found, open) = comments(line.trim(), false);
    match found.as_slice() {
        [only] if !open => {
            only.start == 0
                && only.end == line.trim().len()
                && (only.body == "not measured" || only.body.starts_with("not measured:"))
        }
        _ => false,
    }
}

/// What the checker found on one page.
#[derive(Debug, Default)]
struct Findings {
    /// One line per problem: `page:line: what`.
    problems: Vec<String>,
    /// Tagged figures that matched their source.
    checked: usize,
}

/// One line of a page, ready to check.
struct Line<'a> {
    /// `page:line`, for messages.
    at: String,
    /// The line as written.
    raw: &'a str,
    /// The line with its inline code blanked: what is checked.
    text: String,
    /// Its comments.
    comments: Vec<Comment>,
    /// The header cells of the table the line is a row of (empty outside tables).
    headers: &'a [String],
    /// Whether an exemption line above covers it.
    exempt: bool,
}

/// Checks one page (named `page` in messages) against `reports`.
fn check_page(page: &str, text: &str, reports: &Reports) -> Findings {
    let mut findings = Findings::default();
    let mut in_fence = false;
    let mut in_comment = false;
    let mut exempt_block = false;
    let mut headers: Vec<String> = Vec::new();
    let mut previous = "";
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || trimmed.starts_with("{{#include") {
            continue;
        }
        exempt_block &= !raw.trim().is_empty();
        if is_exemption_line(raw) {
            exempt_block = true;
            continue;
        }
        if !trimmed.starts_with('|') {
            headers.clear();
        } else if trimmed.starts_with("|---") || trimmed.starts_with("| ---") {
            headers = cells(previous);
        }
        previous = raw;
        let text = without_code_spans(raw);
        let (comments, still_open) = comments(&text, in_comment);
        in_comment = still_open;
        let line = Line {
            at: format!("{page}:{}", index + 1),
            raw,
            text,
            comments,
            headers: &headers,
            exempt: exempt_block,
        };
        check_line(&line, reports, &mut findings);
    }
    findings
}

/// Checks one line: every tag against its report, every measured-looking number for a tag
/// or an exemption. The comments cut the line into segments; each comment speaks for the
/// numbers of the segment before it.
fn check_line(line: &Line, reports: &Reports, findings: &mut Findings) {
    let mut segment_start = 0;
    let ends = line.comments.iter().map(|c| (c.start, Some(c)));
    for (segment_end, comment) in ends.chain([(line.text.len(), None)]) {
        let segment: Vec<Number> = numbers(&line.text[segment_start..segment_end])
            .into_iter()
            .map(|n| Number {
                start: n.start + segment_start,
                end: n.end + segment_start,
                ..n
            })
            .collect();
        let mut tagged = None;
        let mut exempt = line.exempt;
        if let Some(comment) = comment {
            match classify(&comment.body, reports) {
                Tag::NotMeasured => exempt = true,
                Tag::Other => {}
                tag => tagged = check_tag(line, tag, &comment.body, &segment, reports, findings),
            }
        }
        for n in &segment {
            if !exempt && tagged != Some(n.start) && looks_measured(line, n) {
                findings.problems.push(format!(
                    "{}: `{}` looks measured but has no source: tag it \
                     (`<!-- run: ENGINE WORKLOAD FIELD -->`) or mark it `<!-- not measured -->`",
                    line.at,
                    line.raw[n.start..]
                        .chars()
                        .take(40)
                        .collect::<String>()
                        .trim_end()
                ));
            }
        }
        segment_start = comment.map_or(segment_end, |c| c.end);
    }
}

/// Checks a comment that is a tag (or a bad one) against the last number of `segment`.
/// Returns where that number starts when the tag covers it.
fn check_tag(
    line: &Line,
    tag: Tag,
    body: &str,
    segment: &[Number],
    reports: &Reports,
    findings: &mut Findings,
) -> Option<usize> {
    let at = &line.at;
    let problem = match (tag, segment.last()) {
        (Tag::Placeholder, _) => format!(
            "{at}: a placeholder `<!-- {body} -->`: fill the section's figures (tagged) or \
             remove it"
        ),
        (Tag::UnknownReport(name), _) => {
            format!("{at}: `<!-- {body} -->` names no report (notes/src/results/{name}.json)")
        }
        (Tag::Source(..), None) => format!("{at}: the tag `<!-- {body} -->` follows no number"),
        (Tag::Source(report, source), Some(figure)) => {
            match check_figure(figure, report, source, reports) {
                Ok(()) => {
                    findings.checked += 1;
                    return Some(figure.start);
                }
                Err(why) => {
                    let written = &line.raw[figure.start..figure.end];
                    findings
                        .problems
                        .push(format!("{at}: {written} <!-- {body} -->: {why}"));
                    return Some(figure.start);
                }
            }
        }
        (Tag::NotMeasured | Tag::Other, _) => return None,
    };
    findings.problems.push(problem);
    None
}

/// Whether a number looks measured: by the unit after it, by an amplification before it in
/// its sentence, or by its table column or row.
fn looks_measured(line: &Line, n: &Number) -> bool {
    let text = line.text.as_str();
    if unit_looks_measured(&text[n.end..]) {
        return true;
    }
    let in_amp_window = amplification_windows(text)
        .iter()
        .any(|&(from, to)| n.start >= from && n.start < to);
    if n.decimals > 0 && in_amp_window {
        return true;
    }
    let column = column_at(text, n.start);
    let in_table = text.trim_start().starts_with('|') && !line.headers.is_empty();
    in_table
        && column > 0
        && (cells(text).first().is_some_and(|c| label_looks_measured(c))
            || line
                .headers
                .get(column)
                .is_some_and(|h| label_looks_measured(h)))
}

/// What a comment is.
enum Tag<'a> {
    /// `not measured`, with or without a reason.
    NotMeasured,
    /// `figures: ...`, a section waiting for its figures.
    Placeholder,
    /// `NAME: ...` where no `NAME.json` exists.
    UnknownReport(&'a str),
    /// `NAME: SOURCE`: a figure's report and source.
    Source(&'a str, &'a str),
    /// Any other comment.
    Other,
}

/// Classifies a comment's body.
fn classify<'a>(body: &'a str, reports: &Reports) -> Tag<'a> {
    if body == "not measured" || body.starts_with("not measured:") {
        return Tag::NotMeasured;
    }
    let Some((name, source)) = body.split_once(':') else {
        return Tag::Other;
    };
    let is_word = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !is_word {
        Tag::Other
    } else if name == "figures" {
        Tag::Placeholder
    } else if reports.contains_key(name) {
        Tag::Source(name, source.trim())
    } else {
        Tag::UnknownReport(name)
    }
}

/// Checks a tagged figure: its format, then its value against its source, rounded to the
/// decimals it is written with.
fn check_figure(
    figure: &Number,
    report: &str,
    source: &str,
    reports: &Reports,
) -> Result<(), String> {
    if figure.ungrouped {
        return Err("group the digits with commas (1,771.6, not 1771.6)".into());
    }
    let (expected, single_amp) = evaluate(&reports[report], source)?;
    if single_amp && figure.decimals != 2 {
        return Err(format!(
            "an amplification has two decimals, as kvbench prints it ({expected:.2})"
        ));
    }
    let tolerance = 0.5 * 10f64.powi(-(figure.decimals as i32)) + 1e-9 * expected.abs().max(1.0);
    if (figure.value - expected).abs() > tolerance {
        return Err(format!(
            "the report says {expected:.prec$} (unrounded {expected})",
            prec = figure.decimals
        ));
    }
    Ok(())
}

/// The value of a source (terms joined by operators, then an optional `in UNIT`), and
/// whether it is one `*_amp` field with no unit.
fn evaluate(rows: &[Value], source: &str) -> Result<(f64, bool), String> {
    let mut tokens: Vec<&str> = source.split_whitespace().collect();
    let unit = match tokens.len() {
        n if n >= 2 && tokens[n - 2] == "in" => {
            let unit = tokens[n - 1];
            tokens.truncate(n - 2);
            Some(unit)
        }
        _ => None,
    };
    let mut rest = tokens.as_slice();
    let mut value: Option<f64> = None;
    let mut operator: Option<&str> = None;
    let mut first_field: Option<&str> = None;
    let mut terms = 0;
    while !rest.is_empty() {
        let (term, field, tail) = term(rows, rest)?;
        terms += 1;
        first_field = first_field.or(field);
        value = Some(match (value, operator) {
            (None, _) => term,
            (Some(left), Some("/" | "÷")) => left / term,
            (Some(left), Some("*" | "×")) => left * term,
            (Some(left), Some("+")) => left + term,
            (Some(left), Some("-" | "−")) => left - term,
            (Some(_), other) => return Err(format!("expected an operator, found {other:?}")),
        });
        operator = None;
        rest = tail;
        if let Some((op, tail)) = rest.split_first() {
            operator = Some(op);
            rest = tail;
            if rest.is_empty() {
                return Err(format!("nothing after the operator `{op}`"));
            }
        }
    }
    let value = value.ok_or("an empty source")?;
    let single_amp =
        terms == 1 && unit.is_none() && first_field.is_some_and(|f| f.ends_with("_amp"));
    match unit {
        None => Ok((value, single_amp)),
        Some(unit) => Ok((convert(value, unit, first_field)?, false)),
    }
}

/// One term at the start of `tokens`: a plain number, or `ENGINE WORKLOAD FIELD` looked up
/// in `rows`. Returns its value, its field, and the tokens after it.
fn term<'t>(
    rows: &[Value],
    tokens: &'t [&'t str],
) -> Result<(f64, Option<&'t str>, &'t [&'t str]), String> {
    if let Ok(number) = tokens[0].replace(',', "").parse::<f64>() {
        return Ok((number, None, &tokens[1..]));
    }
    let [engine, workload, field, tail @ ..] = tokens else {
        return Err(format!(
            "`{}` is not ENGINE WORKLOAD FIELD",
            tokens.join(" ")
        ));
    };
    // `fillrandom@1024`: the row of that workload at that value size (a `--value-size` list).
    let (workload, value_size) = match workload.split_once('@') {
        Some((name, size)) => {
            let size: u64 = size
                .parse()
                .map_err(|_| format!("`{workload}`: the value size after @ is not a number"))?;
            (name, Some(size))
        }
        None => (*workload, None),
    };
    let matching: Vec<&Value> = rows
        .iter()
        .filter(|r| r["engine"] == *engine && r["workload"] == workload)
        .filter(|r| value_size.is_none_or(|size| r["value_size"] == size))
        .collect();
    let row = match matching.as_slice() {
        [row] => row,
        [] => {
            return Err(format!(
                "no row for engine `{engine}` and workload `{workload}`"
            ));
        }
        _ => return Err(format!("several rows for `{engine}` `{workload}`")),
    };
    let cell = match field.strip_prefix("extra.") {
        Some(name) => &row["extra"][name],
        None => &row[*field],
    };
    let value = cell
        .as_f64()
        .ok_or_else(|| format!("`{engine} {workload}` has no number `{field}` ({cell})"))?;
    Ok((value, Some(field), tail))
}

/// `value` in `unit`; time units convert from the unit `field`'s name ends in.
fn convert(value: f64, unit: &str, field: Option<&str>) -> Result<f64, String> {
    let scale = match unit {
        "k" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "%" => return Ok(value * 100.0),
        "µs" | "us" | "ms" | "s" => {
            let seconds = match field {
                Some(f) if f.ends_with("_us") => 1e-6,
                Some(f) if f.ends_with("_ms") => 1e-3,
                Some(f) if f.ends_with("_secs") => 1.0,
                _ => {
                    return Err(format!(
                        "`in {unit}` needs a first field in _us, _ms or _secs"
                    ));
                }
            };
            let target = match unit {
                "s" => 1.0,
                "ms" => 1e-3,
                _ => 1e-6,
            };
            return Ok(value * seconds / target);
        }
        other => return Err(format!("unknown unit `{other}`")),
    };
    Ok(value / scale)
}

#[test]
fn every_figure_the_notes_quote_matches_its_run() {
    let notes = root().join("notes/src");
    let reports = load_reports(&notes.join("results"));
    assert!(
        reports.contains_key("run"),
        "notes/src/results/run.json, the reference run"
    );
    let mut pages = Vec::new();
    pages_below(&notes, &mut pages);
    pages.sort();
    let included = included_files(&pages);
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in &pages {
        if included.contains(&page.canonicalize().expect("a page")) {
            continue;
        }
        let name = page.strip_prefix(root()).unwrap().display().to_string();
        let text = std::fs::read_to_string(page).expect("a page");
        let findings = check_page(&name, &text, &reports);
        problems.extend(findings.problems);
        checked += findings.checked;
    }
    assert!(
        problems.is_empty(),
        "{} figure problems in the notes (the convention is documented at the top of \
         benches/tests/notes_figures.rs):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(checked > 0, "the notes quote tagged figures");
    println!("{checked} tagged figures match their reports");
}

/// A report of two rows for the checker's own tests.
fn sample_reports() -> Reports {
    let rows = serde_json::json!([
        {"engine": "hashlog", "workload": "fillseq", "ops_per_sec": 489808.239,
         "write_amp": 1.0862, "p50_us": 1.343, "open_ms": null, "peak_rss_bytes": 171692032,
         "extra": {"dead_bytes": 0}},
        {"engine": "sstable[search=linear]", "workload": "recovery", "ops_per_sec": 5.0,
         "open_ms": 1771.591, "p50_us": 321650.687, "extra": {"tables": 54}}
    ]);
    Reports::from([("run".to_string(), rows.as_array().unwrap().clone())])
}

/// The problems the checker finds in `text`.
fn problems(text: &str) -> Vec<String> {
    check_page("page.md", text, &sample_reports()).problems
}

#[test]
fn tagged_figures_that_match_pass() {
    let text = "\
hashlog puts 489,808 ops/s<!-- run: hashlog fillseq ops_per_sec --> at write amplification
**1.09**<!-- run: hashlog fillseq write_amp -->; it opens in 1.8 s<!-- run: sstable[search=linear] recovery open_ms in s -->
and peaks at 163.7 MiB<!-- run: hashlog fillseq peak_rss_bytes in MiB -->, 0.32 s<!-- run: sstable[search=linear] recovery p50_us in s -->,
some 239,502 times<!-- run: sstable[search=linear] recovery p50_us / hashlog fillseq p50_us --> slower, 54 tables<!-- run: sstable[search=linear] recovery extra.tables -->.
";
    let findings = check_page("page.md", text, &sample_reports());
    assert_eq!(findings.problems, Vec::<String>::new());
    assert_eq!(findings.checked, 7);
}

#[test]
fn a_tagged_figure_that_disagrees_fails() {
    let found = problems("490,000 ops/s<!-- run: hashlog fillseq ops_per_sec -->\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("the report says 489808"), "{found:?}");
    // Rounded to the decimals written: 1.1 is 1.0862 to one decimal, 1.08 is not to two.
    assert!(problems("amp 1.08<!-- run: hashlog fillseq write_amp -->\n").len() == 1);
    assert!(problems("1.1<!-- run: hashlog fillseq write_amp * 1 -->\n").is_empty());
}

#[test]
fn a_value_size_picks_one_row_of_a_sweep() {
    let rows = serde_json::json!([
        {"engine": "lsm", "workload": "fillrandom", "value_size": 100, "ops_per_sec": 480000.0},
        {"engine": "lsm", "workload": "fillrandom", "value_size": 1024, "ops_per_sec": 50329.4}
    ]);
    let reports = Reports::from([("sweep".to_string(), rows.as_array().unwrap().clone())]);
    let check = |text: &str| check_page("page.md", text, &reports).problems;
    assert!(check("50,329 ops/s<!-- sweep: lsm fillrandom@1024 ops_per_sec -->\n").is_empty());
    assert!(check("480,000 ops/s<!-- sweep: lsm fillrandom@100 ops_per_sec -->\n").is_empty());
    let both = check("50,329 ops/s<!-- sweep: lsm fillrandom ops_per_sec -->\n");
    assert!(both[0].contains("several rows"), "{both:?}");
    assert!(!check("1 ops/s<!-- sweep: lsm fillrandom@1K ops_per_sec -->\n").is_empty());
    assert!(!check("1 ops/s<!-- sweep: lsm fillrandom@4096 ops_per_sec -->\n").is_empty());
}

#[test]
fn bad_tags_fail() {
    for text in [
        "1,771.6 ms<!-- run: hashlog fillseq open_ms -->",
        "5 ops/s<!-- run: lsm fillseq ops_per_sec -->",
        "5 ops/s<!-- run: hashlog fillseq no_such_field -->",
        "5 ops/s<!-- rnu: hashlog fillseq ops_per_sec -->",
        "<!-- run: hashlog fillseq ops_per_sec -->",
        "1771.6 ms<!-- run: sstable[search=linear] recovery open_ms -->",
        "write amplification 1.1<!-- run: hashlog fillseq write_amp -->",
        "5 parsecs<!-- run: hashlog fillseq ops_per_sec in parsec -->",
        "<!-- figures: filled from kvbench -->",
    ] {
        assert!(!problems(text).is_empty(), "{text} passed");
    }
}

#[test]
fn untagged_figures_that_look_measured_fail() {
    for text in [
        "it ran at 489,808 ops/s.",
        "it took 1.8 s to open.",
        "a p99 of 4.41 µs",
        "peaked at 163.7 MiB",
        "0.64× the best peer",
        "**0.64×** the best peer",
        "some 1,460 times faster",
        "the cache hits 85 % of reads",
        "311 k reads/s",
        "space amplification after one pass is **2.17**, and it climbs",
        "| workload | ops/s |\n|---|---|\n| fillseq | 489,808 |",
        "| figure | hashlog |\n|---|---|\n| space amp after fillseq | 1.09 |",
    ] {
        assert!(!problems(text).is_empty(), "{text} passed untagged");
    }
}

#[test]
fn code_exempt_lines_and_definitions_pass() {
    let text = "\
```text
489,808 ops/s in a code block
```
`16 MiB` in inline code, keys of 16 bytes, 4 KiB blocks, L0 1, p99, 2^21 × 49 slots.
Values up to 16 MiB<!-- not measured: the limit -->, and 2.17<!-- not measured --> by theory.

<!-- not measured -->
* write amplification 126 / 116 = 1.09 for a put,
* and 1.63 for a delete: 60 s, 4 MiB.

{{#include results/run.md}}
| offset | size | field |
|---|---|---|
| 0 | 8 | magic |
";
    assert_eq!(problems(text), Vec::<String>::new());
    // The exempt block ends at the blank line.
    assert_eq!(problems("<!-- not measured -->\n5 ms\n\n6 ms\n").len(), 1);
}
