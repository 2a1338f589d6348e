//! Cursors.
pub mod level;
pub mod merging;
pub mod snapshot;
