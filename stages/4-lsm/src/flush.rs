//! Flushing: writing a memtable out as an L0 table.
//!
//! The memtable is read in internal-key order and only the newest version of each key is
//! written (older versions are hidden for good: no reader can ask for them once the
//! memtable is gone, because every reader that could still see them holds the memtable
//! itself). Tombstones *are* written: the key may have an older value in a table below.
//!
//! The table is synced, then the directory, before the caller records it in the manifest:
//! a manifest must never name a table that a power loss could take away.

use std::path::Path;
use std::sync::Arc;

use kv_shared::{Fs, Result};

use crate::file_names;
use crate::memtable::Memtable;
use crate::options::LsmOptions;
use crate::table::table_builder::TableBuilder;
use crate::version_edit::TableMeta;

/// Writes `memtable` as table `number` in `dir`. Returns its description and the highest
/// sequence number in it, or `None` for an empty memtable (no file is written).
///
/// # Errors
/// [`kv_shared::Error::Io`].
pub fn flush(
    fs: &Fs,
    dir: &Path,
    memtable: &Arc<Memtable>,
    number: u64,
    options: &LsmOptions,
) -> Result<Option<(TableMeta, u64)>> {
    if memtable.is_empty() {
        return Ok(None);
    }
    let path = dir.join(file_names::table(number));
    let mut builder = TableBuilder::create(fs, &path, number, options)?;
    // The newest version of each key comes first; `last_key` remembers the key just
    // written (one buffer, reused) so its older versions are skipped.
    let mut last_key: Vec<u8> = Vec::new();
    let mut any = false;
    let mut max_seq = 0;
    memtable.for_each(|key, seq, value| {
        max_seq = max_seq.max(seq);
        if any && last_key == key {
            return Ok(()); // an older version of the key just written
        }
        builder.add(key, seq, value)?;
        last_key.clear();
        last_key.extend_from_slice(key);
        any = true;
        Ok::<(), kv_shared::Error>(())
    })?;
    let meta = builder.finish()?;
    fs.sync_dir(dir)?;
    Ok(Some((meta, max_seq)))
}
