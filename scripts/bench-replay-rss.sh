#!/usr/bin/env bash
# Peak memory and throughput of `patrack replay` on robot-size bags.
#
# Writes bags of 20, 900 and --big-pairs RGB/thermal pairs (640x480 rgb8 + mono16 thermal + an
# unrelated 640x480 16UC1 camera, 30 Hz, uncompressed chunks as `ros2 bag record` writes them;
# examples/write_bench_bag.rs) into a temporary folder, replays each with /usr/bin/time -v and
# prints bag size, pairs, wall time, frames/s and peak RSS as Markdown rows for BENCHMARKS.md.
# The bags are deleted at the end.
#
#   scripts/bench-replay-rss.sh [--big-pairs N] [--before OLD_PATRACK] [--model FILE] [--dir DIR]
#
#   --big-pairs N  pairs of the large bag (default 5000, about 10.8 GB)
#   --before BIN   also run an older patrack binary, on the 20- and 900-pair bags only (a replay
#                  that loads the whole bag needs twice its size in memory)
#   --model FILE   weights to track with (default: none, the tiny configuration with test
#                  weights, so that the bag and not the network dominates)
#   --dir DIR      where to write the bags (default: $TMPDIR or /tmp)
# CARGO_FEATURES=dds builds with that feature (reuse an existing build).
set -euo pipefail
cd "$(dirname "$0")/.."

big=5000
before=""
model_args=(--config tiny)
dir="${TMPDIR:-/tmp}"
while [ $# -gt 0 ]; do
    case "$1" in
        --big-pairs) big="$2"; shift 2 ;;
        --before) before="$2"; shift 2 ;;
        --model) model_args=(--model "$2"); shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

# libgomp's worker threads spin between parallel regions; on a shared, busy machine that spin
# time measures the neighbours' load, not the replay. Both binaries run with the same policy.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

cargo build --release ${CARGO_FEATURES:+--features "$CARGO_FEATURES"} --bin patrack --example write_bench_bag >&2
new=target/release/patrack
writer=target/release/examples/write_bench_bag

work="$(mktemp -d "$dir/patrack-replay-rss.XXXXXX")"
trap 'rm -rf "$work"' EXIT
need_kb=$(( (big + 920) * 2260 ))
free_kb=$(df -Pk "$work" | awk 'NR==2 {print $4}')
df -h "$work" >&2
if [ "$free_kb" -lt "$need_kb" ]; then
    echo "not enough space in $work: $((need_kb / 1048576)) GiB needed" >&2
    exit 1
fi

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=$OMP_WAIT_POLICY" >&2
echo "| binary | pairs | bag size | wall s | frames/s | peak RSS MB |"
echo "|---|---|---|---|---|---|"

run() { # binary label bag pairs init
    local bin="$1" label="$2" bag="$3" pairs="$4" init="$5" out="$work/out_$2_$4"
    rm -rf "$out"
    /usr/bin/time -v "$bin" replay "$bag" --rgb-topic /camera/rgb/image_raw --aux-topic /thermal/image_raw \
        --init "$init" "${model_args[@]}" --out "$out" > "$work/log.txt" 2> "$work/time.txt" || {
        cat "$work/log.txt" "$work/time.txt" >&2
        return 1
    }
    local rss_kb wall size
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    size=$(du -sh "$bag" | cut -f1)
    awk -v l="$label" -v p="$pairs" -v s="$size" -v w="$wall" -v r="$rss_kb" \
        'BEGIN { printf "| %s | %d | %s | %.1f | %.1f | %.0f |\n", l, p, s, w, p / w, r / 1024 }'
    rm -rf "$out"
}

for pairs in 20 900 "$big"; do
    bag="$work/bag_$pairs"
    init=$("$writer" --pairs "$pairs" --out "$bag" | awk '{print $NF}')
    run "$new" after "$bag" "$pairs" "$init"
    if [ -n "$before" ] && [ "$pairs" -le 900 ]; then
        run "$before" before "$bag" "$pairs" "$init"
    fi
    rm -rf "$bag"
done
