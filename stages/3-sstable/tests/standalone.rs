//! The standalone builder behind `kv sstable build|get|scan`.

use std::path::Path;

use kv_shared::{Error, MAX_KEY_LEN};
use sstable::standalone::{build_from_lines, build_from_pairs, get, scan};

fn scan_all(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    scan(path, |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        Ok(())
    })
    .unwrap();
    out
}

fn pairs(items: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    items
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn lines_in_any_order_sorted_last_value_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.sst");
    let input = "pear,green\napple,red\n\nfig,a,b,c\r\napple,gold\nbanana,\n";
    let n = build_from_lines(input.as_bytes(), ",", &out).unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        scan_all(&out),
        pairs(&[
            ("apple", "gold"),
            ("banana", ""),
            ("fig", "a,b,c"),
            ("pear", "green")
        ])
    );
    assert_eq!(get(&out, b"apple").unwrap(), Some(b"gold".to_vec()));
    assert_eq!(get(&out, b"banana").unwrap(), Some(Vec::new()));
    assert_eq!(get(&out, b"cherry").unwrap(), None);
    assert_eq!(get(&out, b"zzz").unwrap(), None);
    assert_eq!(get(&out, b"").unwrap(), None);
    assert!(sstable::inspect(&std::fs::read(&out).unwrap()).is_some());
}

#[test]
fn multi_byte_delimiters_and_binary_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.sst");
    let input: &[u8] = b"k\xff1 => v\x00 => w\nk0 => x\n";
    assert_eq!(build_from_lines(input, " => ", &out).unwrap(), 2);
    assert_eq!(
        scan_all(&out),
        vec![
            (b"k0".to_vec(), b"x".to_vec()),
            (b"k\xff1".to_vec(), b"v\x00 => w".to_vec())
        ]
    );
}

#[test]
fn bad_lines_name_their_line_number_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.sst");
    let long_key = format!("{},v\n", "k".repeat(MAX_KEY_LEN + 1));
    let cases: [(String, &str); 3] = [
        ("a,1\nb,2\n\nno delimiter here\n".to_string(), "line 4"),
        ("a,1\n,empty key\n".to_string(), "line 2"),
        (format!("a,1\n{long_key}"), "line 2"),
    ];
    for (input, want) in cases {
        match build_from_lines(input.as_bytes(), ",", &out) {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(want), "{msg}"),
            other => panic!("expected a line error, got {other:?}"),
        }
        assert!(!out.exists(), "nothing written");
    }
    assert!(matches!(
        build_from_lines("a,1\n".as_bytes(), "", &out),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn pairs_are_sorted_and_deduplicated() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pairs.sst");
    let input = pairs(&[
        ("b", "1"),
        ("a", "1"),
        ("b", "2"),
        ("", "empty key is fine here"),
    ]);
    assert_eq!(build_from_pairs(input, &out).unwrap(), 3);
    assert_eq!(
        scan_all(&out),
        pairs(&[("", "empty key is fine here"), ("a", "1"), ("b", "2")])
    );
    assert_eq!(build_from_pairs(Vec::new(), &out).unwrap(), 0);
    assert!(scan_all(&out).is_empty());
    assert_eq!(get(&out, b"a").unwrap(), None);
}

#[test]
fn missing_and_foreign_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.sst");
    assert!(matches!(get(&missing, b"a"), Err(Error::Io { .. })));
    let foreign = tmp.path().join("foreign.sst");
    std::fs::write(&foreign, b"key,value\n".repeat(20)).unwrap();
    assert!(matches!(get(&foreign, b"a"), Err(Error::Corruption { .. })));
    assert!(matches!(
        scan(&foreign, |_, _| Ok(())),
        Err(Error::Corruption { .. })
    ));
}
