//! What the test files share: options written the way `kv --set` takes them, a new tree in a
//! temporary directory, and the tables a store directory holds.
#![allow(dead_code)]

use std::path::Path;

use kv_shared::{Engine, Fs, Options};
use lsm::LsmTree;
use tempfile::TempDir;

/// Options made of `settings`, `NAME=VALUE` pairs separated by white space, as `kv --set`
/// takes them: `options("memtable_bytes=8K block_bytes=512")`. Every other option keeps its
/// default.
pub fn options(settings: &str) -> Options {
    let mut options = Options::new();
    for pair in settings.split_whitespace() {
        options.set_pair(pair).unwrap();
    }
    options
}

/// A new tree with `options`, in a new temporary directory that lives as long as the
/// `TempDir` returned with it (reopen the tree at its `path()`).
pub fn new_tree(options: &Options) -> (TempDir, LsmTree) {
    let tmp = tempfile::tempdir().unwrap();
    let tree = LsmTree::open(tmp.path(), options).unwrap();
    (tmp, tree)
}

/// The names of the tables (`NNNNNN.sst`) in `dir`, sorted.
pub fn table_files(dir: &Path) -> Vec<String> {
    let mut names = Fs::default().list(dir).unwrap();
    names.retain(|name| name.ends_with(".sst"));
    names
}
