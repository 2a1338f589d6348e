//! `recovery`: the time to open a store after a clean close, and after its writer was
//! killed; and the child process's half of that kill ([`fill_then_wait`]).
//!
//! Both opens are checked: the store opened after the clean close must hold `num` live keys,
//! and so must the one opened after the kill, unless the engine is a peer that does not
//! survive a kill as configured ([`after_kill_error`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use kv_shared::{DynEngine, Error, Result};

use super::store::{Store, fill_seq};
use super::{BenchConfig, Outcome};
use crate::engine_spec::ResolvedEngine;
use crate::progress::Progress;
use crate::workload::WorkloadConfig;

/// `recovery`: close the filled store, time its reopening; then time the opening of a store
/// whose writer was killed, when a helper process is available.
pub(super) fn recovery(
    store: &mut Store<'_>,
    config: &BenchConfig,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let c = &config.workload;
    store.close()?;
    let t = Instant::now();
    let db = store.open(&store.dir)?;
    let open = t.elapsed();
    store.db = Some(db);
    progress.set(1);
    let mut wrong = check_live_keys(store.db()?, c.num, "after a clean close")?;
    let (mut open_after_kill_ms, mut live_keys_after_kill) = (None, None);
    if let Some(helper) = &config.kill_helper {
        progress.note("a child process fills a store and is killed (untimed)");
        let dir = store.root.join("killed");
        let spec = spec_with_settings(store.engine);
        kill_while_open(helper, &spec, &dir, c)?;
        let t = Instant::now();
        let db = store.open(&dir)?;
        open_after_kill_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
        let live = db.stats().map(|s| s.live_keys);
        let closed = db.close();
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        crate::disk_bandwidth::settle(&store.root)?;
        let live = live?;
        live_keys_after_kill = Some(live);
        wrong = wrong.or(after_kill_error(store.engine.info.name, live, c.num));
        closed?;
        progress.note("");
    }
    Ok(Outcome {
        entries: Some(c.num),
        elapsed: open,
        open_ms: Some(open.as_secs_f64() * 1000.0),
        open_after_kill_ms,
        live_keys_after_kill,
        reopened: true,
        wrong,
        ..Outcome::default()
    })
}

/// The error, if any, of a store opened `when` that does not hold `num` live keys.
fn check_live_keys(db: &dyn DynEngine, num: u64, when: &str) -> Result<Option<String>> {
    let live = db.stats()?.live_keys;
    Ok((live != num).then(|| {
        format!("recovery: the store opened {when} holds {live} live keys, expected {num}")
    }))
}

/// The error, if any, of a store of engine `name` that holds `live` keys when opened after
/// its writer put `num` and was killed. Missing keys are an error unless the engine is a
/// peer that does not survive a kill as configured ([`crate::peers::Peer::survives_kill`]
/// false: sled, redb), for which the report notes them instead; extra keys are always an
/// error.
pub fn after_kill_error(name: &str, live: u64, num: u64) -> Option<String> {
    let durable = crate::peers::find(name).is_none_or(|peer| peer.survives_kill);
    let excused = live < num && !durable;
    (live != num && !excused).then(|| {
        format!("recovery: the store opened after a kill holds {live} live keys, expected {num}")
    })
}

/// The engine's spec with every effective setting spelled out, for a child process.
fn spec_with_settings(engine: &ResolvedEngine) -> String {
    let spec = crate::engine_spec::EngineSpec {
        name: engine.info.name.to_string(),
        settings: engine.settings.clone(),
    };
    spec.label()
}

/// Runs `helper --fill-then-wait` on `dir`, waits until it says the store is filled, and
/// kills it (SIGKILL on Unix): the store is left exactly as a crashed process leaves it.
fn kill_while_open(helper: &Path, spec: &str, dir: &Path, c: &WorkloadConfig) -> Result<()> {
    let io = |e: std::io::Error| Error::io(helper, e);
    let mut child = Command::new(helper)
        .arg("--fill-then-wait")
        .args(["--engines", spec])
        .arg("--dir")
        .arg(dir)
        .args(["--num", &c.num.to_string()])
        .args(["--key-size", &c.key_size.to_string()])
        .args(["--value-size", &c.value_size.to_string()])
        .args(["--seed", &c.seed.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io)?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line).map_err(io)?;
    }
    child.kill().map_err(io)?;
    child.wait().map_err(io)?;
    if line.trim() != "READY" {
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        return Err(Error::InvalidArgument(format!(
            "the fill-and-kill helper did not fill its store: {}",
            stderr.trim()
        )));
    }
    Ok(())
}

/// The child's half of the `recovery` workload: opens `dir`, puts keys `0..num` in order,
/// prints `READY` on `out`, then waits for `input` to end without closing the store. The
/// parent kills the process while it waits.
///
/// # Errors
/// Whatever the engine reports, and an output failure.
pub fn fill_then_wait(
    engine: &ResolvedEngine,
    dir: &Path,
    config: &WorkloadConfig,
    mut input: impl Read,
    mut out: impl Write,
) -> Result<()> {
    let db = (engine.info.open)(dir, &engine.options)?;
    fill_seq(db.as_ref(), config)?;
    let io = |e: std::io::Error| Error::io("<standard output>", e);
    writeln!(out, "READY").map_err(io)?;
    out.flush().map_err(io)?;
    let mut sink = Vec::new();
    let _ = input.read_to_end(&mut sink);
    db.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lost_to_a_kill_are_an_error_only_for_engines_that_survive_kills() {
        assert_eq!(after_kill_error("hashlog", 100, 100), None);
        assert_eq!(
            after_kill_error("hashlog", 99, 100).as_deref(),
            Some("recovery: the store opened after a kill holds 99 live keys, expected 100")
        );
        assert!(after_kill_error("fjall", 99, 100).is_some());
        assert!(after_kill_error("rocksdb", 99, 100).is_some());
        assert_eq!(after_kill_error("sled", 99, 100), None);
        assert_eq!(after_kill_error("redb", 0, 100), None);
        // More keys than were written is wrong for every engine.
        assert!(after_kill_error("sled", 101, 100).is_some());
    }
}
