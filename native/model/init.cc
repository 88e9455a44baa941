#include "model/init.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <map>
#include <string>

#include "model/flow_matching.h"

namespace smolvla::model {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

const std::string kVlmWithExpert = "model.vlm_with_expert.";

// True for an expert's k_proj / v_proj whose input width differs from its q_proj's: a
// cross-attention projection reading the VLM's keys and values.
bool is_cross_kv(const std::string& module, const std::map<std::string, int64_t>& fan_in) {
  const bool expert = starts_with(module, kVlmWithExpert + "lm_expert.") || starts_with(module, kVlmWithExpert + "delta_expert.");
  if (!expert || !(ends_with(module, ".k_proj") || ends_with(module, ".v_proj"))) return false;
  const auto q = fan_in.find(module.substr(0, module.size() - 6) + "q_proj");
  const auto kv = fan_in.find(module);
  return q != fan_in.end() && kv != fan_in.end() && q->second != kv->second;
}

thread_local at::ScalarType build_dtype = at::kFloat;

// fill(t) on t itself when it is float32; else on a float32 twin copied (rounded) into t.
template <typename Fill>
void draw(at::Tensor& t, Fill fill) {
  if (t.scalar_type() == at::kFloat) {
    fill(t);
    return;
  }
  at::Tensor f = at::empty(t.sizes(), t.options().dtype(at::kFloat));
  fill(f);
  t.copy_(f);
}

}  // namespace

BackboneBuildDtype::BackboneBuildDtype(at::ScalarType dtype) : previous_(build_dtype) { build_dtype = dtype; }
BackboneBuildDtype::~BackboneBuildDtype() { build_dtype = previous_; }

void to_build_dtype(torch::nn::Module& module) {
  if (build_dtype != at::kFloat) module.to(build_dtype);
}

void init_from_seed(torch::nn::Module& root, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  bool cls_head = false;
  for (const auto& item : root.named_modules()) {
    if (auto* fm = item.value()->as<FlowMatching>()) cls_head = fm->config().use_cls_head;
  }
  auto params = root.named_parameters(true);
  // Fan-in of every module with a weight (Linear: in_features; Conv2d: in * kh * kw), by module name.
  std::map<std::string, int64_t> fan_in;
  for (const auto& p : params) {
    const at::Tensor& t = p.value();
    if (ends_with(p.key(), ".weight") && t.dim() >= 2) fan_in[p.key().substr(0, p.key().size() - 7)] = t.numel() / t.size(0);
  }
  for (auto& p : params) {
    const std::string& name = p.key();
    at::Tensor t = p.value();
    const std::string module = name.substr(0, name.rfind('.'));
    const auto fan = fan_in.find(module);
    const auto uniform = [&]() {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan->second));
      draw(t, [&](at::Tensor& x) { x.uniform_(-bound, bound, gen); });
    };
    if (name == "model.pre_cls_param" || name == "model.suf_cls_param") {
      // Without the head they stay the zero placeholders that keep the state-dict keys.
      if (cls_head) draw(t, [&](at::Tensor& x) { x.normal_(0.0, 0.02, gen); });
    } else if (!starts_with(name, kVlmWithExpert) || is_cross_kv(module, fan_in)) {
      if (fan != fan_in.end()) uniform();  // nn.Linear's own init (weight and bias)
    } else if (ends_with(name, ".bias")) {
      t.zero_();
    } else if (t.dim() == 1) {
      t.fill_(1.0);  // LayerNorm / RMSNorm weights
    } else {
      draw(t, [&](at::Tensor& x) { x.normal_(0.0, 0.02, gen); });  // Linear, Conv2d and Embedding weights
    }
  }
}

}  // namespace smolvla::model
