#!/usr/bin/env bash
# The whole test suite, including set-up on a fresh machine. CI runs exactly this.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh
export PATH="$root/.venv/bin:$PATH"
step() { echo; echo "=== $* ==="; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "clippy (default features)"
cargo clippy --release --all-targets -- -D warnings
step "clippy (dds: the node over the pure-Rust DDS transport)"
cargo clippy --release --all-targets --features dds -- -D warnings
step "clippy (dds-humble: the DDS node for Humble graphs, library only)"
cargo clippy --release --lib --features dds-humble -- -D warnings
step "clippy (ros: the r2r node, type-checked without ROS)"
cargo clippy --release --all-targets --features ros,r2r/doc-only -- -D warnings
step "clippy (cuda: the CUDA graph code, type-checked without CUDA)"
PATRACK_CUDA_TYPECHECK=1 cargo clippy --release --all-targets --features cuda -- -D warnings
step "package.xml (catkin_pkg) and launch files"
python -c "from catkin_pkg.package import parse_package; p = parse_package('package.xml'); p.validate(); print('package.xml:', p.name, p.version, 'build_type', p.get_build_type())"
python -m py_compile launch/*.launch.py && echo "launch files compile"
step "cargo test (with the DDS transport, so the wire test runs)"
cargo test --release --features dds
