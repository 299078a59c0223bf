#!/usr/bin/env bash
# Thread policy under a shared CPU: the tracker's full step (crop + network + decode, CPU, fp32)
# quiet and while busy loops keep every core busy (one per core), in alternating rounds, for
# each thread setting: 1 thread, 2 threads with libgomp's default wait (idle
# workers spin for a while before sleeping), 2 threads with OMP_WAIT_POLICY=PASSIVE (patrack's
# own default). Every run is a fresh `patrack bench` process (libgomp reads OMP_WAIT_POLICY when
# libtorch loads). Prints one line per run, then per setting the medians over the rounds and the
# loaded/quiet ratio of the medians.
#   scripts/bench-threads.sh [MODEL] [ROUNDS]
# MODEL: a weights file, or a configuration name (`vit_base`, `small`, `tiny`) for the hashed
# test weights. Environment: RUNS (timed steps per run, default 40), WARMUP (default 5),
# SETTINGS (default "1:default 2:default 2:PASSIVE"; `default` is libgomp's default policy),
# QUIET_LOAD / QUIET_WAIT_S (before each round, wait up to QUIET_WAIT_S seconds, default 600, for
# a 1-minute load average below QUIET_LOAD, default 3: on a shared machine "quiet" can only mean
# "no load of ours"; the load average after each run is recorded), OUT (per-run TSV, default a
# temp file).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release/patrack"
model="${1:-$root/models/patrack_small_rgbt.safetensors}"
rounds="${2:-5}"
runs="${RUNS:-40}"
warmup="${WARMUP:-5}"
settings="${SETTINGS:-1:default 2:default 2:PASSIVE}"
out="${OUT:-$(mktemp)}"
if [[ -f "$model" ]]; then model_args=(--model "$model"); else model_args=(--config "$model"); fi

load_pids=()
start_load() { for _ in $(seq "$(nproc)"); do (while :; do :; done) & load_pids+=($!); done; }
stop_load() {
    for p in "${load_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${load_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    load_pids=()
}
trap stop_load EXIT

# threads, wait policy -> "step_ms network_ms" (medians of one run)
one_run() {
    local json
    json=$(mktemp)
    # `default`: libgomp's own wait policy. patrack restarts itself with PASSIVE when the variable
    # is unset, and keeps any value that is set; an empty value is kept by patrack and rejected
    # by libgomp with a warning (then its default applies), so it measures the spinning default.
    local policy=("OMP_WAIT_POLICY=")
    [[ $2 == default ]] || policy=("OMP_WAIT_POLICY=$2")
    env "${policy[@]}" "$bin" bench "${model_args[@]}" --precisions fp32 --runs "$runs" \
        --warmup "$warmup" --threads "$1" --json "$json" >/dev/null 2>&1
    jq -r '"\(.step_ms_median) \(.network_ms_median) \(.threads)"' "$json"
    rm -f "$json"
}

printf 'round\tthreads\twait\tcondition\tstep_ms\tnetwork_ms\tload1\n' >"$out"
wait_for_quiet() {
    local waited=0
    while awk -v limit="${QUIET_LOAD:-3}" '{exit !($1 >= limit)}' /proc/loadavg && ((waited < ${QUIET_WAIT_S:-600})); do
        sleep 30; waited=$((waited + 30))
    done
    echo "# round $1: load average $(cut -d' ' -f1-3 /proc/loadavg) after waiting ${waited} s" >&2
}

for round in $(seq "$rounds"); do
    wait_for_quiet "$round"
    for setting in $settings; do
        threads="${setting%%:*}"; wait_policy="${setting##*:}"
        for condition in quiet loaded; do
            [[ $condition == loaded ]] && { start_load; sleep 1; }
            read -r step net got_threads < <(one_run "$threads" "$wait_policy")
            [[ $condition == loaded ]] && stop_load
            [[ $got_threads == "$threads" ]] || { echo "asked for $threads threads, ran $got_threads" >&2; exit 1; }
            load1=$(cut -d' ' -f1 /proc/loadavg)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$threads" "$wait_policy" "$condition" "$step" "$net" "$load1" | tee -a "$out"
        done
    done
done

echo
echo "model: $model; $rounds rounds, $runs timed steps per run; per-run rows in $out"
echo "| threads | OMP_WAIT_POLICY | quiet step ms (median of rounds) | loaded step ms | loaded/quiet |"
echo "|---:|---|---:|---:|---:|"
python3 - "$out" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
seen = []
for r in rows:
    key = (r["threads"], r["wait"])
    if key not in seen:
        seen.append(key)
for threads, wait in seen:
    med = {c: statistics.median(float(r["step_ms"]) for r in rows
                                if (r["threads"], r["wait"], r["condition"]) == (threads, wait, c))
           for c in ("quiet", "loaded")}
    print(f"| {threads} | {wait} | {med['quiet']:.1f} | {med['loaded']:.1f} | {med['loaded'] / med['quiet']:.2f} |")
EOF
