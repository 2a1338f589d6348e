//! Per-key expiry: an expired key reads as missing, scans skip it, stats leave it out, and
//! a merge drops it for good. Expiry times are explicit (in the past or an hour away), so
//! nothing here depends on how fast the test runs.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use kv_shared::{Engine, KeyRange};

fn past() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000)
}

#[test]
fn expired_keys_read_as_missing_and_merge_drops_them() {
    let options = quiet("1K");
    let (_tmp, dir, e) = new_store(&options);
    e.put(b"plain", b"stays").unwrap();
    e.put_with_ttl(b"hour", b"an hour to live", Duration::from_secs(3600))
        .unwrap();
    e.put_expiring_at(b"gone", b"already expired", past())
        .unwrap();
    e.put(b"revived", b"old").unwrap();
    e.put_expiring_at(b"revived", b"expired", past()).unwrap();
    e.put_expiring_at(b"again", b"expired", past()).unwrap();
    e.put(b"again", b"a plain put after an expired one")
        .unwrap();
    let check = |e: &bitcask::Bitcask, context: &str| {
        assert_eq!(
            e.get(b"plain").unwrap().as_deref(),
            Some(&b"stays"[..]),
            "{context}"
        );
        assert_eq!(
            e.get(b"hour").unwrap().as_deref(),
            Some(&b"an hour to live"[..]),
            "{context}"
        );
        assert_eq!(e.get(b"gone").unwrap(), None, "{context}");
        // The expired put is the newest record of the key: the older value stays hidden.
        assert_eq!(e.get(b"revived").unwrap(), None, "{context}");
        assert_eq!(
            e.get(b"again").unwrap().as_deref(),
            Some(&b"a plain put after an expired one"[..]),
            "{context}"
        );
        let keys: Vec<Vec<u8>> = contents(e).into_keys().collect();
        assert_eq!(keys, [&b"again"[..], b"hour", b"plain"], "{context}");
        let s = e.stats().unwrap();
        assert_eq!(s.live_keys, 3, "{context}");
        assert_eq!(
            s.live_data_bytes,
            (5 + 32 + 4 + 15 + 5 + 5) as u64,
            "{context}"
        );
    };
    check(&e, "written");
    let s = e.stats().unwrap();
    assert_eq!(s.extra["expired_keys"], 2);
    e.close().unwrap();
    let e = open(&dir, &options);
    check(&e, "reopened");
    e.compact().unwrap();
    check(&e, "merged");
    assert_eq!(e.stats().unwrap().extra["expired_dropped"], 2);
    assert_eq!(e.stats().unwrap().extra["expired_keys"], 0);
    e.close().unwrap();
    reopen_with_and_without_hints(&dir, &options, |e, context| {
        check(e, &format!("merged, {context}"));
    });
}

#[test]
fn expired_keys_can_be_written_again_and_deleted() {
    let (_tmp, _, e) = new_store(&quiet("1K"));
    e.put_expiring_at(b"k", b"expired", past()).unwrap();
    e.delete(b"k").unwrap();
    assert_eq!(e.get(b"k").unwrap(), None);
    e.put_with_ttl(b"k", b"fresh", Duration::from_secs(3600))
        .unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"fresh"[..]));
    assert_eq!(e.scan(KeyRange::from(b"k".to_vec())).unwrap().count(), 1);
    // A time to live too long to represent saturates rather than wrapping into the past.
    e.put_with_ttl(b"forever", b"v", Duration::MAX).unwrap();
    assert!(e.get(b"forever").unwrap().is_some());
    // Limits apply as for put.
    assert!(
        e.put_with_ttl(
            &vec![0; kv_shared::MAX_KEY_LEN + 1],
            b"",
            Duration::from_secs(1)
        )
        .is_err()
    );
    e.close().unwrap();
}
