//! `kv`: the command-line client. See [`kvbench::cli`] for the commands and exit codes.

use std::process::ExitCode;

use clap::Parser;
use kvbench::cli::{KvArgs, run};
use kvbench::engines::ENGINES;

fn main() -> ExitCode {
    let args = KvArgs::parse();
    let stdin = std::io::stdin().lock();
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match run(ENGINES, args, stdin, stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv: error: {e}");
            ExitCode::FAILURE
        }
    }
}
