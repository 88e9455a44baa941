// y = x Wᵀ + b through oneDNN's matmul with the weight reordered once into the blocked layout its
// kernels read (a "prepacked" weight), for float32 and bfloat16 (float32 accumulation) on the CPU.
// libtorch's own linear goes to OpenBLAS for float32, which reaches about half of oneDNN's rate on
// these shapes. oneDNN 2.x is opened at run time (the libdnnl.so.2 that Debian's libtorch already
// loads), so the addon has no link-time dependency on it and loads where it is absent.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace smolvla::ops {

// True when oneDNN 2.x was found (compiled with its header, and its library opens at run time).
bool onednn_available();
// Where oneDNN was found or why not, for build/route reports.
std::string onednn_status();

// x (M, K) contiguous, weight (N, K), bias (N) or undefined, all CPU and of one dtype (float32 or
// bfloat16). packed: read the weight from its cached blocked copy (made on first use, kept while the
// weight's storage lives and its version is unchanged); otherwise read the (N, K) tensor in place.
// gelu_tanh: apply tanh-GELU to the output inside the kernel.
at::Tensor onednn_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool packed,
                         bool gelu_tanh = false);

// Bytes held by packed weight copies; drops copies whose weights were freed first.
int64_t onednn_packed_bytes();

// Drops the packed copies of weights that were freed (otherwise dropped only every 64th new copy).
void onednn_drop_freed_copies();

}  // namespace smolvla::ops
