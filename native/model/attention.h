// Grouped-query attention with float32 scores and finite masking (the published code's eager attention).
#pragma once

#include <ATen/core/Tensor.h>

#include "ops/positional.h"

namespace smolvla::model {

// A boolean mask prepared once per pass and shared by every layer: `blocked` is ~mask shaped
// (B, 1, 1, Lq, Lk) to broadcast over (kv head, group).
struct AttentionMask {
  at::Tensor blocked;
  int64_t rows = 0, cols = 0;
  static AttentionMask from(const at::Tensor& mask);  // mask (B, Lq, Lk) bool
};

// q (B, Lq, H, d), k/v (B, Lk, Hkv, d) -> (B, Lq, H*d). Query head h uses kv head h / (H/Hkv)
// (repeat_interleave order) without materialising repeated keys. Scores in float32 scaled by
// d^-0.5; blocked entries get the float32 minimum so a fully blocked row is a uniform softmax.
at::Tensor grouped_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask);

// Unmasked multi-head attention (the vision encoder): q, k, v (B, L, H, d), possibly strided views
// of a packed projection -> (B, L, H*d). Scores (q k^T) * scale, softmax in float32, then @ v — the
// reference's math, computed per (sample, head, block of query rows) in parallel so each block's
// scores stay in cache instead of materialising (B, H, L, L).
at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale);

// "avx512" when the vision attention's products use the AVX-512 kernels, else "aten".
const char* vision_attention_kernel();

// GPUs with libtorch >= 2.0: libtorch's fused scaled-dot-product attention (default scale d^-0.5,
// no mask) on the same (B, L, H, d) layout; fused_attention_available says whether to take it.
bool fused_attention_available(const at::Tensor& q);
at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

}  // namespace smolvla::model
