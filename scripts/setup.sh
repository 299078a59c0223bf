#!/usr/bin/env bash
# One-time set-up of a fresh Debian 12 / Ubuntu 22.04+ machine for building and testing patrack:
# system packages, the test venv (.venv) and libtorch 2.11.0 (.libtorch). Safe to re-run.
#   scripts/setup.sh [--cuda]      --cuda: fetch the CUDA build of libtorch (GPU machines)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

need_apt=()
for tool in unzip python3 pkg-config c++ ip unshare; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  pkgs=()
  for t in "${need_apt[@]}"; do
    case "$t" in
      c++) pkgs+=(g++) ;;
      ip) pkgs+=(iproute2) ;;
      unshare) pkgs+=(util-linux) ;;
      *) pkgs+=("$t") ;;
    esac
  done
  echo "installing system packages: ${pkgs[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust (1.88 or newer) with rustup: https://rustup.rs" >&2
  exit 1
fi

scripts/fetch-libtorch.sh "$@"

if [ ! -x .venv/bin/python ] || ! cmp -s scripts/requirements-test.txt .venv/.requirements 2>/dev/null; then
  echo "creating the test venv in .venv"
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt .venv/.requirements
fi
