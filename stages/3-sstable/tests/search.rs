//! Binary search through the sparse index and a linear walk of the blocks give the same
//! answers; they differ in how many blocks they read.

mod common;

use std::sync::Arc;

use common::{open_with, seeded};
use kv_shared::{Engine, Fs, KeyRange};
use kv_testkit::conformance::scan_vec;
use rand::Rng;
use sstable::entry::Entry;
use sstable::table::{Search, Table};
use sstable::{SstableStore, standalone};

fn open(dir: &std::path::Path, search: &str) -> SstableStore {
    let settings = [
        ("memtable_bytes", "3K"),
        ("block_bytes", "200"),
        ("search", search),
    ];
    open_with(dir, &settings)
}

#[test]
fn binary_and_linear_search_agree_on_a_store() {
    let (_tmp, dir, _, mut rng) = seeded("search agreement", 33);
    let e = open(&dir, "binary");
    for _ in 0..3000 {
        let k = format!("key{:04}", rng.random_range(0..600u32));
        if rng.random_bool(0.2) {
            e.delete(k.as_bytes()).unwrap();
        } else {
            let v = vec![rng.random_range(b'a'..=b'z'); rng.random_range(0..40)];
            e.put(k.as_bytes(), &v).unwrap();
        }
    }
    e.close().unwrap();

    let probes: Vec<Vec<u8>> = (0..650u32)
        .map(|i| format!("key{i:04}").into_bytes())
        .chain([
            b"".to_vec(),
            b"a".to_vec(),
            b"key".to_vec(),
            b"zzz".to_vec(),
        ])
        .collect();
    let answers = |search: &str| {
        let e = open(&dir, search);
        assert!(e.table_count() >= 8, "many tables: {}", e.table_count());
        let gets: Vec<Option<Vec<u8>>> = probes.iter().map(|k| e.get(k).unwrap()).collect();
        let scans: Vec<Vec<(Vec<u8>, Vec<u8>)>> = [
            KeyRange::all(),
            KeyRange::from(b"key0300".to_vec()),
            KeyRange::half_open(b"key0123".to_vec(), b"key0456".to_vec()),
        ]
        .into_iter()
        .map(|r| scan_vec(&e, r))
        .collect();
        let reads = e.stats().unwrap().get_disk_reads;
        e.close().unwrap();
        (gets, scans, reads)
    };
    let (binary_gets, binary_scans, binary_reads) = answers("binary");
    let (linear_gets, linear_scans, linear_reads) = answers("linear");
    assert_eq!(binary_gets, linear_gets);
    assert_eq!(binary_scans, linear_scans);
    assert!(binary_gets.iter().any(Option::is_some) && binary_gets.iter().any(Option::is_none));
    assert!(
        linear_reads > 2 * binary_reads,
        "linear {linear_reads} reads, binary {binary_reads}"
    );
}

#[test]
fn one_table_binary_reads_one_block_linear_walks_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.sst");
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..2000u32)
        .map(|i| (format!("k{:05}", i * 2).into_bytes(), vec![b'v'; 50]))
        .collect();
    standalone::build_from_pairs(pairs, &path).unwrap();
    let table = Arc::new(Table::open(&Fs::default(), &path, 0).unwrap());
    let blocks = table.index().blocks.len() as u64;
    assert!(blocks > 20, "{blocks} blocks");
    for i in [0u32, 1, 1000, 2001, 3998, 3999, 5000] {
        let key = format!("k{i:05}").into_bytes();
        let (mut b, mut l) = (0, 0);
        let by_binary = table.get(&key, Search::Binary, &mut b).unwrap();
        let by_linear = table.get(&key, Search::Linear, &mut l).unwrap();
        assert_eq!(by_binary, by_linear, "key {i}");
        let present = i % 2 == 0 && i < 4000;
        assert_eq!(by_binary, present.then(|| Entry::Value(vec![b'v'; 50])));
        let in_range = i <= 3998;
        assert_eq!(
            b,
            u64::from(in_range),
            "binary search reads one block, none out of range"
        );
        assert!(l >= 2 && l <= 2 * blocks, "linear read {l}");
    }
    let (mut first, mut last) = (0, 0);
    table.get(b"k00000", Search::Linear, &mut first).unwrap();
    table.get(b"k03998", Search::Linear, &mut last).unwrap();
    assert_eq!(
        (first, last),
        (2, 2 * blocks),
        "linear cost grows with the key's position"
    );
    let (mut none, mut before) = (0, 0);
    assert_eq!(table.get(b"a", Search::Binary, &mut none).unwrap(), None);
    table.get(b"a", Search::Linear, &mut before).unwrap();
    assert_eq!(
        (none, before),
        (0, 2),
        "a key before the table: binary reads nothing"
    );
}
