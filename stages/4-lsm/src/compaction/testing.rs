//! Tables and options for the compaction tests of this folder.

use std::path::Path;
use std::sync::Arc;

use kv_shared::{Fs, Options};

use crate::block_cache::BlockCache;
use crate::file_names;
use crate::options::LsmOptions;
use crate::table::Table;
use crate::table::table_builder::TableBuilder;
use crate::version::TableFile;

/// A temporary directory for the tables of one test.
pub(crate) struct TableDir {
    tmp: tempfile::TempDir,
    /// The file system the tables are written through.
    pub(crate) fs: Fs,
}

impl TableDir {
    /// A new, empty directory.
    pub(crate) fn new() -> TableDir {
        TableDir {
            tmp: tempfile::tempdir().unwrap(),
            fs: Fs::default(),
        }
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Table `number` in the directory, holding `keys` (each `Some(value)` or a tombstone),
    /// opened.
    pub(crate) fn table(&self, number: u64, keys: &[(&str, u64, Option<&str>)]) -> Arc<TableFile> {
        let path = self.path().join(file_names::table(number));
        let options = LsmOptions {
            block_bytes: 256,
            ..options(4)
        };
        let mut b = TableBuilder::create(&self.fs, &path, number, &options).unwrap();
        for (k, seq, v) in keys {
            b.add(k.as_bytes(), *seq, v.map(str::as_bytes)).unwrap();
        }
        let meta = b.finish().unwrap();
        let cache = Arc::new(BlockCache::new(1 << 20));
        let table = Table::open(&self.fs, &path, number, cache).unwrap();
        Arc::new(TableFile::new(meta, table, self.fs.clone()))
    }
}

/// The options of these tests: L0 compacted at `l0_trigger` tables, L1 over at one byte.
pub(crate) fn options(l0_trigger: u32) -> LsmOptions {
    LsmOptions::parse(
        &Options::new()
            .set("l0_trigger", l0_trigger)
            .set("l0_slowdown", 8)
            .set("l0_stop", 8)
            .set("level1_bytes", 1)
            .set("dynamic_levels", false),
    )
    .unwrap()
}
