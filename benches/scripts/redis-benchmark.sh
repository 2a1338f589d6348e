#!/usr/bin/env bash
# redis-benchmark against every stage of the course, each served by `kv serve --resp`.
#
#   bash benches/scripts/redis-benchmark.sh [OUTPUT]    (default: notes/src/results/redis-benchmark.txt)
#
# Builds the release `kv`, then for each stage opens a fresh store in a temporary
# directory with its default options, serves it on free loopback ports, and runs
# `redis-benchmark -q -t set,get -n 100000`, one request at a time (-P 1) and sixteen
# pipelined (-P 16), then `-t ping_mbulk` (the protocol alone, no engine call) on the last.
# Writes what redis-benchmark printed, with the date and the machine, to OUTPUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-notes/src/results/redis-benchmark.txt}"
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (Debian: redis-tools)" >&2; exit 1; }
cargo build --release --quiet --bin kv
kv=target/release/kv
requests=100000

serve() { # ENGINE DIR: starts the server (its pid in $server), sets $port to its RESP port
    "$kv" --engine "$1" --dir "$2/store" serve --listen 127.0.0.1:0 --resp 127.0.0.1:0 > "$2/addresses" &
    server=$!
    for _ in $(seq 50); do
        [ "$(wc -l < "$2/addresses")" -ge 2 ] && break
        sleep 0.1
    done
    port="$(sed -n 2p "$2/addresses" | sed 's/.*://')"
}

bench() { # PORT TESTS PIPELINE
    redis-benchmark -h 127.0.0.1 -p "$1" -q -t "$2" -n "$requests" -P "$3" 2>&1 |
        tr '\r' '\n' | grep -E 'requests per second|rror' | sed 's/^ *//'
}

{
    echo "# bash benches/scripts/redis-benchmark.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# $(nproc) cores, $(uname -sr), $(redis-benchmark --version | head -1)"
    echo "# redis-benchmark -q -t set,get -n $requests -P 1 (then -P 16), against kv serve --resp"
    for engine in hashlog bitcask sstable lsm; do
        dir="$(mktemp -d)"
        serve "$engine" "$dir"
        for pipeline in 1 16; do
            echo "== $engine, -P $pipeline"
            bench "$port" set,get "$pipeline"
        done
        if [ "$engine" = lsm ]; then
            for pipeline in 1 16; do
                echo "== the protocol alone (PING, no engine call), -P $pipeline"
                bench "$port" ping_mbulk "$pipeline"
            done
        fi
        kill -INT "$server"
        wait "$server"
        rm -rf "$dir"
    done
} > "$out"
cat "$out"
