//! Progress reporting while `kvbench` runs: an indicatif bar in a terminal, nothing in tests.

use indicatif::{ProgressBar, ProgressStyle};

/// Told what the runner is doing, so a person watching knows it is not stuck.
pub trait Progress {
    /// A timed run of `total` operations, called `label`, starts.
    fn start(&self, label: &str, total: u64);
    /// `done` operations of the current run are finished.
    fn set(&self, done: u64);
    /// Something untimed (filling a store) is happening.
    fn note(&self, message: &str);
    /// Everything is finished; clear the display.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _label: &str, _total: u64) {}
    fn set(&self, _done: u64) {}
    fn note(&self, _message: &str) {}
    fn finish(&self) {}
}

/// A progress bar on standard error (drawn only when it is a terminal).
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl Bar {
    /// A bar on standard error.
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>36.bold} [{bar:30}] {pos:>9}/{len:9} {elapsed:>4} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar { bar }
    }
}

impl Progress for Bar {
    fn start(&self, label: &str, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        self.bar.set_prefix(label.to_string());
        self.bar.set_message("");
    }
    fn set(&self, done: u64) {
        self.bar.set_position(done);
    }
    fn note(&self, message: &str) {
        self.bar.set_message(message.to_string());
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
