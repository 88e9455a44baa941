#include "model/checkpoint.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <set>
#include <sstream>
#include <tuple>
#include <stdexcept>

#include "core/check.h"

namespace smolvla::model {
namespace {

std::string shape_text(at::IntArrayRef s) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < s.size(); ++i) out << (i ? ", " : "") << s[i];
  out << ")";
  return out.str();
}

}  // namespace

bool is_extension_key(const std::string& name) {
  static const char* prefixes[] = {"model.vlm_with_expert.delta_expert.", "model.delta_action_",
                                   "model.action_context_encoder.", "model.pre_cls_param", "model.suf_cls_param",
                                   "model.obs_cls_proj.", "model.act_cls_proj."};
  for (const char* p : prefixes) {
    if (name.rfind(p, 0) == 0) return true;
  }
  return false;
}

std::vector<std::pair<std::string, at::Tensor>> state_dict(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

LoadReport load_state(torch::nn::Module& module, const io::SafetensorsReader& file) {
  std::map<std::string, const io::TensorEntry*> source;
  for (const io::TensorEntry& e : file.header().tensors) source[e.name] = &e;
  LoadReport report;
  std::vector<std::string> missing;
  std::set<std::string> used;
  // Names and shapes are all checked before the first value is copied.
  std::vector<std::tuple<std::string, at::Tensor, const io::TensorEntry*>> copies;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : state_dict(module)) {
    auto it = source.find(name);
    if (it == source.end()) {
      (is_extension_key(name) ? report.initialised : missing).push_back(name);
      continue;
    }
    const io::TensorEntry& entry = *it->second;
    if (at::IntArrayRef(entry.shape) != target.sizes()) {
      // The CLS placeholders of a checkpoint saved without the head have shape (1, 2, D).
      if ((name == "model.pre_cls_param" || name == "model.suf_cls_param")) {
        report.initialised.push_back(name);
        used.insert(name);
        continue;
      }
      throw std::runtime_error("checkpoint tensor '" + name + "' has shape " + shape_text(entry.shape) +
                               " but the model (from config.json) expects " + shape_text(target.sizes()));
    }
    copies.emplace_back(name, target, &entry);
    used.insert(name);
  }
  if (!missing.empty()) {
    std::ostringstream out;
    out << "checkpoint is missing " << missing.size() << " required tensor(s): ";
    for (size_t i = 0; i < missing.size() && i < 10; ++i) out << (i ? ", " : "") << missing[i];
    if (missing.size() > 10) out << ", ...";
    throw std::runtime_error(out.str());
  }
  for (auto& [name, target, entry] : copies) {
    const at::Tensor src = file.read(*entry);
    // Checked once here, so a corrupt or diverged checkpoint fails at load naming the tensor rather
    // than producing NaN actions later. Only tensors the model uses: LeRobot stores unset
    // normalisation statistics as infinity, and those are never loaded into the model.
    if (at::isFloatingType(src.scalar_type()) && !at::isfinite(src).all().item<bool>()) {
      throw NotFiniteError("checkpoint tensor '" + name + "' holds NaN or infinite values");
    }
    target.copy_(src);
    report.loaded.push_back(name);
  }
  for (const io::TensorEntry& e : file.header().tensors) {
    if (!used.count(e.name)) report.unexpected.push_back(e.name);
  }
  return report;
}

int64_t copy_expert_into_delta(torch::nn::Module& module) {
  const std::string from = "model.vlm_with_expert.lm_expert.";
  const std::string to = "model.vlm_with_expert.delta_expert.";
  std::map<std::string, at::Tensor> params;
  for (auto& [name, t] : state_dict(module)) params[name] = t;
  torch::NoGradGuard no_grad;
  int64_t copied = 0;
  for (auto& [name, t] : params) {
    if (name.rfind(to, 0) != 0) continue;
    auto it = params.find(from + name.substr(to.size()));
    if (it != params.end() && it->second.sizes() == t.sizes()) {
      t.copy_(it->second);
      ++copied;
    }
  }
  return copied;
}

}  // namespace smolvla::model
