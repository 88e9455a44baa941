// The SmolVLM backbone with the action expert and the delta expert, run layer by layer over two
// streams (prefix through the VLM, suffix through an expert) with the self/cross-attention
// interleave of Module names follow LeRobot's SmolVLMWithExpertModel.
#pragma once

#include <torch/nn/module.h>

#include <vector>

#include "model/attention.h"
#include "model/config.h"
#include "model/llama.h"
#include "model/vision.h"

namespace smolvla::model {

// Per VLM layer: post-RoPE prefix keys and un-rotated values, each (B, P, Hkv, d). Never modified
// after the prefix pass fills it, so one cache serves every denoising step and later calls.
struct KVCache {
  std::vector<at::Tensor> keys, values;
};

// An expert's own k/v projections of a cache, for its cross-attention layers (they depend only on
// the cache, so decoding computes them once instead of once per denoising step).
struct ExpertKV {
  std::vector<at::Tensor> keys, values;
};

// Masks and RoPE tables of one pass, built once and shared by every layer.
struct PassPlan {
  int64_t prefix_len = 0;  // rows of the prefix stream in this pass (0 when decoding)
  int64_t suffix_len = 0;
  AttentionMask joint;  // rows of the present streams x [cached prefix ; present streams]
  ops::RopeTable joint_rope;
  AttentionMask prefix_only;  // prefix rows x prefix columns
  ops::RopeTable prefix_rope;
  AttentionMask cross;  // suffix rows x prefix-key columns
  ops::RopeTable cross_rope;  // suffix positions shifted so each row's minimum is 0

  // mask (B, Lq, Lk) bool, positions (B, Lq) of the present rows [prefix ; suffix].
  static PassPlan build(const at::Tensor& mask, const at::Tensor& positions, int64_t prefix_len, int64_t suffix_len,
                        int64_t head_dim);
};

enum class Expert { Action, Delta };

struct SmolVLMModelImpl : torch::nn::Module {
  explicit SmolVLMModelImpl(const ModelConfig& c);
  VisionTransformer vision_model{nullptr};
  Connector connector{nullptr};
  LlamaStack text_model{nullptr};
};
TORCH_MODULE(SmolVLMModel);

// Holds `.model` only: SmolVLA never uses the language-model head (its checkpoint key is ignored).
struct SmolVLMHolderImpl : torch::nn::Module {
  explicit SmolVLMHolderImpl(const ModelConfig& c);
  SmolVLMModel model{nullptr};
};
TORCH_MODULE(SmolVLMHolder);

struct StreamOutputs {
  at::Tensor prefix, suffix;  // after each model's final RMSNorm; undefined when absent
};

class VlmWithExpertImpl : public torch::nn::Module {
 public:
  explicit VlmWithExpertImpl(const ModelConfig& c);

  // One pass over the present streams. fill_cache: prefix-only, every layer self-attention, writes
  // `cache_out`. past: decode the suffix against it. expert_kv: the expert's projections of `past`.
  StreamOutputs forward(const at::Tensor& prefix, const at::Tensor& suffix, const PassPlan& plan, Expert expert,
                        bool fill_cache, KVCache* cache_out, const KVCache* past, const ExpertKV* expert_kv);

  ExpertKV project_cache(const KVCache& cache, Expert expert);

  LlamaStack expert(Expert e) const { return e == Expert::Action ? lm_expert : delta_expert; }

  SmolVLMHolder vlm{nullptr};
  LlamaStack lm_expert{nullptr}, delta_expert{nullptr};

 private:
  ModelConfig c_;
};
TORCH_MODULE(VlmWithExpert);

}  // namespace smolvla::model
