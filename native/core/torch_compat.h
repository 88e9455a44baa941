// What differs between the libtorch versions this builds against (1.13 through 2.x), decided at
// compile time from torch/version.h so one source tree builds against each.
#pragma once

#include <torch/version.h>

#define SMOLVLA_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// at::scaled_dot_product_attention (fused flash / memory-efficient kernels on GPUs) is public from
// 2.0; 1.13 only has a private, CPU-reference variant. The 2.0 signature (no `scale`, no
// `enable_gqa`) is used so every 2.x compiles it.
#define SMOLVLA_HAS_SDPA SMOLVLA_TORCH_AT_LEAST(2, 0)
