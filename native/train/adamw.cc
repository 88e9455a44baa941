#include "train/adamw.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <map>
#include <stdexcept>

namespace smolvla::train {

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions options)
    : params_(std::move(params)), o_(options) {
  for (const auto& [name, p] : params_) {
    exp_avg_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve).to(at::kFloat));
    exp_avg_sq_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve).to(at::kFloat));
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) {
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  }
}

double AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  // Global gradient norm (torch.nn.utils.clip_grad_norm_ with norm type 2).
  std::vector<at::Tensor> norms;
  for (const auto& [name, p] : params_) {
    if (p.grad().defined()) norms.push_back(p.grad().detach().to(at::kFloat).norm(2));
  }
  if (norms.empty()) return 0.0;
  const double total = at::stack(norms).norm(2).item<double>();
  if (o_.grad_clip_norm > 0) {
    const double coef = o_.grad_clip_norm / (total + 1e-6);
    if (coef < 1.0) {
      for (auto& [name, p] : params_) {
        if (p.grad().defined()) p.mutable_grad().mul_(coef);
      }
    }
  }
  ++steps_;
  const double b1 = o_.betas[0], b2 = o_.betas[1];
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const at::Tensor g = p.grad().to(at::kFloat);
    // PyTorch AdamW: decoupled decay, then the Adam update with bias corrections.
    p.mul_(1.0 - lr * o_.weight_decay);
    exp_avg_[i].mul_(b1).add_(g, 1.0 - b1);
    exp_avg_sq_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
    const at::Tensor denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bias2)).add_(o_.eps);
    p.addcdiv_(exp_avg_[i], denom, -lr / bias1);
  }
  return total;
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.emplace_back("step", at::scalar_tensor(steps_, at::kLong));
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("exp_avg." + params_[i].first, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + params_[i].first, exp_avg_sq_[i]);
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::map<std::string, at::Tensor> m(tensors.begin(), tensors.end());
  auto find = [&](const std::string& key) {
    auto it = m.find(key);
    if (it == m.end()) throw std::runtime_error("optimizer state lacks '" + key + "' (saved for another trainable set?)");
    return it->second;
  };
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor a = find("exp_avg." + params_[i].first), b = find("exp_avg_sq." + params_[i].first);
    if (a.sizes() != exp_avg_[i].sizes()) throw std::runtime_error("optimizer state shape mismatch for '" + params_[i].first + "'");
    exp_avg_[i].copy_(a);
    exp_avg_sq_[i].copy_(b);
  }
  steps_ = find("step").item<int64_t>();
}

}  // namespace smolvla::train
