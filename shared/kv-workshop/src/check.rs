//! `kv workshop check`: runs a learner's tests and scores each exercise.
//!
//! An exercise **passes** when every test its marker lists passed. Otherwise the scorecard
//! shows its first test that did not pass, with the line its first panic names and that
//! panic's message, and the section to reread; when that panic is the `todo!()` of another
//! exercise, the exercise is **waiting** on that one rather than failing.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

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
    /// Its own `todo!()` is still there: `test`, its first listed test that did not pass,
    /// stopped at it.
    Open {
        /// The test that stopped at the exercise's `todo!()`.
        test: TestId,
    },
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
    for test in &exercise.marker.tests {
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
                if todo == Some((exercise.marker.stage, exercise.marker.number)) {
                    return Standing::Open { test: test.clone() };
                }
                let mut standing = failing(failure.location.clone(), failure.message.clone());
                if let Standing::Failing { waiting_on, .. } = &mut standing {
                    *waiting_on = todo;
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
        .map(|(e, _)| e.marker.title.len())
        .max()
        .unwrap_or(0);
    for (exercise, standing) in &card.exercises {
        let head = format!(
            "{:<5} {:<width$}",
            exercise.marker.id(),
            exercise.marker.title
        );
        text += &standing_lines(&head, exercise, standing);
    }
    text
}

/// One exercise's lines of the scorecard, starting with `head` (its number and title).
fn standing_lines(head: &str, exercise: &Exercise, standing: &Standing) -> String {
    let mut text = String::new();
    let (test, location, message) = match standing {
        Standing::Passed => {
            return format!("  {head}  passed ({} tests)\n", exercise.marker.tests.len());
        }
        Standing::Open { test } => {
            let read = exercise.marker.reading();
            return format!("  {head}  to do: {test} stops at its todo!()\n        read {read}\n");
        }
        Standing::Failing {
            test,
            waiting_on: Some((s, n)),
            ..
        } => {
            return format!("  {head}  waiting on exercise {s}.{n}: {test} stops at its todo!()\n");
        }
        Standing::Failing {
            test,
            location,
            message,
            waiting_on: None,
        } => (test, location, message),
    };
    writeln!(text, "  {head}  FAILED: {test}").ok();
    if let Some(location) = location {
        writeln!(text, "        at {location}").ok();
    }
    for line in message {
        writeln!(text, "        {line}").ok();
    }
    if !message
        .first()
        .is_some_and(|m| m.starts_with("did not run"))
    {
        writeln!(text, "        reread {}", exercise.marker.reading()).ok();
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
    /// Its exit status was success (and it was not killed).
    pub success: bool,
    /// It ran past its deadline and was killed.
    pub timed_out: bool,
}

/// Runs `cargo test --no-fail-fast` in `dir`, calling `progress` with the lines about
/// building and running test binaries; returns everything it printed.
///
/// # Errors
/// [`Error::Cargo`] when cargo cannot be started or waited for.
pub fn cargo_test(dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<String> {
    Ok(run_merged(cargo(dir, "test", &["--no-fail-fast"]), None, progress)?.text)
}

/// Runs `command` with standard output and error on one pipe (so that cargo's "Running"
/// lines and the test binaries' results stay in order), calling `progress` with the lines
/// about building and running. Should `deadline` pass first, the command and everything it
/// started are killed (on Unix they run in a process group of their own) and the output
/// says so.
///
/// # Errors
/// [`Error::Cargo`] when the command cannot be started or waited for.
pub fn run_merged(
    mut command: Command,
    deadline: Option<Duration>,
    progress: &mut dyn FnMut(&str),
) -> Result<CargoOutput> {
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
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(failed)?;
    // The command holds copies of the pipe's writing end: without them, the reads below end
    // when cargo and everything it started have exited.
    drop(command);
    let (finished, watchdog) = deadline.map(|d| watch(child.id(), d)).unzip();
    let text = read_lines(reader, progress).map_err(failed)?;
    let status = child.wait().map_err(failed)?;
    drop(finished);
    let timed_out = watchdog.is_some_and(|w| w.join().unwrap_or(false));
    Ok(CargoOutput {
        text,
        success: status.success() && !timed_out,
        timed_out,
    })
}

/// Everything `reader` yields, passing the lines that announce a build or a test binary
/// to `progress`.
fn read_lines(reader: impl Read, progress: &mut dyn FnMut(&str)) -> std::io::Result<String> {
    let mut text = String::new();
    for line in BufReader::new(reader).split(b'\n') {
        let line = String::from_utf8_lossy(&line?).into_owned();
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
    Ok(text)
}

/// A thread that kills process group `pid` unless the returned sender is dropped within
/// `deadline`; it ends with true when it killed.
fn watch(pid: u32, deadline: Duration) -> (Sender<()>, JoinHandle<bool>) {
    let (finished, wait) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let expired = wait.recv_timeout(deadline) == Err(RecvTimeoutError::Timeout);
        if expired {
            let group = format!("-{pid}");
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        }
        expired
    });
    (finished, watchdog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marker::{self, Marker};

    fn workshop() -> Workshop {
        let text = r#"
// Exercise 1.1: encode. Read: chapter 1, "On disk".
// Tests: lib::record::tests::a
// Exercise 1.2: decode. Read: chapter 1, "On disk".
// Tests: lib::record::tests::b, engine::c
// Exercise 1.3: append. Read: chapter 1, "Design".
// Tests: engine::d
// Exercise 1.4: replay. Read: chapter 1, "Recovery".
// Tests: engine::e
"#;
        let exercise = |marker: Marker| Exercise {
            marker,
            file: "src/record.rs".into(),
            function: "f".into(),
        };
        Workshop {
            stage: 1,
            crate_name: "hashlog".into(),
            checkout: "/checkout".into(),
            exercises: marker::find(text)
                .unwrap()
                .into_iter()
                .map(exercise)
                .collect(),
        }
    }

    const OUTPUT: &str = "     Running unittests src/lib.rs (x)
test record::tests::a ... ok
test record::tests::b ... FAILED

---- record::tests::b stdout ----
thread 'record::tests::b' (7) panicked at src/record.rs:9:5:
assertion `left == right` failed
  left: 1
 right: 2

test result: FAILED. 1 passed; 1 failed
     Running tests/engine.rs (y)
test d ... FAILED
test e ... FAILED

---- d stdout ----
thread 'd' (8) panicked at src/record.rs:20:5:
not yet implemented: Exercise 1.2: decode; see chapter 1, section \"On disk\"

---- e stdout ----
thread 'e' (9) panicked at src/recovery.rs:5:5:
not yet implemented: Exercise 1.4: replay; see chapter 1, section \"Recovery\"

test result: FAILED. 0 passed; 1 failed
";

    #[test]
    fn passed_failed_and_waiting() {
        let workshop = workshop();
        let card = score(&workshop, &libtest::parse(OUTPUT));
        assert_eq!(card.passed(), 1);
        assert!(!card.all_passed());
        let text = render(&workshop, &card);
        assert!(text.contains("1 of 4 exercises pass"), "{text}");
        let open = "1.4   replay  to do: engine::e stops at its todo!()\n        read chapter 1";
        assert!(text.contains(open), "{text}");
        assert!(text.contains("1.1   encode  passed (1 tests)"), "{text}");
        assert!(
            text.contains("1.3   append  waiting on exercise 1.2: engine::d"),
            "{text}"
        );
        assert!(
            text.contains("1.2   decode  FAILED: lib::record::tests::b"),
            "{text}"
        );
        assert!(
            text.contains(
                "at src/record.rs:9:5\n        assertion `left == right` failed\n          left: 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("reread chapter 1, section \"On disk\""),
            "{text}"
        );
        let waiting =
            "1.3   append  waiting on exercise 1.2: engine::d stops at its todo!()\n  1.4";
        assert!(text.contains(waiting), "{text}");
        assert!(
            !text.contains("reread chapter 1, section \"Design\""),
            "{text}"
        );
    }

    #[test]
    fn a_test_that_did_not_run_says_why() {
        let workshop = workshop();
        let card = score(
            &workshop,
            &libtest::parse("error[E0425]: x\nerror: could not compile `hashlog`\n"),
        );
        assert_eq!(card.passed(), 0);
        let text = render(&workshop, &card);
        assert!(text.starts_with("The crate does not compile:"), "{text}");
        assert!(
            text.contains("did not run: the crate does not compile"),
            "{text}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_command_past_its_deadline_is_killed_with_its_children() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo started; sleep 60 & wait"]);
        let began = std::time::Instant::now();
        let output = run_merged(command, Some(Duration::from_millis(300)), &mut |_| {}).unwrap();
        assert!(output.timed_out && !output.success);
        assert_eq!(output.text, "started\n");
        assert!(began.elapsed() < Duration::from_secs(30));
    }
}
