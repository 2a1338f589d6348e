//! Per-key expiry (time to live): when a record stops counting.
//!
//! A put may carry an expiry time ([`crate::Bitcask::put_with_ttl`],
//! [`crate::Bitcask::put_expiring_at`]). It is stored in the record and in the keydir entry
//! as milliseconds since the Unix epoch, with 0 meaning "never". Nothing runs at the expiry
//! time: an expired key simply reads as missing (`get` answers `None` without touching the
//! disk, `scan` skips it, `stats` does not count it), and the next merge drops its record,
//! as it drops any other dead record.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The expiry value that means "never expires".
pub const NEVER: u64 = 0;

/// Now, in milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_millis() -> u64 {
    millis_since_epoch(SystemTime::now())
}

/// `at` in milliseconds since the Unix epoch; times before the epoch map to 1 ms (already
/// expired), never to 0 (which would mean "never").
pub fn millis_since_epoch(at: SystemTime) -> u64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1),
        Err(_) => 1,
    }
}

/// The expiry of a record written now with time to live `ttl` (saturating, never 0).
pub fn expiry_after(ttl: Duration) -> u64 {
    let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    now_millis().saturating_add(ttl).max(1)
}

/// True when a record with `expiry` no longer counts at time `now` (both in ms).
pub fn is_expired(expiry: u64, now: u64) -> bool {
    expiry != NEVER && expiry <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_means_never_and_the_past_is_expired() {
        assert!(!is_expired(NEVER, u64::MAX));
        assert!(is_expired(5, 5) && !is_expired(6, 5));
        assert!(is_expired(millis_since_epoch(UNIX_EPOCH), now_millis()));
        assert!(!is_expired(
            expiry_after(Duration::from_secs(3600)),
            now_millis()
        ));
        assert_eq!(expiry_after(Duration::MAX), u64::MAX);
    }
}
