//! `kv workshop`: the subcommand `kv` hands to this crate.
//!
//! ```text
//! kv workshop new STAGE DIR [--from PREVIOUS_DIR]   write a learner's crate for STAGE into DIR
//! kv workshop check DIR                             run its tests, print a scorecard
//! ```
//!
//! `check` exits with 0 only when every exercise passes.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::check;
use crate::checkout::Checkout;
use crate::error::{Error, Result};
use crate::readme::bench_name;
use crate::workshop::{self, Stubs};

/// The `kv workshop` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkshopCommand {
    /// Writes a crate for STAGE into DIR (which must be empty or absent): the stage's
    /// reference code with the body of each exercise left as `todo!()`, its tests, a README
    /// listing the exercises, and a `bench` binary.
    New {
        /// The stage: 1 (hashlog), 2 (bitcask), 3 (sstable) or 4 (lsm).
        stage: u32,
        /// Where to write the crate.
        #[arg(value_name = "DIR")]
        crate_dir: PathBuf,
        /// Your own crate of the stage this one builds on (stage 4 on stage 3), instead of
        /// the reference.
        #[arg(long, value_name = "PREVIOUS_DIR")]
        from: Option<PathBuf>,
    },
    /// Runs the tests of the workshop crate in DIR and prints, for each exercise in order,
    /// passed or its first failing test and the section to reread; exits 0 only when all
    /// pass.
    Check {
        /// The workshop crate.
        #[arg(value_name = "DIR")]
        crate_dir: PathBuf,
    },
}

/// Runs `command` on this checkout, printing to `out` (and cargo's progress to standard
/// error).
///
/// # Errors
/// What [`workshop::create`] and [`check::check`] return, [`Error::NotAllPassed`] when
/// `check` finds exercises that do not pass, and [`Error::Io`] writing to `out`.
pub fn run(command: &WorkshopCommand, out: &mut dyn Write) -> Result<()> {
    let io = |e| crate::error::io("<standard output>")(e);
    match command {
        WorkshopCommand::New {
            stage,
            crate_dir,
            from,
        } => {
            let checkout = Checkout::here();
            let made = workshop::create(&checkout, *stage, crate_dir, from.as_deref(), Stubs::All)?;
            let dir = crate_dir.display();
            writeln!(
                out,
                "wrote stage {stage} ({}) with {} exercises to {dir}\n\
                 read {dir}/README.md, then run `kv workshop check {dir}` after each exercise\n\
                 (the first build takes a few minutes); bench your engine as `{}` with\n\
                 `cargo run --release --features bench --bin bench` in {dir}",
                made.crate_name,
                made.exercises.len(),
                bench_name(&made.crate_name)
            )
            .map_err(io)
        }
        WorkshopCommand::Check { crate_dir } => {
            let workshop = workshop::Workshop::load(crate_dir)?;
            let mut progress = |line: &str| eprintln!("  {line}");
            let card = check::check(crate_dir, &mut progress)?;
            write!(out, "\n{}", check::render(&workshop, &card)).map_err(io)?;
            if card.all_passed() {
                return Ok(());
            }
            Err(Error::NotAllPassed {
                failing: card.exercises.len() - card.passed(),
                total: card.exercises.len(),
            })
        }
    }
}
