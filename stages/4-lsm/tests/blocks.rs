//! Blocks against a model: prefix compression, restart points and lz4 must not change what a
//! block answers, and damaged or hostile bytes must give errors, never a panic.

use std::cmp::Ordering;

use lsm::key::{Kind, compare, trailer};
use lsm::table::block::{self, Block, BlockCursor};
use lsm::table::block_builder::BlockBuilder;
use lsm::table::compression::Compression;
use proptest::prelude::*;

/// One version of one key: user key, sequence number, value (`None` for a tombstone).
type ModelEntry = (Vec<u8>, u64, Option<Vec<u8>>);

/// Sorted, distinct internal keys over a 3-letter alphabet, so keys share prefixes and many
/// keys have several versions; values are either repetitive (lz4 shrinks them) or not.
fn entries() -> impl Strategy<Value = Vec<ModelEntry>> {
    let key = prop::collection::vec(prop::sample::select(b"abc".to_vec()), 0..6);
    let value = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        (any::<u8>(), 0..200usize).prop_map(|(b, n)| vec![b; n]),
    ];
    let entry = (key, 1..60u64, prop::option::weighted(0.8, value));
    prop::collection::vec(entry, 1..150).prop_map(|mut v| {
        v.sort_by(|a, b| compare(&a.0, a.1, &b.0, b.1));
        v.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        v
    })
}

fn build(model: &[ModelEntry], interval: usize, compression: Compression) -> Vec<u8> {
    let mut b = BlockBuilder::new(interval);
    for (key, seq, value) in model {
        let kind = if value.is_some() {
            Kind::Put
        } else {
            Kind::Delete
        };
        b.add(
            key,
            trailer(*seq, kind),
            value.as_deref().unwrap_or_default(),
        );
    }
    b.finish(compression)
}

/// The model's answer to `get`: the first entry at or after `(key, snapshot)`, if it is `key`.
fn model_get<'m>(model: &'m [ModelEntry], key: &[u8], snapshot: u64) -> Option<(Kind, &'m [u8])> {
    let i = model.partition_point(|e| compare(&e.0, e.1, key, snapshot) == Ordering::Less);
    let (k, _, value) = model.get(i)?;
    (k.as_slice() == key).then(|| match value {
        Some(v) => (Kind::Put, v.as_slice()),
        None => (Kind::Delete, &[][..]),
    })
}

/// Everything a block iterator yields after seeking to `from` (or from the start).
fn collect(block: &Block<'_>, from: Option<&[u8]>) -> Vec<ModelEntry> {
    let mut it = block.iter();
    if let Some(key) = from {
        it.seek(key).unwrap();
    }
    let mut out = Vec::new();
    while let Some(e) = it.next_entry() {
        let e = e.unwrap();
        let value = (e.kind == Kind::Put).then(|| e.value.to_vec());
        out.push((e.key.to_vec(), e.seq, value));
    }
    out
}

/// Exercises every read path on `contents` without checking the answers: only that nothing
/// panics.
fn read_everything(contents: &[u8], keys: &[Vec<u8>]) {
    let Ok(block) = Block::new(contents) else {
        return;
    };
    let mut scratch = Vec::new();
    for key in keys {
        let _ = block.get(key, 30, &mut scratch);
        let mut it = block.iter();
        let _ = it.seek(key);
        while let Some(Ok(_)) = it.next_entry() {}
    }
    let mut it = block.iter();
    while let Some(Ok(_)) = it.next_entry() {}
    if let Ok(mut c) = BlockCursor::new(contents) {
        let mut steps = 0;
        if c.seek_to_last().is_ok() {
            while c.valid() && c.step_back().is_ok() && steps < 1000 {
                steps += 1;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// `get` at any snapshot, a full walk and `seek` agree with the model, for every restart
    /// interval and both compressions.
    #[test]
    fn block_matches_model(
        model in entries(),
        interval in 1..=32usize,
        lz4 in any::<bool>(),
        probes in prop::collection::vec(
            (prop::collection::vec(prop::sample::select(b"abcd".to_vec()), 0..6), 0..70u64),
            1..40,
        ),
    ) {
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let raw = build(&model, interval, compression);
        let contents = block::decode(&raw).unwrap();
        prop_assert_eq!(&block::decode_owned(raw.clone()).unwrap(), &contents);
        let block = Block::new(&contents).unwrap();
        prop_assert_eq!(block.restart_count(), model.len().div_ceil(interval));
        let mut scratch = Vec::new();
        for (key, _, _) in &model {
            for snapshot in [0, 1, 20, 59, u64::MAX >> 8] {
                prop_assert_eq!(
                    block.get(key, snapshot, &mut scratch).unwrap(),
                    model_get(&model, key, snapshot)
                );
            }
        }
        for (key, snapshot) in &probes {
            prop_assert_eq!(
                block.get(key, *snapshot, &mut scratch).unwrap(),
                model_get(&model, key, *snapshot)
            );
            let from = model.partition_point(|e| e.0.as_slice() < key.as_slice());
            prop_assert_eq!(collect(&block, Some(key)), model[from..].to_vec());
        }
        prop_assert_eq!(collect(&block, None), model.clone());
    }

    /// A cursor walks the block both ways, and from any seek it steps to the entries just
    /// before and after, whatever the restart interval (a step back decodes from the
    /// restart point before the entry).
    #[test]
    fn cursor_walks_both_ways(
        model in entries(),
        interval in 1..=32usize,
        probes in prop::collection::vec(
            (prop::collection::vec(prop::sample::select(b"abcd".to_vec()), 0..6), 0..70u64),
            1..40,
        ),
    ) {
        let raw = build(&model, interval, Compression::None);
        let contents = block::decode(&raw).unwrap();
        let mut c = BlockCursor::new(contents.as_slice()).unwrap();
        let here = |c: &BlockCursor<&[u8]>| -> Option<ModelEntry> {
            c.valid().then(|| {
                let value = (c.kind() == Kind::Put).then(|| c.value().to_vec());
                (c.key().to_vec(), c.seq(), value)
            })
        };
        c.seek_to_last().unwrap();
        let mut backward = Vec::new();
        while let Some(e) = here(&c) {
            backward.push(e);
            c.step_back().unwrap();
        }
        backward.reverse();
        prop_assert_eq!(&backward, &model);
        for (key, snapshot) in &probes {
            let i = model.partition_point(|e| compare(&e.0, e.1, key, *snapshot) == Ordering::Less);
            c.seek(key, *snapshot).unwrap();
            prop_assert_eq!(here(&c), model.get(i).cloned());
            if i == model.len() {
                continue;
            }
            c.step_back().unwrap();
            prop_assert_eq!(here(&c), i.checked_sub(1).map(|j| model[j].clone()));
            c.seek(key, *snapshot).unwrap();
            c.step_forward().unwrap();
            prop_assert_eq!(here(&c), model.get(i + 1).cloned());
        }
    }

    /// Any flipped byte of a block's on-disk bytes is caught by `decode` (CRC32 catches every
    /// burst of up to 32 bits), and damaged contents never make a read panic.
    #[test]
    fn damage_is_an_error(
        model in entries(),
        interval in 1..=32usize,
        lz4 in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..20),
    ) {
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let raw = build(&model, interval, compression);
        let contents = block::decode(&raw).unwrap();
        let keys: Vec<Vec<u8>> = model.iter().map(|e| e.0.clone()).collect();
        for (at, mask) in &flips {
            let mut bad = raw.clone();
            bad[at.index(raw.len())] ^= mask;
            prop_assert!(block::decode(&bad).is_err());
            prop_assert!(block::decode_owned(bad).is_err());
            // Contents damaged after the checksum (a bug elsewhere): errors, not panics.
            let mut bad = contents.clone();
            bad[at.index(contents.len())] ^= mask;
            read_everything(&bad, &keys);
        }
        for cut in [1, 4, 5, 9, contents.len() / 2] {
            read_everything(&contents[..contents.len().saturating_sub(cut)], &keys);
        }
    }

    /// Hostile bytes: random contents, and random stored bytes under a valid checksum (so
    /// they reach the decompressor and the restart checks), never panic.
    #[test]
    fn hostile_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        kind in 0..3u8,
        restarts in prop::collection::vec(any::<u32>(), 0..6),
    ) {
        let keys = vec![b"".to_vec(), b"a".to_vec(), b"abc".to_vec()];
        read_everything(&bytes, &keys);
        // Random entries under a restart array that may point anywhere.
        let mut contents = bytes.clone();
        for r in &restarts {
            contents.extend_from_slice(&(r % 400).to_le_bytes());
        }
        contents.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
        read_everything(&contents, &keys);
        // Huge varints in an entry header.
        let mut huge = vec![0xff; 9];
        huge.push(0x7f);
        huge.extend_from_slice(&bytes);
        huge.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
        read_everything(&huge, &keys);
        // Stored bytes with a valid trailer: decode must refuse or return checked contents.
        let mut raw = bytes.clone();
        raw.push(kind);
        let crc = kv_shared::framing::crc32(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        if let Ok(contents) = block::decode(&raw) {
            read_everything(&contents, &keys);
        }
        prop_assert_eq!(block::decode(&raw).ok(), block::decode_owned(raw).ok());
    }
}

/// A `get` reuses its scratch buffer: once grown, lookups do not reallocate it.
#[test]
fn get_reuses_scratch() {
    let model: Vec<ModelEntry> = (0..100u64)
        .map(|i| {
            (
                format!("user:{i:06}").into_bytes(),
                100 - i,
                Some(vec![b'v'; 10]),
            )
        })
        .collect();
    let raw = build(&model, 16, Compression::None);
    let contents = block::decode(&raw).unwrap();
    let block = Block::new(&contents).unwrap();
    let mut scratch = Vec::with_capacity(64);
    let before = scratch.as_ptr();
    for (key, _, _) in &model {
        assert!(
            block
                .get(key, u64::MAX >> 8, &mut scratch)
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(scratch.as_ptr(), before);
}
