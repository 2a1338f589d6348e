//! Locks that keep working after a thread panicked while holding one.
//!
//! A `Mutex` whose holder panicked is *poisoned*: `lock` returns an error from then on, and
//! so does every wait on a `Condvar` with it. The engine's locks guard state that each change
//! leaves whole (an `Arc` swapped, a flag set, a counter moved), and a panic in one thread
//! must not turn every later call of every other thread into a panic too. So the engine
//! takes the guard anyway, through these three functions, and never unwraps a lock itself.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Locks `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar` with `guard` until woken, poisoned or not.
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar` with `guard` until woken or `timeout` has passed, poisoned or not.
pub fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .0
}
