//! `kv draw`: pictures of a real store's structure, as SVG, drawn from the
//! [`kv_shared::Structure`] each stage's `inspect::structure` reads from a directory.
//!
//! | picture | module | what it shows |
//! |---|---|---|
//! | a hashlog store | [`log`] | the log as a strip of records, arrows from the index's entries to the records they point at |
//! | a bitcask store | [`segments`] | each segment as a box scaled by its size, its dead bytes shaded, its hint file beside it |
//! | an sstable store | [`tables`] | the memtable and its WAL, the tables as bars spanning their key ranges on a key axis |
//! | an lsm store | [`levels`] | the level pyramid: a row per level, tables placed by key range and scaled by size |
//! | a wisckey store | [`separated`] | the tree's level pyramid on top, the value log below as a strip of segments scaled by size, dead bytes hatched |
//! | one file (`--file`) | [`mod@file`] | its parts in file order with their sizes: blocks, index, filter, footer; or records |
//!
//! Reading is read only ([`kv_shared::structure`]): drawing a store never changes it, works
//! while another process has it open, and refuses a directory that is not a store. The
//! output is deterministic (no timestamps, files sorted by name, keys in order), so a
//! picture of the same store is the same bytes, and snapshot tests pin them.

pub mod file;
pub mod key_axis;
pub mod levels;
pub mod log;
pub mod segments;
pub mod separated;
pub mod svg;
pub mod tables;

use std::path::Path;

use kv_shared::structure::{Part, PartKind, StoreFile, read_marker};
use kv_shared::{Error, Options, Result, Structure};

use crate::engines::{EngineInfo, find};
use svg::{Swatch, colour};

/// The left margin of every picture.
pub const LEFT: f64 = 20.0;

/// The structure of the store in `dir`, read by the `inspect::structure` of the engine its
/// marker names. `engine`, when given, must be that engine; `options` are the `--set` values
/// the store runs with (they give the memtable's capacity and the levels' targets).
///
/// # Errors
/// [`Error::InvalidArgument`] for a directory that is not a store, an unknown option, or an
/// engine `kv draw` does not know; [`Error::WrongEngine`] when `engine` is another; and what
/// the stage's reader reports ([`Error::Corruption`], [`Error::Io`]).
pub fn structure(
    registry: &[EngineInfo],
    dir: &Path,
    engine: Option<&str>,
    options: &Options,
) -> Result<Structure> {
    let marker = read_marker(dir)?;
    if let Some(expected) = engine.filter(|&e| e != marker.engine) {
        return Err(Error::WrongEngine {
            dir: dir.to_path_buf(),
            found: marker.engine,
            expected: expected.to_string(),
        });
    }
    let info = find(registry, &marker.engine)?;
    options.check_known(info.name, info.options)?;
    match info.name {
        "hashlog" => hashlog::inspect::structure(dir),
        "bitcask" => bitcask::inspect::structure(dir),
        "sstable" => sstable::inspect::structure_with(dir, options),
        "lsm" => lsm::inspect::structure_with(dir, options),
        "wisckey" => wisckey::inspect::structure_with(dir, options),
        other => Err(Error::InvalidArgument(format!(
            "kv draw draws the course's stores (hashlog, bitcask, sstable, lsm, wisckey), not \
             `{other}`"
        ))),
    }
}

/// What `kv draw` draws: a store, one file of a store, or a standalone SSTable.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The store directory (`--dir`).
    pub dir: Option<&'a Path>,
    /// The engine the store must be (`--engine`).
    pub engine: Option<&'a str>,
    /// One file to draw (`--file`): a file of the store, or without `--dir` a standalone
    /// SSTable (`kv sstable build`).
    pub file: Option<&'a Path>,
}

/// The SVG picture of `request`.
///
/// # Errors
/// As [`structure`]; [`Error::InvalidArgument`] when neither `--dir` nor `--file` is given,
/// or the store holds no such file; as `sstable::inspect::table_file` for a standalone file.
pub fn draw(registry: &[EngineInfo], request: Request<'_>, options: &Options) -> Result<String> {
    let Some(dir) = request.dir else {
        return match request.file {
            Some(path) => Ok(file::draw(&sstable::inspect::table_file(path)?)),
            None => Err(Error::InvalidArgument(
                "kv draw needs --dir DIR (a store), or --file FILE (a standalone SSTable)".into(),
            )),
        };
    };
    let structure = structure(registry, dir, request.engine, options)?;
    let Some(path) = request.file else {
        return Ok(store_picture(&structure));
    };
    match find_file(&structure, dir, path) {
        Some(file) => Ok(file::draw(file)),
        None => {
            let names: Vec<&str> = structure.files.iter().map(|f| f.name.as_str()).collect();
            Err(Error::InvalidArgument(format!(
                "{} holds no file {} (it holds: {})",
                dir.display(),
                path.display(),
                names.join(", ")
            )))
        }
    }
}

/// The file of `structure` that `path` names: its name in the store (`000005.sst`, or
/// `tree/000005.sst` in a store with subdirectories), that path under `dir`, or a bare file
/// name that one file of a subdirectory alone has (`00000001.seg` for `vlog/00000001.seg`).
fn find_file<'a>(structure: &'a Structure, dir: &Path, path: &Path) -> Option<&'a StoreFile> {
    let relative = path.strip_prefix(dir).unwrap_or(path).to_string_lossy();
    if let Some(file) = structure.file(&relative) {
        return Some(file);
    }
    let name = path.file_name()?.to_string_lossy();
    let mut in_subdirectory = structure
        .files
        .iter()
        .filter(|f| f.name.rsplit('/').next() == Some(&*name));
    match (in_subdirectory.next(), in_subdirectory.next()) {
        (Some(file), None) => Some(file),
        _ => None,
    }
}

/// The picture of a whole store, by its engine (what `kv draw --dir` draws, and `kv serve`'s
/// page shows).
pub fn store_picture(structure: &Structure) -> String {
    match structure.engine.as_str() {
        "hashlog" => log::draw(structure),
        "bitcask" => segments::draw(structure),
        "lsm" => levels::draw(structure),
        "wisckey" => separated::draw(structure),
        _ => tables::draw(structure),
    }
}

/// The colour a part is drawn in, and whether it is hatched as dead.
pub fn fill_of(part: &Part) -> (&'static str, bool) {
    let dead = part.live == Some(false);
    match part.kind {
        PartKind::Header | PartKind::Body | PartKind::HintEnd => (colour::HEADER, false),
        PartKind::Put | PartKind::HintEntry if dead => (colour::DEAD, true),
        PartKind::Put | PartKind::HintEntry => (colour::LIVE, false),
        PartKind::Delete => (colour::DELETE, dead),
        PartKind::Batch if dead => (colour::DEAD, true),
        PartKind::Batch => (colour::BATCH, false),
        PartKind::Seal => (colour::SEAL, false),
        PartKind::Edit => (colour::SEAL, false),
        PartKind::DataBlock => (colour::BLOCK, false),
        PartKind::Index => (colour::INDEX, false),
        PartKind::Filter => (colour::FILTER, false),
        PartKind::Footer => (colour::FOOTER, false),
        PartKind::Unreadable => (colour::UNREADABLE, true),
    }
}

/// A short label for a part: the key of a record, what a block is.
pub fn short_label(part: &Part) -> String {
    let keys = part.keys.join(",");
    match part.kind {
        PartKind::Header => "header".into(),
        PartKind::Put | PartKind::HintEntry => keys,
        PartKind::Delete => format!("del {keys}"),
        PartKind::Batch => format!("[{keys}]"),
        PartKind::Seal => "seal".into(),
        PartKind::HintEnd => "end".into(),
        PartKind::Edit => "edit".into(),
        PartKind::DataBlock => "block".into(),
        PartKind::Index => "index".into(),
        PartKind::Filter => "filter".into(),
        PartKind::Footer => "footer".into(),
        PartKind::Body => "body".into(),
        PartKind::Unreadable => "torn".into(),
    }
}

/// The legend of `parts`: the colour of each kind of part among them, with its meaning, in
/// the order they first appear.
pub fn legend<'a>(parts: impl IntoIterator<Item = &'a Part>) -> Vec<Swatch> {
    let mut legend: Vec<Swatch> = Vec::new();
    for part in parts {
        let (fill, hatched) = fill_of(part);
        let meaning = match part.kind {
            PartKind::Put | PartKind::HintEntry | PartKind::Batch if hatched => "dead",
            PartKind::Put | PartKind::HintEntry if part.live.is_some() => "live",
            PartKind::Batch if part.live.is_some() => "live batch",
            kind => file::kind_name(kind),
        };
        let swatch = Swatch {
            fill,
            hatched,
            meaning,
        };
        if !legend.contains(&swatch) {
            legend.push(swatch);
        }
    }
    legend
}
