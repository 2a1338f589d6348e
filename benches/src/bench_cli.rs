//! The `kvbench` command line: which engines and workloads to run, how big, where to write
//! the report.
//!
//! ```text
//! kvbench [--engines LIST] [--workloads LIST] [--num N] [--key-size B] [--value-size B]
//!         [--seed S] [--time-limit SECS] [--threads N] [--set NAME=VALUE]... [--dir DIR]
//!         [--json FILE] [--markdown FILE] [--charts DIR | --no-charts] [--quiet]
//! ```
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
    /// Number of keys in the key space.
    #[arg(long, default_value_t = DEFAULT_NUM)]
    pub num: u64,
    /// Bytes per key (at least 8).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop each workload after this many seconds and report its rate so far (0: no limit).
    #[arg(long, default_value_t = DEFAULT_TIME_LIMIT_SECS)]
    pub time_limit: u64,
    /// Writer threads of the `fillthreads` workload (at least 1).
    #[arg(long, default_value_t = runner::DEFAULT_THREADS, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: u64,
    /// Sets an option on every selected engine that documents NAME (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
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
    /// Where to write the SVG charts (`ops.svg`, `amplification.svg`).
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

impl BenchArgs {
    /// The workload sizes these arguments ask for.
    pub fn workload_config(&self) -> WorkloadConfig {
        WorkloadConfig {
            num: self.num,
            key_size: self.key_size,
            value_size: self.value_size,
            seed: self.seed,
        }
    }

    /// What the report prints above its tables.
    pub fn run_info(&self) -> RunInfo {
        RunInfo {
            num: self.num,
            key_size: self.key_size,
            value_size: self.value_size,
            seed: self.seed,
            time_limit_secs: (self.time_limit > 0).then_some(self.time_limit),
        }
    }

    /// The engines to run, looked up in `registry`, with `--set` applied.
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
            .map(|s| s.resolve(registry, &common))
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

/// Runs `kvbench` with parsed arguments: the measurements, the table on `out`, and the JSON
/// and Markdown files when asked. `kill_helper` is the `kvbench` executable for the
/// `recovery` workload's child process (`None` skips that half).
///
/// # Errors
/// Bad arguments (see [`BenchArgs::engines`]), a failure to create the stores' directory or
/// write a report file. Engine failures are rows of the report, not errors: check
/// [`Measurement::error`].
pub fn run(
    registry: &[EngineInfo],
    args: &BenchArgs,
    kill_helper: Option<PathBuf>,
    mut out: impl Write,
) -> Result<Vec<Measurement>> {
    let engines = args.engines(registry)?;
    let workloads = args.workloads()?;
    let config = BenchConfig {
        workload: args.workload_config(),
        time_limit: (args.time_limit > 0).then(|| Duration::from_secs(args.time_limit)),
        dir: args.dir.clone(),
        kill_helper,
        threads: args.threads,
    };
    if args.fill_then_wait {
        let dir = args
            .dir
            .as_deref()
            .ok_or_else(|| Error::InvalidArgument("--fill-then-wait needs --dir".into()))?;
        runner::fill_then_wait(
            &engines[0],
            dir,
            &config.workload,
            std::io::stdin(),
            &mut out,
        )?;
        return Ok(Vec::new());
    }
    let progress: Box<dyn Progress> = if args.quiet {
        Box::new(NoProgress)
    } else {
        Box::new(Bar::new())
    };
    let rows = runner::run(&engines, &workloads, &config, progress.as_ref())?;
    let info = args.run_info();
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| Error::io(path, e)
    };
    out.write_all(report::table(&info, &rows).as_bytes())
        .map_err(io("<standard output>".as_ref()))?;
    if let Some(path) = &args.json {
        let text = report::json(&rows).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(io(path))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report::markdown(&info, &rows)).map_err(io(path))?;
    }
    if !args.no_charts {
        let dir = &args.charts;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let title = format!("kvbench: {}", info.line());
        let ops = dir.join("ops.svg");
        std::fs::write(&ops, charts::ops_chart(&title, &rows)).map_err(io(&ops))?;
        let amp = dir.join("amplification.svg");
        std::fs::write(&amp, charts::amp_chart(&title, &rows)).map_err(io(&amp))?;
        writeln!(out, "charts: {} {}", ops.display(), amp.display())
            .map_err(io("<standard output>".as_ref()))?;
    }
    Ok(rows)
}
