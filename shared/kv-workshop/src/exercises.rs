//! A stage's exercises: its markers, each tied to the function right below it and checked
//! against the chapter and the test targets it names.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkout::{Checkout, Stage};
use crate::error::{Result, io, source};
use crate::marker::{self, Marker};
use crate::stub::{self, Function};

/// One exercise: a function whose body the learner writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exercise {
    /// What its marker says.
    #[serde(flatten)]
    pub marker: Marker,
    /// The source file, relative to the crate (`src/record.rs`).
    pub file: String,
    /// The function: `Type::name` for a method.
    pub function: String,
}

/// One source file of a stage, with the exercises it holds and their bodies.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// Relative to the crate: `src/record.rs`.
    pub relative: PathBuf,
    /// The file's text.
    pub text: String,
    /// Each exercise in this file with its body's byte range and indentation.
    pub bodies: Vec<(Exercise, Range<usize>, String)>,
}

/// The exercises of `stage`, in order.
///
/// # Errors
/// [`crate::Error::Source`] for a malformed marker, one not right above a function, a
/// chapter section or test target that does not exist, or exercise numbers that are not
/// 1, 2, 3, ... of this stage.
pub fn stage_exercises(checkout: &Checkout, stage: &Stage) -> Result<Vec<Exercise>> {
    let files = source_files(checkout, stage)?;
    let mut all: Vec<Exercise> = files
        .into_iter()
        .flat_map(|f| f.bodies.into_iter().map(|(e, _, _)| e))
        .collect();
    all.sort_by_key(|e| e.marker.number);
    Ok(all)
}

/// Every `.rs` file under the stage's `src/`, each with its exercises, checked.
pub(crate) fn source_files(checkout: &Checkout, stage: &Stage) -> Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    for path in rust_files(&stage.dir.join("src"))? {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let relative = path.strip_prefix(&stage.dir).unwrap_or(&path).to_path_buf();
        let bodies = locate(&path, &relative, &text)?;
        files.push(SourceFile {
            relative,
            text,
            bodies,
        });
    }
    let mut by_number = BTreeMap::new();
    for file in &files {
        for (exercise, _, _) in &file.bodies {
            check(
                checkout,
                stage,
                &stage.dir.join(&file.relative),
                &exercise.marker,
            )?;
            if let Some(other) = by_number.insert(exercise.marker.number, exercise.file.clone()) {
                let path = stage.dir.join(&file.relative);
                let detail = format!(
                    "exercise {} is also marked in {other}",
                    exercise.marker.id()
                );
                return Err(source(path, 0, detail));
            }
        }
    }
    if let Some((expected, found)) = (1..).zip(by_number.keys()).find(|(n, k)| n != *k) {
        let detail = format!(
            "exercise {}.{found} comes where {expected} should",
            stage.number
        );
        return Err(source(stage.dir.join("src"), 0, detail));
    }
    Ok(files)
}

/// The exercises of one file, each tied to the function that starts right below its marker.
fn locate(
    path: &Path,
    relative: &Path,
    text: &str,
) -> Result<Vec<(Exercise, Range<usize>, String)>> {
    let markers = marker::find(text).map_err(|(line, detail)| source(path, line, detail))?;
    if markers.is_empty() {
        return Ok(Vec::new());
    }
    let functions = stub::functions(text).map_err(|e| {
        let line = e.span().start().line;
        source(path, line, format!("does not parse: {e}"))
    })?;
    markers
        .into_iter()
        .map(|m| {
            let below = functions.iter().find(|f| f.first_line == m.last_line + 1);
            let Some(function) = below else {
                let detail = "an exercise marker must be right above a function with a body";
                return Err(source(path, m.line, detail));
            };
            let exercise = exercise(m, relative, function);
            Ok((exercise, function.body.clone(), function.indent.clone()))
        })
        .collect()
}

/// The exercise that marker `m` in `relative` makes of `function`.
fn exercise(marker: Marker, relative: &Path, function: &Function) -> Exercise {
    Exercise {
        marker,
        file: relative.to_string_lossy().replace('\\', "/"),
        function: function.name.clone(),
    }
}

/// Checks what `marker` (in `path`) names: its stage, its chapter's section, the test
/// targets of its tests.
fn check(checkout: &Checkout, stage: &Stage, path: &Path, marker: &Marker) -> Result<()> {
    let fail = |detail: String| {
        let detail = format!("exercise {}: {detail}", marker.id());
        Err(source(path, marker.line, detail))
    };
    if marker.stage != stage.number {
        return fail(format!("marked in stage {}'s sources", stage.number));
    }
    let headings = checkout.headings(&marker.chapter)?;
    if !headings.contains(&marker.section) {
        let (chapter, section) = (&marker.chapter, &marker.section);
        return fail(format!("chapter {chapter} has no section \"{section}\""));
    }
    for test in &marker.tests {
        let file = stage.dir.join("tests").join(format!("{}.rs", test.target));
        if test.target != "lib" && !file.is_file() {
            return fail(format!("test {test}: there is no {}", file.display()));
        }
    }
    Ok(())
}

/// The `.rs` files under `dir`, sorted.
pub(crate) fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in walk(dir)? {
        if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    Ok(found)
}

/// Every file under `dir`, recursively, sorted.
pub(crate) fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()).map_err(io(dir)))
        .collect::<Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            found.extend(walk(&path)?);
        } else {
            found.push(path);
        }
    }
    Ok(found)
}
