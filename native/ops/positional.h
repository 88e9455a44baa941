// Positional encodings: the flow-matching time embedding and SmolVLA's own RoPE.
#pragma once

#include <ATen/core/Tensor.h>

namespace smolvla::ops {

// Sine-cosine embedding of scalar times: time (B) -> (B, dim) as [sin(2πt/p_i), cos(2πt/p_i)],
// p_i = min_period * (max_period / min_period)^(i / (dim/2 - 1)). Computed in float64 where the
// device supports it (as LeRobot does) and returned in `dtype`.
at::Tensor sinusoidal_time_embedding(const at::Tensor& time, int64_t dim, double min_period, double max_period,
                                     at::ScalarType dtype);

// cos/sin tables for positions (B, L) and head dim d: each (B, L, 1, d/2), float32. Built once per
// sequence and shared by every layer and head.
struct RopeTable {
  at::Tensor cos;
  at::Tensor sin;
};
RopeTable rope_table(const at::Tensor& positions, int64_t head_dim);

// Rotate-half RoPE of x (B, L, H, d) with a table from rope_table; math in float32, result in x's dtype.
at::Tensor apply_rope(const at::Tensor& x, const RopeTable& table);

// Convenience: apply_rope(x, rope_table(positions, d)).
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& positions);

}  // namespace smolvla::ops
