//! The texts of a learner's crate: its `README.md` and its `bench` binary.

use std::fmt::Write as _;
use std::path::Path;

use crate::checkout::{Checkout, Stage};
use crate::error::Result;
use crate::workshop::Workshop;

/// The name the learner's engine has in the bench report: `my-hashlog`.
pub fn bench_name(crate_name: &str) -> String {
    format!("my-{crate_name}")
}

/// `src/bin/bench.rs`: kvbench with the learner's engine added to the course's.
pub fn bench_main(stage: &Stage, engine: &str) -> String {
    let name = &stage.crate_name;
    let mine = bench_name(name);
    format!(
        r#"//! `cargo run --release --features bench --bin bench -- [kvbench options]`: the kvbench
//! report with your engine, `{mine}`, beside the course's stages (`--features peers` adds
//! the production peers). `--engines {name},{mine}` puts it beside the reference alone.

use kvbench::engines::EngineInfo;

fn main() -> std::process::ExitCode {{
    let mine = EngineInfo {{
        name: "{mine}",
        ..EngineInfo::of::<{name}::{engine}>(
            "your stage {number}, from the workshop",
            {name}::inspect,
        )
    }};
    kvbench::bench_cli::main_with(&[mine])
}}
"#,
        number = stage.number
    )
}

/// `README.md`: how to work, then the exercises in order, each with its function, the
/// section to read and the tests it unlocks.
///
/// # Errors
/// When a chapter named by an exercise cannot be found.
pub fn readme(checkout: &Checkout, workshop: &Workshop, dir: &Path) -> Result<String> {
    let (stage, name) = (workshop.stage, &workshop.crate_name);
    let root = checkout.root().display();
    let count = workshop.exercises.len();
    let mut text = format!(
        "# Workshop: stage {stage}, `{name}`\n\n\
         This crate is stage {stage} of the course with the bodies of {count} functions left \
         for you to write: each is a `todo!()` naming its exercise and the section of the \
         chapter to read first. Everything else (the types, the helpers, the tests, the crash \
         suites) is the reference's, so once every exercise passes, your crate is stage \
         {stage}.\n\n\
         ## How to work\n\n\
         Do the exercises in order: a later one's tests may need the earlier ones. After \
         each, from the checkout ({root}):\n\n\
         ```sh\n\
         cargo run --bin kv -- workshop check {dir}\n\
         ```\n\n\
         prints a scorecard: each exercise passed, or its first failing test with the line \
         that failed and the section to reread (\"waiting on\" when that test stopped at an \
         earlier exercise's `todo!()`). `cargo test` here runs the same tests as plain \
         output; each exercise below gives the command for one of its tests.\n\n\
         When all pass, measure your engine beside the course's: \
         `cargo run --release --features bench --bin bench -- --engines {name},{mine} --num 100000` \
         (`--features peers` instead of `--features bench` adds the production peers). The \
         `bench` feature is off by default, so that `cargo test` builds neither kvbench nor \
         the course's stages.\n\n\
         ## Exercises\n",
        dir = dir.display(),
        mine = bench_name(name),
    );
    for exercise in &workshop.exercises {
        let e = &exercise.marker;
        let chapter = checkout.chapter(&e.chapter)?;
        write!(
            text,
            "\n### {} {}\n\n`{}` in `{}`. Read chapter {}, \"{}\" ({}).\n\nTests:\n\n",
            e.id(),
            e.title,
            exercise.function,
            exercise.file,
            e.chapter,
            e.section,
            chapter.display()
        )
        .ok();
        for test in &e.tests {
            writeln!(text, "* `{test}`: `{}`", test.cargo_args()).ok();
        }
    }
    Ok(text)
}
