//! The suites' knobs: sizes read from environment variables, the long-run factor, and the
//! seed every randomized test prints so that a failing run can be replayed.
//!
//! | variable | what |
//! |---|---|
//! | `KV_TEST_SEED` | the seed of every randomized suite; unset, each suite uses its own fixed default |
//! | `KV_LONG` | scales every suite's default size: `KV_LONG=1` by [`LONG_FACTOR`] (20), `KV_LONG=N` (N ≥ 2) by N |
//! | `KV_<SUITE>_...` | one suite's size, which wins over both defaults and `KV_LONG` |
//!
//! `cargo test --workspace` with nothing set replays the same cases every time. `.ci/run`
//! draws a fresh `KV_TEST_SEED` per run and prints it, so CI explores new cases while a
//! failure it finds can be replayed exactly.

/// How much `KV_LONG=1` multiplies every default size by.
pub const LONG_FACTOR: u64 = 20;

/// The factor every default size is multiplied by: 1, or what `KV_LONG` asks for.
pub fn long_factor() -> u64 {
    match std::env::var("KV_LONG")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        None | Some(0) => 1,
        Some(1) => LONG_FACTOR,
        Some(n) => n,
    }
}

/// A suite's size: the environment variable `name` if set, else `default` times
/// [`long_factor`].
pub fn env_u64(name: &str, default: u64) -> u64 {
    read_u64(name).unwrap_or_else(|| default.saturating_mul(long_factor()))
}

fn read_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The seed for a randomized test: `KV_TEST_SEED` if set, else `default`. Printed, so a failing
/// run's output says how to replay it.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = read_u64("KV_TEST_SEED").unwrap_or(default);
    eprintln!("{test}: seed {seed} (replay with KV_TEST_SEED={seed})");
    seed
}
