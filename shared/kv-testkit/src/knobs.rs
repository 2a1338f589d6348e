//! The suites' knobs: sizes read from environment variables, and the seed every randomized
//! test prints so that a failing run can be replayed (`KV_TEST_SEED`).

/// Reads an environment variable as a number, with a default.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed for a randomized test: `KV_TEST_SEED` if set, else `default`. Printed, so a failing
/// run's output says how to replay it.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = env_u64("KV_TEST_SEED", default);
    eprintln!("{test}: seed {seed} (replay with KV_TEST_SEED={seed})");
    seed
}
