//! The `kvbench` command line: which engines and workloads to run, how big, with how much
//! memory, where to write the report.
//!
//! ```text
//! kvbench [--engines LIST] [--workloads LIST] [--num N[,N...]] [--key-size B]
//!         [--value-size B[,B...]] [--seed S] [--time-limit SECS] [--threads N] [--set NAME=VALUE]...
//!         [--budget matched|own] [--cache-bytes SIZE] [--write-buffer-bytes SIZE]
//!         [--dir DIR] [--json FILE] [--markdown FILE] [--charts DIR | --no-charts] [--quiet]
//! ```
//!
//! **Memory.** By default (`--budget matched`) every engine is configured from one memory
//! budget, `--cache-bytes` (64M) for its block or page cache and `--write-buffer-bytes` (64M)
//! for all the memtables it may hold at once, so engines are compared at the same memory;
//! [`crate::budget`] derives each engine's options from the two figures, engine by engine.
//! `--set` and a spec's own settings go on top of the budget ([`crate::engine_spec`]), and the
//! report names every figure they replace. `--budget own` runs each engine with its own
//! defaults instead.
//!
//! **Sizes.** `--num` takes one key count or a comma-separated list (`--num 1M,4M,16M`);
//! counts and byte sizes take a `K`, `M` or `G` suffix, powers of 1024 as in `--set`
//! (`1M` = 1,048,576). With a list, the whole run (every engine on every workload) repeats
//! for each count, in the order given; the rows carry their count, the tables are grouped by
//! it, and for each workload a scaling chart (`scaling-WORKLOAD.svg`: ops/s against the
//! number of keys, one line per engine, [`charts::scaling_chart`]) joins `ops.svg` and
//! `amplification.svg`, which show the largest count.
//!
//! `--value-size` takes one size or a list the same way (`--value-size 100,1K,16K`): the run
//! repeats for each value size, the rows carry their `value_size`, the tables are grouped by
//! it (`value_size=1024` heads each), and for each workload a value-size chart
//! (`value-size-WORKLOAD.svg`: ops/s and write amplification against the value size, one
//! line per engine, [`charts::value_size_chart`]) shows where keeping values apart from the
//! keys (key-value separation) wins and where it loses; `ops.svg` and `amplification.svg`
//! show the largest size. One of the two may be a list, not both: `--num 1M,4M
//! --value-size 100,1K` is refused ([`BenchArgs::sizes`]), because the two sweeps answer
//! different questions and large values need fewer keys (below).
//!
//! **Disk and memory.** A store holds at least `num × (key_size + value_size)` bytes before
//! amplification: 1M keys of 16 KiB values are 16 GiB, more than a laptop's spare disk, so
//! large values need a smaller `--num` (`--num 50K --value-size 16K` is 800 MiB). Only one
//! engine's store exists at a time: each is removed once the engine's workloads are done.
//! Nothing in the benchmark holds `num` values in memory: operations are generated one at a
//! time from a 1 MiB pool of value bytes, untimed fills and batches hold 1,000 pairs, and a
//! batched fill's read-back sample about 1,000.
//!
//! Exit status: 0 when every engine ran every workload with correct answers; 1 when any row
//! has an error (the report is still printed and written); 2 for a malformed command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::workload::WorkloadConfig;
use clap::Parser;
use kv_shared::{Error, Result};

use crate::bench_workload::BenchWorkload;
use crate::budget::{self, Budget, BudgetMode};
use crate::charts;
use crate::engine_spec::{EngineSpec, ResolvedEngine, check_common_settings};
use crate::engines::EngineInfo;
use crate::measurement::Measurement;
use crate::progress::{Bar, NoProgress, Progress};
use crate::report::{self, RunInfo};
use crate::runner::{self, BenchConfig};

/// Default `--num`: small enough that a default run of every engine finishes in about two
/// minutes on a two-core machine.
pub const DEFAULT_NUM: u64 = 100_000;

/// Default `--value-size`, in bytes: db_bench's.
pub const DEFAULT_VALUE_SIZE: usize = 100;

/// Default `--time-limit`, in seconds.
pub const DEFAULT_TIME_LIMIT_SECS: u64 = 5;

/// `kvbench`: every engine on the same workloads, side by side.
#[derive(Debug, Parser)]
#[command(
    name = "kvbench",
    version,
    about = "Runs the same workloads on every engine and prints them side by side: ops/s, latency, write/read/space amplification, peak memory."
)]
pub struct BenchArgs {
    /// Engines to run, comma separated, each optionally with settings:
    /// `hashlog,sstable[search=linear]`. Default: every registered engine.
    #[arg(long)]
    pub engines: Option<String>,
    /// Workloads to run, comma separated, in that order. Default: all of them (fillseq,
    /// fillrandom, fillthreads, overwrite, readrandom, readmissing, readseq, seekrandom, scan,
    /// readwhilewriting, compact, recovery, deleterandom).
    #[arg(long)]
    pub workloads: Option<String>,
    /// Number of keys in the key space; a comma-separated list runs everything once per
    /// count (`1M,4M,16M`; K, M, G are powers of 1024).
    #[arg(long, value_name = "N[,N...]", value_delimiter = ',', default_values_t = [DEFAULT_NUM], value_parser = parse_count)]
    pub num: Vec<u64>,
    /// Bytes per key (at least 8).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Bytes per value; a comma-separated list runs everything once per size (`100,1K,16K`;
    /// K, M are powers of 1024). Not with a `--num` list.
    ///
    /// A store holds at least num × (key size + value size) bytes before amplification:
    /// 1M keys of 16K values are 16 GiB, so large values need a smaller --num
    /// (`--num 50K --value-size 16K` is 800 MiB). Stores live in --dir, one engine's at a time.
    #[arg(long, value_name = "B[,B...]", value_delimiter = ',', default_values_t = [DEFAULT_VALUE_SIZE], value_parser = parse_value_size)]
    pub value_size: Vec<usize>,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop each workload after this many seconds and report its rate so far (0: no limit).
    #[arg(long, default_value_t = DEFAULT_TIME_LIMIT_SECS)]
    pub time_limit: u64,
    /// Writer threads of the `fillthreads` workload (at least 1).
    #[arg(long, default_value_t = runner::DEFAULT_THREADS, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: u64,
    /// Sets an option on every selected engine that documents NAME (repeatable); it wins
    /// over the memory budget.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// `matched`: every engine configured from one memory budget (`--cache-bytes`,
    /// `--write-buffer-bytes`); `own`: each engine's own defaults.
    #[arg(long, value_enum, default_value_t = BudgetMode::Matched)]
    pub budget: BudgetMode,
    /// The budget's cache: each engine's block or page cache (K, M, G suffixes).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_bytes)]
    pub cache_bytes: u64,
    /// The budget's write buffers: all the memtables an engine may hold at once, active and
    /// waiting for their flush (K, M, G suffixes).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_bytes)]
    pub write_buffer_bytes: u64,
    /// Where the stores live (a fresh subdirectory, removed at the end). Default: the
    /// system's temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also write the measurements as a JSON array to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the table as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Where to write the SVG charts (`ops.svg`, `amplification.svg`, with several `--num`
    /// `scaling-WORKLOAD.svg`, with several `--value-size` `value-size-WORKLOAD.svg`).
    #[arg(long, value_name = "DIR", default_value = "target/kvbench")]
    pub charts: PathBuf,
    /// Write no charts.
    #[arg(long)]
    pub no_charts: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Internal: the child process of the `recovery` workload. Fills the store in `--dir`
    /// with the first engine of `--engines`, prints READY, and waits to be killed.
    #[arg(long, hide = true)]
    pub fill_then_wait: bool,
}

/// Parses a `--num` count: `2000`, `4K`, `1M`.
fn parse_count(text: &str) -> std::result::Result<u64, String> {
    budget::parse_size("--num", text).map_err(|e| e.to_string())
}

/// Parses a `--value-size` size: `100`, `1K`, `16K`.
fn parse_value_size(text: &str) -> std::result::Result<usize, String> {
    let size = budget::parse_size("--value-size", text).map_err(|e| e.to_string())?;
    usize::try_from(size).map_err(|_| format!("--value-size: `{text}` is too large"))
}

/// Parses a byte size: `64M`, `512K`, `1000000`.
fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    budget::parse_size("size", text).map_err(|e| e.to_string())
}

impl BenchArgs {
    /// The workload sizes these arguments ask for, with `num` keys of `value_size`-byte
    /// values.
    pub fn workload_config(&self, num: u64, value_size: usize) -> WorkloadConfig {
        WorkloadConfig {
            num,
            key_size: self.key_size,
            value_size,
            seed: self.seed,
        }
    }

    /// The key counts to run, in order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty list or a count given twice.
    pub fn nums(&self) -> Result<Vec<u64>> {
        distinct_list("--num", &self.num)
    }

    /// The value sizes to run, in order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty list or a size given twice.
    pub fn value_sizes(&self) -> Result<Vec<usize>> {
        distinct_list("--value-size", &self.value_size)
    }

    /// Every `(num, value_size)` pair to run, in order: the key counts with the one value
    /// size, or the value sizes with the one key count.
    ///
    /// # Errors
    /// As [`BenchArgs::nums`] and [`BenchArgs::value_sizes`]; [`Error::InvalidArgument`]
    /// when both are lists.
    pub fn sizes(&self) -> Result<Vec<(u64, usize)>> {
        let nums = self.nums()?;
        let value_sizes = self.value_sizes()?;
        if nums.len() > 1 && value_sizes.len() > 1 {
            return Err(Error::InvalidArgument(
                "--num and --value-size cannot both be lists: sweep one with the other fixed \
                 (large values need fewer keys: a run per value size, each with its own --num)"
                    .into(),
            ));
        }
        Ok(nums
            .iter()
            .flat_map(|&num| value_sizes.iter().map(move |&size| (num, size)))
            .collect())
    }

    /// The memory budget these arguments ask for.
    pub fn budget(&self) -> Budget {
        match self.budget {
            BudgetMode::Own => Budget::OWN,
            BudgetMode::Matched => Budget::matched(self.cache_bytes, self.write_buffer_bytes),
        }
    }

    /// What the report prints above its tables, for a run of `num` keys of `value_size`
    /// bytes.
    pub fn run_info(&self, num: u64, value_size: usize) -> RunInfo {
        RunInfo {
            num,
            key_size: self.key_size,
            value_size,
            seed: self.seed,
            time_limit_secs: (self.time_limit > 0).then_some(self.time_limit),
        }
    }

    /// The engines to run, looked up in `registry`, with the memory budget and `--set`
    /// applied.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed spec, an unknown engine or option, a
    /// `--set` no selected engine documents, or an empty registry.
    pub fn engines(&self, registry: &[EngineInfo]) -> Result<Vec<ResolvedEngine>> {
        let common = self.common_settings()?;
        let specs = match &self.engines {
            Some(list) => EngineSpec::parse_list(list)?,
            None => registry
                .iter()
                .map(|e| EngineSpec {
                    name: e.name.to_string(),
                    settings: Vec::new(),
                })
                .collect(),
        };
        if specs.is_empty() {
            return Err(Error::InvalidArgument(
                "no engines to run: none is registered in this build".into(),
            ));
        }
        let engines = specs
            .iter()
            .map(|s| s.resolve_with(registry, &common, &self.budget()))
            .collect::<Result<Vec<_>>>()?;
        check_common_settings(&engines, &common)?;
        Ok(engines)
    }

    /// The workloads to run, in order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown name.
    pub fn workloads(&self) -> Result<Vec<BenchWorkload>> {
        match &self.workloads {
            Some(list) => BenchWorkload::parse_list(list),
            None => Ok(BenchWorkload::ALL.to_vec()),
        }
    }

    fn common_settings(&self) -> Result<Vec<(String, String)>> {
        self.set
            .iter()
            .map(|pair| {
                pair.split_once('=')
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!("--set expects NAME=VALUE, got `{pair}`"))
                    })
            })
            .collect()
    }
}

/// The `kvbench` program: parses the command line and runs it on every engine of
/// [`ENGINES`](crate::engines::ENGINES), then those of `extra`. An engine written outside
/// this workspace (a workshop crate's `bench` binary) joins the report, and the `recovery`
/// workload's child process, by calling this from its own `main`.
pub fn main_with(extra: &[EngineInfo]) -> ExitCode {
    let args = BenchArgs::parse();
    let helper = std::env::current_exe().ok();
    let registry: Vec<EngineInfo> = crate::engines::ENGINES
        .iter()
        .chain(extra)
        .copied()
        .collect();
    match run(&registry, &args, helper, std::io::stdout().lock()) {
        Ok(rows) if rows.iter().any(|r| r.error.is_some()) => {
            eprintln!("kvbench: some engines failed a workload (see the notes column)");
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvbench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `list` (the values of `flag`) when it is not empty and names no value twice.
fn distinct_list<T: Copy + PartialEq + std::fmt::Display>(
    flag: &str,
    list: &[T],
) -> Result<Vec<T>> {
    if list.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{flag} needs at least one value"
        )));
    }
    for (i, value) in list.iter().enumerate() {
        if list[..i].contains(value) {
            return Err(Error::InvalidArgument(format!(
                "{flag} lists {value} twice"
            )));
        }
    }
    Ok(list.to_vec())
}

/// Runs `kvbench` with parsed arguments: the measurements (every engine on every workload,
/// once per `--num` count or `--value-size` size), the table on `out`, the JSON and
/// Markdown files and the charts when asked. `kill_helper` is the `kvbench` executable for
/// the `recovery` workload's child process (`None` skips that half).
///
/// # Errors
/// Bad arguments (see [`BenchArgs::engines`], [`BenchArgs::sizes`]), a failure to create
/// the stores' directory or write a report file. Engine failures are rows of the report, not
/// errors: check [`Measurement::error`].
pub fn run(
    registry: &[EngineInfo],
    args: &BenchArgs,
    kill_helper: Option<PathBuf>,
    mut out: impl Write,
) -> Result<Vec<Measurement>> {
    let engines = args.engines(registry)?;
    let workloads = args.workloads()?;
    let sizes = args.sizes()?;
    let configs: Vec<BenchConfig> = sizes
        .iter()
        .map(|&(num, value_size)| BenchConfig {
            workload: args.workload_config(num, value_size),
            time_limit: (args.time_limit > 0).then(|| Duration::from_secs(args.time_limit)),
            dir: args.dir.clone(),
            kill_helper: kill_helper.clone(),
            threads: args.threads,
        })
        .collect();
    // Every size is checked before the first runs, so a bad last one wastes no run.
    for config in &configs {
        config.workload.validate()?;
    }
    if args.fill_then_wait {
        let dir = args
            .dir
            .as_deref()
            .ok_or_else(|| Error::InvalidArgument("--fill-then-wait needs --dir".into()))?;
        runner::fill_then_wait(
            &engines[0],
            dir,
            &configs[0].workload,
            std::io::stdin(),
            &mut out,
        )?;
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    for config in &configs {
        let progress: Box<dyn Progress> = if args.quiet {
            Box::new(NoProgress)
        } else {
            Box::new(Bar::new())
        };
        rows.extend(runner::run(
            &engines,
            &workloads,
            config,
            progress.as_ref(),
        )?);
    }
    let budget = args.budget();
    for row in &mut rows {
        if let Some(engine) = engines.iter().find(|e| e.label == row.engine) {
            engine.budget.stamp(&budget, row);
        }
    }
    write_reports(args, &sizes, &rows, &mut out)?;
    Ok(rows)
}

/// The `Error::Io` maker for `path`.
fn io_error(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |e| Error::io(&path, e)
}

/// Prints the table on `out` and writes the JSON, Markdown and chart files asked for;
/// `sizes` are the `(num, value_size)` pairs that ran.
fn write_reports(
    args: &BenchArgs,
    sizes: &[(u64, usize)],
    rows: &[Measurement],
    out: &mut impl Write,
) -> Result<()> {
    let info = args.run_info(sizes[0].0, sizes[0].1);
    let stdout = io_error("<standard output>".as_ref());
    out.write_all(report::table(&info, rows).as_bytes())
        .map_err(&stdout)?;
    if let Some(path) = &args.json {
        let text = report::json(rows).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(io_error(path))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report::markdown(&info, rows)).map_err(io_error(path))?;
    }
    if !args.no_charts {
        let written = write_charts(args, sizes, rows)?;
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        writeln!(out, "charts: {}", names.join(" ")).map_err(&stdout)?;
    }
    Ok(())
}

/// The distinct values of `f` over `sizes`, in order.
fn distinct_of<T: PartialEq>(sizes: &[(u64, usize)], f: impl Fn(&(u64, usize)) -> T) -> Vec<T> {
    let mut seen = Vec::new();
    for size in sizes {
        let value = f(size);
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// The workloads of `rows`, in the order they first appear.
fn workloads_of(rows: &[Measurement]) -> Vec<&str> {
    let mut workloads: Vec<&str> = Vec::new();
    for row in rows {
        if !workloads.contains(&row.workload.as_str()) {
            workloads.push(&row.workload);
        }
    }
    workloads
}

/// Writes `ops.svg` and `amplification.svg` for the largest key count and value size; with
/// several counts a `scaling-WORKLOAD.svg` per workload, with several value sizes a
/// `value-size-WORKLOAD.svg` per workload; returns the files written.
fn write_charts(
    args: &BenchArgs,
    sizes: &[(u64, usize)],
    rows: &[Measurement],
) -> Result<Vec<PathBuf>> {
    let dir = &args.charts;
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let nums = distinct_of(sizes, |s| s.0);
    let value_sizes = distinct_of(sizes, |s| s.1);
    let largest = nums.iter().copied().max().unwrap_or_default();
    let largest_value = value_sizes.iter().copied().max().unwrap_or_default();
    let at_largest: Vec<Measurement> = rows
        .iter()
        .filter(|r| r.num == largest && r.value_size == largest_value)
        .cloned()
        .collect();
    let info = args.run_info(largest, largest_value);
    let title = format!("kvbench: {}", info.line());
    let mut charts = vec![
        (
            "ops.svg".to_string(),
            charts::ops_chart(&title, &at_largest),
        ),
        (
            "amplification.svg".to_string(),
            charts::amp_chart(&title, &at_largest),
        ),
    ];
    let sweep = format!("kvbench: {}", info.line_with(&nums, &value_sizes));
    for workload in workloads_of(rows) {
        if nums.len() > 1
            && let Some(svg) = charts::scaling_chart(&sweep, workload, rows)
        {
            charts.push((format!("scaling-{workload}.svg"), svg));
        }
        if value_sizes.len() > 1
            && let Some(svg) = charts::value_size_chart(&sweep, workload, rows)
        {
            charts.push((format!("value-size-{workload}.svg"), svg));
        }
    }
    let mut written = Vec::new();
    for (name, svg) in charts {
        let path = dir.join(name);
        std::fs::write(&path, svg).map_err(io_error(&path))?;
        written.push(path);
    }
    Ok(written)
}
