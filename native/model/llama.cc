#include "model/llama.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/activation.h>

namespace smolvla::model {

RMSNormImpl::RMSNormImpl(int64_t hidden, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({hidden}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) const {
  const at::Tensor h = x.to(at::kFloat);
  const at::Tensor normed = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * normed.to(x.scalar_type());
}

AttentionProjImpl::AttentionProjImpl(int64_t hidden, int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t kv_in) {
  auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
  q_proj = register_module("q_proj", linear(hidden, heads * head_dim));
  k_proj = register_module("k_proj", linear(kv_in, kv_heads * head_dim));
  v_proj = register_module("v_proj", linear(kv_in, kv_heads * head_dim));
  o_proj = register_module("o_proj", linear(heads * head_dim, hidden));
}

GatedMlpImpl::GatedMlpImpl(int64_t hidden, int64_t intermediate) {
  auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
  gate_proj = register_module("gate_proj", linear(hidden, intermediate));
  up_proj = register_module("up_proj", linear(hidden, intermediate));
  down_proj = register_module("down_proj", linear(intermediate, hidden));
}

at::Tensor GatedMlpImpl::forward(const at::Tensor& x) {
  const auto gate_up = gate_up_.forward(x, {gate_proj, up_proj}).chunk(2, -1);
  return dense(at::silu(gate_up[0]) * gate_up[1], down_proj);
}

DecoderLayerImpl::DecoderLayerImpl(int64_t hidden, int64_t intermediate, int64_t heads, int64_t kv_heads,
                                   int64_t head_dim, double eps, int64_t kv_in) {
  self_attn = register_module("self_attn", AttentionProj(hidden, heads, kv_heads, head_dim, kv_in));
  mlp = register_module("mlp", GatedMlp(hidden, intermediate));
  input_layernorm = register_module("input_layernorm", RMSNorm(hidden, eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(hidden, eps));
}

LlamaStackImpl::LlamaStackImpl(int64_t vocab, int64_t hidden, int64_t intermediate, int64_t num_layers, int64_t heads,
                               int64_t kv_heads, int64_t head_dim, double eps, const std::vector<bool>& cross_layers,
                               int64_t kv_in_cross) {
  if (vocab > 0) embed_tokens = register_module("embed_tokens", torch::nn::Embedding(vocab, hidden));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    const bool cross = i < static_cast<int64_t>(cross_layers.size()) && cross_layers[i];
    layers->push_back(DecoderLayer(hidden, intermediate, heads, kv_heads, head_dim, eps, cross ? kv_in_cross : hidden));
  }
  norm = register_module("norm", RMSNorm(hidden, eps));
}

}  // namespace smolvla::model
