//! [`Sample`]: the pairs a batched fill (`fillbatch`, `bulkload`) reads back afterwards.
//!
//! These two fills hand the engine many pairs at once, through paths (`write`, `load`) that
//! no other workload takes; a pair lost or mixed up on the way would otherwise show only
//! later, in another workload's row, or not at all when they run alone. So while the fill
//! makes its pairs, every `step`-th one is kept (about [`Sample::KEYS`], spread evenly over
//! the key space), and after the timed part each kept key must read back with exactly its
//! value.

use kv_shared::{DynEngine, Result};

/// Every `step`-th pair of a fill, for reading back after it.
#[derive(Debug)]
pub(super) struct Sample {
    step: u64,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Sample {
    /// About how many pairs are kept: at most this many.
    pub(super) const KEYS: u64 = 1000;

    /// A sample of a fill of `num` pairs.
    pub(super) fn new(num: u64) -> Self {
        Sample {
            step: num.div_ceil(Self::KEYS).max(1),
            pairs: Vec::new(),
        }
    }

    /// Notes the fill's pair number `index` (from 0), keeping it when it is sampled.
    pub(super) fn note(&mut self, index: u64, key: &[u8], value: &[u8]) {
        if index.is_multiple_of(self.step) {
            self.pairs.push((key.to_vec(), value.to_vec()));
        }
    }

    /// Reads every kept key back from `db`: `None` when each has its value, otherwise
    /// the wrong answer for `workload`'s row, counting the bad keys and naming the first.
    ///
    /// # Errors
    /// Whatever `get` reports.
    pub(super) fn check(&self, db: &dyn DynEngine, workload: &str) -> Result<Option<String>> {
        let mut bad = 0u64;
        let mut first = None;
        for (key, value) in &self.pairs {
            let found = db.get(key)?;
            if found.as_ref() == Some(value) {
                continue;
            }
            bad += 1;
            first.get_or_insert_with(|| {
                let key = kv_shared::dump::quoted(key, 32);
                match found {
                    None => format!("{key} found nothing"),
                    Some(v) => format!("{key} found another value ({} bytes)", v.len()),
                }
            });
        }
        Ok(first.map(|first| {
            format!(
                "{workload}: {bad} of {} sampled keys read back wrong (first: {first})",
                self.pairs.len()
            )
        }))
    }

    /// How many pairs are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pairs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_spread_over_the_fill_and_bounded() {
        for (num, kept) in [
            (0, 0),
            (10, 10),
            (1000, 1000),
            (1500, 750),
            (1_000_000, 1000),
        ] {
            let mut sample = Sample::new(num);
            for i in 0..num {
                sample.note(i, &i.to_be_bytes(), b"v");
            }
            assert_eq!(sample.len(), kept, "num {num}");
        }
    }

    #[test]
    fn a_key_read_back_missing_or_changed_is_a_wrong_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let options = kv_shared::Options::new();
        let db = <hashlog::HashLog as kv_shared::Engine>::open(tmp.path(), &options).unwrap();
        let mut sample = Sample::new(4);
        for i in 0..4u64 {
            let (key, value) = (format!("k{i}"), format!("v{i}"));
            sample.note(i, key.as_bytes(), value.as_bytes());
            db.put(key.as_bytes(), value.as_bytes()).unwrap();
        }
        assert_eq!(sample.check(&db, "fillbatch").unwrap(), None);
        db.put(b"k1", b"other").unwrap();
        db.delete(b"k3").unwrap();
        let wrong = sample.check(&db, "fillbatch").unwrap().unwrap();
        assert_eq!(
            wrong,
            "fillbatch: 2 of 4 sampled keys read back wrong (first: \"k1\" found another value (5 bytes))"
        );
        db.put(b"k1", b"v1").unwrap();
        let wrong = sample.check(&db, "bulkload").unwrap().unwrap();
        assert!(wrong.ends_with("(first: \"k3\" found nothing)"), "{wrong}");
    }
}
