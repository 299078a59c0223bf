#!/usr/bin/env bash
# Reproduces the bundled demo models in models/ with the progressive scheme on synthetic RGB+X
# scenes: the RGB-only base, then one adapter set per modality on the frozen base, each stored in
# fp16. About an hour on a 2-core CPU.
#   scripts/train-demo-models.sh [WORK_DIR]     (default out/train; models/ is overwritten)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
work="${1:-out/train}"
cargo build --release --bin patrack
p=target/release/patrack

$p train --stage base --config small --steps 4000 --batch 16 --lr 4e-4 --warmup 200 --seed 1 --out "$work/base"
for m in thermal depth event; do
  $p train --stage adapt --modality "$m" --base "$work/base/model.safetensors" \
    --steps 1000 --batch 16 --lr 1e-3 --warmup 100 --seed 1 --out "$work/$m"
done

mkdir -p models
$p convert --fp16 "$work/base/model.safetensors" models/patrack_small_rgb_base.safetensors
$p convert --fp16 "$work/thermal/model.safetensors" models/patrack_small_rgbt.safetensors
$p convert --fp16 "$work/depth/model.safetensors" models/patrack_small_rgbd.safetensors
$p convert --fp16 "$work/event/model.safetensors" models/patrack_small_rgbe.safetensors
ls -l models/
