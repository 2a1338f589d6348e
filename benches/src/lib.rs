//! # kvbench: the tools that drive and measure the engines
//!
//! Two binaries share this library:
//!
//! * `kv` ([`cli`]), a command-line client: open a store with any engine and `put`, `get`,
//!   `delete`, `scan`, `rscan` (descending), `seek`, `compact`, print `stats`, drive it line
//!   by line with `shell` ([`shell`]), dump any engine file with `inspect` ([`inspect`]),
//!   list the engines and their options with `engines`.
//! * `kvbench` ([`bench_cli`]), the benchmark report: every engine on the same workloads
//!   ([`bench_workload`]), run by [`runner`], measured ([`measurement`], [`latency`],
//!   [`memory`]) and printed ([`report`]) side by side.
//!
//! Both find engines in one table, [`engines::ENGINES`]; an engine joins with one line there.
//!
//! | module | what it holds |
//! |---|---|
//! | [`engines`] | the engine registry |
//! | [`engine_spec`] | `name[a=1,b=2]` specs: an engine with settings |
//! | [`text`] | how keys and values are typed and printed (text or `--hex`) |
//! | [`shell`] | the `kv shell` line protocol, and the pair listings (`scan`, `rscan`, `seek`) it shares with `kv` |
//! | [`inspect`] | `kv inspect`: finding a file's format by its magic number |
//! | [`draw`] | `kv draw`: SVG pictures of a store's structure, of one of its files |
//! | [`cli`] | the `kv` command line |
//! | [`serve`] | `kv serve`: the JSON API, the live page and the Redis protocol over one open store |
//! | [`workload`] | the db_bench-style operation streams, deterministic from a seed |
//! | [`bench_workload`] | the workloads `kvbench` runs |
//! | [`budget`] | one memory budget (cache, write buffers) every engine is configured from |
//! | [`runner`] | running them: store lifecycle, time limit, rows; one file per workload with its correctness checks |
//! | [`latency`] | per-operation latency histograms |
//! | [`memory`] | peak memory and OS-counted bytes written, from `/proc` |
//! | [`disk_bandwidth`] | the disk's sequential write bandwidth, the yardstick of `bulkload` |
//! | [`peers`] | production peers (fjall, sled, redb, RocksDB) behind the `peers` and `rocksdb` features: one engine over each peer's own calls, batches and snapshot cursors |
//! | [`measurement`] | one row of results, the `--json` schema |
//! | [`report`] | the terminal table, Markdown and JSON |
//! | [`charts`] | SVG charts of throughput and amplification |
//! | [`progress`] | the progress bar |
//! | [`bench_cli`] | the `kvbench` command line |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bench_cli;
pub mod bench_workload;
pub mod budget;
pub mod charts;
pub mod cli;
pub mod disk_bandwidth;
pub mod draw;
pub mod engine_spec;
pub mod engines;
pub mod inspect;
pub mod latency;
pub mod measurement;
pub mod memory;
pub mod peers;
pub mod progress;
pub mod report;
pub mod runner;
pub mod serve;
pub mod shell;
pub mod text;
pub mod workload;
