#!/usr/bin/env bash
# The held-out evidence for the bundled demo models: writes the synthetic held-out sets (seed
# 1000, 24 sequences of 60 frames per modality, half of them RGB-hard) in each benchmark's
# layout and scores the RGB-only base against the adapted model with `patrack eval`, on all
# sequences and on the RGB-hard subset. Tables and plots land in out/heldout/<modality>/.
#   scripts/eval-demo-models.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${1:-out/heldout}"
cargo build --release --bin patrack
p=target/release/patrack

for pair in thermal:lasher:rgbt depth:depthtrack:rgbd event:visevent:rgbe; do
  IFS=: read -r modality dataset name <<<"$pair"
  data="$out/$modality/data"
  [ -d "$data" ] || $p synth --modality "$modality" --out "$data" --sequences 24 --frames 60 --seed 1000
  runs="$out/$modality/runs"
  $p eval --dataset "$dataset" --root "$data" --model models/patrack_small_rgb_base.safetensors \
    --name rgb_base --out "$runs" --no-score
  $p eval --dataset "$dataset" --root "$data" --model "models/patrack_small_$name.safetensors" \
    --name "$name" --out "$runs" --no-score
  echo "== RGB+$modality, all 24 sequences"
  $p eval --dataset "$dataset" --root "$data" --results "$runs" --out "$out/$modality/all"
  echo "== RGB+$modality, the 12 RGB-hard sequences (dark, low contrast, camouflage)"
  $p eval --dataset "$dataset" --root "$data" --results "$runs" --exclude normal --out "$out/$modality/rgb_hard"
  echo "== RGB+$modality, the 12 RGB-normal sequences"
  $p eval --dataset "$dataset" --root "$data" --results "$runs" --include normal --out "$out/$modality/rgb_normal"
done
