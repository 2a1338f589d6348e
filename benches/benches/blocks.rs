//! Data blocks, stage 3 against stage 4: bytes per entry and the time of a point lookup
//! inside one block already in memory.
//!
//! One table's worth of entries (2 MiB of 16-byte keys and 100-byte values, the `kvbench`
//! defaults) is cut into 4 KiB blocks in each format: stage 3's plain entries searched front
//! to back, and stage 4's prefix-compressed entries with a restart point every entry
//! (interval 1: no sharing, binary search over every entry) or every 16 entries (the
//! default), uncompressed and lz4. Values are random printable bytes, as the workloads'
//! are (lz4 cannot shrink them by the eighth it asks for), and, for the last line,
//! repetitive ones that lz4 does shrink. The sizes are printed once; criterion times the
//! lookups.
//!
//! Run with `cargo bench -p kvbench --bench blocks`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kv_shared::Fs;
use kvbench::workload::key;
use lsm::key::{Kind, MAX_SEQ, trailer};
use lsm::table::block::{self, Block};
use lsm::table::block_builder::BlockBuilder;
use lsm::table::compression::Compression;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KEY_SIZE: usize = 16;
const VALUE_SIZE: usize = 100;
const BLOCK_BYTES: usize = 4096;
/// Entries in one 2 MiB table.
const ENTRIES: u64 = (2 << 20) / (KEY_SIZE + VALUE_SIZE) as u64;
/// Looked-up keys, cycled through.
const PROBES: usize = 4096;

/// The entries: keys `0, 2, 4, ...` (as the workloads write them) and their values.
fn entries(compressible: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..ENTRIES)
        .map(|i| {
            let value = if compressible {
                format!("{i:08} ").repeat(VALUE_SIZE / 9 + 1).into_bytes()[..VALUE_SIZE].to_vec()
            } else {
                (0..VALUE_SIZE)
                    .map(|_| rng.random_range(b' '..=b'~'))
                    .collect()
            };
            (key(2 * i, KEY_SIZE), value)
        })
        .collect()
}

/// Stage 4 blocks built from one table's entries.
struct Stage4 {
    /// Each block's decoded contents (ready for [`Block::new`]) and last key.
    blocks: Vec<(Vec<u8>, Vec<u8>)>,
    /// Their total size on disk.
    bytes: usize,
    /// The on-disk bytes of the first block.
    first_raw: Vec<u8>,
}

fn stage4_blocks(
    entries: &[(Vec<u8>, Vec<u8>)],
    interval: usize,
    compression: Compression,
) -> Stage4 {
    let mut builder = BlockBuilder::new(interval);
    let mut blocks = Vec::new();
    let mut bytes = 0;
    let mut first = Vec::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        builder.add(k, trailer(i as u64 + 1, Kind::Put), v);
        if builder.size() >= BLOCK_BYTES || i + 1 == entries.len() {
            let raw = builder.finish(compression);
            bytes += raw.len();
            if first.is_empty() {
                first.clone_from(&raw);
            }
            blocks.push((block::decode(&raw).expect("fresh block"), k.clone()));
        }
    }
    Stage4 {
        blocks,
        bytes,
        first_raw: first,
    }
}

/// Stage 3 blocks (read back from a file, as stage 3 reads them) with the last key of each,
/// the file, and their total size.
fn stage3_blocks(
    entries: &[(Vec<u8>, Vec<u8>)],
    dir: &std::path::Path,
) -> (
    Vec<(sstable::block::Block, Vec<u8>)>,
    kv_shared::FileRef,
    usize,
) {
    let fs = Fs::default();
    let path = dir.join("stage3.blocks");
    let file = fs.create(&path).expect("create");
    let mut builder = sstable::block_builder::BlockBuilder::new();
    let mut frames = Vec::new();
    let mut last = Vec::new();
    let mut offset = 0;
    let mut flush = |builder: &mut sstable::block_builder::BlockBuilder, last: &[u8]| {
        if let Some((frame, _first)) = builder.finish() {
            file.append(&frame).expect("append");
            frames.push((offset, frame.len(), last.to_vec()));
            offset += frame.len() as u64;
        }
    };
    for (k, v) in entries {
        let entry = sstable::block_builder::BlockBuilder::entry_len(k, Some(v));
        if !builder.is_empty() && builder.body_len() + entry > BLOCK_BYTES {
            flush(&mut builder, &last);
        }
        builder.add(k, Some(v));
        last.clone_from(k);
    }
    flush(&mut builder, &last);
    let file = fs.open(&path).expect("open");
    let bytes = offset as usize;
    let blocks = frames
        .into_iter()
        .map(|(at, len, last)| {
            let block = sstable::block::Block::read(&file, at, len).expect("read");
            (block, last)
        })
        .collect();
    (blocks, file, bytes)
}

/// Random present keys, each with the index of the block holding it.
fn probes(blocks_last_keys: &[&[u8]]) -> Vec<(usize, Vec<u8>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    (0..PROBES)
        .map(|_| {
            let k = key(2 * rng.random_range(0..ENTRIES), KEY_SIZE);
            let b = blocks_last_keys.partition_point(|last| *last < k.as_slice());
            (b, k)
        })
        .collect()
}

fn blocks(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plain = entries(false);
    let per_entry = |bytes: usize| bytes as f64 / ENTRIES as f64;
    let (s3, s3_file, s3_bytes) = stage3_blocks(&plain, tmp.path());
    let variants = [
        ("interval 1", 1, Compression::None),
        ("interval 16", 16, Compression::None),
        ("interval 16, lz4", 16, Compression::Lz4),
    ];
    println!(
        "{ENTRIES} entries of {KEY_SIZE}-byte keys and {VALUE_SIZE}-byte values, {BLOCK_BYTES}-byte blocks:"
    );
    println!(
        "  stage 3 plain blocks: {} blocks, {:.2} bytes/entry",
        s3.len(),
        per_entry(s3_bytes)
    );
    let mut s4 = Vec::new();
    for (name, interval, compression) in variants {
        let Stage4 { blocks, bytes, .. } = stage4_blocks(&plain, interval, compression);
        println!(
            "  stage 4 {name}: {} blocks, {:.2} bytes/entry",
            blocks.len(),
            per_entry(bytes)
        );
        s4.push((name, blocks));
    }
    let compressible = entries(true);
    let mut raws = Vec::new();
    for compression in [Compression::None, Compression::Lz4] {
        let Stage4 {
            blocks,
            bytes,
            first_raw,
        } = stage4_blocks(&compressible, 16, compression);
        raws.push((compression, first_raw));
        println!(
            "  stage 4 interval 16, {compression}, repetitive values: {} blocks, {:.2} bytes/entry",
            blocks.len(),
            per_entry(bytes)
        );
    }

    let mut group = c.benchmark_group("block_get");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    let lasts: Vec<&[u8]> = s3.iter().map(|(_, last)| last.as_slice()).collect();
    let probes3 = probes(&lasts);
    let mut i = 0;
    group.bench_function("stage 3 plain", |b| {
        b.iter(|| {
            let (at, k) = &probes3[i % PROBES];
            i += 1;
            let found = s3[*at].0.search(&s3_file, k).expect("search");
            black_box(found)
        });
    });
    for (name, blocks) in &s4 {
        let lasts: Vec<&[u8]> = blocks.iter().map(|(_, last)| last.as_slice()).collect();
        let probes4 = probes(&lasts);
        let mut scratch = Vec::new();
        let mut i = 0;
        // Like stage 3's search (and a table's get), copy the value out.
        group.bench_function(format!("stage 4 {name}"), |b| {
            b.iter(|| {
                let (at, k) = &probes4[i % PROBES];
                i += 1;
                let block = Block::new(&blocks[*at].0).expect("block");
                let found = block.get(k, MAX_SEQ, &mut scratch).expect("get");
                black_box(found.map(|(kind, v)| (kind, v.to_vec())))
            });
        });
    }
    group.finish();

    // What a block read costs in CPU before any lookup: the checksum, and lz4's decompression.
    let mut group = c.benchmark_group("block_decode");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for (compression, raw) in &raws {
        group.bench_function(format!("stage 4 {compression}, repetitive values"), |b| {
            b.iter(|| black_box(block::decode(black_box(raw)).expect("decode")));
        });
    }
    group.finish();
}

criterion_group!(benches, blocks);
criterion_main!(benches);
