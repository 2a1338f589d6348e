//! The basic checks: overwrites, deletes, empty and binary keys, the size limits, every
//! kind of scan bound both ways, persistence, the directory lock and marker, statistics.

use std::ops::Bound;

use kv_shared::{Direction, Engine, Error, KeyRange, MAX_KEY_LEN, MAX_VALUE_LEN, Options, marker};

use super::support::{
    assert_refuses_one_byte_over, check_through_compact_and_reopen, fresh, open, scan_rev_vec,
    scan_vec,
};

/// Put, get, overwrite, and a missing key.
pub fn put_get_overwrite<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"k").unwrap(), None);
    e.put(b"k", b"v1").unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    e.put(b"k", b"value two").unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"value two"[..]));
    e.put(b"k2", b"x").unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"value two"[..]));
    assert_eq!(e.get(b"k3").unwrap(), None);
    e.close().unwrap();
}

/// Deletes hide a key, deleting a missing key is fine, and a key can come back.
pub fn delete_and_recreate<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.delete(b"never").unwrap();
    e.put(b"a", b"1").unwrap();
    e.delete(b"a").unwrap();
    assert_eq!(e.get(b"a").unwrap(), None);
    e.delete(b"a").unwrap();
    e.put(b"a", b"2").unwrap();
    assert_eq!(e.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
    e.delete(b"a").unwrap();
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"a").unwrap(), None);
    assert_eq!(e.get(b"never").unwrap(), None);
    e.close().unwrap();
}

/// An empty value is a value, not a delete; the empty key is a key.
pub fn empty_key_and_value<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.put(b"empty", b"").unwrap();
    e.put(b"", b"the empty key").unwrap();
    assert_eq!(e.get(b"empty").unwrap(), Some(Vec::new()));
    assert_eq!(e.get(b"").unwrap().as_deref(), Some(&b"the empty key"[..]));
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"empty").unwrap(), Some(Vec::new()));
    let all = scan_vec(&e, KeyRange::all());
    assert_eq!(all[0], (Vec::new(), b"the empty key".to_vec()));
    assert_eq!(all[1], (b"empty".to_vec(), Vec::new()));
    e.delete(b"").unwrap();
    assert_eq!(e.get(b"").unwrap(), None);
    e.close().unwrap();
}

/// Keys are bytes: `0x00` and `0xFF` anywhere, ordered bytewise.
pub fn binary_keys<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let keys: Vec<Vec<u8>> = vec![
        vec![0xff, 0xff],
        vec![0x00],
        vec![0x00, 0x00],
        vec![0xff],
        b"a\x00b".to_vec(),
        b"a".to_vec(),
        b"a\xff".to_vec(),
    ];
    for (i, k) in keys.iter().enumerate() {
        e.put(k, &[i as u8, 0x00, 0xff]).unwrap();
    }
    let mut sorted = keys.clone();
    sorted.sort();
    let check = |e: &E| {
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                e.get(k).unwrap(),
                Some(vec![i as u8, 0x00, 0xff]),
                "key {k:?}"
            );
        }
        let scanned: Vec<Vec<u8>> = scan_vec(e, KeyRange::all())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(scanned, sorted);
        assert_eq!(e.get(&[0x00, 0x00, 0x00]).unwrap(), None);
        assert_eq!(e.get(&[0xff, 0xff, 0xff]).unwrap(), None);
    };
    check(&e);
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    check(&e);
    e.close().unwrap();
}

/// Keys and values at the limits work; one byte over is a typed error that writes nothing.
pub fn size_limits<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let big_key = vec![b'k'; MAX_KEY_LEN];
    let big_value: Vec<u8> = (0..MAX_VALUE_LEN).map(|i| (i % 251) as u8).collect();
    e.put(&big_key, b"at the key limit").unwrap();
    e.put(b"big", &big_value).unwrap();
    assert_refuses_one_byte_over(|key, value| match value {
        Some(value) => e.put(key, value),
        None => e.delete(key),
    });
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_eq!(
            e.get(&big_key).unwrap().as_deref(),
            Some(&b"at the key limit"[..])
        );
        assert!(
            e.get(b"big").unwrap() == Some(big_value.clone()),
            "big value changed"
        );
        assert_eq!(e.get(b"new").unwrap(), None);
        assert_eq!(scan_vec(e, KeyRange::all()).len(), 2);
    });
}

/// Every combination of inclusive, exclusive and open bounds, at present and absent keys,
/// plus empty and inverted ranges.
pub fn scan_bounds<E: Engine>(options: &Options) {
    check_every_bound::<E>(options, Direction::Forward);
}

/// The same ranges as [`scan_bounds`], walked backwards with `scan_rev`.
pub fn scan_rev_bounds<E: Engine>(options: &Options) {
    check_every_bound::<E>(options, Direction::Reverse);
}

/// Scans every range of [`scan_bounds`] in `direction`.
fn check_every_bound<E: Engine>(options: &Options, direction: Direction) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let present = [b"b".to_vec(), b"d".to_vec(), b"f".to_vec(), b"h".to_vec()];
    for k in &present {
        e.put(k, &[k[0], b'!']).unwrap();
    }
    let probes: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d", b"h", b"i"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    let mut bounds = vec![Bound::Unbounded];
    for p in &probes {
        bounds.push(Bound::Included(p.clone()));
        bounds.push(Bound::Excluded(p.clone()));
    }
    for start in &bounds {
        for end in &bounds {
            let range = KeyRange::new(start.clone(), end.clone());
            let mut expected: Vec<Vec<u8>> = present
                .iter()
                .filter(|k| range.contains(k))
                .cloned()
                .collect();
            let pairs = match direction {
                Direction::Forward => scan_vec(&e, range.clone()),
                Direction::Reverse => {
                    expected.reverse();
                    scan_rev_vec(&e, range.clone())
                }
            };
            let got: Vec<Vec<u8>> = pairs
                .into_iter()
                .map(|(k, v)| {
                    assert_eq!(v, vec![k[0], b'!']);
                    k
                })
                .collect();
            assert_eq!(got, expected, "range {range:?}, {direction:?}");
        }
    }
    e.close().unwrap();
}

/// Scans skip deleted keys, show the latest value of overwritten ones, and stop at the end.
pub fn scan_across_deletes<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    for i in 0..200u32 {
        e.put(format!("key{i:04}").as_bytes(), format!("v{i}").as_bytes())
            .unwrap();
    }
    for i in (0..200u32).step_by(3) {
        e.delete(format!("key{i:04}").as_bytes()).unwrap();
    }
    for i in (0..200u32).step_by(5) {
        e.put(format!("key{i:04}").as_bytes(), format!("w{i}").as_bytes())
            .unwrap();
    }
    let expected = |i: u32| -> Option<String> {
        if i.is_multiple_of(5) {
            Some(format!("w{i}"))
        } else if i.is_multiple_of(3) {
            None
        } else {
            Some(format!("v{i}"))
        }
    };
    check_through_compact_and_reopen(e, &dir, options, |e| {
        let range = KeyRange::half_open(b"key0050".to_vec(), b"key0150".to_vec());
        let got = scan_vec(e, range);
        let want: Vec<(Vec<u8>, Vec<u8>)> = (50..150)
            .filter_map(|i| {
                expected(i).map(|v| (format!("key{i:04}").into_bytes(), v.into_bytes()))
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            scan_vec(e, KeyRange::all()).len(),
            (0..200).filter(|&i| expected(i).is_some()).count()
        );
        let mut it = e.scan(KeyRange::from(b"key0100".to_vec())).unwrap();
        let first = it.next().unwrap().unwrap();
        assert_eq!(first.0, b"key0100");
    });
}

/// Everything written survives close and reopen, and so does everything before a `sync`
/// when the engine is dropped without `close`.
pub fn reopen_keeps_everything<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    for i in 0..500u32 {
        e.put(
            format!("k{i}").as_bytes(),
            format!("v{i}").repeat(i as usize % 7).as_bytes(),
        )
        .unwrap();
    }
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    for i in 0..500u32 {
        let want = format!("v{i}").repeat(i as usize % 7).into_bytes();
        assert_eq!(
            e.get(format!("k{i}").as_bytes()).unwrap(),
            Some(want),
            "k{i}"
        );
    }
    e.put(b"after", b"reopen").unwrap();
    e.sync().unwrap();
    drop(e);
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"after").unwrap().as_deref(), Some(&b"reopen"[..]));
    assert_eq!(scan_vec(&e, KeyRange::all()).len(), 501);
    e.close().unwrap();
}

/// A second open of an open directory is refused; after close it succeeds.
pub fn second_open_is_locked<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.put(b"k", b"v").unwrap();
    assert!(matches!(E::open(&dir, options), Err(Error::Locked { .. })));
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    e.close().unwrap();
}

/// A directory of another engine, of another format version, or of foreign files (a lone
/// `*.tmp` file included) is refused, and a foreign one keeps exactly the files it had.
pub fn foreign_directories_are_refused<E: Engine>(options: &Options) {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let other_marker = marker::encode("not-this-engine", 1);
    std::fs::write(other.join(kv_shared::store_dir::MARKER_FILE), &other_marker).unwrap();
    assert!(matches!(
        E::open(&other, options),
        Err(Error::WrongEngine { .. })
    ));
    assert_eq!(
        std::fs::read(other.join(kv_shared::store_dir::MARKER_FILE)).unwrap(),
        other_marker
    );

    let newer = tmp.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    let newer_marker = marker::encode(E::NAME, E::FORMAT_VERSION + 1);
    std::fs::write(newer.join(kv_shared::store_dir::MARKER_FILE), &newer_marker).unwrap();
    assert!(matches!(
        E::open(&newer, options),
        Err(Error::FormatVersion { .. })
    ));

    for name in ["data.csv", "draft.tmp"] {
        let foreign = tmp.path().join(format!("foreign-{name}"));
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join(name), b"a,1\n").unwrap();
        assert!(
            matches!(E::open(&foreign, options), Err(Error::InvalidArgument(_))),
            "a directory holding only {name} is not a store"
        );
        let names: Vec<_> = std::fs::read_dir(&foreign)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [name], "the refused open created or deleted files");
        assert_eq!(std::fs::read(foreign.join(name)).unwrap(), b"a,1\n");
    }
}

/// An option name the engine does not know is an error, not silently ignored.
pub fn unknown_option_is_refused<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let bad = options.clone().set("no_such_option", "1");
    assert!(matches!(
        E::open(&dir, &bad),
        Err(Error::InvalidArgument(_))
    ));
}

/// Stats count user bytes exactly, live data exactly, and disk bytes at least as large.
pub fn stats_account_for_writes<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let mut user = 0u64;
    for i in 0..300u32 {
        let (k, v) = (format!("key{i}"), format!("value{i}"));
        e.put(k.as_bytes(), v.as_bytes()).unwrap();
        user += (k.len() + v.len()) as u64;
    }
    for i in 0..100u32 {
        let k = format!("key{i}");
        e.delete(k.as_bytes()).unwrap();
        user += k.len() as u64;
    }
    for i in 100..120u32 {
        assert!(e.get(format!("key{i}").as_bytes()).unwrap().is_some());
    }
    e.sync().unwrap();
    let s = e.stats().unwrap();
    assert_eq!(s.user_bytes_written, user);
    assert!(s.disk_bytes_written >= user, "{s:?}");
    assert_eq!(s.live_keys, 200);
    let live: u64 = (100..300u32)
        .map(|i| (format!("key{i}").len() + format!("value{i}").len()) as u64)
        .sum();
    assert_eq!(s.live_data_bytes, live);
    assert!(s.disk_bytes > 0 && s.file_count >= 2, "{s:?}");
    assert_eq!(s.gets, 20);
    assert!(s.write_amp().unwrap() >= 1.0 && s.space_amp().is_some());
    e.close().unwrap();
}
