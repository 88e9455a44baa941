#include "model/init.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <map>
#include <string>

namespace smolvla::model {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5)) on the weight, which is U(-1/sqrt(in),
// 1/sqrt(in)), and the bias from the same bound.
void default_linear(at::Tensor& t, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  t.uniform_(-bound, bound);
}

}  // namespace

void init_published(torch::nn::Module& policy, uint64_t seed) {
  const std::string vwe = "model.vlm_with_expert.";
  const std::string experts[] = {vwe + "lm_expert.", vwe + "delta_expert."};
  torch::NoGradGuard no_grad;
  at::manual_seed(seed);
  auto params = policy.named_parameters(true);
  // Fan-in of each Linear by its module prefix (the weight's second dimension), for the biases.
  std::map<std::string, int64_t> fan_in;
  for (const auto& p : params) {
    if (ends_with(p.key(), ".weight") && p.value().dim() == 2) fan_in[p.key().substr(0, p.key().size() - 7)] = p.value().size(1);
  }
  for (auto& p : params) {
    const std::string& name = p.key();
    at::Tensor t = p.value();
    const std::string module = name.substr(0, name.rfind('.'));
    if (name == "model.pre_cls_param" || name == "model.suf_cls_param") {
      t.normal_(0.0, 0.02);
      continue;
    }
    if (!starts_with(name, vwe)) {
      // Projections and the CLS MLPs: nn.Linear's own init.
      auto it = fan_in.find(module);
      if (it != fan_in.end()) default_linear(t, it->second);
      continue;
    }
    bool cross_kv = false;
    for (const auto& e : experts) {
      if (!starts_with(name, e) || !(ends_with(module, ".k_proj") || ends_with(module, ".v_proj"))) continue;
      // A cross-attention k/v reads the VLM's key/value width, not the expert's: its input size
      // differs from q_proj's, and the published code builds it as a plain nn.Linear.
      const std::string q = module.substr(0, module.size() - 6) + "q_proj";
      cross_kv = fan_in.count(q) && fan_in.count(module) && fan_in[q] != fan_in[module];
    }
    if (cross_kv) {
      default_linear(t, fan_in[module]);
    } else if (ends_with(name, ".bias")) {
      t.zero_();
    } else if (t.dim() == 1) {
      t.fill_(1.0);  // LayerNorm / RMSNorm weights
    } else {
      t.normal_(0.0, 0.02);  // Linear, Conv2d and Embedding weights
    }
  }
}

}  // namespace smolvla::model
