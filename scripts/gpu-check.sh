#!/usr/bin/env bash
# GPU checks in one call on a machine with an NVIDIA GPU and a torch 2.11.0 install but no Rust.
#
#   scripts/gpu-check.sh build            # here: release binary + parity test binaries -> .gpu-bundle/
#   scripts/gpu-check.sh run TORCH_LIB    # there: CUDA parity tests, benchmark, a short CUDA training run;
#                                         # results in $OUT or ./gpu-out
#
# TORCH_LIB is the torch/lib folder of a torch 2.11.0 (CUDA) install, e.g.
# <venv>/lib/python3.12/site-packages/torch/lib. The test binaries find their fixtures through
# PATRACK_TEST_DATA and their device through PATRACK_TEST_DEVICE.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bundle="$root/.gpu-bundle"

case "${1:-}" in
build)
  rm -rf "$bundle" && mkdir -p "$bundle/tests"
  cargo build --release --bin patrack
  cp target/release/patrack "$bundle/"
  cargo test --release --no-run --message-format=json \
      --test model_parity --test adapters_parity --test tracker_golden 2>/dev/null |
    python3 -c '
import json, sys, shutil
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        shutil.copy(m["executable"], sys.argv[1] + "/tests/" + m["target"]["name"])
        print("bundled", m["target"]["name"])
' "$bundle"
  du -sh "$bundle"
  ;;
run)
  lib="${2:?usage: scripts/gpu-check.sh run TORCH_LIB}"
  out="${OUT:-$root/gpu-out}"
  mkdir -p "$out"
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATRACK_TEST_DATA="$root/tests/data" PATRACK_TEST_DEVICE=cuda
  status=0
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true; } | tee "$out/gpu.txt"
  "$bundle/patrack" info | tee "$out/info.txt"
  for t in "$bundle"/tests/*; do
    echo "=== $(basename "$t") on cuda"
    "$t" --test-threads 1 --nocapture 2>&1 | tee "$out/$(basename "$t").log" || status=1
  done
  "$bundle/patrack" bench --devices cuda --precisions fp32,bf16,fp16 --runs 50 --warmup 10 \
      --json "$out/bench.jsonl" 2>&1 | tee "$out/bench.md" || status=1
  "$bundle/patrack" bench --devices cpu --precisions fp32 --runs 5 --warmup 1 \
      --json "$out/bench.jsonl" 2>&1 | tee -a "$out/bench.md" || status=1
  echo "=== training on cuda: 50 steps of the small RGB-only base on synthetic scenes"
  "$bundle/patrack" train --stage base --config small --device cuda --steps 50 --batch 16 \
      --synth-sequences 40 --checkpoint-every 0 --out "$out/train-base" 2>&1 | tail -n 5 | tee "$out/train.log" || status=1
  echo; echo "=== summary"; grep -h "test result" "$out"/*.log || true; tail -n 6 "$out/bench.md"
  exit $status
  ;;
*)
  sed -n 2,9p "$0"; exit 2 ;;
esac
