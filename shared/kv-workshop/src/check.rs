//! `kv workshop check`: runs a learner's tests and scores each exercise.
//!
//! An exercise **passes** when every test its marker lists passed. Otherwise the scorecard
//! shows its first test that did not pass, with the line its first panic names and that
//! panic's message, and the section to reread; when that panic is the `todo!()` of another
//! exercise, the exercise is **waiting** on that one rather than failing.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::exercises::Exercise;
use crate::libtest::{self, Outcome, TestRun};
use crate::marker::TestId;
use crate::workshop::Workshop;

/// How one exercise stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Every listed test passed.
    Passed,
    /// `test` did not pass: it failed with `location` and `message`, or did not run.
    Failing {
        /// The first listed test that did not pass.
        test: TestId,
        /// Where its first panic was.
        location: Option<String>,
        /// What it said (or why the test did not run).
        message: Vec<String>,
        /// The exercise whose `todo!()` it stopped at, when not this one.
        waiting_on: Option<(u32, u32)>,
    },
}

/// The scorecard of a learner's crate.
#[derive(Debug, Clone)]
pub struct Scorecard {
    /// Each exercise, in order, and how it stands.
    pub exercises: Vec<(Exercise, Standing)>,
    /// The compiler's errors, when the crate did not build.
    pub build_errors: Vec<String>,
}

impl Scorecard {
    /// How many exercises pass.
    pub fn passed(&self) -> usize {
        let passed = |(_, s): &&(Exercise, Standing)| *s == Standing::Passed;
        self.exercises.iter().filter(passed).count()
    }

    /// True when every exercise passes.
    pub fn all_passed(&self) -> bool {
        self.passed() == self.exercises.len()
    }
}

/// Runs `cargo test --no-fail-fast` in the workshop crate `dir`, calling `progress` with
/// each line cargo prints about building and running, and scores its exercises.
///
/// # Errors
/// [`Error::Usage`] when `dir` is not a workshop crate; [`Error::Cargo`] when cargo cannot
/// be run.
pub fn check(dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<Scorecard> {
    let workshop = Workshop::load(dir)?;
    let output = cargo_test(dir, progress)?;
    Ok(score(&workshop, &libtest::parse(&output)))
}

/// The scorecard of `workshop` after `run`.
pub fn score(workshop: &Workshop, run: &TestRun) -> Scorecard {
    let exercises = workshop
        .exercises
        .iter()
        .map(|e| (e.clone(), standing(e, run)))
        .collect();
    Scorecard {
        exercises,
        build_errors: run.build_errors.clone(),
    }
}

/// How `exercise` stands after `run`.
fn standing(exercise: &Exercise, run: &TestRun) -> Standing {
    for test in &exercise.tests {
        let failing = |location, message| Standing::Failing {
            test: test.clone(),
            location,
            message,
            waiting_on: None,
        };
        match run.outcome(test) {
            Some(Outcome::Passed) => {}
            Some(Outcome::Failed(failure)) => {
                let todo = failure.todo_of();
                let mut standing = failing(failure.location.clone(), failure.message.clone());
                if let Standing::Failing { waiting_on, .. } = &mut standing {
                    *waiting_on = todo.filter(|&t| t != (exercise.stage, exercise.number));
                }
                return standing;
            }
            Some(Outcome::Ignored) => return failing(None, vec!["ignored".into()]),
            None => return failing(None, vec![not_run(test, run)]),
        }
    }
    Standing::Passed
}

/// Why `test` has no result.
fn not_run(test: &TestId, run: &TestRun) -> String {
    if !run.build_errors.is_empty() {
        "did not run: the crate does not compile (the errors are above)".into()
    } else if let Some(reason) = run.crashed.get(&test.target) {
        format!("did not run: its test binary stopped early: {reason}")
    } else {
        "did not run: no test by that name reported a result".into()
    }
}

/// The scorecard as text: a header, then one block per exercise.
pub fn render(workshop: &Workshop, card: &Scorecard) -> String {
    let mut text = String::new();
    if !card.build_errors.is_empty() {
        text += "The crate does not compile:\n\n";
        for line in &card.build_errors {
            writeln!(text, "    {line}").ok();
        }
        text += "\n";
    }
    writeln!(
        text,
        "Workshop stage {} ({}): {} of {} exercises pass\n",
        workshop.stage,
        workshop.crate_name,
        card.passed(),
        card.exercises.len()
    )
    .ok();
    let width = card
        .exercises
        .iter()
        .map(|(e, _)| e.title.len())
        .max()
        .unwrap_or(0);
    for (exercise, standing) in &card.exercises {
        let head = format!("{:<5} {:<width$}", exercise.id(), exercise.title);
        let Standing::Failing {
            test,
            location,
            message,
            waiting_on,
        } = standing
        else {
            writeln!(text, "  {head}  passed ({} tests)", exercise.tests.len()).ok();
            continue;
        };
        let verdict = match waiting_on {
            Some((s, n)) => format!("waiting on exercise {s}.{n}"),
            None => "FAILED".to_string(),
        };
        writeln!(text, "  {head}  {verdict}: {test}").ok();
        if let Some(location) = location {
            writeln!(text, "        at {location}").ok();
        }
        for line in message {
            writeln!(text, "        {line}").ok();
        }
        if waiting_on.is_none() {
            writeln!(text, "        reread {}", exercise.reading()).ok();
        }
    }
    text
}

/// `cargo SUBCOMMAND --color never ARGS` in `dir`, for [`run_merged`]: the cargo that runs
/// this program (`$CARGO`), or the one on the path.
pub fn cargo(dir: &Path, subcommand: &str, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    command
        .args([subcommand, "--color", "never"])
        .args(args)
        .current_dir(dir);
    command
}

/// What a cargo command printed, standard output and error as one stream, and whether it
/// succeeded.
#[derive(Debug, Clone)]
pub struct CargoOutput {
    /// Everything it printed, in order.
    pub text: String,
    /// Its exit status was success.
    pub success: bool,
}

/// Runs `cargo test --no-fail-fast` in `dir`, calling `progress` with the lines about
/// building and running test binaries; returns everything it printed.
///
/// # Errors
/// [`Error::Cargo`] when cargo cannot be started or waited for.
pub fn cargo_test(dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<String> {
    Ok(run_merged(cargo(dir, "test", &["--no-fail-fast"]), progress)?.text)
}

/// Runs `command` with standard output and error on one pipe (so that cargo's "Running"
/// lines and the test binaries' results stay in order), calling `progress` with the lines
/// about building and running.
///
/// # Errors
/// [`Error::Cargo`] when the command cannot be started or waited for.
pub fn run_merged(mut command: Command, progress: &mut dyn FnMut(&str)) -> Result<CargoOutput> {
    let described: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let failed = |source| Error::Cargo {
        args: described.join(" "),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(failed)?;
    command
        .stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(failed)?)
        .stderr(writer);
    let mut child = command.spawn().map_err(failed)?;
    // The command holds copies of the pipe's writing end: without them, the reads below end
    // when cargo and everything it started have exited.
    drop(command);
    let mut text = String::new();
    for line in BufReader::new(reader).split(b'\n') {
        let line = String::from_utf8_lossy(&line.map_err(failed)?).into_owned();
        let trimmed = line.trim_start();
        let announces = [
            "Compiling ",
            "Checking ",
            "Running ",
            "Doc-tests ",
            "Finished ",
        ];
        if announces.iter().any(|p| trimmed.starts_with(p)) {
            progress(trimmed);
        }
        text += &line;
        text.push('\n');
    }
    let status = child.wait().map_err(failed)?;
    Ok(CargoOutput {
        text,
        success: status.success(),
    })
}
