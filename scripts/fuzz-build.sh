#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ on stable Rust: SanitizerCoverage through rustc's stable
# -C passes / -C llvm-args flags (what cargo-fuzz passes, without its nightly-only sanitizers).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export LIBTORCH="${LIBTORCH:-$root/.libtorch/torch}"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS off build scripts (they must not be instrumented).
cd "$root/fuzz"
cargo build --release --target x86_64-unknown-linux-gnu "$@"
