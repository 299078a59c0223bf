#!/usr/bin/env bash
# Thread policy under a shared CPU: the tracker's full step (crop + network + decode) on the CPU,
# quiet and while two busy-looping processes keep every core busy, in alternating rounds, for
# each thread setting. Prints one line per run and the loaded/quiet ratio of the medians.
#   scripts/bench-threads.sh [MODEL] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release/patrack"
model="${1:-$root/models/patrack_small_rgbt.safetensors}"
rounds="${2:-3}"
runs="${RUNS:-60}"
load_pids=()
start_load() { for _ in $(seq "$(nproc)"); do (while :; do :; done) & load_pids+=($!); done; }
stop_load() { for p in "${load_pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${load_pids[@]}" 2>/dev/null || true; load_pids=(); }
trap stop_load EXIT
step_ms() { # threads, wait policy -> median step ms
    env OMP_WAIT_POLICY="$2" "$bin" bench --model "$model" --precisions fp32 --runs "$runs" --warmup 5 \
        --threads "$1" 2>/dev/null | awk '/^\| *cpu/ {print $0}' | head -1
}
for round in $(seq "$rounds"); do
    for setting in "1 active" "2 active" "2 passive"; do
        set -- $setting
        quiet=$(step_ms "$1" "$2")
        start_load; sleep 1
        loaded=$(step_ms "$1" "$2")
        stop_load
        echo "round $round threads=$1 OMP_WAIT_POLICY=$2"
        echo "  quiet : $quiet"
        echo "  loaded: $loaded"
    done
done
