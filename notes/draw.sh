#!/usr/bin/env bash
# notes/draw.sh: draws the course's pictures of real stores into notes/src/pictures/.
#
# Each picture is a small store, built here with `kv` (the same commands a reader types:
# `kv --engine E --dir D --set NAME=VALUE shell`, then puts, deletes and `compact`), then
# drawn with `kv draw` (benches/src/draw/), which reads the store's files and changes
# nothing. The thresholds are shrunk (`--set`) so a handful of writes fill several segments,
# tables or levels. The data is fixed, so running it again draws the same pictures.
#
#   ch1-log.svg                stage 1: the log, records in file order, the index's pointers
#   ch2-before-merge.svg       stage 2: segments with their dead bytes, before a merge
#   ch2-after-merge.svg        stage 2: the same store after `compact`: merged segments, hints
#   ch3-tables.svg             stage 3: the memtable and the tables along the key axis
#   ch3-table.svg              stage 3: one table's data blocks, index and footer
#   ch4-before-compaction.svg  stage 4: the level pyramid, three L0 tables and a memtable waiting
#   ch4-after-compaction.svg   stage 4: the same tree after `compact` let compaction settle
#   ch4b-table.svg             stage 4: one table's data blocks, filter, index and footer
#   ch4c-leveled.svg           stage 4: a workload of overwrites under leveled compaction
#   ch4c-tiered.svg            stage 4: the same workload under size-tiered compaction
#
# Usage: bash notes/draw.sh (from anywhere; it builds `kv` first). Needs only cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

out=notes/src/pictures
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --quiet --bin kv
kv() { cargo run --quiet --bin kv -- "$@"; }

# `put keyNNN valueN` lines for writes $1 to $1 + $2 - 1: the keys 0 to $3 - 1 taken in a
# scrambled order (37 is coprime to 100 and to 1000, so `i * 37 % n` visits every key once
# every n writes), the values numbered.
puts() {
    local from=$1 count=$2 keys=$3
    for ((i = from; i < from + count; i++)); do
        printf 'put key%03d value%d\n' $((i * 37 % keys)) "$i"
    done
}

echo "stage 1: a log and its index"
d=$work/hashlog
# The log of chapter 1's dump: an overwrite, a delete, an empty value.
set_hashlog=(--engine hashlog --dir "$d")
kv "${set_hashlog[@]}" put apple red >/dev/null
kv "${set_hashlog[@]}" put banana yellow >/dev/null
kv "${set_hashlog[@]}" put apple green >/dev/null
kv "${set_hashlog[@]}" delete banana >/dev/null
kv "${set_hashlog[@]}" put empty "" >/dev/null
kv draw --dir "$d" -o "$out/ch1-log.svg"

echo "stage 2: segments before and after a merge"
d=$work/bitcask
set_bitcask=(--engine bitcask --dir "$d" --set segment_bytes=160 --set background_merge=false)
kv "${set_bitcask[@]}" shell >/dev/null <<'EOF'
put apple red
put banana yellow
put cherry dark-red
put apple green
del banana
put date brown
put elder black
put fig purple
put apple golden
put grape green
put cherry red
quit
EOF
kv draw --dir "$d" -o "$out/ch2-before-merge.svg"
kv "${set_bitcask[@]}" compact >/dev/null
kv draw --dir "$d" -o "$out/ch2-after-merge.svg"

echo "stage 3: tables on the key axis, and one table"
d=$work/sstable
set_sstable=(--engine sstable --dir "$d" --set memtable_bytes=200 --set block_bytes=64)
{ puts 1 60 100; echo quit; } | kv "${set_sstable[@]}" shell >/dev/null
kv "${set_sstable[@]}" draw -o "$out/ch3-tables.svg"
table=$(cd "$d" && ls ./*.sst | head -n 1)
kv draw --dir "$d" --file "${table#./}" -o "$out/ch3-table.svg"

echo "stage 4: the level pyramid before and after a compaction"
# Thresholds shrunk so that a few hundred writes fill three levels (chapters 4 and 4c).
lsm_sizes=(--set memtable_bytes=64K --set table_bytes=1K --set level1_bytes=2K
    --set level_ratio=4 --set block_bytes=256)

# Four rounds of four sessions of 60 writes over $1 keys (`puts`), the first $2 rounds each
# ended by `compact`; the rest of the arguments are the engine, the store and its settings.
# Each session's writes stay in the memtable (64K is never reached) and its WAL; the next
# open flushes them to an L0 table. `compact` flushes the memtable, then lets compaction run
# until no level is over its target (leveled: L0 under 4 tables, L1 under 2K, L2 under 8K,
# ...; tiered: at most 6 runs).
lsm_rounds() {
    local keys=$1 compacts=$2 session=0
    shift 2
    for ((round = 0; round < 4; round++)); do
        for ((i = 0; i < 4; i++, session++)); do
            { puts $((session * 60)) 60 "$keys"; echo quit; } | kv "$@" shell >/dev/null
        done
        if ((round < compacts)); then kv "$@" compact >/dev/null; fi
    done
}

d=$work/lsm
set_lsm=(--engine lsm --dir "$d" "${lsm_sizes[@]}")
# 960 distinct keys: three compacted rounds fill L1 to L3; the last four sessions leave
# three tables on L0 and the last writes in the memtable.
lsm_rounds 1000 3 "${set_lsm[@]}"
kv "${set_lsm[@]}" draw -o "$out/ch4-before-compaction.svg"
kv "${set_lsm[@]}" compact >/dev/null
kv "${set_lsm[@]}" draw -o "$out/ch4-after-compaction.svg"

echo "stage 4: one table, part by part"
d=$work/lsm-table
set_table=(--engine lsm --dir "$d" --set block_bytes=256)
# 60 writes stay in the memtable and its WAL; opening the store again (for `stats`)
# flushes them into one L0 table.
{ puts 0 60 1000; echo quit; } | kv "${set_table[@]}" shell >/dev/null
kv "${set_table[@]}" stats >/dev/null
table=$(cd "$d" && ls ./*.sst | head -n 1)
kv draw --dir "$d" --file "${table#./}" -o "$out/ch4b-table.svg"

echo "stage 4: the same overwrites, leveled and size-tiered"
# 960 writes over 300 keys, so each key is written three or four times, every round
# compacted: the two styles' settled shapes.
for style in leveled tiered; do
    d=$work/lsm-$style
    set_style=(--engine lsm --dir "$d" "${lsm_sizes[@]}" --set compaction=$style)
    lsm_rounds 300 4 "${set_style[@]}"
    kv "${set_style[@]}" draw -o "$out/ch4c-$style.svg"
done

echo "drew $(ls "$out"/*.svg | wc -l) pictures into $out"
