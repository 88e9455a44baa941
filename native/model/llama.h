// Llama / SmolLM2 decoder pieces with transformers' module names, so that named_parameters() gives
// the state-dict keys of LeRobot checkpoints. These modules hold weights only: joint_transformer.cc
// runs the layers, interleaving the VLM and expert streams, and attention.cc computes the attention.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "model/packed_linear.h"

namespace smolvla::model {

// Normalise in float32, cast back, then multiply by plain w (not 1 + w).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t hidden, double eps);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

struct AttentionProjImpl : torch::nn::Module {
  // kv_in: the k/v input width (the layer's hidden size, or Hkv*d of the VLM for an expert layer
  // paired with a cross-attention layer).
  AttentionProjImpl(int64_t hidden, int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t kv_in);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  // q, k, v of one input in one GEMM (self-attention layers): (.., (H + 2 Hkv) * d).
  at::Tensor qkv(const at::Tensor& x) { return qkv_.forward(x, {q_proj, k_proj, v_proj}); }

 private:
  PackedLinear qkv_;
};
TORCH_MODULE(AttentionProj);

struct GatedMlpImpl : torch::nn::Module {
  GatedMlpImpl(int64_t hidden, int64_t intermediate);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  PackedLinear gate_up_;
};
TORCH_MODULE(GatedMlp);

struct DecoderLayerImpl : torch::nn::Module {
  DecoderLayerImpl(int64_t hidden, int64_t intermediate, int64_t heads, int64_t kv_heads, int64_t head_dim,
                   double eps, int64_t kv_in);
  AttentionProj self_attn{nullptr};
  GatedMlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// A decoder stack: the VLM text model (with token embedding) or an expert (without).
struct LlamaStackImpl : torch::nn::Module {
  // cross_layers[j]: layer j's k/v take kv_in_cross inputs.
  LlamaStackImpl(int64_t vocab, int64_t hidden, int64_t intermediate, int64_t num_layers, int64_t heads,
                 int64_t kv_heads, int64_t head_dim, double eps, const std::vector<bool>& cross_layers,
                 int64_t kv_in_cross);
  DecoderLayer layer(int64_t i) const { return layers->ptr<DecoderLayerImpl>(i); }
  torch::nn::Embedding embed_tokens{nullptr};  // absent for experts
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaStack);

}  // namespace smolvla::model
