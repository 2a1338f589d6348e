//! Every exercise of every stage is checked, from the markers in the stages' sources.
//!
//! By default (about two minutes on two cores the first time, seconds after): every
//! stage's markers are well formed, and every stage's learner crate, with all its exercises
//! open, is written and compiles, its tests and its `bench` binary included (`cargo check
//! --all-targets --features bench`).
//!
//! With `KV_WORKSHOP_FULL=1` (`KV_WORKSHOP_FULL=1 cargo test -p kv-workshop --test
//! exercises`, about ten minutes on two cores once the dependencies are built), also, for
//! every stage:
//!
//! * the crate with the reference bodies (nothing left open) passes every listed test;
//! * each exercise left open alone fails at least one of its listed tests;
//! * the crate with every exercise open runs all its tests to the end (no test binary
//!   aborts), and each failing test stops at the `todo!()` of an exercise (or, for the
//!   suites that run the engine in a child process, sees that child panic).
//!
//! `KV_WORKSHOP_STAGES=2,3` limits the long run to those stages.
//!
//! The crates are written under `target/kv-workshop/` (one directory per check, kept after
//! the run for a look) and built with one target directory, `target/kv-workshop/target`,
//! so their dependencies are built once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kv_workshop::check::{self, CargoOutput};
use kv_workshop::checkout::{Checkout, Stage};
use kv_workshop::exercises::stage_exercises;
use kv_workshop::libtest::{self, Outcome, TestRun};
use kv_workshop::marker::TestId;
use kv_workshop::workshop::{self, Stubs, Workshop};

/// True for the long run.
fn full() -> bool {
    std::env::var("KV_WORKSHOP_FULL").is_ok_and(|v| v == "1")
}

/// Where the crates are written and built.
fn scratch() -> PathBuf {
    let dir = Checkout::here().root().join("target/kv-workshop");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes stage `stage`'s crate with `stubs` into `target/kv-workshop/LABEL/CRATE`, emptied
/// first. The same directory each time, so that cargo rebuilds only what changed.
fn generate(stage: &Stage, stubs: Stubs, label: &str) -> (PathBuf, Workshop) {
    let dir = scratch().join(label).join(&stage.crate_name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let made = workshop::create(&Checkout::here(), stage.number, &dir, None, stubs);
    (dir, made.unwrap())
}

/// The longest one cargo command may take: a test that hangs shows as a failure.
const DEADLINE: Duration = Duration::from_secs(20 * 60);

/// Runs cargo `subcommand` with `args` in `dir`, with the shared target directory.
fn cargo(dir: &Path, subcommand: &str, args: &[&str]) -> CargoOutput {
    let mut command = check::cargo(dir, subcommand, args);
    command.env("CARGO_TARGET_DIR", scratch().join("target"));
    let mut progress = |line: &str| eprintln!("    {line}");
    let output = check::run_merged(command, Some(DEADLINE), &mut progress).unwrap();
    assert!(
        !output.timed_out,
        "cargo {subcommand} {args:?} in {}: over {DEADLINE:?}\n{}",
        dir.display(),
        output.text
    );
    output
}

/// Runs `tests` in `dir` (only the targets that hold them, only those names) and parses
/// the output.
fn run_tests(dir: &Path, tests: &[TestId]) -> TestRun {
    assert!(!tests.is_empty(), "no tests to run");
    let targets: BTreeSet<&str> = tests.iter().map(|t| t.target.as_str()).collect();
    let mut args = vec!["--no-fail-fast".to_string()];
    for target in targets {
        args.extend(match target {
            "lib" => vec!["--lib".to_string()],
            other => vec!["--test".to_string(), other.to_string()],
        });
    }
    args.extend(["--".to_string(), "--exact".to_string()]);
    let names: BTreeSet<&str> = tests.iter().map(|t| t.name.as_str()).collect();
    args.extend(names.into_iter().map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    libtest::parse(&cargo(dir, "test", &args).text)
}

fn stages() -> Vec<Stage> {
    Checkout::here().stages().unwrap()
}

#[test]
fn every_stage_has_at_least_four_well_formed_exercises() {
    let checkout = Checkout::here();
    for stage in stages() {
        let exercises = stage_exercises(&checkout, &stage).unwrap();
        let ids: Vec<String> = exercises.iter().map(|e| e.marker.id()).collect();
        assert!(exercises.len() >= 4, "stage {}: only {ids:?}", stage.number);
        let functions: BTreeSet<(&str, &str)> = exercises
            .iter()
            .map(|e| (e.file.as_str(), e.function.as_str()))
            .collect();
        assert_eq!(
            functions.len(),
            exercises.len(),
            "one function per exercise"
        );
    }
}

#[test]
fn every_stage_compiles_with_its_exercises_open() {
    for stage in stages() {
        let (dir, made) = generate(&stage, Stubs::All, "check");
        for exercise in &made.exercises {
            let text = std::fs::read_to_string(dir.join(&exercise.file)).unwrap();
            let todo = format!("todo!({:?})", exercise.marker.todo_message());
            assert!(text.contains(&todo), "{} has no {todo}", exercise.file);
        }
        let checked = cargo(&dir, "check", &["--all-targets", "--features", "bench"]);
        assert!(checked.success, "stage {}:\n{}", stage.number, checked.text);
    }
}

#[test]
fn a_directory_that_is_not_empty_is_refused() {
    let dir = tempfile::tempdir_in(scratch()).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let refused = workshop::create(&Checkout::here(), 1, dir.path(), None, Stubs::All);
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("is not empty"), "{message}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

/// Long run: for every stage, the reference bodies pass every listed test, each exercise
/// left open alone fails one of its tests, and with every exercise open each test binary
/// runs to its end and each failing test stops at a `todo!()`.
#[test]
fn every_exercise_is_proven() {
    if !full() {
        eprintln!("set KV_WORKSHOP_FULL=1 to prove every exercise (about ten minutes)");
        return;
    }
    let only: Option<Vec<u32>> = std::env::var("KV_WORKSHOP_STAGES")
        .ok()
        .map(|list| list.split(',').map(|n| n.trim().parse().unwrap()).collect());
    let chosen = |s: &Stage| only.as_ref().is_none_or(|o| o.contains(&s.number));
    let mut problems = Vec::new();
    for stage in stages().into_iter().filter(chosen) {
        let started = std::time::Instant::now();
        let mut found = reference_passes(&stage);
        found.extend(each_alone_fails(&stage));
        found.extend(open_fails_only_at_todos(&stage));
        let took = started.elapsed();
        eprintln!(
            "stage {}: {} problems in {took:?}",
            stage.number,
            found.len()
        );
        for problem in &found {
            eprintln!("    {problem}");
        }
        problems.extend(found);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The reference bodies pass every listed test.
fn reference_passes(stage: &Stage) -> Vec<String> {
    let (dir, made) = generate(stage, Stubs::None, "full");
    let listed: Vec<TestId> = made
        .exercises
        .iter()
        .flat_map(|e| e.marker.tests.clone())
        .collect();
    let run = run_tests(&dir, &listed);
    let mut problems = Vec::new();
    for exercise in &made.exercises {
        for test in &exercise.marker.tests {
            let outcome = run.outcome(test);
            if outcome != Some(&Outcome::Passed) {
                let id = exercise.marker.id();
                problems.push(format!(
                    "exercise {id}: the reference gives {test} {outcome:?}"
                ));
            }
        }
    }
    problems
}

/// Each exercise left open alone fails at least one of its listed tests.
fn each_alone_fails(stage: &Stage) -> Vec<String> {
    let count = stage_exercises(&Checkout::here(), stage).unwrap().len() as u32;
    let mut problems = Vec::new();
    for number in 1..=count {
        let (dir, made) = generate(stage, Stubs::Only(number), "full");
        let exercise = made.exercise(stage.number, number).unwrap();
        let run = run_tests(&dir, &exercise.marker.tests);
        if !run.build_errors.is_empty() {
            let id = exercise.marker.id();
            problems.push(format!(
                "exercise {id} open alone: does not build: {:?}",
                run.build_errors
            ));
        }
        let failed = exercise
            .marker
            .tests
            .iter()
            .any(|t| matches!(run.outcome(t), Some(Outcome::Failed(_))));
        if !failed {
            let id = exercise.marker.id();
            problems.push(format!(
                "exercise {id}: every listed test passes with it open"
            ));
        }
    }
    problems
}

/// With every exercise open, every test binary runs to its end, and every failing test
/// stops at an exercise's `todo!()`.
fn open_fails_only_at_todos(stage: &Stage) -> Vec<String> {
    let (dir, _made) = generate(stage, Stubs::All, "full");
    let run = libtest::parse(&cargo(&dir, "test", &["--no-fail-fast"]).text);
    let mut problems = Vec::new();
    let n = stage.number;
    if !run.build_errors.is_empty() {
        problems.push(format!("stage {n}: does not build: {:?}", run.build_errors));
    }
    for (target, why) in &run.crashed {
        problems.push(format!(
            "stage {n}: the test binary {target} stopped early: {why}"
        ));
    }
    for (test, outcome) in &run.outcomes {
        // The suites that run the engine in a child process see its panic only as the
        // child's exit status, 101.
        if let Outcome::Failed(failure) = outcome
            && failure.todo_of().is_none()
            && !failure
                .message
                .iter()
                .any(|m| m.contains("(exit status: 101)"))
        {
            problems.push(format!(
                "stage {n}: {test} fails but not at a todo!(): {failure:?}"
            ));
        }
    }
    problems
}
