//! Stage 3: a memtable, a write-ahead log and one level of block-based SSTables.
#![forbid(unsafe_code)]
