// Real-Time Chunking (Black, Galliker, Levine 2025): flow-matching sampling of the next chunk guided
// so that its first actions agree with the leftover of the chunk still being executed (inpainting),
// as LeRobot ships it for SmolVLA (policies/rtc/modeling_rtc.py), without retraining.
//
// SmolVLA integrates from t = 1 (noise) to t = 0 (actions) with v = noise - actions, so per step
//   x1 = x_t - t v                 the clean-chunk estimate
//   err = (leftover - x1) * W      W: prefix weights over the chunk
//   correction = errᵀ ∂x1/∂x_t     a vector-Jacobian product through the expert (the cache constant)
//   v_guided = v - min(c / r², max_guidance_weight) * correction,  tau = 1 - t,
//   c = (1 - tau) / tau,  1 / r² = ((1 - tau)² + tau²) / (1 - tau)²
// and x_t += dt * v_guided.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "model/flow_matching.h"

namespace smolvla::model {

// LeRobot's prefix_attention_schedule: how the weight falls from 1 (the actions that execute
// while the request is in flight) to 0 (at the execution horizon).
enum class PrefixSchedule { Zeros, Ones, Linear, Exp };

// "zeros" | "ones" | "linear" | "exp"; an ArgumentError naming `arg` otherwise.
PrefixSchedule parse_prefix_schedule(const std::string& name, const std::string& arg);

struct RtcOptions {
  at::Tensor leftover;            // (B, n, a), n <= chunk_size, a <= max_action_dim: model-space actions
  int64_t inference_delay = 0;    // actions that execute before the new chunk arrives: weight 1
  int64_t execution_horizon = 10; // weight 0 from here on (clamped to n: nothing to agree with past it)
  PrefixSchedule schedule = PrefixSchedule::Linear;
  double max_guidance_weight = 10.0;
  // True: treat v as a constant (correction = err), which is what LeRobot's shipped code computes
  // (its v_t is evaluated before x_t requires grad) and costs no backward pass. False: the paper's
  // Jacobian through the expert.
  bool stop_gradient = false;
};

// (total,) float32 weights for delay `start` and horizon `end`, exactly as LeRobot's get_prefix_weights.
at::Tensor rtc_prefix_weights(PrefixSchedule schedule, int64_t start, int64_t end, int64_t total);

// min(c / r², max) at SmolVLA time t; infinite (t = 1) -> max, undefined (t = 0) -> 0, as LeRobot's nan_to_num.
double rtc_guidance_weight(double t, double max_guidance_weight);

// ArgumentErrors for a leftover of the wrong shape, a negative delay or horizon, a weight <= 0.
void validate_rtc_options(const RtcOptions& options, const ModelConfig& config, int64_t batch);

// Guided sampling from `noise` (never modified) with a filled cache; the same Euler times as
// FlowMatchingImpl::integrate. `trace` gets x.k, v.k, correction.k, guided.k, gw.k and weights.
at::Tensor rtc_integrate(FlowMatchingImpl& fm, const at::Tensor& prefix_pad, const KVCache& cache, const at::Tensor& noise,
                         const RtcOptions& options, Trace* trace, const StopCheck& stop);

}  // namespace smolvla::model
