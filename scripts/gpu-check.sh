#!/usr/bin/env bash
# GPU checks in one call on a machine with an NVIDIA GPU and a torch 2.11.0 install but no Rust.
#
#   scripts/gpu-check.sh build            # here: release binary + parity test binaries -> .gpu-bundle/
#   scripts/gpu-check.sh run TORCH_LIB [--quick]
#                                         # there: CUDA parity tests, benchmark, short CUDA training runs
#                                         # (incl. the paper recipe's pairs/s at ViT-B, batch 32);
#                                         # results in $OUT or ./gpu-out. --quick: parity tests and
#                                         # patrack's own benchmark only (no official baseline, no training)
#
# TORCH_LIB is the torch/lib folder of a torch 2.11.0 (CUDA) install, e.g.
# <venv>/lib/python3.12/site-packages/torch/lib. The test binaries find their fixtures through
# PATRACK_TEST_DATA and their device through PATRACK_TEST_DEVICE.
#
# With PATRACK_OFFICIAL_REPO=<path to the official PATrack/ folder> at build time, the official
# code and the two pure-Python packages it needs beyond a stock torch install (easydict, timm
# 0.5.4; fetched with pip download) are bundled too, and `run` times the official PyTorch eager
# module and tracker on the same card with scripts/bench_official.py (golden check first).
# With LIBTORCH_CUDA=<the torch/ folder of a CUDA build of libtorch 2.11.0> (scripts/fetch-libtorch.sh
# --cuda, or a pip install of torch) the bundle is built with the `cuda` feature (CUDA graphs) in
# target-cuda/, and the CUDA graph tests are bundled too; without it the network runs eagerly.
# The binaries travel stripped and compressed: the machine takes a limited working tree.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bundle="$root/.gpu-bundle"

case "${1:-}" in
build)
  rm -rf "$bundle" && mkdir -p "$bundle/bin/tests"
  features=() tests=(--test model_parity --test adapters_parity --test tracker_golden)
  if [ -n "${LIBTORCH_CUDA:-}" ]; then
    export LIBTORCH="$LIBTORCH_CUDA" CARGO_TARGET_DIR="$root/target-cuda"
    features=(--features cuda) tests+=(--test cuda_graph)
  fi
  cargo build --release --bin patrack "${features[@]}"
  cp "${CARGO_TARGET_DIR:-target}/release/patrack" "$bundle/bin/"
  cargo test --release --no-run --message-format=json "${features[@]}" "${tests[@]}" 2>/dev/null |
    python3 -c '
import json, sys, shutil
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        shutil.copy(m["executable"], sys.argv[1] + "/bin/tests/" + m["target"]["name"])
        print("bundled", m["target"]["name"])
' "$bundle"
  strip "$bundle/bin/patrack" "$bundle"/bin/tests/*
  tar -C "$bundle" -cJf "$bundle/bin.tar.xz" bin && rm -rf "$bundle/bin"
  if [ -n "${PATRACK_OFFICIAL_REPO:-}" ]; then
    mkdir -p "$bundle/official" "$bundle/whl"
    cp -r "$PATRACK_OFFICIAL_REPO" "$bundle/official/PATrack"
    find "$bundle/official" -name __pycache__ -prune -exec rm -rf {} +
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$bundle/whl" easydict==1.14 timm==0.5.4
  fi
  du -sh "$bundle"
  ;;
run)
  lib="${2:?usage: scripts/gpu-check.sh run TORCH_LIB [--quick|--demo-only]}"
  quick=0 demo_only=0
  case "${3:-}" in --quick) quick=1 ;; --demo-only) demo_only=1 ;; esac
  out="${OUT:-$root/gpu-out}"
  mkdir -p "$out"
  bin="$(mktemp -d)/bin"
  tar -C "$(dirname "$bin")" -xJf "$bundle/bin.tar.xz"
  # torch/lib, and the CUDA runtime of the NVIDIA wheels beside torch/ (pip layout)
  export LD_LIBRARY_PATH="$lib:$lib/../../nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATRACK_TEST_DATA="$root/tests/data" PATRACK_TEST_DEVICE=cuda
  # Few files come back from such a machine: all output goes to run.log, tests.log and bench.jsonl.
  set +e
  exec > >(tee "$out/run.log") 2>&1
  fails="$(mktemp)"
  # Each part has its own time limit so that one hang cannot eat the whole call.
  t() { local secs=$1; shift; timeout "$secs" "$@" || echo "FAILED (exit $?): $*" | tee -a "$fails"; }
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  "$bin/patrack" info
  echo "=== demo: a trained small RGB-T model on a synthetic sequence, CPU fp32 vs CUDA fp32 and bf16"
  demo="$(mktemp -d)"
  t 60 "$bin/patrack" synth --modality thermal --sequences 2 --frames 80 --seed 1000 --out "$demo/data" > /dev/null
  for run in cpu:fp32 cuda:fp32 cuda:bf16; do
    t 120 "$bin/patrack" run --sequence "$demo/data/0001_dark" --model "$root/models/patrack_small_rgbt.safetensors" \
        --device "${run%:*}" --precision "${run#*:}" --out "$demo/${run/:/-}" 2>&1 | grep -E "mean IoU|error|FAILED" | sed "s/^/$run: /"
  done
  python3 - "$demo" <<'PY' || echo "FAILED: demo box comparison" | tee -a "$fails"
import csv, sys
rows = lambda name: list(csv.DictReader(open(f"{sys.argv[1]}/{name}/boxes.csv")))
ref = rows("cpu-fp32")
for name in ("cuda-fp32", "cuda-bf16"):
    got = rows(name)
    d = max(abs(float(a[k]) - float(b[k])) for a, b in zip(ref, got) for k in "xywh")
    print(f"{name} vs cpu-fp32: {len(got)} frames, max box coordinate difference {d:.3f} px")
    assert len(got) == len(ref)
PY
  if [ "$demo_only" = 1 ]; then cat "$fails"; [ -s "$fails" ] && exit 1; exit 0; fi
  for test in "$bin"/tests/*; do
    echo "=== $(basename "$test") on cuda"
    t 180 "$test" --test-threads 1 --nocapture > "$fails.test" 2>&1
    cat "$fails.test" >> "$out/tests.log"
    grep -E "^test |test result" "$fails.test"
  done
  echo "=== patrack bench, official ViT-B, cuda: CUDA graph (when built in), OpenCV-exact CPU crop"
  t 240 "$bin/patrack" bench --devices cuda --precisions fp32,bf16,fp16 --runs 200 --warmup 20 \
      --json "$out/bench.jsonl"
  echo "=== the same, eager network; and with the crop on the GPU"
  t 120 "$bin/patrack" bench --devices cuda --precisions fp32,bf16 --runs 200 --warmup 20 --no-cuda-graph \
      --json "$out/bench.jsonl"
  t 120 "$bin/patrack" bench --devices cuda --precisions bf16 --runs 200 --warmup 20 --crop-on-device \
      --json "$out/bench.jsonl"
  echo "=== several targets, official ViT-B, cuda bf16: one CUDA graph per target count, then eager"
  t 120 "$bin/patrack" bench --devices cuda --precisions bf16 --targets 1,2,4,8 --runs 100 --warmup 10
  t 120 "$bin/patrack" bench --devices cuda --precisions bf16 --targets 1,2,4,8 --runs 100 --warmup 10 --no-cuda-graph
  if [ "$quick" = 0 ] && [ -d "$bundle/official/PATrack" ]; then
    echo "=== official PyTorch eager module and tracker, same card"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/patrack-site "$bundle"/whl/*.whl
    for prec in fp32 bf16; do
      check=(); [ "$prec" = fp32 ] && check=(--check-golden "$root/tests/data/model.safetensors")
      PYTHONPATH=/tmp/patrack-site PYTHONUNBUFFERED=1 t 240 python3 "$root/scripts/bench_official.py" \
          --official-repo "$bundle/official/PATrack" --device cuda --precision "$prec" \
          --runs 100 --warmup 20 "${check[@]}" > "$fails.py" 2>&1
      grep -v " ms: " "$fails.py"
    done
  fi
  if [ "$quick" = 0 ]; then
    echo "=== training on cuda: 50 steps of the small RGB-only base on synthetic scenes"
    t 180 "$bin/patrack" train --stage base --config small --device cuda --steps 50 --batch 16 \
        --synth-sequences 40 --checkpoint-every 0 --out "$(mktemp -d)" > "$fails.train" 2>&1
    tail -n 4 "$fails.train"
    # The paper's recipe at ViT-B (batch 32, bf16 autocast, drop path, causal sampling with
    # jitter and flips) on synthetic RGB-T scenes: the throughput behind the README's wall-clock
    # estimate. The base is a one-step ViT-B RGB-only network (its weights do not change the
    # speed); `trained steps ...: N pairs/s at batch 32` excludes the first step's set-up.
    echo "=== the paper recipe at ViT-B on cuda: pairs/s at batch 32, bf16 autocast, then fp32"
    rec="$(mktemp -d)"
    t 180 "$bin/patrack" train --stage base --config vit_base --device cuda --steps 1 --batch 2 \
        --synth-sequences 4 --out "$rec/base" > "$fails.train" 2>&1
    tail -n 2 "$fails.train"
    for amp in bf16 fp32; do
      flag=(); [ "$amp" = fp32 ] && flag=(--no-autocast)
      t 300 "$bin/patrack" train --recipe paper --modality thermal --base "$rec/base/model.safetensors" \
          --device cuda --steps 40 --synth-sequences 64 --checkpoint-every 0 "${flag[@]}" \
          --out "$rec/adapt-$amp" > "$fails.train" 2>&1
      grep -E "paper recipe|trained steps|rror" "$fails.train" | sed "s/^/recipe $amp: /"
    done
  fi
  echo; echo "=== summary"
  grep -h "test result" "$out/tests.log"
  grep -h -E "GOLDEN|OFFICIAL_" "$out/run.log"
  cat "$fails"
  status=0; [ -s "$fails" ] && status=1
  exit $status
  ;;
*)
  sed -n 2,10p "$0"; exit 2 ;;
esac
