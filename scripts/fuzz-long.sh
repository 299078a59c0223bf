#!/usr/bin/env bash
# The long fuzz runs: each target for CASES cases (scripts/fuzz-run.sh: libFuzzer, nice 19, RSS
# limit 2 GiB) on a copy of its corpus, under /usr/bin/time -v; then the grown corpus is
# minimised with libFuzzer's -merge=1 into the committed one (the committed files stay, only
# inputs that add coverage are added). Prints one Markdown row per target for BENCHMARKS.md;
# libFuzzer's logs go to fuzz/artifacts/logs/, crashing inputs to fuzz/artifacts/<target>/.
# Build first with scripts/fuzz-build.sh. MAX_TIME_S (optional) stops each run after that many
# seconds (libFuzzer's -max_total_time) when the cases are not reached by then: the row then shows
# the cases actually run.
#   scripts/fuzz-long.sh [CASES] [TARGET...]      (default 1000000, every target)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# The targets link libtorch (patrack's library needs it), without an rpath in this build.
export LD_LIBRARY_PATH="${LIBTORCH:-$root/.libtorch/torch}/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cases="${1:-1000000}"; shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(cdr image_raw image_compressed bag_mcap bag_db3 pickle checkpoint_zip safetensors params_yaml results_text)
fi
bin_dir="$root/fuzz/target/x86_64-unknown-linux-gnu/release"
logs="$root/fuzz/artifacts/logs"
mkdir -p "$logs"
stat() { awk -v k="stat::$2:" '$1 == k {print $2}' "$1"; }

echo "| target | cases | wall s | exec/s | peak RSS MB (libFuzzer / time -v) | new units | crashes | corpus files (KiB): before → after merge |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for target in "${targets[@]}"; do
    corpus="$root/fuzz/corpus/$target"
    work="$(mktemp -d)"
    cp -r "$corpus" "$work/grown"
    before="$(find "$corpus" -type f | wc -l) ($(du -sk "$corpus" | cut -f1))"
    log="$logs/$target.log"
    status=0
    FUZZ_CORPUS="$work/grown" /usr/bin/time -v -o "$work/time.txt" "$root/scripts/fuzz-run.sh" "$target" "$cases" \
        ${MAX_TIME_S:+-max_total_time="$MAX_TIME_S"} >"$log" 2>&1 || status=$?
    crashes=$([ "$status" -eq 0 ] && echo 0 || echo "1 (exit $status, see $log)")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    # Minimise: the committed corpus first (kept as it is), then what the run found.
    nice -n 19 "$bin_dir/$target" -merge=1 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=131072 -timeout=20 \
        "$corpus" "$work/grown" >"$logs/$target.merge.log" 2>&1 || echo "$target: merge failed, see $logs/$target.merge.log" >&2
    after="$(find "$corpus" -type f | wc -l) ($(du -sk "$corpus" | cut -f1))"
    printf '| %s | %s | %.0f | %s | %s / %.0f | %s | %s | %s → %s |\n' "$target" "$(stat "$log" number_of_executed_units)" \
        "$wall" "$(stat "$log" average_exec_per_sec)" "$(stat "$log" peak_rss_mb)" "$((rss_kb / 1024))" \
        "$(stat "$log" new_units_added)" "$crashes" "$before" "$after"
    rm -rf "$work"
done
