//! Per-operation latency, kept in an HDR histogram so percentiles cost no sorting.
//!
//! Each operation's duration is recorded in nanoseconds; the histogram keeps three
//! significant digits over any range, so p50, p99 and p99.9 are within 0.1 % of the exact
//! figures, in a few hundred KiB whatever the number of operations.

use std::time::Duration;

use hdrhistogram::Histogram;

/// A latency histogram.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            histogram: Histogram::new(3).expect("3 significant digits is a valid precision"),
        }
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one operation's duration.
    pub fn record(&mut self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        // The histogram resizes itself to fit any value; should that ever fail, saturate.
        if self.histogram.record(nanos).is_err() {
            self.histogram.saturating_record(nanos);
        }
    }

    /// Adds every operation `other` recorded (one thread's histogram into the total).
    pub fn merge(&mut self, other: &Latency) {
        // The histogram resizes itself to fit; should adding fail, saturate value by value.
        if self.histogram.add(&other.histogram).is_err() {
            for v in other.histogram.iter_recorded() {
                self.histogram
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// How many operations were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at quantile `q` (0.5 for the median), in microseconds; `None` when
    /// nothing was recorded.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        (self.count() > 0).then(|| self.histogram.value_at_quantile(q) as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_in_microseconds() {
        let mut l = Latency::new();
        assert_eq!(l.quantile_us(0.5), None);
        for micros in 1..=1000u64 {
            l.record(Duration::from_micros(micros));
        }
        assert_eq!(l.count(), 1000);
        let p50 = l.quantile_us(0.5).unwrap();
        let p99 = l.quantile_us(0.99).unwrap();
        assert!((499.0..=501.0).contains(&p50), "{p50}");
        assert!((989.0..=991.0).contains(&p99), "{p99}");
        let mut total = Latency::new();
        total.merge(&l);
        total.merge(&l);
        assert_eq!(total.count(), 2000);
        assert_eq!(total.quantile_us(0.5), Some(p50));
    }
}
