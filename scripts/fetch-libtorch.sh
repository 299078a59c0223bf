#!/usr/bin/env bash
# Fetch libtorch 2.11.0 (the version tch 0.24 is built for) from the PyPI torch wheel.
#
#   scripts/fetch-libtorch.sh [--cuda] [DEST]      DEST defaults to .libtorch in the repo root
#
# PyPI ships no CPU-only torch wheel, so the CPU mode unpacks torch/lib + torch/include without
# the CUDA libraries and adds the two small CUDA runtime libraries that libtorch_cpu.so links
# (libcudart, libcupti). --cuda keeps libtorch_cuda and fetches the NVIDIA runtime wheels it needs.
# Idempotent: when DEST already holds the right version it does nothing and needs no network.
set -euo pipefail

TORCH_VERSION=2.11.0
cuda=0
dest=""
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=1 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) dest="$arg" ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${dest:-$root/.libtorch}"
mode=cpu; [ "$cuda" = 1 ] && mode=cuda
stamp="$dest/.complete-$TORCH_VERSION-$mode"

if [ -f "$stamp" ] && grep -q "__version__ = '$TORCH_VERSION" "$dest/torch/version.py" 2>/dev/null; then
  echo "libtorch $TORCH_VERSION ($mode) already in $dest"
  exit 0
fi

wheels="$dest/.wheels"
mkdir -p "$wheels"
pip_dl() {
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "$@"
}
echo "fetching torch==$TORCH_VERSION wheel from PyPI (about 900 MB, once)"
pip_dl --platform manylinux_2_28_x86_64 --python-version 3.12 --implementation cp "torch==$TORCH_VERSION"
pip_dl "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cupti==13.0.*"

rm -rf "$dest/torch" "$dest/nvidia"
whl=$(ls "$wheels"/torch-"$TORCH_VERSION"-*.whl | head -n 1)
if [ "$cuda" = 1 ]; then
  unzip -q "$whl" 'torch/lib/*' 'torch/include/*' torch/version.py -x torch/lib/libtorch_python.so -d "$dest"
else
  unzip -q "$whl" 'torch/lib/*' 'torch/include/*' torch/version.py \
    -x 'torch/lib/libtorch_cuda*' torch/lib/libtorch_python.so torch/lib/libc10_cuda.so \
       torch/lib/libtorch_nvshmem.so torch/lib/libcaffe2_nvrtc.so -d "$dest"
fi
mkdir -p "$dest/nvidia/cu13/lib"
unzip -q -o -j "$wheels"/nvidia_cuda_runtime-*.whl 'nvidia/cu13/lib/libcudart.so.13' -d "$dest/nvidia/cu13/lib"
unzip -q -o -j "$wheels"/nvidia_cuda_cupti-*.whl 'nvidia/cu13/lib/libcupti.so.13' -d "$dest/nvidia/cu13/lib"

if [ "$cuda" = 1 ]; then
  # libtorch_cuda.so needs the CUDA maths libraries, cuDNN and NCCL: take the wheels torch itself
  # requires, with the versions its metadata pins (the `cuda-toolkit[...]` extras resolve to the
  # nvidia-* library wheels, so these are downloaded with their dependencies).
  reqs=$(unzip -p "$whl" '*/METADATA' | sed -n 's/^Requires-Dist: \(\(nvidia-\|cuda-toolkit\)[^;]*\);.*/\1/p' | tr -d ' ')
  [ -n "$reqs" ] || { echo "error: no CUDA requirements found in the torch wheel metadata" >&2; exit 1; }
  set -f  # the requirement extras in brackets are not file patterns
  # shellcheck disable=SC2086
  # (the library wheels are py3-none-manylinux: the host's own platform tags select them)
  python3 -m pip download --quiet --only-binary=:all: -d "$wheels" $reqs
  set +f
  # The CUDA runtime headers are complete only with the crt/ folder of nvidia-cuda-crt (needed to
  # build the `cuda` feature's CUDA graph shim).
  pip_dl "nvidia-cuda-crt==13.0.*"
  for w in "$wheels"/nvidia_*.whl; do unzip -q -o "$w" 'nvidia/*' -d "$dest"; done
  missing=$(ldd "$dest/torch/lib/libtorch_cuda.so" | grep "not found" || true)
  [ -z "$missing" ] || { echo "error: libtorch_cuda.so still misses libraries:" >&2; echo "$missing" >&2; exit 1; }
fi

grep -q "__version__ = '$TORCH_VERSION" "$dest/torch/version.py" || {
  echo "error: $dest/torch/version.py does not say $TORCH_VERSION" >&2; exit 1; }
rm -rf "$wheels"
touch "$stamp"
echo "libtorch $TORCH_VERSION ($mode) ready in $dest (export LIBTORCH=$dest/torch)"
