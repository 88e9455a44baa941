#include "model/rtc.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/check.h"

namespace smolvla::model {
namespace {

// linspace(1, 0, L + 2) without its ends: the decay between the frozen and the free actions.
at::Tensor linear_decay(int64_t start, int64_t end, int64_t total) {
  const int64_t steps = total - std::max<int64_t>(total - end, 0) - start;
  if (end <= start || steps <= 0) return at::zeros({0});
  return at::linspace(1, 0, steps + 2).narrow(0, 1, steps);
}

// A copy the autograd graph may save: tensors made under InferenceMode (a cache from prefix())
// cannot be saved for backward.
KVCache saveable(const KVCache& cache) {
  KVCache out;
  for (size_t i = 0; i < cache.keys.size(); ++i) {
    const at::Tensor& k = cache.keys[i];
    const at::Tensor& v = cache.values[i];
    out.keys.push_back(k.is_inference() ? k.clone() : k);
    out.values.push_back(v.is_inference() ? v.clone() : v);
  }
  return out;
}

}  // namespace

PrefixSchedule parse_prefix_schedule(const std::string& name, const std::string& arg) {
  if (name == "zeros") return PrefixSchedule::Zeros;
  if (name == "ones") return PrefixSchedule::Ones;
  if (name == "linear") return PrefixSchedule::Linear;
  if (name == "exp") return PrefixSchedule::Exp;
  fail_argument(arg, "expected 'zeros', 'ones', 'linear' or 'exp', got '" + name + "'");
}

at::Tensor rtc_prefix_weights(PrefixSchedule schedule, int64_t start, int64_t end, int64_t total) {
  start = std::min(start, end);
  if (schedule == PrefixSchedule::Zeros) {
    at::Tensor w = at::zeros({total});
    w.narrow(0, 0, std::clamp<int64_t>(start, 0, total)).fill_(1.0);
    return w;
  }
  if (schedule == PrefixSchedule::Ones) {
    at::Tensor w = at::ones({total});
    if (end < total) w.narrow(0, std::max<int64_t>(end, 0), total - std::max<int64_t>(end, 0)).zero_();
    return w;
  }
  at::Tensor decay = linear_decay(start, end, total);
  if (schedule == PrefixSchedule::Exp) decay = decay * at::expm1(decay) / (M_E - 1.0);
  return at::cat({at::ones({std::min(start, total)}), decay, at::zeros({std::max<int64_t>(total - end, 0)})});
}

double rtc_guidance_weight(double t, double max_guidance_weight) {
  const double tau = 1.0 - t, one_minus = 1.0 - tau;
  const double inf = std::numeric_limits<double>::infinity();
  const double c = tau != 0.0 ? one_minus / tau : inf;
  const double inv_r2 = one_minus != 0.0 ? (one_minus * one_minus + tau * tau) / (one_minus * one_minus) : inf;
  const double w = c * inv_r2;
  return std::isnan(w) ? 0.0 : std::min(w, max_guidance_weight);
}

void validate_rtc_options(const RtcOptions& o, const ModelConfig& c, int64_t batch) {
  const std::string shape = "a float tensor of shape (" + std::to_string(batch) + ", n, a) with 1 <= n <= " +
                            std::to_string(c.chunk_size) + " and 1 <= a <= " + std::to_string(c.max_action_dim);
  expect_defined(o.leftover, "leftover", shape);
  expect_dim(o.leftover, "leftover", 3, shape);
  expect_floating(o.leftover, "leftover", shape);
  const at::Tensor& l = o.leftover;
  if (l.size(0) != batch || l.size(1) < 1 || l.size(1) > c.chunk_size || l.size(2) < 1 || l.size(2) > c.max_action_dim) {
    fail_argument("leftover", shape, l);
  }
  expect_non_negative(o.inference_delay, "inferenceDelay");
  expect_non_negative(o.execution_horizon, "executionHorizon");
  if (!(o.max_guidance_weight > 0.0) || !std::isfinite(o.max_guidance_weight)) {
    fail_argument("maxGuidanceWeight", "expected a finite number > 0, got " + std::to_string(o.max_guidance_weight));
  }
}

at::Tensor rtc_integrate(FlowMatchingImpl& fm, const at::Tensor& prefix_pad, const KVCache& cache_in, const at::Tensor& noise,
                         const RtcOptions& o, Trace* trace, const StopCheck& stop) {
  const ModelConfig& c = fm.config();
  const int64_t b = noise.size(0), n = o.leftover.size(1), a = o.leftover.size(2);
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(noise.device());
  const at::Tensor weights =
      rtc_prefix_weights(o.schedule, o.inference_delay, std::min(o.execution_horizon, n), c.chunk_size).to(noise.device());
  // The leftover zero-padded to (B, C, A); the weights are 0 past n (the horizon is clamped to n).
  at::Tensor target = at::zeros({b, c.chunk_size, c.max_action_dim}, f32);
  target.narrow(1, 0, n).narrow(2, 0, a).copy_(o.leftover);
  const at::Tensor w = weights.view({1, -1, 1});

  const KVCache cache = saveable(cache_in);
  const FlowMatchingImpl::DecodeSetup setup = [&] {
    at::NoGradGuard no_grad;
    return fm.action_decode_setup(prefix_pad, cache);
  }();
  // Only x needs a graph; with stop_gradient nothing does.
  const c10::AutoGradMode grad_mode(!o.stop_gradient);
  const float dt = static_cast<float>(-1.0 / static_cast<double>(c.num_steps));
  float t = 1.0f;
  at::Tensor x = noise.to(at::kFloat).clone();
  for (int step = 0; t >= -dt / 2; ++step) {
    if (stop && stop()) throw std::runtime_error("cancelled");
    const at::Tensor xg = o.stop_gradient ? x : x.detach().requires_grad_(true);
    const at::Tensor v = fm.action_velocity(xg, t, setup, cache);
    const at::Tensor x1 = xg - t * v;
    const at::Tensor err = ((target - x1) * w).detach();
    const at::Tensor correction = o.stop_gradient ? err : torch::autograd::grad({x1}, {xg}, {err})[0];
    const double gw = rtc_guidance_weight(t, o.max_guidance_weight);
    const at::Tensor guided = v.detach() - gw * correction;
    if (trace) {
      const std::string k = std::to_string(step);
      (*trace)["x." + k] = x.detach().clone();
      (*trace)["v." + k] = v.detach();
      (*trace)["correction." + k] = correction;
      (*trace)["guided." + k] = guided;
      (*trace)["gw." + k] = at::scalar_tensor(gw, at::TensorOptions().dtype(at::kDouble));
    }
    x = x.detach() + dt * guided;
    t += dt;
  }
  if (trace) (*trace)["weights"] = weights;
  return x;
}

}  // namespace smolvla::model
