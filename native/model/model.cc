#include "model/model.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <set>

#include "core/block_pool.h"
#include "core/check.h"
#include "io/safetensors.h"
#include "model/init.h"
#include "model/inputs.h"
#include "ops/onednn_linear.h"

namespace smolvla::model {
namespace {

// Sets requires_grad from the config's freezing rule: only the parameters training updates.
void apply_freezing(PolicyModuleImpl& module) {
  const auto names = module.model->trainable_parameter_names("model.");
  const std::set<std::string> keep(names.begin(), names.end());
  for (auto& p : module.named_parameters(true)) p.value().set_requires_grad(keep.count(p.key()) > 0);
}

// Zeroes gradients, back-propagates `loss` and returns copies of the gradients of `names`
// (undefined when a parameter received none).
TensorMap gradients(PolicyModuleImpl& module, const at::Tensor& loss, const std::vector<std::string>& names) {
  for (auto& p : module.parameters()) {
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  }
  loss.backward();
  TensorMap out;
  auto params = module.named_parameters(true);
  for (const auto& n : names) {
    const at::Tensor* p = params.find(n);
    if (p == nullptr) fail_argument("gradNames", "no parameter named '" + n + "'");
    out[n] = p->grad().defined() ? p->grad().clone() : at::Tensor();
  }
  return out;
}

// CUDA float32 keeps float32 products: cuDNN would otherwise run the patch convolution in TF32
// (10-bit mantissa) on Ampere and newer, ~1e-3 away from the CPU and PyTorch-reference outputs.
// bfloat16 / float16 are the way to trade accuracy for speed there.
void keep_float32_exact(const c10::Device& device) {
  if (device.is_cuda()) {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
}

void check_model_dtype(at::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) {
    fail_argument("dtype", "expected float32, bfloat16 or float16");
  }
}

at::Tensor to_float(const at::Tensor& t, const c10::Device& d) { return t.defined() ? t.to(d, at::kFloat) : t; }

}  // namespace

int64_t PrefixCache::bytes() const {
  int64_t total = 0;
  for (size_t i = 0; i < kv.keys.size(); ++i) total += kv.keys[i].nbytes() + kv.values[i].nbytes();
  return total;
}

Model::Model(const ModelConfig& config) : config_(config) {}

Model::~Model() {
  module_ = nullptr;
  // Its weights' packed copies and the pooled activation blocks go with it (both are caches that
  // outlive a model otherwise: the full-size model's copies are ~0.9 GB in bfloat16).
  ops::onednn_drop_freed_copies();
  free_idle_blocks();
#if defined(__GLIBC__)
  // Most weight tensors are below the mmap threshold and live in malloc's heap, which keeps freed
  // pages: without the trim a disposed full-size model left its gigabyte in the process's RSS.
  malloc_trim(0);
#endif
}

std::shared_ptr<Model> Model::create(const ModelConfig& config, uint64_t seed, at::ScalarType dtype, c10::Device device) {
  check_model_dtype(dtype);
  std::shared_ptr<Model> m(new Model(config));
  {
    torch::NoGradGuard no_grad;
    const BackboneBuildDtype build(dtype);  // the backbone is cast layer by layer as it is built
    m->module_ = PolicyModule(config);
    init_from_seed(*m->module_, seed);
  }
  apply_freezing(*m->module_);
  m->to(dtype, device);
  return m;
}

std::shared_ptr<void> Model::start_profile() {
  const char* file = std::getenv("SMOLVLA_PROFILE");
  if (file == nullptr) return nullptr;
  return std::make_shared<torch::autograd::profiler::RecordProfile>(file);
}

void Model::check_cache(const PrefixCache& cache) const {
  if (cache.owner != this) fail_argument("cache", "a cache made by this model (caches are not portable between models)");
}

LoadReport Model::load(const std::string& path) {
  return locked([&](PolicyModuleImpl& module) { return load_state(module, io::SafetensorsReader(path)); });
}

void Model::save(const std::string& path, const NamedTensors& extra, const std::map<std::string, std::string>& metadata) {
  locked([&](PolicyModuleImpl& module) {
    auto tensors = state_dict(module);
    tensors.insert(tensors.end(), extra.begin(), extra.end());
    io::write_safetensors(path, tensors, metadata);
  });
}

int64_t Model::warm_start_delta() {
  return locked([&](PolicyModuleImpl& module) { return copy_expert_into_delta(module); });
}

void Model::to(at::ScalarType dtype, c10::Device device) {
  check_model_dtype(dtype);
  locked([&](PolicyModuleImpl& module) {
    keep_float32_exact(device);
    module.to(device);
    module.model->vlm_with_expert->to(dtype);
    device_ = device;
    dtype_ = dtype;
  });
#if defined(__GLIBC__)
  // The float32 tensors a conversion frees are mostly below the mmap threshold, so they stay in
  // malloc's heap under the new ones: a full-size model cast to bfloat16 kept ~1 GB of freed float32
  // weights in its RSS. malloc_trim hands the free pages back.
  if (dtype != at::kFloat) malloc_trim(0);
#endif
}

std::shared_ptr<PrefixCache> Model::run_prefix(const Observation& obs) {
  PrefixResult r = fm().prefix_pass(observation_to(obs, device_), nullptr);
  auto cache = std::make_shared<PrefixCache>();
  cache->kv = std::move(r.cache);
  cache->pad_masks = r.pad_masks;
  cache->obs_cls_out = r.obs_cls_out;
  cache->owner = this;
  return cache;
}

std::shared_ptr<PrefixCache> Model::prefix(const Observation& obs) {
  check_observation(obs, config_);
  return locked([&](PolicyModuleImpl&) {
    c10::InferenceMode guard;
    return run_prefix(obs);
  });
}

SampleResult Model::sample(const SampleRequest& request) {
  if (request.observation.has_value() == static_cast<bool>(request.cache)) {
    fail_argument("observation", "either an observation or a cache (not both)");
  }
  if (request.observation) check_observation(*request.observation, config_);
  if (request.cache) check_cache(*request.cache);
  const int64_t batch = request.cache ? request.cache->batch() : request.observation->batch();
  if (request.noise.defined()) check_actions(request.noise, "noise", config_, batch);
  return locked([&](PolicyModuleImpl&) {
    c10::InferenceMode guard;
    SampleResult out;
    if (request.observation) out.cache = run_prefix(*request.observation);
    const PrefixCache& use = out.cache ? *out.cache : *request.cache;
    out.actions = fm().sample(use.pad_masks, use.kv, request.noise, request.stop);
    return out;
  });
}

GuidedResult Model::guided_sample(const GuidedRequest& request) {
  check_cache(*request.cache);
  const int64_t batch = request.cache->batch();
  if (request.noise.defined()) check_actions(request.noise, "noise", config_, batch);
  validate_rtc_options(request.rtc, config_, batch);
  return locked([&](PolicyModuleImpl&) {
    // No InferenceMode: the guidance back-propagates through the expert (rtc_integrate).
    const PrefixCache& cache = *request.cache;
    const at::Tensor x0 = request.noise.defined() ? request.noise.to(device_)
                                                  : at::randn({batch, config_.chunk_size, config_.max_action_dim},
                                                              at::TensorOptions().dtype(at::kFloat).device(device_));
    RtcOptions rtc = request.rtc;
    rtc.leftover = rtc.leftover.to(device_, at::kFloat);
    GuidedResult out;
    out.actions = rtc_integrate(fm(), cache.pad_masks, cache.kv, x0, rtc, request.trace ? &out.trace : nullptr, request.stop);
    return out;
  });
}

at::Tensor Model::delta_actions(const PrefixCache& cache, const at::Tensor& context) {
  check_cache(cache);
  if (context.defined()) check_action_context(context, cache.batch(), config_);
  return locked([&](PolicyModuleImpl&) {
    c10::InferenceMode guard;
    return fm().delta_actions(cache.pad_masks, cache.kv, context);
  });
}

at::Tensor Model::delta_step(const PrefixCache& cache, const at::Tensor& x) {
  check_cache(cache);
  check_actions(x, "x", config_, cache.batch());
  return locked([&](PolicyModuleImpl&) {
    c10::InferenceMode guard;
    return fm().delta_step(cache.pad_masks, cache.kv, x.to(device_, at::kFloat)).first;
  });
}

TensorMap Model::trace(const Observation& obs, const at::Tensor& noise) {
  check_observation(obs, config_);
  check_actions(noise, "noise", config_, obs.batch());
  return locked([&](PolicyModuleImpl&) {
    c10::InferenceMode guard;
    TensorMap trace;
    PrefixResult r = fm().prefix_pass(observation_to(obs, device_), &trace);
    if (r.obs_cls_out.defined()) trace["obs_cls_out"] = r.obs_cls_out;
    trace["actions"] = fm().integrate(r.pad_masks, r.cache, noise.to(device_), &trace, nullptr);
    return trace;
  });
}

ObjectiveResult Model::finish(TensorMap losses, const std::string& loss_name, const std::vector<std::string>& grad_names) {
  ObjectiveResult out;
  if (!grad_names.empty()) out.grads = gradients(*module_, losses[loss_name], grad_names);
  for (auto& [k, t] : losses) t = t.detach();
  out.losses = std::move(losses);
  return out;
}

ObjectiveResult Model::forward_main(const MainObjectiveRequest& r) {
  const int64_t b = r.observation.batch();
  check_observation(r.observation, config_);
  check_actions(r.actions, "actions", config_, b);
  if (r.is_pad.defined()) check_action_is_pad(r.is_pad, b, config_);
  if (r.noise.defined()) check_actions(r.noise, "noise", config_, b);
  if (r.time.defined()) check_time(r.time, b);
  return locked([&](PolicyModuleImpl&) {
    const auto d = device_;
    const at::Tensor pad = r.is_pad.defined() ? r.is_pad.to(d) : at::Tensor();
    TensorMap losses = fm().forward_main(observation_to(r.observation, d), r.actions.to(d, at::kFloat), pad,
                                         to_float(r.noise, d), to_float(r.time, d));
    return finish(std::move(losses), "loss", r.grad_names);
  });
}

ObjectiveResult Model::forward_delta(const DeltaObjectiveRequest& r) {
  const int64_t b = r.observation.batch();
  check_observation(r.observation, config_);
  if (r.is_pad.defined()) check_action_is_pad(r.is_pad, b, config_);
  if (r.main_x0.defined()) check_actions(r.main_x0, "mainX0", config_, b);
  if (r.cls_noise.defined()) check_actions(r.cls_noise, "clsNoise", config_, b);
  check_delta_batch(b, config_);
  return locked([&](PolicyModuleImpl&) {
    const auto d = device_;
    const at::Tensor pad = r.is_pad.defined() ? r.is_pad.to(d) : at::Tensor();
    TensorMap trace;
    TensorMap losses = fm().forward_delta(observation_to(r.observation, d), pad, to_float(r.main_x0, d),
                                          to_float(r.cls_noise, d), r.trace ? &trace : nullptr);
    ObjectiveResult out = finish(std::move(losses), "delta_loss", r.grad_names);
    for (auto& [k, t] : trace) out.trace[k] = t.detach();
    return out;
  });
}

std::vector<ParameterInfo> Model::trainable_parameters() {
  return locked([&](PolicyModuleImpl& module) {
    auto params = module.named_parameters(true);
    std::vector<ParameterInfo> out;
    for (const auto& name : fm().trainable_parameter_names("model.")) out.push_back({name, params.find(name)->sizes().vec()});
    return out;
  });
}

TensorMap Model::parameters(const std::vector<std::string>& names) {
  return locked([&](PolicyModuleImpl& module) {
    TensorMap all;
    for (auto& [n, t] : state_dict(module)) all[n] = t;
    TensorMap out;
    if (names.empty()) {
      for (auto& [n, t] : all) out[n] = t.detach().clone();
    }
    for (const auto& n : names) {
      auto it = all.find(n);
      if (it == all.end()) fail_argument("names", "no parameter or buffer named '" + n + "'");
      out[n] = it->second.detach().clone();
    }
    return out;
  });
}

ModelInfo Model::info() {
  return locked([&](PolicyModuleImpl& module) {
    ModelInfo out;
    for (const auto& p : module.parameters()) out.parameters += p.numel();
    for (const auto& [n, t] : state_dict(module)) out.bytes += t.nbytes();
    out.dtype = dtype_;
    out.device = device_;
    return out;
  });
}

}  // namespace smolvla::model
