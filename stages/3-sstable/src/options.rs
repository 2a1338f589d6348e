//! The engine's options: the `kv --set NAME=VALUE` names sstable knows, each documented once
//! in [`OPTIONS`], and [`SstableOptions`], the same options parsed and checked.

use kv_shared::{OptionDoc, Options, Result};

use crate::table::Search;

/// Default for `memtable_bytes`.
pub const DEFAULT_MEMTABLE_BYTES: u64 = 4 << 20;
/// Default for `block_bytes`.
pub const DEFAULT_BLOCK_BYTES: usize = 4096;

/// Every option, its default and what it does.
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "memtable_bytes",
        default: "4M",
        doc: "flush the memtable to a new table once its keys and values reach this size",
    },
    OptionDoc {
        name: "block_bytes",
        default: "4096",
        doc: "close a table's data block once its entries reach this size",
    },
    OptionDoc {
        name: "search",
        default: "binary",
        doc: "how a lookup finds its block: `binary` (sparse index) or `linear` (walk the blocks from the start)",
    },
    OptionDoc {
        name: "sync_writes",
        default: "false",
        doc: "fsync the WAL before each put, delete and batch returns",
    },
];

/// The options, parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SstableOptions {
    /// See [`OPTIONS`].
    pub memtable_bytes: u64,
    /// See [`OPTIONS`].
    pub block_bytes: usize,
    /// See [`OPTIONS`].
    pub search: Search,
    /// See [`OPTIONS`].
    pub sync_writes: bool,
}

impl SstableOptions {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// [`kv_shared::Error::InvalidArgument`] for an unknown name or a bad value.
    pub fn parse(options: &Options) -> Result<SstableOptions> {
        options.check_known("sstable", OPTIONS)?;
        Ok(SstableOptions {
            memtable_bytes: options.get_at_least("memtable_bytes", DEFAULT_MEMTABLE_BYTES, 1)?,
            block_bytes: options.get_at_least("block_bytes", DEFAULT_BLOCK_BYTES, 1)?,
            search: options.get_or("search", Search::Binary)?,
            sync_writes: options.get_or("sync_writes", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use kv_shared::Error;

    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let o = SstableOptions::parse(&Options::new()).unwrap();
        assert_eq!(
            o,
            SstableOptions {
                memtable_bytes: 4 << 20,
                block_bytes: 4096,
                search: Search::Binary,
                sync_writes: false,
            }
        );
        let o = SstableOptions::parse(&Options::new().set("search", "linear")).unwrap();
        assert_eq!(o.search, Search::Linear);
        for (name, value) in [
            ("memtable_bytes", "0"),
            ("block_bytes", "0"),
            ("search", "sideways"),
            ("sync_writes", "yes"),
            ("nonsense", "1"),
        ] {
            let bad = Options::new().set(name, value);
            assert!(
                matches!(SstableOptions::parse(&bad), Err(Error::InvalidArgument(_))),
                "{name}={value}"
            );
        }
    }
}
