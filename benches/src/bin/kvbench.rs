//! `kvbench`: every engine on the same workloads, side by side. See [`kvbench::bench_cli`].

use std::process::ExitCode;

use clap::Parser;
use kvbench::bench_cli::{BenchArgs, run};
use kvbench::engines::ENGINES;

fn main() -> ExitCode {
    let args = BenchArgs::parse();
    let helper = std::env::current_exe().ok();
    match run(ENGINES, &args, helper, std::io::stdout().lock()) {
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
