#!/usr/bin/env bash
# Replay soak: resident memory of `patrack replay` over a long bag.
#
# Writes a bag of PAIRS 640x480 rgb8 + mono16 thermal pairs (examples/write_bench_bag.rs,
# --no-other-camera, uncompressed chunks; about 1.5 MB per pair), replays it under
# /usr/bin/time -v while sampling VmRSS of the replay from /proc/PID/status every second, and
# prints the samples' summary: RSS after warm-up (the sample at 10 % of the run), at the end and
# the highest after warm-up, each as growth over the warm-up value. The bag is deleted at the end.
#
#   scripts/bench-soak-replay.sh [--pairs N] [--model FILE | --config NAME] [--dir DIR] [--bag BAG --init BOX]
#
#   --pairs N     pairs in the bag (default 10000, about 15 GB)
#   --model FILE  weights (default: models/patrack_small_rgbt.safetensors, fp32)
#   --config NAME hashed test weights of a named configuration instead (`tiny`: the network is
#                 cheap, so the run measures the bag and node path)
#   --dir DIR     where to write the bag (default: $TMPDIR or /tmp)
#   --bag BAG     replay this bag, written before by `write_bench_bag --pairs N --no-other-camera`
#                 with the same N, instead of writing one (it is kept); --init: the box the
#                 writer printed
# CARGO_FEATURES=dds builds with that feature (reuse an existing build). OMP_WAIT_POLICY is passed
# through (the binary's own default applies when it is unset).
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=10000
model_args=(--model models/patrack_small_rgbt.safetensors)
dir="${TMPDIR:-/tmp}"
bag=""
init=""
while [ $# -gt 0 ]; do
    case "$1" in
        --pairs) pairs="$2"; shift 2 ;;
        --model) model_args=(--model "$2"); shift 2 ;;
        --config) model_args=(--config "$2"); shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --bag) bag="$2"; shift 2 ;;
        --init) init="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

cargo build --release ${CARGO_FEATURES:+--features "$CARGO_FEATURES"} --bin patrack --example write_bench_bag >&2
bin=target/release/patrack
writer=target/release/examples/write_bench_bag

work="$(mktemp -d "$dir/patrack-soak-replay.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [ -z "$bag" ]; then
    need_kb=$(( (pairs + 20) * 1560 ))
    free_kb=$(df -Pk "$work" | awk 'NR==2 {print $4}')
    if [ "$free_kb" -lt "$need_kb" ]; then
        echo "not enough space in $work: $((need_kb / 1048576)) GiB needed" >&2
        exit 1
    fi
    bag="$work/bag"
    # The writer's last word is the target's box in the first RGB frame.
    init=$("$writer" --pairs "$pairs" --out "$bag" --no-other-camera | awk '{print $NF}')
fi
[ -n "$init" ] || { echo "--bag needs --init (the box write_bench_bag printed)" >&2; exit 2; }
echo "bag: $pairs pairs, $(du -sh "$bag" | cut -f1); machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

started=$(date +%s)
/usr/bin/time -v "$bin" replay "$bag" --rgb-topic /camera/rgb/image_raw --aux-topic /thermal/image_raw \
    --init "$init" "${model_args[@]}" --precision fp32 --out "$work/out" >"$work/log.txt" 2>"$work/time.txt" &
time_pid=$!
replay_pid=""
while [ -z "$replay_pid" ] && kill -0 "$time_pid" 2>/dev/null; do
    replay_pid=$(pgrep -P "$time_pid" || true)
    sleep 0.1
done
: >"$work/rss.txt"
while [ -n "$replay_pid" ] && kill -0 "$replay_pid" 2>/dev/null; do
    awk -v t="$(($(date +%s) - started))" '/^VmRSS:/ {print t, $2}' "/proc/$replay_pid/status" 2>/dev/null >>"$work/rss.txt" || true
    sleep 1
done
wait "$time_pid" || { cat "$work/log.txt" "$work/time.txt" >&2; exit 1; }

peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
grep '^replayed' "$work/log.txt"
awk -v pairs="$pairs" -v wall="$wall" -v peak="$peak_kb" '
    { t[NR] = $1; r[NR] = $2 }
    END {
        w = int(NR * 0.1); if (w < 1) w = 1
        hi = 0; for (i = w; i <= NR; i++) if (r[i] > hi) hi = r[i]
        printf "replay soak: %d pairs in %.0f s (%.1f pairs/s, start-up included); %d RSS samples\n", pairs, wall, pairs / wall, NR
        printf "RSS MiB: %.1f at %d s (warm-up, 10 %% of the samples), %.1f at the end (%+.2f %%), highest after warm-up %.1f (%+.2f %%); peak (time -v) %.1f\n",
            r[w] / 1024, t[w], r[NR] / 1024, (r[NR] - r[w]) / r[w] * 100, hi / 1024, (hi - r[w]) / r[w] * 100, peak / 1024
        printf "RSS MiB every 10 %%:"; for (k = 0; k <= 10; k++) { i = int(NR * k / 10); if (i < 1) i = 1; printf " %d s:%.1f", t[i], r[i] / 1024 }; printf "\n"
    }' "$work/rss.txt"
