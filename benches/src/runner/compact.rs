//! `compact`: one call to the engine's compaction, run to completion and timed. The report
//! shows the time it took and the space amplification after it.

use std::time::Instant;

use kv_shared::{DynEngine, Result};

use super::Outcome;

/// The measurement of `compact`: one call, timed.
pub(super) fn compact(db: &dyn DynEngine) -> Result<Outcome> {
    let t = Instant::now();
    db.compact()?;
    Ok(Outcome {
        elapsed: t.elapsed(),
        ..Outcome::default()
    })
}
