// Two libtorch settings that tch does not expose. Compiled against the same headers as tch.
#include <ATen/Context.h>
#include <torch/version.h>

extern "C" {

// TF32 for cuDNN convolutions (libtorch's default: on) and cuBLAS matmuls (default: off).
void patrack_set_tf32(int enabled) {
  at::globalContext().setAllowTF32CuDNN(enabled != 0);
  at::globalContext().setAllowTF32CuBLAS(enabled != 0);
}

int patrack_tf32_cudnn() { return at::globalContext().allowTF32CuDNN() ? 1 : 0; }

// The libtorch version the binary was compiled against, e.g. "2.11.0".
const char* patrack_torch_version() { return TORCH_VERSION; }
}
