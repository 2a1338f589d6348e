//! Stage 1: one append-only log file with an in-memory hash index.
#![forbid(unsafe_code)]
