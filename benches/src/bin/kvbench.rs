//! `kvbench`: every engine on the same workloads, side by side. See [`kvbench::bench_cli`].

fn main() -> std::process::ExitCode {
    kvbench::bench_cli::main_with(&[])
}
