//! A learner's crate: writing one (`kv workshop new`) and what it records about itself.
//!
//! The crate is the stage's reference crate with the body of every marked function replaced
//! by a `todo!()` that names the exercise and the section to read: `src/` is copied file by
//! file (only those bodies change), `tests/` whole, beside a generated `Cargo.toml`
//! ([`crate::manifest`]), the checkout's `Cargo.lock` (the same dependency versions),
//! a `README.md` listing the exercises ([`crate::readme`]), a `bench` binary, and
//! `workshop.json`, which `kv workshop check` reads.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkout::{Checkout, Stage, read_manifest};
use crate::error::{Error, Result, io, source};
use crate::exercises::{self, Exercise, SourceFile};
use crate::manifest::{self, FromCrate};
use crate::readme;
use crate::stub;

/// What a learner's crate records about itself, in [`Workshop::FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workshop {
    /// The stage.
    pub stage: u32,
    /// Its crate name.
    pub crate_name: String,
    /// The checkout it was written from.
    pub checkout: PathBuf,
    /// The exercises, in order.
    pub exercises: Vec<Exercise>,
}

/// Which marked bodies become `todo!()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stubs {
    /// Every one: the learner's starting point.
    All,
    /// None: the reference, as a workshop crate (the workshop's own tests use it).
    None,
    /// Only exercise `N` (the workshop's own tests use it).
    Only(u32),
}

impl Stubs {
    fn stubs(self, number: u32) -> bool {
        match self {
            Stubs::All => true,
            Stubs::None => false,
            Stubs::Only(n) => n == number,
        }
    }
}

impl Workshop {
    /// The file in a learner's crate that holds its [`Workshop`].
    pub const FILE: &'static str = "workshop.json";

    /// Reads the workshop crate in `dir`.
    ///
    /// # Errors
    /// [`Error::Usage`] when `dir` holds no readable [`Workshop::FILE`].
    pub fn load(dir: &Path) -> Result<Workshop> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Usage(format!(
                "{} is not a workshop crate (no {}: {e}); `kv workshop new` writes one",
                dir.display(),
                Self::FILE
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| source(&path, e.line(), e.to_string()))
    }

    /// The exercise `S.N` names, if it is one of this crate's.
    pub fn exercise(&self, stage: u32, number: u32) -> Option<&Exercise> {
        self.exercises
            .iter()
            .find(|e| e.marker.stage == stage && e.marker.number == number)
    }
}

/// Writes the learner's crate of stage `stage` into `dir`, which must be empty or absent,
/// with the bodies `stubs` selects left as `todo!()`. `from` is the learner's crate of an
/// earlier stage to build on instead of its reference (stage 4 on stage 3).
///
/// # Errors
/// [`Error::Usage`] for an unknown stage, a non-empty `dir`, or a `from` that is not a crate
/// this stage builds on; [`Error::Source`] for a malformed marker; [`Error::Io`].
pub fn create(
    checkout: &Checkout,
    stage: u32,
    dir: &Path,
    from: Option<&Path>,
    stubs: Stubs,
) -> Result<Workshop> {
    let stage = checkout.stage(stage)?;
    let from = from.map(from_crate).transpose()?;
    let files = exercises::source_files(checkout, &stage)?;
    let manifest = manifest::learner_manifest(checkout, &stage, from.as_ref())?;
    let engine = engine_type(checkout, &stage)?;
    claim_empty(dir)?;
    let dir = dir.canonicalize().map_err(io(dir))?;
    let mut exercises = Vec::new();
    for file in &files {
        write(&dir.join(&file.relative), stubbed(file, stubs))?;
        exercises.extend(file.bodies.iter().map(|(e, _, _)| e.clone()));
    }
    exercises.sort_by_key(|e| e.marker.number);
    copy_others(&stage, &dir)?;
    let workshop = Workshop {
        stage: stage.number,
        crate_name: stage.crate_name.clone(),
        checkout: checkout.root().to_path_buf(),
        exercises,
    };
    write(&dir.join("Cargo.toml"), manifest)?;
    let lock = checkout.root().join("Cargo.lock");
    write(
        &dir.join("Cargo.lock"),
        std::fs::read(&lock).map_err(io(&lock))?,
    )?;
    write(&dir.join(".gitignore"), "/target\n")?;
    write(
        &dir.join("src/bin/bench.rs"),
        readme::bench_main(&stage, &engine),
    )?;
    write(
        &dir.join("README.md"),
        readme::readme(checkout, &workshop, &dir)?,
    )?;
    let json = serde_json::to_string_pretty(&workshop).map_err(std::io::Error::other);
    write(&dir.join(Workshop::FILE), json.map_err(io(&dir))? + "\n")?;
    Ok(workshop)
}

/// `file`'s text with the bodies `stubs` selects replaced.
fn stubbed(file: &SourceFile, stubs: Stubs) -> String {
    let edits = file
        .bodies
        .iter()
        .filter(|(e, _, _)| stubs.stubs(e.marker.number))
        .map(|(e, body, indent)| {
            (
                body.clone(),
                stub::todo_body(indent, &e.marker.todo_message()),
            )
        })
        .collect();
    stub::splice(&file.text, edits)
}

/// Creates `dir`, or accepts it when it exists and is empty.
fn claim_empty(dir: &Path) -> Result<()> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(Error::Usage(format!(
                "{} is not empty: `kv workshop new` writes a fresh crate; \
                 give it a new directory (your work there is left as it is)",
                dir.display()
            )));
        }
    } else if dir.exists() {
        return Err(Error::Usage(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))
}

/// Copies the stage's files that are not Rust sources under `src/` (snapshots), and all of
/// `tests/`.
fn copy_others(stage: &Stage, dir: &Path) -> Result<()> {
    for path in exercises::walk(&stage.dir.join("src"))? {
        if path.extension().is_none_or(|e| e != "rs") {
            copy(stage, &path, dir)?;
        }
    }
    let tests = stage.dir.join("tests");
    if tests.is_dir() {
        for path in exercises::walk(&tests)? {
            copy(stage, &path, dir)?;
        }
    }
    Ok(())
}

/// Copies `path`, a file of `stage`, to the same place under `dir`.
fn copy(stage: &Stage, path: &Path, dir: &Path) -> Result<()> {
    let relative = path.strip_prefix(&stage.dir).unwrap_or(path);
    write(&dir.join(relative), std::fs::read(path).map_err(io(path))?)
}

/// Writes `contents` to `path`, creating its directory.
fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, contents).map_err(io(path))
}

/// The learner's crate in `dir`, given with `--from`.
fn from_crate(dir: &Path) -> Result<FromCrate> {
    let manifest = read_manifest(&dir.join("Cargo.toml"))
        .map_err(|e| Error::Usage(format!("--from {}: not a crate ({e})", dir.display())))?;
    let name = manifest["package"]["name"].as_str().unwrap_or_default();
    Ok(FromCrate {
        name: name.to_string(),
        dir: dir.canonicalize().map_err(io(dir))?,
    })
}

/// The engine type of `stage`, as kvbench's registry (`benches/src/engines.rs`) names it.
fn engine_type(checkout: &Checkout, stage: &Stage) -> Result<String> {
    let path = checkout.root().join("benches/src/engines.rs");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let needle = format!("EngineInfo::of::<{}::", stage.crate_name);
    let name: Option<String> = text.find(&needle).map(|at| {
        text[at + needle.len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    });
    name.filter(|n| !n.is_empty()).ok_or_else(|| {
        let detail = format!("no `{needle}...` entry for stage {}", stage.number);
        source(&path, 0, detail)
    })
}
