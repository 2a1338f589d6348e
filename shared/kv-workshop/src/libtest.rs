//! Reading `cargo test`'s plain output: which test of which target passed or failed, and
//! the line each failure stopped at.
//!
//! Cargo announces each test binary (`Running tests/engine.rs (...)`, `Running unittests
//! src/lib.rs (...)`) on standard error and the binary prints its results on standard
//! output, so both must be read as one stream, in order: the workshop gives `cargo` one pipe
//! for both ([`crate::check`]).

use std::collections::BTreeMap;

use crate::marker::TestId;

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `ok`.
    Passed,
    /// `FAILED`, with where and why.
    Failed(Failure),
    /// `ignored`.
    Ignored,
}

/// What a failed test printed, boiled down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// `src/record.rs:120:9`: where its first panic was, when it printed one.
    pub location: Option<String>,
    /// The panic's message: its first line, and the `left:`/`right:` lines of an assertion.
    pub message: Vec<String>,
}

impl Failure {
    /// The exercise (`stage`, `number`) whose `todo!()` this failure stopped at, if any.
    pub fn todo_of(&self) -> Option<(u32, u32)> {
        let first = self.message.first()?;
        let rest = first.split("not yet implemented: Exercise ").nth(1)?;
        let (id, _) = rest.split_once(':')?;
        let (stage, number) = id.split_once('.')?;
        Some((stage.parse().ok()?, number.parse().ok()?))
    }
}

/// Everything one `cargo test` run said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRun {
    /// Each test that reported a result.
    pub outcomes: BTreeMap<TestId, Outcome>,
    /// Targets whose binary stopped before its summary line, with cargo's reason.
    pub crashed: BTreeMap<String, String>,
    /// The compiler's errors when the crate did not build (empty when it did).
    pub build_errors: Vec<String>,
}

impl TestRun {
    /// The outcome of `test`, `None` when it did not run.
    pub fn outcome(&self, test: &TestId) -> Option<&Outcome> {
        self.outcomes.get(test)
    }
}

/// The most lines of compiler errors kept.
const MAX_BUILD_ERROR_LINES: usize = 40;

/// Parses the merged standard output and error of `cargo test`.
pub fn parse(output: &str) -> TestRun {
    let mut run = TestRun::default();
    let mut target = String::new();
    let mut open_target: Option<String> = None;
    let mut failure: Option<(TestId, Vec<&str>)> = None;
    let mut in_build_error = false;
    for line in output.lines() {
        if let Some(name) = target_of(line) {
            close_failure(&mut run, failure.take());
            target = name;
            open_target = Some(target.clone());
            continue;
        }
        if line.starts_with("test result: ") {
            close_failure(&mut run, failure.take());
            open_target = None;
            continue;
        }
        if let Some(reason) = line
            .trim()
            .strip_prefix("process didn't exit successfully: ")
            && let Some(crashed) = open_target.take()
        {
            run.crashed.insert(crashed, reason.to_string());
            continue;
        }
        if build_error_starts(line) || in_build_error {
            in_build_error = !line.starts_with("error: could not compile");
            if run.build_errors.len() < MAX_BUILD_ERROR_LINES {
                run.build_errors.push(line.to_string());
            }
            continue;
        }
        if let Some((name, result)) = result_line(line) {
            let id = TestId {
                target: target.clone(),
                name: name.to_string(),
            };
            let outcome = match result {
                "ok" => Outcome::Passed,
                r if r.starts_with("ignored") => Outcome::Ignored,
                _ => Outcome::Failed(Failure::default()),
            };
            run.outcomes.insert(id, outcome);
        } else if let Some(name) = failure_header(line) {
            close_failure(&mut run, failure.take());
            let id = TestId {
                target: target.clone(),
                name: name.to_string(),
            };
            failure = Some((id, Vec::new()));
        } else if line == "failures:" {
            close_failure(&mut run, failure.take());
        } else if let Some((_, lines)) = &mut failure {
            lines.push(line);
        }
    }
    close_failure(&mut run, failure);
    run
}

/// The target a `Running ...` or `Doc-tests ...` line announces.
fn target_of(line: &str) -> Option<String> {
    let line = line.trim_start();
    if line.starts_with("Doc-tests ") {
        return Some("doc".to_string());
    }
    let rest = line.strip_prefix("Running ")?;
    let path = rest.strip_prefix("unittests ").unwrap_or(rest);
    let path = path.split(' ').next()?;
    if path == "src/lib.rs" {
        return Some("lib".to_string());
    }
    let file = path.rsplit('/').next()?;
    Some(file.strip_suffix(".rs").unwrap_or(file).to_string())
}

/// `test NAME ... RESULT`.
fn result_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    let known = ["ok", "FAILED"].contains(&result) || result.starts_with("ignored");
    known.then_some((name, result))
}

/// `---- NAME stdout ----`.
fn failure_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("---- ")?.strip_suffix(" ----")?;
    rest.strip_suffix(" stdout")
        .or_else(|| rest.strip_suffix(" stderr"))
}

/// The first line of a compiler error (not cargo's "a test failed" summaries).
fn build_error_starts(line: &str) -> bool {
    (line.starts_with("error[") || line.starts_with("error: "))
        && !line.starts_with("error: test failed")
        && !(line.starts_with("error: ") && line.contains(" target") && line.ends_with("failed:"))
}

/// Records the output `lines` of failed test `id` as its [`Failure`].
fn close_failure(run: &mut TestRun, failure: Option<(TestId, Vec<&str>)>) {
    let Some((id, lines)) = failure else {
        return;
    };
    let boiled = boil(&lines);
    match run
        .outcomes
        .entry(id)
        .or_insert(Outcome::Failed(Failure::default()))
    {
        Outcome::Failed(slot) => *slot = boiled,
        Outcome::Passed | Outcome::Ignored => {}
    }
}

/// The first panic of a failed test's output: its location and message.
fn boil(lines: &[&str]) -> Failure {
    let panic = lines.iter().position(|l| l.contains(" panicked at "));
    let Some(at) = panic else {
        let first = lines.iter().find(|l| !l.trim().is_empty());
        return Failure {
            location: None,
            message: first.map(|l| l.trim().to_string()).into_iter().collect(),
        };
    };
    let after = lines[at].split(" panicked at ").nth(1).unwrap_or_default();
    let location = after.trim_end_matches(':').to_string();
    let ends = |l: &&&str| {
        l.trim().is_empty() || l.starts_with("note: ") || l.starts_with("stack backtrace")
    };
    let mut message: Vec<String> = lines[at + 1..]
        .iter()
        .take_while(|l| !ends(l))
        .map(|l| l.to_string())
        .collect();
    let assertion = message.first().is_some_and(|m| m.starts_with("assertion"));
    message.truncate(if assertion { 3 } else { 1 });
    Failure {
        location: Some(location),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = r#"   Compiling hashlog v0.1.0-workshop (/tmp/my-hashlog)
    Finished `test` profile [optimized + debuginfo] target(s) in 9.10s
     Running unittests src/lib.rs (target/debug/deps/hashlog-0123)

running 2 tests
test record::tests::round_trips ... FAILED
test record::tests::the_documented_example_bytes ... ok

failures:

---- record::tests::round_trips stdout ----

thread 'record::tests::round_trips' panicked at src/record.rs:290:5:
not yet implemented: Exercise 1.2: decode a record; see chapter 1, section "On disk"
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    record::tests::round_trips

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

error: test failed, to rerun pass `--lib`
     Running tests/engine.rs (target/debug/deps/engine-4567)

running 2 tests
test a_get_is_one_read ... FAILED
test slow ... ignored, takes an hour

failures:

---- a_get_is_one_read stdout ----
seed 7
thread 'a_get_is_one_read' panicked at tests/engine.rs:12:5:
assertion `left == right` failed
  left: 1
 right: 2
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

failures:
    a_get_is_one_read

test result: FAILED. 0 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

error: test failed, to rerun pass `--test engine`
     Running tests/recovery.rs (target/debug/deps/recovery-89ab)

running 3 tests
test cut ... ok
error: test failed, to rerun pass `--test recovery`

Caused by:
  process didn't exit successfully: `/tmp/target/debug/deps/recovery-89ab` (signal: 6, SIGABRT: process abort signal)
   Doc-tests hashlog

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

error: 3 targets failed:
    `--lib`
    `--test engine`
    `--test recovery`
"#;

    fn id(text: &str) -> TestId {
        TestId::parse(text).unwrap()
    }

    #[test]
    fn results_failures_and_crashes() {
        let run = parse(OUTPUT);
        assert!(run.build_errors.is_empty(), "{:?}", run.build_errors);
        assert_eq!(
            run.outcome(&id("lib::record::tests::the_documented_example_bytes")),
            Some(&Outcome::Passed)
        );
        let Some(Outcome::Failed(todo)) = run.outcome(&id("lib::record::tests::round_trips"))
        else {
            panic!("{run:?}")
        };
        assert_eq!(todo.location.as_deref(), Some("src/record.rs:290:5"));
        assert_eq!(todo.todo_of(), Some((1, 2)));
        let Some(Outcome::Failed(assertion)) = run.outcome(&id("engine::a_get_is_one_read")) else {
            panic!("{run:?}")
        };
        assert_eq!(
            assertion.message,
            ["assertion `left == right` failed", "  left: 1", " right: 2"]
        );
        assert_eq!(assertion.todo_of(), None);
        assert_eq!(run.outcome(&id("engine::slow")), Some(&Outcome::Ignored));
        assert_eq!(run.outcome(&id("recovery::cut")), Some(&Outcome::Passed));
        assert!(run.crashed["recovery"].contains("SIGABRT"));
        assert_eq!(run.crashed.len(), 1);
    }

    #[test]
    fn compiler_errors_are_kept() {
        let output = "   Compiling hashlog v0.1.0\nerror[E0308]: mismatched types\n --> src/record.rs:3:5\n  |\nerror: could not compile `hashlog` (lib) due to 1 previous error\nwarning: build failed, waiting for other jobs to finish...\n";
        let run = parse(output);
        assert_eq!(run.build_errors.len(), 4);
        assert!(run.build_errors[0].starts_with("error[E0308]"));
        assert!(run.outcomes.is_empty());
    }
}
