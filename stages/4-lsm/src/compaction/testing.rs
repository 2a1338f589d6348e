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

/// A table on disk holding `keys` (each `Some(value)` or a tombstone), opened.
pub(crate) fn table(
    fs: &Fs,
    dir: &Path,
    number: u64,
    keys: &[(&str, u64, Option<&str>)],
) -> Arc<TableFile> {
    let path = dir.join(file_names::table(number));
    let options = LsmOptions {
        block_bytes: 256,
        ..options(4)
    };
    let mut b = TableBuilder::create(fs, &path, number, &options).unwrap();
    for (k, seq, v) in keys {
        b.add(k.as_bytes(), *seq, v.map(str::as_bytes)).unwrap();
    }
    let meta = b.finish().unwrap();
    Arc::new(TableFile::new(
        meta,
        Table::open(fs, &path, number, Arc::new(BlockCache::new(1 << 20))).unwrap(),
        fs.clone(),
    ))
}

/// The options of these tests: L0 compacted at `l0_trigger` tables, L1 over at one byte.
pub(crate) fn options(l0_trigger: u32) -> LsmOptions {
    LsmOptions::parse(
        &Options::new()
            .set("l0_trigger", l0_trigger)
            .set("l0_slowdown", 8)
            .set("l0_stop", 8)
            .set("level1_bytes", 1),
    )
    .unwrap()
}
