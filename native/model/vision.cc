#include "model/vision.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/check.h"
#include "model/attention.h"
#include "model/init.h"
#include "ops/pointwise_kernels.h"

namespace smolvla::model {

at::Tensor vision_position_ids(int64_t grid, int64_t nb_h, int64_t nb_w) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  // Boundaries with a Python-float step; coordinates with step = 1/nb as a float32 value, because
  // transformers divides 1 by the patch-count tensor. Done exactly so for parity.
  const at::Tensor boundaries = at::arange(1.0 / grid, 1.0, 1.0 / grid, f32);
  auto coords = [&](int64_t nb) {
    const float step = 1.0f / static_cast<float>(nb);
    return at::bucketize(at::arange(0.0, 1.0 - 1e-6, static_cast<double>(step), f32), boundaries,
                         /*out_int32=*/false, /*right=*/true);
  };
  return (coords(nb_h).unsqueeze(1) * grid + coords(nb_w)).flatten();
}

VisionEmbeddingsImpl::VisionEmbeddingsImpl(const VisionDims& d) : patch_(d.patch), grid_(d.image_size / d.patch) {
  patch_embedding = register_module(
      "patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, d.hidden, d.patch).stride(d.patch)));
  position_embedding = register_module("position_embedding", torch::nn::Embedding(grid_ * grid_, d.hidden));
}

at::Tensor VisionEmbeddingsImpl::forward(const at::Tensor& pixels) {
  // Row-major (B, N, C): the transposed view would make every residual add after it keep the
  // transposed layout (elementwise ops follow their input's strides), and each LayerNorm and GEMM
  // then copy the stream back to rows, twice per layer.
  const at::Tensor emb = patch_embedding(pixels).flatten(2).transpose(1, 2).contiguous();
  const int64_t nb_h = pixels.size(2) / patch_, nb_w = pixels.size(3) / patch_;
  if (nb_h > grid_ || nb_w > grid_) {
    fail_argument("images", "at most " + std::to_string(grid_ * patch_) + " pixels per side for this vision encoder",
                  pixels);
  }
  at::Tensor ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& cached = position_ids_[{nb_h, nb_w}];
    if (!cached.defined()) cached = vision_position_ids(grid_, nb_h, nb_w);
    ids = cached;
  }
  return emb + position_embedding(ids.to(pixels.device())).unsqueeze(0);
}

VisionAttentionImpl::VisionAttentionImpl(const VisionDims& d) : heads_(d.heads), head_dim_(d.hidden / d.heads) {
  q_proj = register_module("q_proj", torch::nn::Linear(d.hidden, d.hidden));
  k_proj = register_module("k_proj", torch::nn::Linear(d.hidden, d.hidden));
  v_proj = register_module("v_proj", torch::nn::Linear(d.hidden, d.hidden));
  out_proj = register_module("out_proj", torch::nn::Linear(d.hidden, d.hidden));
}

at::Tensor VisionAttentionImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), n = x.size(1);
  const double scale = std::pow(static_cast<double>(head_dim_), -0.5);
  // One GEMM for q, k and v; the heads are strided views of it.
  const at::Tensor qkv = qkv_.forward(x, {q_proj, k_proj, v_proj}).view({b, n, 3, heads_, head_dim_});
  const at::Tensor q = qkv.select(2, 0), k = qkv.select(2, 1), v = qkv.select(2, 2);
  // Blocked CPU path; GPUs take the fused path, else (and under autograd) the whole-tensor path below.
  if (!qkv.requires_grad() && qkv.is_cpu()) return dense(blocked_attention(q, k, v, scale), out_proj);
  // GPUs: libtorch's fused kernels (libtorch >= 2.0; the scale is its default, head_dim^-0.5).
  if (!qkv.requires_grad() && fused_attention_available(q)) return out_proj(fused_attention(q, k, v));
  // Under autograd: the same math as whole tensors (no mask: every patch is valid; softmax in float32).
  const at::Tensor w = at::matmul(q.transpose(1, 2), k.permute({0, 2, 3, 1})) * scale;
  const at::Tensor probs = at::softmax(w, -1, at::kFloat).to(q.scalar_type());
  return out_proj(at::matmul(probs, v.transpose(1, 2)).transpose(1, 2).reshape({b, n, heads_ * head_dim_}));
}

VisionMlpImpl::VisionMlpImpl(const VisionDims& d) {
  fc1 = register_module("fc1", torch::nn::Linear(d.hidden, d.intermediate));
  fc2 = register_module("fc2", torch::nn::Linear(d.intermediate, d.hidden));
}

namespace {

// LayerNorm; bfloat16 on the CPU computed in float32 and rounded once: libtorch 1.13's bfloat16
// kernel is scalar (~4 ms for 1024 x 768, a tenth of a prefix in all), and widening to its float32
// one costs two conversions of the whole activation. With AVX-512 one pass reads the bfloat16 rows
// and writes the result; elsewhere the widened float32 kernel. Either way the statistics are float32
// (libtorch's kernel accumulates in float32 too), so the result is the same up to rounding.
at::Tensor layer_norm(torch::nn::LayerNorm& ln, const at::Tensor& x) {
  if (!(x.is_cpu() && x.scalar_type() == at::kBFloat16)) return ln->forward(x);
  const auto& o = ln->options;
  const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || ln->weight.requires_grad());
  if (!grad && ops::avx512_pointwise_available() && x.is_contiguous() && ln->weight.scalar_type() == at::kBFloat16 &&
      ln->bias.defined() && ln->bias.scalar_type() == at::kBFloat16 && o.normalized_shape().size() == 1) {
    at::Tensor out = at::empty_like(x);
    const at::Tensor w = ln->weight.contiguous(), b = ln->bias.contiguous();
    const int64_t d = x.size(-1);
    const auto bits = [](const at::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); };
    ops::layer_norm_rows(bits(x), bits(w), bits(b), x.numel() / d, d, static_cast<float>(o.eps()),
                         reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()));
    return out;
  }
  return at::layer_norm(x.to(at::kFloat), o.normalized_shape(), ln->weight.to(at::kFloat), ln->bias.to(at::kFloat), o.eps())
      .to(at::kBFloat16);
}

}  // namespace

at::Tensor VisionMlpImpl::forward(const at::Tensor& x) { return dense(dense_gelu_tanh(x, fc1->weight, fc1->bias), fc2); }

VisionEncoderLayerImpl::VisionEncoderLayerImpl(const VisionDims& d) {
  const auto ln = torch::nn::LayerNormOptions({d.hidden}).eps(d.eps);
  self_attn = register_module("self_attn", VisionAttention(d));
  layer_norm1 = register_module("layer_norm1", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", VisionMlp(d));
  layer_norm2 = register_module("layer_norm2", torch::nn::LayerNorm(ln));
}

at::Tensor VisionEncoderLayerImpl::forward(const at::Tensor& x) {
  const at::Tensor h = x + self_attn(layer_norm(layer_norm1, x));
  return h + mlp(layer_norm(layer_norm2, h));
}

VisionEncoderImpl::VisionEncoderImpl(const VisionDims& d) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < d.layers; ++i) {
    VisionEncoderLayer layer(d);
    to_build_dtype(*layer);
    layers->push_back(layer);
  }
}

VisionTransformerImpl::VisionTransformerImpl(const VisionDims& d) {
  embeddings = register_module("embeddings", VisionEmbeddings(d));
  encoder = register_module("encoder", VisionEncoder(d));
  post_layernorm = register_module("post_layernorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d.hidden}).eps(d.eps)));
}

at::Tensor VisionTransformerImpl::forward(const at::Tensor& pixels) {
  at::Tensor h = embeddings(pixels);
  for (size_t i = 0; i < encoder->layers->size(); ++i) h = encoder->layers->ptr<VisionEncoderLayerImpl>(i)->forward(h);
  return layer_norm(post_layernorm, h);
}

ModalityProjectionImpl::ModalityProjectionImpl(int64_t in, int64_t out) {
  proj = register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)));
}

at::Tensor shuffle_patches(const at::Tensor& x, int64_t s) {
  const int64_t b = x.size(0), seq = x.size(1), dim = x.size(2);
  const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(seq)));
  if (side * side != seq || side % s != 0) {
    fail_argument("image_hidden_states", "a square patch grid whose side is divisible by scale_factor " + std::to_string(s), x);
  }
  // transformers' SmolVLMConnector.pixel_shuffle, op for op.
  at::Tensor y = x.view({b, side, side, dim});
  y = y.view({b, side, side / s, dim * s});
  y = y.permute({0, 2, 1, 3});
  y = y.reshape({b, side / s, side / s, dim * s * s});
  y = y.permute({0, 2, 1, 3});
  return y.reshape({b, seq / (s * s), dim * s * s});
}

ConnectorImpl::ConnectorImpl(int64_t vision_hidden, int64_t text_hidden, int64_t scale_factor) : scale_(scale_factor) {
  modality_projection = register_module(
      "modality_projection", ModalityProjection(vision_hidden * scale_factor * scale_factor, text_hidden));
}

at::Tensor ConnectorImpl::forward(const at::Tensor& x) { return dense(shuffle_patches(x, scale_), modality_projection->proj); }

}  // namespace smolvla::model
