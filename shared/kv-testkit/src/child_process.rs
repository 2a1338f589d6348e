//! Running a test again in a child process: the helpers behind the process-crash suite (a
//! child that is killed mid-write) and the hostile-input suite (a child whose memory is
//! limited and whose every case has a deadline).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in a child started by [`run_bounded`].
pub const BOUNDED_CHILD_ENV: &str = "KV_BOUNDED_CHILD";
/// Where a bounded child writes down the case it is about to run.
pub const CASE_FILE_ENV: &str = "KV_CASE_FILE";
/// The address-space limit of a bounded child, in KiB (2 GiB): far above what any case
/// needs, far below what an allocation sized by a corrupt 32-bit length asks for.
pub const CHILD_MEMORY_KIB: u64 = 2 << 20;
/// How long one case of a bounded child may run before the parent calls it a hang.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The name libtest knows a test by, from `concat!(module_path!(), "::name")`: the path
/// without its first segment (the crate's name).
pub fn test_name(full_path: &str) -> &str {
    full_path
        .split_once("::")
        .map_or(full_path, |(_, rest)| rest)
}

/// A command that runs exactly the test `test_name` of the current test binary, alone.
pub fn rerun_self(test_name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args(["--exact", test_name, "--nocapture", "--test-threads", "1"]);
    command
}

/// Runs `body` in a child process (the same test, re-run) whose address space is limited to
/// [`CHILD_MEMORY_KIB`] and whose every case (as written down through [`CASE_FILE_ENV`])
/// must finish within [`CASE_TIMEOUT`]. In the child, or with `KV_NO_CHILD` set, or
/// without `/bin/sh`, runs `body` directly.
///
/// # Panics
/// When the child fails, aborts or hangs, with its output and the case it was running.
pub fn run_bounded(test_name: &str, body: impl FnOnce()) {
    if std::env::var_os(BOUNDED_CHILD_ENV).is_some()
        || std::env::var_os("KV_NO_CHILD").is_some()
        || !Path::new("/bin/sh").exists()
    {
        body();
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (case_file, out_file) = (tmp.path().join("case"), tmp.path().join("output"));
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {CHILD_MEMORY_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .env(BOUNDED_CHILD_ENV, "1")
        .env(CASE_FILE_ENV, &case_file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&out_file).expect("output file"))
        .spawn()
        .expect("spawn the bounded child");
    let mut last_case = String::new();
    let mut since = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        let case = std::fs::read_to_string(&case_file).unwrap_or_default();
        if case != last_case {
            last_case = case;
            since = Instant::now();
        } else if since.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "one case ran for over {CASE_TIMEOUT:?} (an endless loop?): {}",
                last_case
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&out_file).unwrap_or_default();
    if status.success() {
        for line in output.lines().filter(|l| !l.trim().is_empty()) {
            eprintln!("  (child) {line}");
        }
    } else {
        let tail: String = output
            .chars()
            .skip(output.chars().count().saturating_sub(6000))
            .collect();
        panic!(
            "the bounded child failed ({status}); the last case it began was: {}\n--- child \
             output (end) ---\n{tail}",
            std::fs::read_to_string(&case_file).unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_names_drop_the_crate() {
        assert_eq!(
            super::test_name("reliability::reliability::process_crash"),
            "reliability::process_crash"
        );
        assert_eq!(super::test_name("alone"), "alone");
    }
}
