//! Every exercise of every stage is checked, from the markers in the stages' sources.
//!
//! By default (a few minutes on two cores): every stage's markers are well formed, and
//! every stage's learner crate, with all its exercises open, is written and compiles, its
//! tests and its `bench` binary included (`cargo check --all-targets`).
//!
//! With `KV_WORKSHOP_FULL=1` (about an hour; run it in release:
//! `KV_WORKSHOP_FULL=1 cargo test --release -p kv-workshop --test exercises`), also, for
//! every stage:
//!
//! * the crate with the reference bodies (nothing left open) passes every listed test;
//! * each exercise left open alone fails at least one of its listed tests;
//! * the crate with every exercise open runs all its tests to the end (no test binary
//!   aborts), and each failing test stops at a `todo!()` of an exercise.
//!
//! The crates are written under `target/kv-workshop/` and built with one target directory,
//! `target/kv-workshop/target`, so their dependencies are built once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kv_workshop::check::{self, CargoOutput};
use kv_workshop::checkout::{Checkout, Stage};
use kv_workshop::exercises::{Exercise, stage_exercises};
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

/// Writes stage `stage`'s crate with `stubs` into a new directory under [`scratch`].
fn generate(stage: &Stage, stubs: Stubs) -> (tempfile::TempDir, Workshop) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}-", stage.crate_name))
        .tempdir_in(scratch())
        .unwrap();
    let made = workshop::create(&Checkout::here(), stage.number, dir.path(), None, stubs);
    (dir, made.unwrap())
}

/// Runs cargo `subcommand` with `args` in `dir`, with the shared target directory.
fn cargo(dir: &Path, subcommand: &str, args: &[&str]) -> CargoOutput {
    let mut command = check::cargo(dir, subcommand, args);
    command.env("CARGO_TARGET_DIR", scratch().join("target"));
    let mut progress = |line: &str| eprintln!("    {line}");
    check::run_merged(command, &mut progress).unwrap()
}

/// Runs `tests` in `dir` (only the targets that hold them, only those names) and parses
/// the output.
fn run_tests(dir: &Path, tests: &[TestId]) -> TestRun {
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
        let ids: Vec<String> = exercises.iter().map(Exercise::id).collect();
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
        let (dir, made) = generate(&stage, Stubs::All);
        for exercise in &made.exercises {
            let text = std::fs::read_to_string(dir.path().join(&exercise.file)).unwrap();
            let todo = format!("todo!({:?})", exercise.todo_message());
            assert!(text.contains(&todo), "{} has no {todo}", exercise.file);
        }
        let checked = cargo(dir.path(), "check", &["--all-targets"]);
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

/// Long run: the reference bodies pass every listed test.
#[test]
fn full_the_reference_bodies_pass_every_listed_test() {
    if !full() {
        eprintln!("set KV_WORKSHOP_FULL=1 to run this check");
        return;
    }
    for stage in stages() {
        let (dir, made) = generate(&stage, Stubs::None);
        let listed: Vec<TestId> = made
            .exercises
            .iter()
            .flat_map(|e| e.tests.clone())
            .collect();
        let run = run_tests(dir.path(), &listed);
        for exercise in &made.exercises {
            for test in &exercise.tests {
                let outcome = run.outcome(test);
                assert_eq!(
                    outcome,
                    Some(&Outcome::Passed),
                    "exercise {}: {test}",
                    exercise.id()
                );
            }
        }
    }
}

/// Long run: each exercise left open alone fails at least one of its listed tests.
#[test]
fn full_each_exercise_open_alone_fails_one_of_its_tests() {
    if !full() {
        eprintln!("set KV_WORKSHOP_FULL=1 to run this check");
        return;
    }
    for stage in stages() {
        let count = stage_exercises(&Checkout::here(), &stage).unwrap().len() as u32;
        for number in 1..=count {
            let (dir, made) = generate(&stage, Stubs::Only(number));
            let exercise = made.exercise(stage.number, number).unwrap();
            let run = run_tests(dir.path(), &exercise.tests);
            let failed = exercise
                .tests
                .iter()
                .any(|t| matches!(run.outcome(t), Some(Outcome::Failed(_))));
            assert!(
                failed,
                "exercise {}: every listed test passes with it open",
                exercise.id()
            );
        }
    }
}

/// Long run: with every exercise open, every test binary runs to its end, and every test
/// that fails stops at an exercise's `todo!()`.
#[test]
fn full_open_exercises_fail_only_at_their_todos() {
    if !full() {
        eprintln!("set KV_WORKSHOP_FULL=1 to run this check");
        return;
    }
    for stage in stages() {
        let (dir, _made) = generate(&stage, Stubs::All);
        let output = cargo(dir.path(), "test", &["--no-fail-fast"]);
        let run = libtest::parse(&output.text);
        assert!(run.build_errors.is_empty(), "{:?}", run.build_errors);
        assert!(
            run.crashed.is_empty(),
            "stage {}: {:?}",
            stage.number,
            run.crashed
        );
        let elsewhere: BTreeMap<&TestId, &Outcome> = run
            .outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(f) if f.todo_of().is_none()))
            .collect();
        assert!(
            elsewhere.is_empty(),
            "stage {}: {elsewhere:#?}",
            stage.number
        );
    }
}
