#include "model/llama.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/activation.h>

#include <cmath>

#include "model/init.h"
#include "ops/pointwise_kernels.h"

namespace smolvla::model {

RMSNormImpl::RMSNormImpl(int64_t hidden, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({hidden}));
}

namespace {

// The same arithmetic in one pass per row, for inference on the CPU (vectorised in
// ops/pointwise_kernels where the CPU has AVX-512; this loop elsewhere): the decode loop runs 320 of
// these on (50, 720) rows per chunk, where libtorch's six ops (and their reductions' set-up) cost
// more than the work. Rounding as the ops do: the sum of squares in float32 (the order differs, a
// few ulp), normed rounded to x's dtype, then the product with the weight rounded to it.
template <typename T>
void rms_rows(const T* x, const T* w, T* out, int64_t rows, int64_t d, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    T* o = out + r * d;
    float ss = 0;
    for (int64_t j = 0; j < d; ++j) {
      const float v = static_cast<float>(xr[j]);
      ss += v * v;
    }
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    for (int64_t j = 0; j < d; ++j) {
      const T normed = static_cast<T>(static_cast<float>(xr[j]) * inv);
      o[j] = static_cast<T>(static_cast<float>(w[j]) * static_cast<float>(normed));
    }
  }
}

bool fused_rms_norm(const at::Tensor& x, const at::Tensor& w) {
  const at::ScalarType t = x.scalar_type();
  if (!x.is_cpu() || (t != at::kFloat && t != at::kBFloat16) || w.scalar_type() != t || !x.is_contiguous() || x.dim() < 1) return false;
  if (w.dim() != 1 || w.size(0) != x.size(-1)) return false;
  return !(at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad()));
}

// The SiLU·up kernel serves CPU inference on contiguous float32/bfloat16 GEMM outputs.
bool fused_silu_mul(const at::Tensor& gate_up) {
  const at::ScalarType t = gate_up.scalar_type();
  if (!gate_up.is_cpu() || (t != at::kFloat && t != at::kBFloat16) || !gate_up.is_contiguous()) return false;
  if (gate_up.dim() < 1 || gate_up.size(-1) % 2 != 0 || !ops::avx512_pointwise_available()) return false;
  return !(at::GradMode::is_enabled() && gate_up.requires_grad());
}

}  // namespace

at::Tensor RMSNormImpl::forward(const at::Tensor& x) const {
  if (fused_rms_norm(x, weight)) {
    at::Tensor out = at::empty_like(x);
    const at::Tensor w = weight.contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / d;
    const auto eps = static_cast<float>(eps_);
    if (ops::avx512_pointwise_available()) {
      if (x.scalar_type() == at::kFloat) {
        ops::rms_norm_rows(x.data_ptr<float>(), w.data_ptr<float>(), rows, d, eps, out.data_ptr<float>());
      } else {
        ops::rms_norm_rows(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()),
                           reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>()), rows, d, eps,
                           reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()));
      }
    } else if (x.scalar_type() == at::kFloat) {
      rms_rows(x.data_ptr<float>(), w.data_ptr<float>(), out.data_ptr<float>(), rows, d, eps);
    } else {
      rms_rows(x.data_ptr<at::BFloat16>(), w.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), rows, d, eps);
    }
    return out;
  }
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
  const at::Tensor gate_up = gate_up_.forward(x, {gate_proj, up_proj});
  if (fused_silu_mul(gate_up)) {
    // One pass from the GEMM's [gate | up] rows to the down projection's input.
    auto shape = gate_up.sizes().vec();
    const int64_t inter = shape.back() / 2;
    shape.back() = inter;
    at::Tensor act = at::empty(shape, gate_up.options());
    const int64_t rows = gate_up.numel() / (2 * inter);
    if (gate_up.scalar_type() == at::kFloat) {
      ops::silu_mul_rows(gate_up.data_ptr<float>(), rows, inter, act.data_ptr<float>());
    } else {
      ops::silu_mul_rows(reinterpret_cast<const uint16_t*>(gate_up.data_ptr<at::BFloat16>()), rows, inter,
                         reinterpret_cast<uint16_t*>(act.data_ptr<at::BFloat16>()));
    }
    return dense(act, down_proj);
  }
  const auto halves = gate_up.chunk(2, -1);
  return dense(at::silu(halves[0]) * halves[1], down_proj);
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
  if (vocab > 0) {
    embed_tokens = register_module("embed_tokens", torch::nn::Embedding(vocab, hidden));
    to_build_dtype(*embed_tokens);
  }
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    const bool cross = i < static_cast<int64_t>(cross_layers.size()) && cross_layers[i];
    DecoderLayer layer(hidden, intermediate, heads, kv_heads, head_dim, eps, cross ? kv_in_cross : hidden);
    to_build_dtype(*layer);
    layers->push_back(layer);
  }
  norm = register_module("norm", RMSNorm(hidden, eps));
}

}  // namespace smolvla::model
