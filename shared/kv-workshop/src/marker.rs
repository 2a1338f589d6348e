//! Exercise markers: the comment lines right above a function a learner writes.
//!
//! ```text
//! // Exercise 1.2: decode a record. Read: chapter 1, "On disk".
//! // Tests: lib::record::tests::round_trips, lib::record::tests::every_single_flip_is_rejected
//! /// The function's doc comment, attributes, then its signature.
//! pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, DecodeError> {
//! ```
//!
//! The first line is `// Exercise S.N: TITLE. Read: chapter C, "SECTION".` and each line
//! after it `// Tests: ID, ID, ...` (as many as the list needs); the function's first line
//! (its doc comment, an attribute or its signature) follows directly. See the
//! [crate documentation](crate) for what each part means.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a marker's first line starts, after its indentation.
pub const HEAD: &str = "// Exercise ";

/// How each line of its test list starts.
pub const TESTS: &str = "// Tests: ";

/// A test, named the way `kv workshop check` finds it in `cargo test`'s output: the test
/// target (`lib` for the unit tests in `src/`, or the file stem of `tests/NAME.rs`), then
/// the test's path inside that target, joined by `::`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TestId {
    /// `lib`, or the stem of `tests/NAME.rs`.
    pub target: String,
    /// The test's name as libtest prints it (`record::tests::round_trips`).
    pub name: String,
}

impl TestId {
    /// Parses `target::name`; `None` unless both parts are there and hold no blank.
    pub fn parse(text: &str) -> Option<TestId> {
        let (target, name) = text.split_once("::")?;
        let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
        (word(target) && word(name)).then(|| TestId {
            target: target.to_string(),
            name: name.to_string(),
        })
    }

    /// The `cargo test` arguments that run this test alone.
    pub fn cargo_args(&self) -> String {
        let target = match self.target.as_str() {
            "lib" => "--lib".to_string(),
            other => format!("--test {other}"),
        };
        format!("cargo test {target} -- --exact {}", self.name)
    }
}

impl fmt::Display for TestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.target, self.name)
    }
}

/// One marker, as written above its function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The stage the exercise belongs to (`S`).
    pub stage: u32,
    /// Its number within the stage (`N`): the order to do them in.
    pub number: u32,
    /// What the learner writes, in a few words.
    pub title: String,
    /// The chapter to read (`C`): `1`, or `4b` for `notes/src/ch4b-*.md`.
    pub chapter: String,
    /// The heading of the section to read, as the chapter spells it.
    pub section: String,
    /// The tests that pass once the exercise is done (and those before it).
    pub tests: Vec<TestId>,
    /// 1-based line of the marker's first line (0 once saved and loaded).
    #[serde(skip)]
    pub line: usize,
    /// 1-based line of its last line: the function starts on the next one.
    #[serde(skip)]
    pub last_line: usize,
}

impl Marker {
    /// `S.N`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.stage, self.number)
    }

    /// Where to read: `chapter 1, section "On disk"`.
    pub fn reading(&self) -> String {
        format!("chapter {}, section \"{}\"", self.chapter, self.section)
    }

    /// The message of the `todo!()` that stands for the body.
    pub fn todo_message(&self) -> String {
        format!(
            "Exercise {}: {}; see {}",
            self.id(),
            self.title,
            self.reading()
        )
    }
}

/// Every marker of a source file, in order.
///
/// # Errors
/// The 1-based line and what is wrong, for the first malformed marker.
pub fn find(text: &str) -> Result<Vec<Marker>, (usize, String)> {
    let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
    let mut markers = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with(HEAD) {
            i += 1;
            continue;
        }
        let mut marker = parse_head(lines[i]).map_err(|e| (i + 1, e))?;
        marker.line = i + 1;
        i += 1;
        while let Some(list) = lines.get(i).and_then(|l| l.strip_prefix(TESTS)) {
            marker
                .tests
                .extend(parse_tests(list).map_err(|e| (i + 1, e))?);
            i += 1;
        }
        if marker.tests.is_empty() {
            return Err((marker.line, format!("no `{TESTS}...` line follows")));
        }
        marker.last_line = i;
        markers.push(marker);
    }
    Ok(markers)
}

/// Parses `// Exercise S.N: TITLE. Read: chapter C, "SECTION".`
fn parse_head(line: &str) -> Result<Marker, String> {
    let expected = || format!("expected `{HEAD}S.N: TITLE. Read: chapter C, \"SECTION\".`");
    let rest = line.strip_prefix(HEAD).ok_or_else(expected)?;
    let (id, rest) = rest.split_once(": ").ok_or_else(expected)?;
    let (stage, number) = id.split_once('.').ok_or_else(expected)?;
    let (title, rest) = rest.split_once(". Read: chapter ").ok_or_else(expected)?;
    let (chapter, section) = rest.split_once(", \"").ok_or_else(expected)?;
    let section = section.strip_suffix("\".").ok_or_else(expected)?;
    let number_of = |s: &str| s.parse::<u32>().map_err(|_| expected());
    let chapter_ok = chapter.starts_with(|c: char| c.is_ascii_digit())
        && chapter
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase());
    if title.trim().is_empty() || section.is_empty() || section.contains('"') || !chapter_ok {
        return Err(expected());
    }
    Ok(Marker {
        stage: number_of(stage)?,
        number: number_of(number)?,
        title: title.trim().to_string(),
        chapter: chapter.to_string(),
        section: section.to_string(),
        tests: Vec::new(),
        line: 0,
        last_line: 0,
    })
}

/// Parses the list after `// Tests: `.
fn parse_tests(list: &str) -> Result<Vec<TestId>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| TestId::parse(s).ok_or_else(|| format!("`{s}` is not a test id (`target::name`)")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
use std::fmt;

    // Exercise 1.2: decode a record. Read: chapter 1, "On disk (`data.log`)".
    // Tests: lib::record::tests::round_trips,
    // Tests: engine::a_get
    /// Decodes.
    pub fn decode() {}
"#;

    #[test]
    fn a_marker_and_its_test_lines() {
        let markers = find(SOURCE).unwrap();
        assert_eq!(
            markers,
            [Marker {
                stage: 1,
                number: 2,
                title: "decode a record".into(),
                chapter: "1".into(),
                section: "On disk (`data.log`)".into(),
                tests: vec![
                    TestId::parse("lib::record::tests::round_trips").unwrap(),
                    TestId::parse("engine::a_get").unwrap(),
                ],
                line: 4,
                last_line: 6,
            }]
        );
        assert_eq!(
            markers[0].tests[1].cargo_args(),
            "cargo test --test engine -- --exact a_get"
        );
    }

    #[test]
    fn malformed_markers_name_their_line() {
        let no_tests = "// Exercise 1.1: x. Read: chapter 1, \"Design\".\nfn f() {}\n";
        assert_eq!(find(no_tests).unwrap_err().0, 1);
        for head in [
            "// Exercise 1: x. Read: chapter 1, \"Design\".",
            "// Exercise 1.1: x. Read: chapter one, \"Design\".",
            "// Exercise 1.1: x. Read: chapter 4B, \"Design\".",
            "// Exercise 1.1: x. Read: chapter 1, Design.",
            "// Exercise 1.1: x, chapter 1, \"Design\".",
        ] {
            assert!(parse_head(head).is_err(), "{head}");
        }
        let bad_test = "// Exercise 1.1: x. Read: chapter 1, \"Design\".\n// Tests: nope\n";
        assert_eq!(find(bad_test).unwrap_err().0, 2);
    }
}
