//! Stage 2: Bitcask, a segmented log with a keydir, background merge, hint files and tombstones.
#![forbid(unsafe_code)]
