#!/usr/bin/env bash
# Set-up + the demo: the bundled demo model (models/patrack_small_rgbt.safetensors, trained by
# scripts/train-demo-models.sh) tracks a held-out synthetic RGB-T sequence in the dark, where the
# RGB camera shows almost nothing and the thermal camera shows the warm target among look-alikes.
# Writes out/demo/: annotated frames, summary.png (contact sheet) and boxes.csv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo build --release --bin patrack
p=target/release/patrack
$p synth --modality thermal --sequences 2 --frames 80 --seed 1000 --out out/demo/data
$p run --sequence out/demo/data/0001_dark --model models/patrack_small_rgbt.safetensors --out out/demo "$@"
