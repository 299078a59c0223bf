#!/usr/bin/env bash
# Set-up + the demo: offline tracking of the bundled RGB-T sample; writes out/demo/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo build --release --bin patrack
target/release/patrack run --sequence data/sample_rgbt --out out/demo "$@"
