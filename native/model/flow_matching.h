// VLAFlowMatching: token sequences, the prefix pass, flow-matching sampling, the training objectives
// of the main and the delta expert, and the cache request. Module names follow LeRobot
// (`model.state_proj`, `model.pre_cls_param`, ...).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/joint_transformer.h"

namespace smolvla::model {

// Named intermediate tensors, filled when a caller asks (parity tests, debugging).
using Trace = std::map<std::string, at::Tensor>;

// Called between denoising steps; returning true cancels the work (an exception is thrown).
using StopCheck = std::function<bool()>;

struct Observation {
  std::vector<at::Tensor> images;     // each (B, 3, H, W) in [-1, 1]
  std::vector<at::Tensor> img_masks;  // each (B) bool
  at::Tensor lang_tokens;             // (B, L) int64
  at::Tensor lang_masks;              // (B, L) bool
  at::Tensor state;                   // (B, max_state_dim), normalised and padded
  int64_t batch() const { return state.size(0); }
};

struct PrefixResult {
  at::Tensor prefix_out;  // (B, P, Dv) after the final RMSNorm
  KVCache cache;
  at::Tensor pad_masks;    // (B, P) bool
  at::Tensor obs_cls_out;  // (B, Ncp, Dv): the first prefix outputs, with the CLS head; else undefined
};

struct ClsMlpImpl : torch::nn::Module {
  ClsMlpImpl(int64_t in, int64_t hidden, int64_t out);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ClsMlp);

using LossDict = std::map<std::string, at::Tensor>;

class FlowMatchingImpl : public torch::nn::Module {
 public:
  explicit FlowMatchingImpl(const ModelConfig& c);

  const ModelConfig& config() const { return c_; }

  // Prefix embeddings, pad masks and block marks.
  struct Sequence {
    at::Tensor embs, pad, marks;
  };
  Sequence embed_prefix(const Observation& obs, Trace* trace);
  // Main suffix (C action tokens) or delta suffix (C action tokens + Ncs CLS tokens).
  Sequence embed_suffix(const at::Tensor& x, const at::Tensor& time, Expert expert);

  // What every main-expert denoising step against one cache shares: the pass plan and the expert's
  // projections of the cache. Built once per sampling run.
  struct DecodeSetup {
    PassPlan plan;
    ExpertKV expert_kv;
  };
  DecodeSetup action_decode_setup(const at::Tensor& prefix_pad, const KVCache& cache);
  // The main expert's velocity (B, C, A) at (x, t); differentiable in x when grad mode is on (the
  // cache stays a constant). Guided sampling (model/rtc.h) builds its loop from this.
  at::Tensor action_velocity(const at::Tensor& x, float t, const DecodeSetup& setup, const KVCache& cache);

  // The cache-filling prefix pass.
  PrefixResult prefix_pass(const Observation& obs, Trace* trace);

  // Flow-matching sampling from `noise` (never modified) with a cache.
  at::Tensor integrate(const at::Tensor& prefix_pad, const KVCache& cache, const at::Tensor& noise, Trace* trace,
                       const StopCheck& stop);

  // Sampling from a filled cache: noise (B, C, A) -> actions (B, C, A). Draws standard normal noise
  // on the cache's device from libtorch's default generator when `noise` is undefined (LeRobot's
  // sample_noise).
  at::Tensor sample(const at::Tensor& prefix_pad, const KVCache& cache, const at::Tensor& noise, const StopCheck& stop);

  // cal_cache's delta actions: one delta step at t = 0.5 from the encoded action context (B, n, A),
  // or from zeros when `context` is undefined -> (B, C, A).
  at::Tensor delta_actions(const at::Tensor& prefix_pad, const KVCache& cache, const at::Tensor& context);

  // One delta-expert step at t = 0.5 from x: (velocity over the C action tokens (B, C, A), the
  // full suffix output). Departure (docs/DEPARTURES.md): action positions exclude the trailing CLS tokens.
  std::pair<at::Tensor, at::Tensor> delta_step(const at::Tensor& prefix_pad, const KVCache& cache, const at::Tensor& x);

  // (B, n, A) -> (B, C, A): encoder per action, then tile (n < C), interpolate (n > C) or as is.
  at::Tensor encode_action_context(const at::Tensor& context);

  // Main objective with injectable noise and time.
  LossDict forward_main(const Observation& obs, const at::Tensor& actions, const at::Tensor& is_pad,
                        const at::Tensor& noise, const at::Tensor& time);
  // Delta objective. main_x0: start of the gradient-free main integration (zeros when
  // undefined); cls_noise: already-scaled noise on x_t (sampled on the real columns when undefined).
  LossDict forward_delta(const Observation& obs, const at::Tensor& is_pad, const at::Tensor& main_x0,
                         const at::Tensor& cls_noise, Trace* trace);

  // Names (full state-dict names) of the parameters training updates.
  std::vector<std::string> trainable_parameter_names(const std::string& prefix) const;

  VlmWithExpert vlm_with_expert{nullptr};
  torch::nn::Linear state_proj{nullptr}, action_in_proj{nullptr}, action_out_proj{nullptr},
      action_time_mlp_in{nullptr}, action_time_mlp_out{nullptr}, delta_action_in_proj{nullptr},
      delta_action_out_proj{nullptr}, delta_action_time_mlp_in{nullptr}, delta_action_time_mlp_out{nullptr};
  torch::nn::Sequential action_context_encoder{nullptr};
  at::Tensor pre_cls_param, suf_cls_param;
  ClsMlp obs_cls_proj{nullptr}, act_cls_proj{nullptr};

 private:
  // Decode a suffix against a cache -> the expert's suffix output (B, Ls, De).
  at::Tensor decode(const Sequence& suffix, const PassPlan& plan, const KVCache& cache, const ExpertKV* expert_kv,
                    Expert expert);
  PassPlan decode_plan(const at::Tensor& prefix_pad, const at::Tensor& suffix_pad, const at::Tensor& suffix_marks) const;
  at::Tensor velocity(const at::Tensor& suffix_out, Expert expert);
  LossDict loss_dict(const at::Tensor& losses, const at::Tensor& is_pad, const std::string& prefix) const;
  at::ScalarType backbone_dtype() const;

  ModelConfig c_;
};
TORCH_MODULE(FlowMatching);

// The policy's root: `model.*` names as in LeRobot's SmolVLAPolicy state dict.
struct PolicyModuleImpl : torch::nn::Module {
  explicit PolicyModuleImpl(const ModelConfig& c);
  FlowMatching model{nullptr};
};
TORCH_MODULE(PolicyModule);

}  // namespace smolvla::model
