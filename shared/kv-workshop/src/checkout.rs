//! The checkout the workshop reads: its stages, their manifests and their chapters.
//!
//! Nothing here is a table to keep up to date: a stage is a directory `stages/N-name` with a
//! `Cargo.toml`, its crate name is that manifest's, and its chapter is the one file
//! `notes/src/chN-*.md`.

use std::path::{Path, PathBuf};

use toml_edit::DocumentMut;

use crate::error::{Error, Result, io, source};

/// A checkout of the course: the workspace whose stages the workshop copies.
#[derive(Debug, Clone)]
pub struct Checkout {
    root: PathBuf,
}

/// One stage of the course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The stage's number, from its directory name (`stages/1-hashlog` is 1).
    pub number: u32,
    /// Its crate's name (`hashlog`), which the learner's crate keeps so the tests compile.
    pub crate_name: String,
    /// The crate's directory.
    pub dir: PathBuf,
}

impl Checkout {
    /// The checkout this crate was built in: the workspace two levels above it.
    pub fn here() -> Checkout {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        Checkout::at(
            crate_dir
                .parent()
                .and_then(Path::parent)
                .unwrap_or(crate_dir),
        )
    }

    /// The checkout at `root`.
    pub fn at(root: &Path) -> Checkout {
        Checkout {
            root: root.to_path_buf(),
        }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every stage, in order.
    ///
    /// # Errors
    /// [`Error::Io`] reading `stages/`; [`Error::Source`] for a manifest without a name.
    pub fn stages(&self) -> Result<Vec<Stage>> {
        let dir = self.root.join("stages");
        let mut stages = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(number) = name.split('-').next().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let manifest = read_manifest(&path.join("Cargo.toml"))?;
            let crate_name = manifest["package"]["name"]
                .as_str()
                .ok_or_else(|| source(path.join("Cargo.toml"), 0, "no [package] name"))?;
            stages.push(Stage {
                number,
                crate_name: crate_name.to_string(),
                dir: path,
            });
        }
        stages.sort_by_key(|s| s.number);
        Ok(stages)
    }

    /// Stage `number`.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the stages there are, when there is no such stage.
    pub fn stage(&self, number: u32) -> Result<Stage> {
        let stages = self.stages()?;
        let known: Vec<String> = stages
            .iter()
            .map(|s| format!("{} ({})", s.number, s.crate_name))
            .collect();
        stages
            .into_iter()
            .find(|s| s.number == number)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "there is no stage {number}; the stages are {}",
                    known.join(", ")
                ))
            })
    }

    /// Chapter `id` (`1`, or `4b`): the file `notes/src/ch{id}-*.md`.
    ///
    /// # Errors
    /// [`Error::Usage`] when there is no such file.
    pub fn chapter(&self, id: &str) -> Result<PathBuf> {
        let dir = self.root.join("notes/src");
        let prefix = format!("ch{id}-");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(&prefix) && name.ends_with(".md") {
                found.push(path);
            }
        }
        match found.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(Error::Usage(format!(
                "expected one chapter {}/{prefix}*.md, found {}",
                dir.display(),
                found.len()
            ))),
        }
    }

    /// The section headings of chapter `id`, without their `#`s.
    ///
    /// # Errors
    /// As [`Checkout::chapter`], and [`Error::Io`] reading it.
    pub fn headings(&self, id: &str) -> Result<Vec<String>> {
        let path = self.chapter(id)?;
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        Ok(headings(&text))
    }
}

/// The Markdown headings of `text` (`## Design` gives `Design`), outside code fences.
pub fn headings(text: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            let title = line.trim_start_matches('#');
            if let Some(title) = title.strip_prefix(' ') {
                found.push(title.trim().to_string());
            }
        }
    }
    found
}

/// Reads and parses the manifest at `path`.
///
/// # Errors
/// [`Error::Io`]; [`Error::Source`] when it is not TOML.
pub fn read_manifest(path: &Path) -> Result<DocumentMut> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    text.parse::<DocumentMut>()
        .map_err(|e| source(path, 0, format!("not a valid manifest: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_skip_code_fences() {
        let text = "# Title\n\n## Design\n```sh\n# a comment\n```\n### On disk (`x`)\n#no\n";
        assert_eq!(headings(text), ["Title", "Design", "On disk (`x`)"]);
    }

    #[test]
    fn the_stages_of_this_checkout() {
        let checkout = Checkout::here();
        let stages = checkout.stages().unwrap();
        let names: Vec<&str> = stages.iter().map(|s| s.crate_name.as_str()).collect();
        assert_eq!(names, ["hashlog", "bitcask", "sstable", "lsm", "wisckey"]);
        assert!(
            checkout
                .headings("4b")
                .unwrap()
                .contains(&"Bloom filters".to_string())
        );
        assert!(matches!(checkout.stage(9), Err(Error::Usage(_))));
    }
}
