//! The write-ahead log: stage 3's, reused unchanged.
//!
//! Every write is appended to the WAL before it enters the memtable. Stage 3's
//! [`sstable::wal::Wal`] carries opaque payloads, so this stage reuses it as it is (a crate
//! dependency, not a copy) and only brings its own payload, [`crate::wal_payload`]: a
//! sequence number, a kind, a key and a value. Its format (a 12-byte header with magic
//! `KVSSTWAL`, then CRC-framed records) is documented in [`sstable::wal`].
//!
//! Stage 4 keeps one WAL file per memtable, named `NNNNNN.wal` after a file number. When the
//! memtable freezes, its WAL is synced and a new one started; the old file is deleted only
//! after the memtable's flush is recorded in the manifest.

use kv_shared::dump::Dump;

pub use sstable::wal::{Wal, WalReplay};

use crate::wal_payload;

/// The annotated dump of a WAL, each record's payload shown field by field, or `None`
/// when `bytes` is not a WAL.
pub fn inspect_wal(bytes: &[u8]) -> Option<String> {
    sstable::wal::inspect_wal_with(bytes, |d: &mut Dump, payload| {
        wal_payload::dump_fields(d, payload);
    })
}
