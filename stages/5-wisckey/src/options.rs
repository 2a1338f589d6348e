//! The engine's options: the `kv --set NAME=VALUE` names wisckey knows, documented once in
//! [`OPTIONS`], and [`WisckeyOptions`], the same options parsed and checked.
//!
//! Five options are wisckey's own: `value_threshold`, `vlog_segment_bytes`, `sync_writes`,
//! `gc_dead_ratio` and `scan_prefetch`. Every other one is the **tree's**: all of stage 4's
//! options (`memtable_bytes`, `table_bytes`, `level1_bytes`, `level_ratio`,
//! `dynamic_levels`, the `l0_*` thresholds, `bloom_bits_per_key`, `block_bytes`,
//! `compaction` and the `tiered_*` ones, `wal_bytes_per_sync`, `restart_interval`,
//! `compression`, `block_cache_bytes`) are passed through to the tree unchanged, with
//! stage 4's defaults and checks ([`lsm::options`]), except `sync_writes`, which wisckey
//! owns and passes on itself (the tree syncs its WAL when wisckey's writes must be synced).
//!
//! Note what the tree's sizes now measure: keys and 17-byte pointers (or small values), so a
//! `memtable_bytes` of 4 MiB holds far more keys than in stage 4.

use kv_shared::{Error, OptionDoc, Options, Result};

/// Wisckey's own options.
const OWN: [OptionDoc; 5] = [
    OptionDoc {
        name: "value_threshold",
        default: "128",
        doc: "values of this many bytes or more go to the value log, the tree keeping a 17-byte pointer; smaller ones are kept in the tree (0: every value in the log)",
    },
    OptionDoc {
        name: "vlog_segment_bytes",
        default: "16M",
        doc: "a value-log segment is sealed, and the next one started, once it holds this many bytes (the unit garbage collection frees)",
    },
    OptionDoc {
        name: "sync_writes",
        default: "false",
        doc: "fsync the value log, then the tree's WAL, before each write returns",
    },
    OptionDoc {
        name: "gc_dead_ratio",
        default: "0.5",
        doc: "a background garbage collection frees a sealed segment once at least this share of its bytes is dead (0: no background collection; compact always collects)",
    },
    OptionDoc {
        name: "scan_prefetch",
        default: "64",
        doc: "a cursor moving one way reads up to this many values ahead, in segment and offset order (0 or 1: one value at a time)",
    },
];

/// The tree's options wisckey passes through: every stage 4 option but `sync_writes`.
const TREE_OPTIONS: usize = lsm::options::OPTIONS.len() - 1;

/// Every option: wisckey's own, then the tree's.
pub const OPTIONS: &[OptionDoc] = &all_options();

/// True when `a` and `b` are the same name (a `const` comparison).
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// [`OWN`], then every option of [`lsm::options::OPTIONS`] but `sync_writes`.
const fn all_options() -> [OptionDoc; OWN.len() + TREE_OPTIONS] {
    let mut out = [OWN[0]; OWN.len() + TREE_OPTIONS];
    let mut n = 0;
    while n < OWN.len() {
        out[n] = OWN[n];
        n += 1;
    }
    let tree = lsm::options::OPTIONS;
    let mut i = 0;
    while i < tree.len() {
        if !same(tree[i].name, "sync_writes") {
            out[n] = tree[i];
            n += 1;
        }
        i += 1;
    }
    out
}

/// True when `name` is one of the tree's options.
pub fn is_tree_option(name: &str) -> bool {
    name != "sync_writes" && lsm::options::OPTIONS.iter().any(|o| o.name == name)
}

/// The options, parsed and checked.
#[derive(Debug, Clone)]
pub struct WisckeyOptions {
    /// See [`OPTIONS`].
    pub value_threshold: usize,
    /// See [`OPTIONS`].
    pub vlog_segment_bytes: u64,
    /// See [`OPTIONS`].
    pub sync_writes: bool,
    /// See [`OPTIONS`].
    pub gc_dead_ratio: f64,
    /// See [`OPTIONS`].
    pub scan_prefetch: usize,
    /// The options the tree is opened with: the tree's settings, `sync_writes`, and the
    /// same file system.
    pub tree: Options,
}

impl WisckeyOptions {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown name or a bad value (the tree's options
    /// are checked when the tree opens).
    pub fn parse(options: &Options) -> Result<WisckeyOptions> {
        options.check_known("wisckey", OPTIONS)?;
        let parsed = WisckeyOptions {
            value_threshold: options.get_or("value_threshold", 128)?,
            vlog_segment_bytes: options.get_at_least("vlog_segment_bytes", 16 << 20, 64)?,
            sync_writes: options.get_or("sync_writes", false)?,
            gc_dead_ratio: options.get_or("gc_dead_ratio", 0.5)?,
            scan_prefetch: options.get_or("scan_prefetch", 64)?,
            tree: tree_options(options),
        };
        if !(0.0..=1.0).contains(&parsed.gc_dead_ratio) {
            return Err(Error::InvalidArgument(format!(
                "wisckey option gc_dead_ratio must be 0 to 1, got {}",
                parsed.gc_dead_ratio
            )));
        }
        Ok(parsed)
    }
}

/// The tree's options out of `options`: its own settings, wisckey's `sync_writes`, the
/// same file system.
fn tree_options(options: &Options) -> Options {
    let mut tree = Options::new().with_file_system(options.file_system());
    for (name, value) in options.settings() {
        if is_tree_option(name) || name == "sync_writes" {
            tree.insert(name, value);
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_tree_options() {
        assert_eq!(OPTIONS.len(), 5 + lsm::options::OPTIONS.len() - 1);
        let names: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
        assert_eq!(
            names.iter().filter(|n| **n == "sync_writes").count(),
            1,
            "wisckey's sync_writes only"
        );
        assert!(names.contains(&"memtable_bytes") && names.contains(&"block_cache_bytes"));
        let parsed = WisckeyOptions::parse(
            &Options::new()
                .set("value_threshold", "1K")
                .set("memtable_bytes", "8K")
                .set("sync_writes", true),
        )
        .unwrap();
        assert_eq!(parsed.value_threshold, 1024);
        let tree: Vec<(&str, &str)> = parsed.tree.settings().collect();
        assert_eq!(tree, [("memtable_bytes", "8K"), ("sync_writes", "true")]);
        assert!(WisckeyOptions::parse(&Options::new().set("segment_bytes", 1)).is_err());
        assert!(WisckeyOptions::parse(&Options::new().set("gc_dead_ratio", 2)).is_err());
        assert!(WisckeyOptions::parse(&Options::new().set("vlog_segment_bytes", 8)).is_err());
    }
}
