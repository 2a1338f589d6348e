//! The course book's exercise lists: a stage's exercises as Markdown, rendered from its
//! markers, for the chapter to include right after its `### Build it` paragraph
//! (`{{#include exercises/stage-1.md}}`).
//!
//! Each exercise is an item of a numbered list: its number and title, the function to write
//! and its file, the section to read as a link to that heading, and the tests that pass
//! once it is done, named as `kv workshop check` names them:
//!
//! ```text
//! 1. **Exercise 1.1: encode a put or a delete.**
//!    Write `Record::encode` in `stages/1-hashlog/src/record.rs`.
//!    Read [On disk](ch1-hashlog.md#on-disk) first.
//!    Tests: `lib::record::tests::round_trips`, `lib::record::tests::bad_lengths_are_rejected`.
//! ```
//!
//! The links are relative to `notes/src/`, where the chapters that include the list live,
//! and each anchor is the id mdBook gives the heading ([`heading_id`]). The lists are
//! committed under `notes/src/exercises/`; the workshop's test `tests/exercise_lists.rs`
//! fails when one differs from what [`exercise_list`] renders.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::checkout::{self, Checkout, Stage};
use crate::error::{Result, io, source};
use crate::exercises::{Exercise, stage_exercises};

/// Where stage `number`'s list is, relative to `notes/src/`: what its chapter includes.
pub fn list_path(number: u32) -> String {
    format!("exercises/stage-{number}.md")
}

/// The line that includes stage `number`'s list in its chapter.
pub fn include_line(number: u32) -> String {
    format!("{{{{#include {}}}}}", list_path(number))
}

/// Stage `stage`'s exercise list, in Markdown: a comment saying where it comes from, a
/// sentence on how tests are named, then one numbered item per exercise, in order.
///
/// # Errors
/// As [`stage_exercises`], and [`crate::Error::Source`] when a section an exercise names
/// has no anchor in its chapter.
pub fn exercise_list(checkout: &Checkout, stage: &Stage) -> Result<String> {
    let dir = stage
        .dir
        .strip_prefix(checkout.root())
        .unwrap_or(&stage.dir);
    let dir = dir.to_string_lossy().replace('\\', "/");
    let mut text = format!(
        "<!-- Generated from the exercise markers in {dir}/src by the kv-workshop test \
         exercise_lists: do not edit, run `KV_UPDATE_NOTES=1 cargo test -p kv-workshop \
         --test exercise_lists` -->\n\n\
         The exercises, in the order to do them. A test is named by its target (`lib` for \
         the unit tests in `src/`, or the name of a file in `tests/`), then its name as \
         `cargo test` prints it.\n\n"
    );
    for exercise in stage_exercises(checkout, stage)? {
        let link = section_link(checkout, &exercise)?;
        text.push_str(&item(&exercise, &dir, &link));
    }
    Ok(text)
}

/// The Markdown link to the section `exercise` names: `[On disk](ch1-hashlog.md#on-disk)`,
/// with the chapter said when it is not the stage's own (`chapter 4b's [Bloom filters](...)`).
fn section_link(checkout: &Checkout, exercise: &Exercise) -> Result<String> {
    let marker = &exercise.marker;
    let chapter = checkout.chapter(&marker.chapter)?;
    let text = std::fs::read_to_string(&chapter).map_err(io(&chapter))?;
    let Some(id) = heading_id(&checkout::headings(&text), &marker.section) else {
        let detail = format!("no heading \"{}\" to link to", marker.section);
        return Err(source(chapter, 0, detail));
    };
    let file = chapter.file_name().map(Path::new).unwrap_or(&chapter);
    let link = format!("[{}]({}#{id})", marker.section, file.display());
    Ok(if marker.chapter == marker.stage.to_string() {
        link
    } else {
        format!("chapter {}'s {link}", marker.chapter)
    })
}

/// One numbered item: the exercise, its function and file under `dir` (the stage's
/// directory), `link` to read, its tests.
fn item(exercise: &Exercise, dir: &str, link: &str) -> String {
    let marker = &exercise.marker;
    let number = format!("{}. ", marker.number);
    let indent = " ".repeat(number.len());
    let tests: Vec<String> = marker.tests.iter().map(|t| format!("`{t}`")).collect();
    let mut text = String::new();
    writeln!(
        text,
        "{number}**Exercise {}: {}.**\n\
         {indent}Write `{}` in `{dir}/{}`.\n\
         {indent}Read {link} first.\n\
         {indent}Tests: {}.",
        marker.id(),
        marker.title,
        exercise.function,
        exercise.file,
        tests.join(", ")
    )
    .ok();
    text
}

/// The id mdBook gives the first heading of a chapter that reads `section` (as
/// [`checkout::headings`] returns them, in order), or `None` when there is none.
///
/// mdBook makes an id from a heading's text: lowercased, letters, digits, `_` and `-` kept,
/// each blank turned into `-`, anything else dropped (so the backticks of code go); an id
/// already taken on the page gets `-1`, `-2`, ... Headings here are read as written, so one
/// holding a link or `_emphasis_` would get another id than mdBook's.
pub fn heading_id(headings: &[String], section: &str) -> Option<String> {
    let mut taken = HashSet::new();
    for heading in headings {
        let id = unique(id_of(heading), &mut taken);
        if heading == section {
            return Some(id);
        }
    }
    None
}

/// The id of one heading's text, before it is made unique.
fn id_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// `id`, or the first of `id-1`, `id-2`, ... not yet `taken`; marked taken.
fn unique(id: String, taken: &mut HashSet<String>) -> String {
    if taken.insert(id.clone()) {
        return id;
    }
    (1..)
        .map(|n| format!("{id}-{n}"))
        .find(|candidate| taken.insert(candidate.clone()))
        .unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(headings: &[&str], section: &str) -> Option<String> {
        let headings: Vec<String> = headings.iter().map(|h| h.to_string()).collect();
        heading_id(&headings, section)
    }

    #[test]
    fn ids_are_mdbooks() {
        let cases = [
            ("On disk", "on-disk"),
            ("A snapshot, and `get`", "a-snapshot-and-get"),
            ("Hint file (`NNNNNNNN.hint`)", "hint-file-nnnnnnnnhint"),
            (
                "`--passes`: add more rustdoc passes",
                "--passes-add-more-rustdoc-passes",
            ),
            ("_-_12345", "_-_12345"),
            ("Über alles", "über-alles"),
        ];
        for (heading, id) in cases {
            assert_eq!(ids(&[heading], heading).as_deref(), Some(id), "{heading}");
        }
        assert_eq!(ids(&["Design"], "Recovery"), None);
    }

    #[test]
    fn a_taken_id_gets_a_suffix() {
        let page = ["Design", "Exercises", "Design", "Design-1", "Design 1"];
        assert_eq!(ids(&page, "Design").as_deref(), Some("design"));
        assert_eq!(ids(&page, "Design-1").as_deref(), Some("design-1-1"));
        assert_eq!(ids(&page, "Design 1").as_deref(), Some("design-1-2"));
    }

    #[test]
    fn an_item_names_everything_to_do() {
        let markers = crate::marker::find(
            "// Exercise 4.3: find a key. Read: chapter 4b, \"Bloom filters\".\n\
             // Tests: lib::version::tests::gets, engine::a_get\n",
        )
        .unwrap();
        let exercise = Exercise {
            marker: markers[0].clone(),
            file: "src/version.rs".into(),
            function: "Version::get".into(),
        };
        let link = "chapter 4b's [Bloom filters](ch4b-reading-fast.md#bloom-filters)";
        assert_eq!(
            item(&exercise, "stages/4-lsm", link),
            "3. **Exercise 4.3: find a key.**\n   Write `Version::get` in \
             `stages/4-lsm/src/version.rs`.\n   Read chapter 4b's [Bloom filters]\
             (ch4b-reading-fast.md#bloom-filters) first.\n   Tests: \
             `lib::version::tests::gets`, `engine::a_get`.\n"
        );
    }
}
