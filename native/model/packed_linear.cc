#include "model/packed_linear.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "ops/gemm_routes.h"
#include "ops/onednn_linear.h"

namespace smolvla::model {

namespace {

at::Tensor restore_shape(const at::Tensor& x, const at::Tensor& y, int64_t out_features) {
  if (x.dim() == 2) return y;
  auto shape = x.sizes().vec();
  shape.back() = out_features;
  return y.view(shape);
}

// The probed route serves inference-shaped calls: CPU, float32 or bfloat16 operands of one dtype,
// and nothing that autograd must differentiate (training keeps libtorch's linear).
bool routable(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const at::ScalarType t = x.scalar_type();
  if (!x.is_cpu() || (t != at::kFloat && t != at::kBFloat16) || weight.scalar_type() != t || weight.dim() != 2) return false;
  if (bias.defined() && (bias.scalar_type() != t || bias.dim() != 1)) return false;
  const bool grad = at::GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  return !grad;
}

// Up to this many rows a GEMM is decode-shaped (the expert's M = chunk size per sample).
constexpr int64_t kSmallM = 64;

}  // namespace

at::Tensor dense(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const at::Tensor x2 = x.dim() == 2 ? x : x.reshape({-1, x.size(-1)});
  at::Tensor y = routable(x, weight, bias)
                     ? ops::linear_via(ops::model_route(x.scalar_type(), x2.size(0) <= kSmallM), x2, weight, bias)
                     : at::linear(x2, weight, bias);
  return restore_shape(x, y, weight.size(0));
}

at::Tensor dense_gelu_tanh(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (routable(x, weight, bias)) {
    const at::Tensor x2 = x.reshape({-1, x.size(-1)}).contiguous();
    const ops::GemmRoute route = ops::model_route(x.scalar_type(), x2.size(0) <= kSmallM);
    if (route == ops::GemmRoute::OnednnPlain || route == ops::GemmRoute::OnednnPacked) {
      const at::Tensor y = ops::onednn_linear(x2, weight, bias, route == ops::GemmRoute::OnednnPacked, /*gelu_tanh=*/true);
      return restore_shape(x, y, weight.size(0));
    }
  }
  return at::gelu(dense(x, weight, bias), "tanh");
}

namespace {

// The tensors a packed copy is made from: every weight, then every bias.
std::vector<at::Tensor> sources(const std::vector<torch::nn::Linear>& parts) {
  std::vector<at::Tensor> out;
  for (const auto& p : parts) out.push_back(p->weight);
  for (const auto& p : parts) {
    if (p->bias.defined()) out.push_back(p->bias);
  }
  return out;
}

}  // namespace

bool PackedLinear::stale(const std::vector<torch::nn::Linear>& parts) const {
  const std::vector<at::Tensor> src = sources(parts);
  if (!weight_.defined() || versions_.size() != src.size()) return true;
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i]._version() != versions_[i] || src[i].data_ptr() != storages_[i]) return true;
    if (src[i].scalar_type() != weight_.scalar_type() || src[i].device() != weight_.device()) return true;
  }
  return false;
}

at::Tensor PackedLinear::forward(const at::Tensor& x, const std::vector<torch::nn::Linear>& parts) {
  std::vector<at::Tensor> ws, bs;
  bool trainable = false;
  for (const auto& p : parts) {
    ws.push_back(p->weight);
    if (p->bias.defined()) bs.push_back(p->bias);
    trainable = trainable || p->weight.requires_grad();
  }
  if (trainable && at::GradMode::is_enabled()) {
    // Differentiable concatenation: gradients flow back to each part.
    return dense(x, at::cat(ws, 0), bs.empty() ? at::Tensor() : at::cat(bs, 0));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (stale(parts)) {
    // Normal (not inference-mode) tensors: autograd may save them for backward in a later call.
    c10::InferenceMode normal_tensors(false);
    at::NoGradGuard no_grad;
    weight_ = at::cat(ws, 0);
    bias_ = bs.empty() ? at::Tensor() : at::cat(bs, 0);
    versions_.clear();
    storages_.clear();
    for (const auto& t : sources(parts)) {
      versions_.push_back(t._version());
      storages_.push_back(t.data_ptr());
    }
  }
  return dense(x, weight_, bias_);
}

}  // namespace smolvla::model
