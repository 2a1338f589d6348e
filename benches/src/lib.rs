//! Benchmarks and tools shared by the `kv` and `kvbench` binaries.
#![forbid(unsafe_code)]
