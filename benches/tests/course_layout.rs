//! The course's map of the code must match the code: the rooms table of `stages/README.md`
//! against the files on disk, and every source path the notes and READMEs name against the
//! tree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The workspace root (this crate lives in `benches/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The stage directories, in order: `stages/1-hashlog`, ...
fn stage_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("stages"))
        .expect("stages/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    dirs
}

/// The rows of the rooms table: room file name, then one mark per stage ("yes" or "-").
fn rooms_table() -> Vec<(String, Vec<bool>)> {
    let text = std::fs::read_to_string(root().join("stages/README.md")).expect("stages/README.md");
    let table = text
        .split("<!-- rooms -->")
        .nth(1)
        .expect("stages/README.md holds the rooms table between <!-- rooms --> markers");
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let room = cells[0].trim_matches('`').to_string();
            let marks = cells[2..].iter().map(|c| *c == "yes").collect();
            (room, marks)
        })
        .collect()
}

#[test]
fn the_rooms_table_matches_the_files() {
    let stages = stage_dirs();
    let rows = rooms_table();
    assert!(rows.len() >= 6, "the table lists the six rooms");
    for (room, marks) in &rows {
        assert_eq!(
            marks.len(),
            stages.len(),
            "one column per stage for `{room}`"
        );
        for (stage, has) in stages.iter().zip(marks) {
            let src = stage.join("src");
            let exists = src.join(room).exists() || src.join(room.trim_end_matches(".rs")).is_dir();
            assert_eq!(
                exists,
                *has,
                "stages/README.md says {} {} `{room}`",
                stage.display(),
                if *has { "has" } else { "has no" }
            );
        }
    }
}

/// Every file below `dir` (recursively), as paths relative to the root.
fn files_below(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == ".git" || name == "book" {
            continue;
        }
        if path.is_dir() {
            files_below(&path, out);
        } else if let Ok(rel) = path.strip_prefix(root()) {
            out.insert(rel.to_path_buf());
        }
    }
}

/// The paths and `.rs` file names a text names in backticks or links.
fn named_paths(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for piece in text.split(['`', '(', ')', ' ', '\n', '[', ']']) {
        let piece = piece.trim_end_matches([',', '.', ':', ';']);
        let rooted = ["stages/", "shared/", "benches/"]
            .iter()
            .any(|top| piece.starts_with(top));
        let source = piece.ends_with(".rs") && !piece.contains("://");
        if (rooted || source) && !piece.contains(['*', '<', '{']) && piece.len() > 3 {
            names.push(piece.to_string());
        }
    }
    names
}

/// Where a relative path named in `doc` may start: the root, the document's own folder, and
/// for a chapter `chN-*.md` its stage's crate (for any other page of the notes, every
/// stage's crate: "each stage's `tests/reliability.rs`").
fn bases_for(doc: &Path) -> Vec<PathBuf> {
    let mut bases = vec![root()];
    bases.extend(doc.parent().map(Path::to_path_buf));
    let name = doc
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_notes = doc.starts_with(root().join("notes"));
    for stage in stage_dirs() {
        let number = stage.file_name().unwrap().to_string_lossy().chars().next();
        let chapter = name.strip_prefix("ch").and_then(|rest| rest.chars().next());
        if in_notes && (chapter.is_none() || chapter == number) {
            bases.push(stage);
        }
    }
    bases
}

#[test]
fn every_path_the_course_names_exists() {
    let root = root();
    let mut files = BTreeSet::new();
    files_below(&root, &mut files);
    let file_names: BTreeSet<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let mut docs = vec![root.join("README.md"), root.join("stages/README.md")];
    docs.push(root.join("benches/README.md"));
    let mut notes = BTreeSet::new();
    files_below(&root.join("notes/src"), &mut notes);
    docs.extend(
        notes
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .map(|p| root.join(p)),
    );
    let mut missing = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).expect("a document");
        for name in named_paths(&text) {
            let found = if name.contains('/') {
                let name = name.trim_end_matches('/');
                bases_for(doc).iter().any(|base| base.join(name).exists())
            } else {
                file_names.contains(&name)
            };
            if !found {
                missing.push(format!(
                    "{}: `{name}`",
                    doc.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths named but not in the tree:\n{}",
        missing.join("\n")
    );
}
