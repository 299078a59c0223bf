// libtorch settings that tch does not expose. Compiled against the same headers as tch.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

extern "C" {

// TF32 for cuDNN convolutions (libtorch's default: on) and cuBLAS matmuls (default: off).
void patrack_set_tf32(int enabled) {
  at::globalContext().setAllowTF32CuDNN(enabled != 0);
  at::globalContext().setAllowTF32CuBLAS(enabled != 0);
}

int patrack_tf32_cudnn() { return at::globalContext().allowTF32CuDNN() ? 1 : 0; }

// Mixed-precision training: CUDA autocast computes in bfloat16 (libtorch's CUDA default is
// float16, which needs loss scaling). tch's `autocast` switches it on and off around a closure.
void patrack_autocast_cuda_bf16() { at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16); }

// Whether CUDA autocast is on and computes in bfloat16 (1), on in another dtype (2), or off (0).
int patrack_autocast_cuda_state() {
  if (!at::autocast::is_autocast_enabled(at::kCUDA)) return 0;
  return at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16 ? 1 : 2;
}

// The libtorch version the binary was compiled against, e.g. "2.11.0".
const char* patrack_torch_version() { return TORCH_VERSION; }
}
