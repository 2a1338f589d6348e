//! The engine registry: every engine `kv` and `kvbench` can run, by name.
//!
//! An engine joins the tools with **one line** in [`ENGINES`]: an [`EngineInfo`] built by
//! [`EngineInfo::of`] from its type and its crate's `inspect` function, and, when its crate
//! has one, its `repair` function ([`EngineInfo::with_repair`]). Everything else (the
//! `kv --engine` names, `kv engines`, `kv inspect`, `kv repair`, the benchmark's default
//! engine list, the criterion groups) reads this table.
//!
//! Production engines that the course compares against ("peers": `fjall`, `sled`, `redb`,
//! RocksDB) are meant to join the same way, each behind a cargo feature so a default build
//! does not compile them: a `#[cfg(feature = "peers")]` line in [`ENGINES`] pointing at a small
//! adapter that implements [`kv_shared::Engine`] over the peer's API ([`crate::peers`]). A build
//! without a peer's feature lists it with [`crate::peers::not_built`].

use std::path::Path;

use kv_shared::{DynEngine, Engine, Error, OptionDoc, Options, RepairReport, Result};

/// Everything the tools need to know about one engine.
#[derive(Clone, Copy)]
pub struct EngineInfo {
    /// The name `kv --engine` and `kvbench --engines` take (the engine's [`Engine::NAME`]).
    pub name: &'static str,
    /// One line on what the engine is.
    pub summary: &'static str,
    /// The options it documents (`--set NAME=VALUE`).
    pub options: &'static [OptionDoc],
    /// Opens (or creates) a store of this engine in a directory.
    pub open: fn(&Path, &Options) -> Result<Box<dyn DynEngine>>,
    /// The annotated dump of one of its files, or `None` when the bytes are not one of them.
    pub inspect: fn(&[u8]) -> Option<String>,
    /// Repairs a damaged store of this engine without opening it (`kv repair`, see
    /// [`kv_shared::repair`]); [`no_repair`] for an engine without one.
    pub repair: fn(&Path, &Options, bool) -> Result<RepairReport>,
}

/// The `repair` of an engine that has none (the peers): always an error.
///
/// # Errors
/// [`Error::InvalidArgument`], always.
pub fn no_repair(dir: &Path, _options: &Options, _dry_run: bool) -> Result<RepairReport> {
    Err(Error::InvalidArgument(format!(
        "this engine has no repair; {} is left as it is",
        dir.display()
    )))
}

impl std::fmt::Debug for EngineInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineInfo")
            .field("name", &self.name)
            .field("summary", &self.summary)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl EngineInfo {
    /// The entry for engine type `E`, whose crate's dump function is `inspect`; without a
    /// repair until [`EngineInfo::with_repair`] gives it one.
    pub const fn of<E: Engine>(
        summary: &'static str,
        inspect: fn(&[u8]) -> Option<String>,
    ) -> Self {
        EngineInfo {
            name: E::NAME,
            summary,
            options: E::OPTIONS,
            open: kv_shared::open_dyn::<E>,
            inspect,
            repair: no_repair,
        }
    }

    /// This entry with `repair`, the engine crate's repair function.
    pub const fn with_repair(
        self,
        repair: fn(&Path, &Options, bool) -> Result<RepairReport>,
    ) -> Self {
        EngineInfo { repair, ..self }
    }

    /// The documentation of option `name`, if this engine has one by that name.
    pub fn option(&self, name: &str) -> Option<&'static OptionDoc> {
        self.options.iter().find(|doc| doc.name == name)
    }
}

/// Every engine of the course, in stage order.
pub const ENGINES: &[EngineInfo] = &[
    EngineInfo::of::<hashlog::HashLog>(
        "stage 1: one append-only log, an in-memory hash index",
        hashlog::inspect,
    )
    .with_repair(hashlog::repair),
    EngineInfo::of::<bitcask::Bitcask>(
        "stage 2: segments, background merge, hint files",
        bitcask::inspect,
    )
    .with_repair(bitcask::repair),
    EngineInfo::of::<sstable::SstableStore>(
        "stage 3: memtable, WAL, one level of SSTables",
        sstable::inspect,
    )
    .with_repair(sstable::repair),
    EngineInfo::of::<lsm::LsmTree>(
        "stage 4: leveled LSM tree, manifest, bloom filters",
        lsm::inspect,
    )
    .with_repair(lsm::repair),
    EngineInfo::of::<wisckey::Wisckey>(
        "stage 5: keys and value pointers in an LSM tree, values in a log",
        wisckey::inspect,
    )
    .with_repair(wisckey::repair),
    // Production peers, only in builds with their feature (see `crate::peers`).
    #[cfg(feature = "peers")]
    EngineInfo::of::<crate::peers::fjall::Fjall>(
        crate::peers::FJALL.summary,
        crate::peers::no_inspect,
    ),
    #[cfg(feature = "peers")]
    EngineInfo::of::<crate::peers::sled::Sled>(
        crate::peers::SLED.summary,
        crate::peers::no_inspect,
    ),
    #[cfg(feature = "peers")]
    EngineInfo::of::<crate::peers::redb::Redb>(
        crate::peers::REDB.summary,
        crate::peers::no_inspect,
    ),
    #[cfg(feature = "rocksdb")]
    EngineInfo::of::<crate::peers::rocksdb::RocksDb>(
        crate::peers::ROCKSDB.summary,
        crate::peers::no_inspect,
    ),
];

/// The engine called `name` in `registry`.
///
/// # Errors
/// [`kv_shared::Error::InvalidArgument`] listing the known names.
pub fn find<'a>(registry: &'a [EngineInfo], name: &str) -> Result<&'a EngineInfo> {
    registry.iter().find(|e| e.name == name).ok_or_else(|| {
        let names: Vec<&str> = registry.iter().map(|e| e.name).collect();
        kv_shared::Error::InvalidArgument(format!(
            "unknown engine `{name}` (known: {})",
            if names.is_empty() {
                "none yet".to_string()
            } else {
                names.join(", ")
            }
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_course_engine_has_a_repair_and_the_others_a_typed_refusal() {
        let tmp = tempfile::tempdir().unwrap();
        for info in &ENGINES[..4] {
            let report = (info.repair)(tmp.path(), &Options::new(), true);
            assert!(
                matches!(&report, Err(Error::InvalidArgument(e)) if e.contains("not a store")),
                "{}: {report:?}",
                info.name
            );
        }
        let refused = no_repair(tmp.path(), &Options::new(), false).unwrap_err();
        assert!(refused.to_string().contains("this engine has no repair"));
    }
}
