//! What the test files share: options written the way `kv --set` takes them, and a new
//! store in a temporary directory.
#![allow(dead_code)]

use kv_shared::{Engine, Options};
use tempfile::TempDir;
use wisckey::Wisckey;

/// Options made of `settings`, `NAME=VALUE` pairs separated by white space, as `kv --set`
/// takes them: `options("value_threshold=4 vlog_segment_bytes=4K")`. Every other option
/// keeps its default.
pub fn options(settings: &str) -> Options {
    let mut options = Options::new();
    for pair in settings.split_whitespace() {
        options.set_pair(pair).unwrap();
    }
    options
}

/// Tiny sizes: values of 4 bytes or more in the value log, 4 KiB segments (sealed and
/// collected often), a tree of 8 KiB memtables and tables that flush and compact often.
pub fn small() -> Options {
    options(
        "value_threshold=4 vlog_segment_bytes=4K gc_dead_ratio=0.3 memtable_bytes=8K \
         table_bytes=8K level1_bytes=24K level_ratio=4 l0_trigger=2 l0_slowdown=4 l0_stop=6 \
         block_bytes=512",
    )
}

/// A new store with `options`, in a new temporary directory that lives as long as the
/// `TempDir` returned with it (reopen the store at its `path()`).
pub fn new_store(options: &Options) -> (TempDir, Wisckey) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Wisckey::open(tmp.path(), options).unwrap();
    (tmp, store)
}
