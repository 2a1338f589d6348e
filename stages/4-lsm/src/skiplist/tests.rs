//! The skiplist against a `BTreeMap` model, through the insert hint and around it, and under
//! concurrent readers. Random tests print their seed; `SKIPLIST_SEED=N` replays one.

use super::*;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Internal keys as a `BTreeMap` orders them: user key ascending, sequence number
/// descending.
type Model = BTreeMap<(Vec<u8>, Reverse<u64>), Option<Vec<u8>>>;
type Version = (Vec<u8>, u64, Option<Vec<u8>>);

/// The seeds a random test runs with: `SKIPLIST_SEED` alone, or these.
fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("SKIPLIST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => defaults.to_vec(),
    }
}

fn owned(e: EntryRef<'_>) -> Version {
    (e.key.to_vec(), e.seq, e.value.map(<[u8]>::to_vec))
}

/// Every entry, walking level 0.
fn contents(list: &SkipList) -> Vec<Version> {
    let mut out = Vec::new();
    let mut at = list.first();
    while let Some(node) = at {
        out.push(owned(list.entry_ref(node)));
        at = list.next(node);
    }
    out
}

/// Every entry, last first, walking backward as a cursor does: stacks of the entries
/// before the last one taken, one search each.
fn backward(list: &SkipList) -> Vec<Version> {
    let (mut out, mut stack) = (Vec::new(), Vec::new());
    let mut end = None;
    loop {
        if stack.is_empty() {
            list.entries_before(end, 2, &mut stack);
        }
        let Some(node) = stack.pop() else {
            return out;
        };
        out.push(owned(list.entry_ref(node)));
        end = Some(node);
    }
}

fn model_contents(model: &Model) -> Vec<Version> {
    model
        .iter()
        .map(|((k, Reverse(s)), v)| (k.clone(), *s, v.clone()))
        .collect()
}

/// The first model entry at or after `(key, seq)`.
fn model_seek(model: &Model, key: &[u8], seq: u64) -> Option<Version> {
    model
        .range((key.to_vec(), Reverse(seq))..)
        .next()
        .map(|((k, Reverse(s)), v)| (k.clone(), *s, v.clone()))
}

/// Every level is sorted, and holds only nodes of the level below.
fn check_levels(list: &SkipList) {
    let mut below: Option<Vec<u32>> = None;
    for level in 0..MAX_HEIGHT {
        let mut nodes = Vec::new();
        let mut x = list.link(list.node(HEAD_NODE), level).load(Acquire);
        while x != NIL {
            nodes.push(x);
            x = list.link(list.node(x), level).load(Acquire);
        }
        for pair in nodes.windows(2) {
            let entry = |x| SkipList::entry_of(list.node(x));
            let (a, b) = (entry(pair[0]), entry(pair[1]));
            assert!(
                Target::new(b.key(), b.seq()).follows(a),
                "level {level} out of order"
            );
        }
        if let Some(below) = &below {
            let mut rest = below.iter();
            for n in &nodes {
                assert!(rest.any(|b| b == n), "level {level} node {n} not below");
            }
        }
        below = Some(nodes);
    }
}

fn value_of(key: &[u8], seq: u64) -> Option<Vec<u8>> {
    (!seq.is_multiple_of(7)).then(|| [key, &seq.to_be_bytes()].concat())
}

#[test]
fn random_inserts_match_a_btreemap() {
    for seed in seeds(&[1, 2, 3]) {
        eprintln!("seed {seed} (SKIPLIST_SEED={seed} replays it)");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let list = SkipList::new(rng.random_range(0..5000));
        let mut model = Model::new();
        for _ in 0..3000 {
            let key = format!("k{:03}", rng.random_range(0..300u32)).into_bytes();
            let key = &key[..rng.random_range(1..=key.len())];
            let seq = rng.random_range(0..2000u64);
            let value = value_of(key, seq);
            let new = !model.contains_key(&(key.to_vec(), Reverse(seq)));
            assert_eq!(list.insert(key, seq, value.as_deref()), new, "seed {seed}");
            model.entry((key.to_vec(), Reverse(seq))).or_insert(value);
        }
        assert_eq!(contents(&list), model_contents(&model), "seed {seed}");
        assert_eq!(list.len(), model.len(), "seed {seed}");
        check_levels(&list);
        for _ in 0..2000 {
            let key = format!("k{:03}", rng.random_range(0..310u32)).into_bytes();
            let key = &key[..rng.random_range(0..=key.len())];
            let seq = rng.random_range(0..2100u64);
            let found = list.seek(key, seq).map(|n| owned(list.entry_ref(n)));
            assert_eq!(
                found,
                model_seek(&model, key, seq),
                "seed {seed}: seek {key:?} {seq}"
            );
        }
        let last = list.last().map(|n| owned(list.entry_ref(n)));
        assert_eq!(last, model_contents(&model).pop(), "seed {seed}");
    }
}

#[test]
fn sequential_inserts_take_the_hint() {
    let n = 20_000u64;
    let list = SkipList::new(n as usize);
    for i in 0..n {
        let key = format!("{i:08}");
        assert!(list.insert(key.as_bytes(), i + 1, Some(b"v")));
    }
    // One comparison with the last key, one with its successor where there is one: here
    // the list ends at the last key, so one an insert.
    assert_eq!(
        list.insert_comparisons(),
        n - 1,
        "the first insert compares nothing"
    );
    let all = contents(&list);
    assert_eq!(all.len() as u64, n);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    check_levels(&list);

    // Ascending keys inserted into the middle of the list, all between the same two
    // neighbours: two comparisons each (the last key, its successor).
    let before = list.insert_comparisons();
    for i in 0..1000u64 {
        let key = format!("{:08}x{i:04}", 5000);
        assert!(list.insert(key.as_bytes(), n + 1 + i, None));
    }
    let per_insert = (list.insert_comparisons() - before) as f64 / 1000.0;
    assert!(per_insert < 2.1, "{per_insert} comparisons an insert");
    check_levels(&list);
}

#[test]
fn reverse_sequential_and_scattered_inserts_search_and_stay_sorted() {
    let n = 20_000u64;
    let list = SkipList::new(n as usize);
    for i in (0..n).rev() {
        assert!(list.insert(format!("{i:08}").as_bytes(), i + 1, Some(b"v")));
    }
    let all = contents(&list);
    assert_eq!(all.len() as u64, n);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    check_levels(&list);

    // Scattered keys search from the head: some 30 comparisons each in 20,000 entries.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let before = list.insert_comparisons();
    for i in 0..1000u64 {
        let key = format!("{:08}y", rng.random_range(0..n));
        list.insert(key.as_bytes(), n + 1 + i, None);
    }
    let scattered = (list.insert_comparisons() - before) as f64 / 1000.0;
    assert!((15.0..60.0).contains(&scattered), "{scattered} comparisons");
    // A sorted run of scattered keys climbs from the hint instead: fewer comparisons.
    let mut run: Vec<u64> = (0..1000).map(|_| rng.random_range(0..n)).collect();
    run.sort_unstable();
    let before = list.insert_comparisons();
    for (i, k) in run.iter().enumerate() {
        let key = format!("{k:08}z");
        list.insert(key.as_bytes(), 2 * n + i as u64, None);
    }
    let sorted_run = (list.insert_comparisons() - before) as f64 / 1000.0;
    assert!(sorted_run < scattered, "{sorted_run} against {scattered}");
    check_levels(&list);
}

#[test]
fn many_versions_of_one_user_key_order_newest_first() {
    for seed in seeds(&[11, 12]) {
        eprintln!("seed {seed} (SKIPLIST_SEED={seed} replays it)");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let list = SkipList::new(0);
        let mut model = Model::new();
        let mut seqs: Vec<u64> = (1..=500).map(|s| s * 2).collect();
        seqs.shuffle(&mut rng);
        for (i, &seq) in seqs.iter().enumerate() {
            let keys: &[&[u8]] = if i % 100 == 0 {
                &[b"k", b"j", b"l"]
            } else {
                &[b"k"]
            };
            for &key in keys {
                list.insert(key, seq, value_of(key, seq).as_deref());
                model.insert((key.to_vec(), Reverse(seq)), value_of(key, seq));
            }
        }
        assert_eq!(contents(&list), model_contents(&model), "seed {seed}");
        let versions = contents(&list).iter().filter(|v| v.0 == b"k").count();
        assert_eq!(versions, 500);
        // Every snapshot finds the newest version at or below it (or the next key).
        for snapshot in 0..=1002 {
            let found = list.seek(b"k", snapshot).map(|n| owned(list.entry_ref(n)));
            assert_eq!(
                found,
                model_seek(&model, b"k", snapshot),
                "seed {seed}: {snapshot}"
            );
        }
        check_levels(&list);
    }
}

#[test]
fn a_duplicate_is_dropped_and_the_next_insert_still_lands_right() {
    let list = SkipList::new(0);
    assert!(list.insert(b"a", 1, Some(b"one")));
    assert!(list.insert(b"b", 2, Some(b"two")));
    assert!(!list.insert(b"a", 1, Some(b"other")));
    assert!(list.insert(b"c", 3, None));
    assert!(list.insert(b"ab", 4, Some(b"x")));
    assert_eq!(
        contents(&list),
        vec![
            (b"a".to_vec(), 1, Some(b"one".to_vec())),
            (b"ab".to_vec(), 4, Some(b"x".to_vec())),
            (b"b".to_vec(), 2, Some(b"two".to_vec())),
            (b"c".to_vec(), 3, None),
        ]
    );
    assert_eq!(list.len(), 4);
    // Empty keys and values are entries like any other.
    assert!(list.insert(b"", 5, Some(b"")));
    assert_eq!(contents(&list)[0], (Vec::new(), 5, Some(Vec::new())));
}

#[test]
fn seeks_and_backward_collections_at_every_boundary() {
    let list = SkipList::new(0);
    let mut model = Model::new();
    for i in 0..40u64 {
        for seq in [5 + 10 * i, 3 + 10 * i] {
            let key = format!("k{i:02}").into_bytes();
            list.insert(&key, seq, value_of(&key, seq).as_deref());
            model.insert((key.clone(), Reverse(seq)), value_of(&key, seq));
        }
    }
    let all = model_contents(&model);
    let mut probes: Vec<Vec<u8>> = vec![Vec::new(), b"k".to_vec(), b"l".to_vec()];
    for (key, _, _) in &all {
        probes.push(key.clone());
        probes.push([key.as_slice(), b"\0"].concat());
        probes.push(key[..key.len() - 1].to_vec());
    }
    for key in &probes {
        for seq in [0, 2, 3, 4, 5, 6, 400, u64::MAX] {
            let found = list.seek(key, seq).map(|n| owned(list.entry_ref(n)));
            assert_eq!(found, model_seek(&model, key, seq), "seek {key:?} {seq}");
        }
    }
    // Before every node and before the end, from every level: a suffix of what precedes.
    let mut nodes = Vec::new();
    let mut at = list.first();
    while let Some(node) = at {
        nodes.push(Some(node));
        at = list.next(node);
    }
    nodes.push(None);
    for (i, end) in nodes.iter().enumerate() {
        for level in 0..MAX_HEIGHT + 2 {
            let mut out = Vec::new();
            list.entries_before(*end, level, &mut out);
            let got: Vec<Version> = out.iter().map(|n| owned(list.entry_ref(*n))).collect();
            assert!(all[..i].ends_with(&got), "before {i} from level {level}");
            assert_eq!(got.is_empty(), i == 0, "before {i} from level {level}");
            if level == MAX_HEIGHT + 1 {
                assert_eq!(got, all[..i], "from above the top: every entry before");
            }
        }
    }
}

#[test]
fn concurrent_readers_see_whole_entries_in_order_and_never_lose_one() {
    let seed = seeds(&[21])[0];
    eprintln!("seed {seed} (SKIPLIST_SEED={seed} replays it)");
    let list = SkipList::new(1000);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut seen: Vec<Version> = Vec::new();
                let mut walks = 0;
                while !done.load(Acquire) || walks < 2 {
                    let now = contents(&list);
                    for pair in now.windows(2) {
                        let order = key::compare(&pair[0].0, pair[0].1, &pair[1].0, pair[1].1);
                        assert_eq!(order, Less, "seed {seed}: out of order");
                    }
                    for (key, seq, value) in &now {
                        assert_eq!(*value, value_of(key, *seq), "seed {seed}: a torn entry");
                    }
                    // Every entry seen before is still there, found by a seek too.
                    let mut rest = now.iter();
                    for old in &seen {
                        assert!(rest.any(|v| v == old), "seed {seed}: {old:?} lost");
                        let found = list.seek(&old.0, old.1).map(|n| owned(list.entry_ref(n)));
                        assert_eq!(found.as_ref(), Some(old), "seed {seed}");
                    }
                    // Backward, through the stacks a cursor uses: the same guarantees.
                    let mut back = backward(&list);
                    back.reverse();
                    for pair in back.windows(2) {
                        let order = key::compare(&pair[0].0, pair[0].1, &pair[1].0, pair[1].1);
                        assert_eq!(order, Less, "seed {seed}: out of order backward");
                    }
                    let mut rest = back.iter();
                    for old in &now {
                        assert!(rest.any(|v| v == old), "seed {seed}: {old:?} lost backward");
                    }
                    seen = now;
                    walks += 1;
                }
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for seq in 1..=20_000u64 {
            let key = format!("{:06}", rng.random_range(0..5000u32)).into_bytes();
            // Runs of ascending keys now and then, so that the hint is taken under readers too.
            let key = if seq % 64 < 8 {
                format!("{seq:06}~").into_bytes()
            } else {
                key
            };
            list.insert(&key, seq, value_of(&key, seq).as_deref());
        }
        done.store(true, Release);
    });
    assert_eq!(list.len(), contents(&list).len());
    check_levels(&list);
}

#[test]
fn a_node_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<Node>(), 64);
    assert_eq!(std::mem::align_of::<Node>(), 64);
}

/// A key of 0 to 23 bytes, its first 14 `p` and the rest 0, 1 or 2: keys that share their
/// first 16 bytes (or a prefix of them), some ending in zero bytes, around the head's end.
fn near_head_key(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let len = rng.random_range(0..24);
    (0..len)
        .map(|i| {
            if i < 14 {
                b'p'
            } else {
                rng.random_range(0..3u8)
            }
        })
        .collect()
}

#[test]
fn keys_longer_than_the_head_compare_past_it() {
    let list = SkipList::new(0);
    let mut model = Model::new();
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    // Keys sharing their first 16 bytes (or a prefix of them), some ending in zero bytes,
    // around the 16-byte boundary.
    for seq in 0..2000u64 {
        let key = near_head_key(&mut rng);
        let value = value_of(&key, seq);
        list.insert(&key, seq, value.as_deref());
        model.insert((key, Reverse(seq)), value);
    }
    assert_eq!(contents(&list), model_contents(&model));
    check_levels(&list);
    for _ in 0..2000 {
        let key = near_head_key(&mut rng);
        let seq = rng.random_range(0..2100);
        let found = list.seek(&key, seq).map(|n| owned(list.entry_ref(n)));
        assert_eq!(found, model_seek(&model, &key, seq), "seek {key:?} {seq}");
    }
}
