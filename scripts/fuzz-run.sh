#!/usr/bin/env bash
# Runs one libFuzzer target for N cases at low priority, with a 2 GiB RSS limit (an input that
# makes a decoder exceed it is a failure), growing fuzz/corpus/<target>/ (or $FUZZ_CORPUS) with
# new coverage. Prints libFuzzer's final stats (cases, time, peak RSS).
#   scripts/fuzz-run.sh TARGET [CASES] [extra libFuzzer flags]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# The targets link libtorch (patrack's library needs it), without an rpath in this build.
export LD_LIBRARY_PATH="${LIBTORCH:-$root/.libtorch/torch}/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
target="$1"; cases="${2:-1000000}"; shift $(( $# >= 2 ? 2 : 1 ))
bin="$root/fuzz/target/x86_64-unknown-linux-gnu/release/$target"
corpus="${FUZZ_CORPUS:-$root/fuzz/corpus/$target}"
mkdir -p "$root/fuzz/artifacts/$target"
cd "$root/fuzz"
exec nice -n 19 "$bin" "$corpus" -runs="$cases" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -max_len=131072 -timeout=20 -print_final_stats=1 -artifact_prefix="artifacts/$target/" "$@"
