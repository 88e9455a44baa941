#include "ops/positional.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/check.h"
#include "ops/pointwise_kernels.h"

namespace smolvla::ops {

at::Tensor sinusoidal_time_embedding(const at::Tensor& time, int64_t dim, double min_period, double max_period,
                                     at::ScalarType dtype) {
  expect_dim(time, "time", 1, "a floating tensor of shape (B)");
  expect_floating(time, "time", "a floating tensor of shape (B)");
  if (dim <= 0 || dim % 2 != 0) fail_argument("dim", "expected a positive even width, got " + std::to_string(dim));
  if (!(min_period > 0) || !(max_period > 0)) {
    fail_argument("min_period", "periods must be positive, got min_period " + std::to_string(min_period) +
                                    " and max_period " + std::to_string(max_period));
  }
  // MPS has no float64; everything else computes in float64 like LeRobot's get_safe_dtype.
  const at::ScalarType work = time.device().is_mps() ? at::kFloat : at::kDouble;
  const auto opts = time.options().dtype(work);
  const at::Tensor fraction = at::linspace(0.0, 1.0, dim / 2, opts);
  const at::Tensor period = min_period * at::pow(at::scalar_tensor(max_period / min_period, opts), fraction);
  const at::Tensor scaling = 1.0 / period * 2 * M_PI;
  const at::Tensor angles = scaling.unsqueeze(0) * time.unsqueeze(1).to(work);
  return at::cat({at::sin(angles), at::cos(angles)}, 1).to(dtype);
}

RopeTable rope_table(const at::Tensor& positions, int64_t head_dim) {
  expect_dim(positions, "positions", 2, "an integer tensor of shape (B, L)");
  if (at::isFloatingType(positions.scalar_type())) {
    fail_argument("positions", "an integer tensor of shape (B, L)", positions);
  }
  if (head_dim <= 0 || head_dim % 2 != 0) {
    fail_argument("head_dim", "expected a positive even head width, got " + std::to_string(head_dim));
  }
  const int64_t half = head_dim / 2;
  const auto f32 = positions.options().dtype(at::kFloat);
  // Same float32 op sequence as LeRobot's apply_rope: 10000 ** ((2/d) * arange(d/2)).
  const at::Tensor exponents = (2.0 / static_cast<double>(head_dim)) * at::arange(half, f32);
  const at::Tensor timescale = at::pow(10000.0, exponents);
  const at::Tensor radians = (positions.to(at::kFloat).unsqueeze(-1) / timescale).unsqueeze(2);
  return {at::cos(radians), at::sin(radians)};
}

namespace {

// The RoPE kernel serves CPU inference where each token's heads lie contiguous (d apart) and the
// tokens evenly spaced (the q/k views of a fused projection), with a float32 table per token.
bool fused_rope(const at::Tensor& x, const RopeTable& table) {
  const at::ScalarType t = x.scalar_type();
  if (!x.is_cpu() || (t != at::kFloat && t != at::kBFloat16) || !ops::avx512_pointwise_available()) return false;
  if (at::GradMode::is_enabled() && x.requires_grad()) return false;
  if (x.stride(3) != 1 || x.stride(2) != x.size(3) || (x.size(0) > 1 && x.stride(0) != x.size(1) * x.stride(1))) return false;
  const auto table_ok = [&](const at::Tensor& a) {
    return a.scalar_type() == at::kFloat && a.is_contiguous() && a.size(2) == 1 && !a.requires_grad();
  };
  return table_ok(table.cos) && table_ok(table.sin);
}

}  // namespace

at::Tensor apply_rope(const at::Tensor& x, const RopeTable& table) {
  expect_dim(x, "x", 4, "a floating tensor of shape (B, L, H, d)");
  expect_floating(x, "x", "a floating tensor of shape (B, L, H, d)");
  const int64_t half = x.size(3) / 2;
  if (table.cos.dim() != 4 || table.cos.size(0) != x.size(0) || table.cos.size(1) != x.size(1) ||
      table.cos.size(3) != half) {
    fail_argument("positions", "a table for (B, L) = (" + std::to_string(x.size(0)) + ", " +
                                   std::to_string(x.size(1)) + ") and d = " + std::to_string(x.size(3)),
                  table.cos);
  }
  if (fused_rope(x, table)) {
    // One pass over x in place of the seven ops below (and their float32 temporaries).
    at::Tensor out = at::empty(x.sizes(), x.options());
    const int64_t tokens = x.size(0) * x.size(1), heads = x.size(2);
    const float* c = table.cos.data_ptr<float>();
    const float* s = table.sin.data_ptr<float>();
    if (x.scalar_type() == at::kFloat) {
      rope_rows(x.data_ptr<float>(), x.stride(1), tokens, heads, half, c, s, out.data_ptr<float>());
    } else {
      rope_rows(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()), x.stride(1), tokens, heads, half, c, s,
                reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()));
    }
    return out;
  }
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor x1 = xf.narrow(3, 0, half);
  const at::Tensor x2 = xf.narrow(3, half, half);
  at::Tensor out = at::cat({x1 * table.cos - x2 * table.sin, x2 * table.cos + x1 * table.sin}, 3);
  return out.to(x.scalar_type());
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& positions) {
  expect_dim(x, "x", 4, "a floating tensor of shape (B, L, H, d)");
  return apply_rope(x, rope_table(positions, x.size(3)));
}

}  // namespace smolvla::ops
