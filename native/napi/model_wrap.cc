#include "napi/model_wrap.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cstdlib>
#include <memory>

#include "core/check.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "napi/addon_data.h"
#include "napi/args.h"
#include "napi/async.h"
#include "napi/errors.h"
#include "napi/model_config.h"
#include "napi/observation.h"
#include "napi/tensor_wrap.h"

namespace smolvla::napi {
namespace {

using TensorMap = std::map<std::string, at::Tensor>;

bool present(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && !info[i].IsUndefined() && !info[i].IsNull();
}

std::optional<at::Tensor> optional_tensor(const Napi::CallbackInfo& info, size_t i, const std::string& name) {
  return present(info, i) ? std::optional<at::Tensor>(TensorWrap::TensorOf(info[i], name)) : std::nullopt;
}

std::vector<std::string> string_list(const Napi::CallbackInfo& info, size_t i, const std::string& name) {
  std::vector<std::string> out;
  if (!present(info, i)) return out;
  if (!info[i].IsArray()) fail_argument(name, "expected an array of strings");
  Napi::Array a = info[i].As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) out.push_back(a.Get(k).As<Napi::String>().Utf8Value());
  return out;
}

Napi::Object tensor_map_to_js(Napi::Env env, const TensorMap& m) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [k, t] : m) out.Set(k, t.defined() ? Napi::Value(TensorWrap::Wrap(env, t)) : env.Null());
  return out;
}

Napi::Array strings_to_js(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

void expect_actions(const at::Tensor& t, const std::string& name, const model::ModelConfig& c, int64_t batch) {
  const std::string shape = "a float tensor of shape (" + std::to_string(batch) + ", " + std::to_string(c.chunk_size) +
                            ", " + std::to_string(c.max_action_dim) + ")";
  expect_dim(t, name, 3, shape);
  expect_floating(t, name, shape);
  if (t.size(0) != batch || t.size(1) != c.chunk_size || t.size(2) != c.max_action_dim) fail_argument(name, shape, t);
}

void expect_cache_owner(const CacheState& cache, const ModelState* model, const std::string& name) {
  if (cache.owner != model) fail_argument(name, "a cache made by this model (caches are not portable between models)");
}

// Runs `fn` under the model's lock: one call at a time per model. With SMOLVLA_PROFILE=<file>,
// each call also writes a Chrome trace of its libtorch operators there (chrome://tracing).
template <typename Fn>
auto locked(const std::shared_ptr<ModelState>& s, Fn&& fn) {
  std::lock_guard<std::mutex> lock(s->mutex);
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  if (const char* file = std::getenv("SMOLVLA_PROFILE")) profile = std::make_unique<torch::autograd::profiler::RecordProfile>(file);
  return fn();
}

// Zeroes gradients, back-propagates `loss` and returns the gradients of `names` (undefined when a
// parameter received none).
TensorMap gradients(model::PolicyModuleImpl& module, const at::Tensor& loss, const std::vector<std::string>& names) {
  for (auto& p : module.parameters()) {
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  }
  loss.backward();
  TensorMap out;
  auto params = module.named_parameters(true);
  for (const auto& n : names) {
    const at::Tensor* p = params.find(n);
    if (p == nullptr) throw ArgumentError("argument 'gradNames': no parameter named '" + n + "'");
    out[n] = p->grad().defined() ? p->grad().clone() : at::Tensor();
  }
  return out;
}

// Sets requires_grad from the config's freezing rule (SPEC §5).
void apply_freezing(model::PolicyModuleImpl& module) {
  const auto names = module.model->trainable_parameter_names("model.");
  const std::set<std::string> keep(names.begin(), names.end());
  for (auto& p : module.named_parameters(true)) p.value().set_requires_grad(keep.count(p.key()) > 0);
}

struct SampleOutput {
  at::Tensor actions;
  std::shared_ptr<CacheState> cache;  // when this call ran the prefix pass
};

struct Losses {
  TensorMap losses, grads, trace;
};

}  // namespace

int64_t CacheState::bytes() const {
  int64_t total = 0;
  for (size_t i = 0; i < cache.keys.size(); ++i) {
    total += cache.keys[i].numel() * cache.keys[i].element_size() + cache.values[i].numel() * cache.values[i].element_size();
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Model

void ModelWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "NativeModel",
      {InstanceMethod<&ModelWrap::LoadState>("loadState"), InstanceMethod<&ModelWrap::SaveState>("saveState"),
       InstanceMethod<&ModelWrap::WarmStartDelta>("warmStartDelta"), InstanceMethod<&ModelWrap::To>("to"),
       InstanceMethod<&ModelWrap::Prefix>("prefix"), InstanceMethod<&ModelWrap::Sample>("sample"),
       InstanceMethod<&ModelWrap::DeltaActions>("deltaActions"), InstanceMethod<&ModelWrap::DeltaStep>("deltaStep"),
       InstanceMethod<&ModelWrap::Trace>("trace"), InstanceMethod<&ModelWrap::ForwardMain>("forwardMain"),
       InstanceMethod<&ModelWrap::ForwardDelta>("forwardDelta"),
       InstanceMethod<&ModelWrap::TrainableParameters>("trainableParameters"),
       InstanceMethod<&ModelWrap::Parameters>("parameters"),
       InstanceMethod<&ModelWrap::ParameterNames>("parameterNames"), InstanceMethod<&ModelWrap::Info>("info")});
  addon_data(env).model_ctor = Napi::Persistent(ctor);
  exports.Set("NativeModel", ctor);
}

Napi::Object ModelWrap::Wrap(Napi::Env env, std::shared_ptr<ModelState> state) {
  return addon_data(env).model_ctor.New({Napi::External<std::shared_ptr<ModelState>>::New(env, &state)});
}

std::shared_ptr<ModelState> ModelWrap::StateOf(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).model_ctor.Value())) {
    fail_argument(name, "expected a model handle");
  }
  return ModelWrap::Unwrap(v.As<Napi::Object>())->state_;
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeModel is created by createModel(), not with new");
  }
  state_ = *info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data();
}

Napi::Value ModelWrap::LoadState(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const std::string path = arg_string(info, 0, "path");
    auto s = state_;
    return run_async<std::shared_ptr<model::LoadReport>>(
        info.Env(), "smolvla.loadState",
        [s, path]() {
          return locked(s, [&] {
            const io::SafetensorsContent content = io::read_safetensors(path);
            auto report = std::make_shared<model::LoadReport>(model::load_state(*s->module, content.tensors));
            return report;
          });
        },
        [](Napi::Env env, std::shared_ptr<model::LoadReport>& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loaded", strings_to_js(env, r->loaded));
          out.Set("initialised", strings_to_js(env, r->initialised));
          out.Set("unexpected", strings_to_js(env, r->unexpected));
          return out;
        });
  });
}

// saveState(path, extraNames[], extraTensors[], metadata): parameters and buffers plus extra tensors
// (normalisation statistics), written atomically.
Napi::Value ModelWrap::SaveState(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const std::string path = arg_string(info, 0, "path");
    const std::vector<std::string> names = string_list(info, 1, "extraNames");
    if (!present(info, 2) || !info[2].IsArray()) fail_argument("extraTensors", "expected an array of Tensors");
    Napi::Array arr = info[2].As<Napi::Array>();
    if (arr.Length() != names.size()) fail_argument("extraTensors", "one tensor per name");
    std::vector<std::pair<std::string, at::Tensor>> extra;
    for (uint32_t i = 0; i < arr.Length(); ++i) extra.emplace_back(names[i], TensorWrap::TensorOf(arr.Get(i), "extraTensors[" + std::to_string(i) + "]"));
    std::map<std::string, std::string> metadata;
    if (present(info, 3)) {
      Napi::Object m = info[3].As<Napi::Object>();
      Napi::Array keys = m.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
        metadata[k] = m.Get(k).As<Napi::String>().Utf8Value();
      }
    }
    auto s = state_;
    return run_async<bool>(
        info.Env(), "smolvla.saveState",
        [s, path, extra, metadata]() {
          return locked(s, [&] {
            auto tensors = model::state_dict(*s->module);
            tensors.insert(tensors.end(), extra.begin(), extra.end());
            io::write_safetensors(path, tensors, metadata);
            return true;
          });
        },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  });
}

Napi::Value ModelWrap::WarmStartDelta(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return Napi::Number::New(info.Env(), static_cast<double>(model::copy_expert_into_delta(*state_->module)));
  });
}

// to(dtype, device): the backbone (vision, text, experts) in dtype; projections stay float32.
Napi::Value ModelWrap::To(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const at::ScalarType dtype = parse_dtype(arg_string(info, 0, "dtype"), "dtype");
    if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) {
      fail_argument("dtype", "expected float32, bfloat16 or float16");
    }
    const c10::Device device = parse_device(arg_string(info, 1, "device"), "device");
    auto s = state_;
    return run_async<bool>(
        info.Env(), "smolvla.to",
        [s, dtype, device]() {
          return locked(s, [&] {
            s->module->to(device);
            s->fm().vlm_with_expert->to(dtype);
            s->device = device;
            s->dtype = dtype;
            return true;
          });
        },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  });
}

// prefix(observation) -> NativeCache (cache, pad masks, obs_cls_out).
Napi::Value ModelWrap::Prefix(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const model::Observation obs = observation_from_js(present(info, 0) ? info[0] : info.Env().Undefined(), state_->config);
    auto s = state_;
    return run_async<std::shared_ptr<CacheState>>(
        info.Env(), "smolvla.prefix",
        [s, obs]() {
          return locked(s, [&] {
            c10::InferenceMode guard;
            model::PrefixResult r = s->fm().prefix_pass(observation_to(obs, s->device), nullptr);
            auto cache = std::make_shared<CacheState>();
            cache->cache = std::move(r.cache);
            cache->pad_masks = r.pad_masks;
            cache->obs_cls_out = r.obs_cls_out;
            cache->owner = s.get();
            return cache;
          });
        },
        [](Napi::Env env, std::shared_ptr<CacheState>& c) -> Napi::Value { return CacheWrap::Wrap(env, c); });
  });
}

// sample(observation | null, cache | null, noise | null, cancel | null) -> {actions, cache?}
Napi::Value ModelWrap::Sample(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const model::ModelConfig& c = state_->config;
    std::optional<model::Observation> obs;
    if (present(info, 0)) obs = observation_from_js(info[0], c);
    std::shared_ptr<CacheState> cache;
    if (present(info, 1)) {
      cache = CacheWrap::StateOf(info[1], "cache");
      expect_cache_owner(*cache, state_.get(), "cache");
    }
    if (obs.has_value() == (cache != nullptr)) fail_argument("observation", "pass exactly one of an observation or a cache");
    const int64_t batch = obs ? obs->batch() : cache->pad_masks.size(0);
    const std::optional<at::Tensor> noise = optional_tensor(info, 2, "noise");
    if (noise) expect_actions(*noise, "noise", c, batch);
    const auto cancel = CancelWrap::FlagOf(present(info, 3) ? info[3] : info.Env().Undefined());
    auto s = state_;
    return run_async<SampleOutput>(
        info.Env(), "smolvla.sample",
        [s, obs, cache, noise, cancel, batch]() {
          return locked(s, [&] {
            c10::InferenceMode guard;
            SampleOutput out;
            std::shared_ptr<CacheState> use = cache;
            if (!use) {
              model::PrefixResult r = s->fm().prefix_pass(observation_to(*obs, s->device), nullptr);
              use = std::make_shared<CacheState>();
              use->cache = std::move(r.cache);
              use->pad_masks = r.pad_masks;
              use->obs_cls_out = r.obs_cls_out;
              use->owner = s.get();
              out.cache = use;
            }
            const auto& cfg = s->config;
            const at::Tensor x0 = noise ? noise->to(s->device)
                                        : at::randn({batch, cfg.chunk_size, cfg.max_action_dim},
                                                    at::TensorOptions().dtype(at::kFloat).device(s->device));
            model::StopCheck stop;
            if (cancel) stop = [cancel]() { return cancel->load(); };
            out.actions = s->fm().integrate(use->pad_masks, use->cache, x0, nullptr, stop);
            return out;
          });
        },
        [](Napi::Env env, SampleOutput& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("actions", TensorWrap::Wrap(env, r.actions));
          out.Set("cache", r.cache ? Napi::Value(CacheWrap::Wrap(env, r.cache)) : env.Null());
          return out;
        });
  });
}

// deltaActions(cache, context | null) -> (B, C, A): one delta step at t = 0.5 from the encoded
// action context, or from zeros (SPEC §5, cal_cache).
Napi::Value ModelWrap::DeltaActions(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto cache = CacheWrap::StateOf(present(info, 0) ? info[0] : info.Env().Undefined(), "cache");
    expect_cache_owner(*cache, state_.get(), "cache");
    const std::optional<at::Tensor> context = optional_tensor(info, 1, "actionContext");
    const int64_t batch = cache->pad_masks.size(0);
    if (context) {
      const std::string shape = "a float tensor of shape (" + std::to_string(batch) + ", n, " +
                                std::to_string(state_->config.max_action_dim) + ")";
      expect_dim(*context, "actionContext", 3, shape);
      expect_floating(*context, "actionContext", shape);
      if (context->size(0) != batch || context->size(2) != state_->config.max_action_dim || context->size(1) == 0) {
        fail_argument("actionContext", shape, *context);
      }
    }
    auto s = state_;
    return run_async<at::Tensor>(
        info.Env(), "smolvla.deltaActions",
        [s, cache, context, batch]() {
          return locked(s, [&] {
            c10::InferenceMode guard;
            auto& fm = s->fm();
            const auto& cfg = s->config;
            const at::Tensor x = context ? fm.encode_action_context(context->to(s->device))
                                         : at::zeros({batch, cfg.chunk_size, cfg.max_action_dim},
                                                     at::TensorOptions().dtype(at::kFloat).device(s->device));
            return fm.delta_step(cache->pad_masks, cache->cache, x).first;
          });
        },
        [](Napi::Env env, at::Tensor& t) -> Napi::Value { return TensorWrap::Wrap(env, t); });
  });
}

// deltaStep(cache, x (B, C, A)) -> velocity: the refine mode's correction (SPEC §6).
Napi::Value ModelWrap::DeltaStep(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto cache = CacheWrap::StateOf(present(info, 0) ? info[0] : info.Env().Undefined(), "cache");
    expect_cache_owner(*cache, state_.get(), "cache");
    const at::Tensor x = arg_tensor(info, 1, "x");
    expect_actions(x, "x", state_->config, cache->pad_masks.size(0));
    auto s = state_;
    return run_async<at::Tensor>(
        info.Env(), "smolvla.deltaStep",
        [s, cache, x]() {
          return locked(s, [&] {
            c10::InferenceMode guard;
            return s->fm().delta_step(cache->pad_masks, cache->cache, x.to(s->device, at::kFloat)).first;
          });
        },
        [](Napi::Env env, at::Tensor& t) -> Napi::Value { return TensorWrap::Wrap(env, t); });
  });
}

// trace(observation, noise) -> every intermediate of a prefix pass and a sampling run, by name
// (parity tests).
Napi::Value ModelWrap::Trace(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const model::Observation obs = observation_from_js(present(info, 0) ? info[0] : info.Env().Undefined(), state_->config);
    const at::Tensor noise = arg_tensor(info, 1, "noise");
    expect_actions(noise, "noise", state_->config, obs.batch());
    auto s = state_;
    return run_async<TensorMap>(
        info.Env(), "smolvla.trace",
        [s, obs, noise]() {
          return locked(s, [&] {
            c10::InferenceMode guard;
            TensorMap trace;
            model::PrefixResult r = s->fm().prefix_pass(observation_to(obs, s->device), &trace);
            if (r.obs_cls_out.defined()) trace["obs_cls_out"] = r.obs_cls_out;
            trace["actions"] = s->fm().integrate(r.pad_masks, r.cache, noise.to(s->device), &trace, nullptr);
            return trace;
          });
        },
        [](Napi::Env env, TensorMap& m) -> Napi::Value { return tensor_map_to_js(env, m); });
  });
}

// forwardMain(observation, actions, isPad | null, noise | null, time | null, gradNames[])
//   -> {losses, grads}: the main objective with injectable noise and time.
Napi::Value ModelWrap::ForwardMain(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const auto& c = state_->config;
    const model::Observation obs = observation_from_js(present(info, 0) ? info[0] : info.Env().Undefined(), c);
    const at::Tensor actions = arg_tensor(info, 1, "actions");
    expect_actions(actions, "actions", c, obs.batch());
    const std::optional<at::Tensor> is_pad = optional_tensor(info, 2, "actionIsPad");
    if (is_pad) expect_action_is_pad(*is_pad, obs.batch(), c);
    const std::optional<at::Tensor> noise = optional_tensor(info, 3, "noise");
    if (noise) expect_actions(*noise, "noise", c, obs.batch());
    const std::optional<at::Tensor> time = optional_tensor(info, 4, "time");
    if (time && (time->dim() != 1 || time->size(0) != obs.batch())) {
      fail_argument("time", "a float tensor of shape (" + std::to_string(obs.batch()) + ")", *time);
    }
    const std::vector<std::string> grad_names = string_list(info, 5, "gradNames");
    auto s = state_;
    return run_async<Losses>(
        info.Env(), "smolvla.forwardMain",
        [s, obs, actions, is_pad, noise, time, grad_names]() {
          return locked(s, [&] {
            const auto d = s->device;
            Losses out;
            out.losses = s->fm().forward_main(observation_to(obs, d), actions.to(d, at::kFloat),
                                              is_pad ? is_pad->to(d) : at::Tensor(), noise ? noise->to(d, at::kFloat) : at::Tensor(),
                                              time ? time->to(d, at::kFloat) : at::Tensor());
            if (!grad_names.empty()) out.grads = gradients(*s->module, out.losses["loss"], grad_names);
            for (auto& [k, t] : out.losses) t = t.detach();
            return out;
          });
        },
        [](Napi::Env env, Losses& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("losses", tensor_map_to_js(env, r.losses));
          out.Set("grads", tensor_map_to_js(env, r.grads));
          return out;
        });
  });
}

// forwardDelta(observation, isPad | null, mainX0 | null, clsNoise | null, gradNames[], trace: bool)
//   -> {losses, grads, trace}: the delta objective (SPEC §5).
Napi::Value ModelWrap::ForwardDelta(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const auto& c = state_->config;
    const model::Observation obs = observation_from_js(present(info, 0) ? info[0] : info.Env().Undefined(), c);
    const std::optional<at::Tensor> is_pad = optional_tensor(info, 1, "actionIsPad");
    if (is_pad) expect_action_is_pad(*is_pad, obs.batch(), c);
    const std::optional<at::Tensor> x0 = optional_tensor(info, 2, "mainX0");
    if (x0) expect_actions(*x0, "mainX0", c, obs.batch());
    const std::optional<at::Tensor> cls_noise = optional_tensor(info, 3, "clsNoise");
    if (cls_noise) expect_actions(*cls_noise, "clsNoise", c, obs.batch());
    if (c.use_cls_head && obs.batch() < 2) {
      fail_argument("observation", "a batch of at least 2 samples with the CLS head: VICReg's variance and covariance "
                                   "terms are batch statistics (the seeds recommend 32 or more)");
    }
    const std::vector<std::string> grad_names = string_list(info, 4, "gradNames");
    const bool want_trace = present(info, 5) && arg_bool(info, 5, "trace");
    auto s = state_;
    return run_async<Losses>(
        info.Env(), "smolvla.forwardDelta",
        [s, obs, is_pad, x0, cls_noise, grad_names, want_trace]() {
          return locked(s, [&] {
            const auto d = s->device;
            Losses out;
            out.losses = s->fm().forward_delta(observation_to(obs, d), is_pad ? is_pad->to(d) : at::Tensor(),
                                               x0 ? x0->to(d, at::kFloat) : at::Tensor(),
                                               cls_noise ? cls_noise->to(d, at::kFloat) : at::Tensor(),
                                               want_trace ? &out.trace : nullptr);
            if (!grad_names.empty()) out.grads = gradients(*s->module, out.losses["delta_loss"], grad_names);
            for (auto& [k, t] : out.losses) t = t.detach();
            for (auto& [k, t] : out.trace) t = t.detach();
            return out;
          });
        },
        [](Napi::Env env, Losses& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("losses", tensor_map_to_js(env, r.losses));
          out.Set("grads", tensor_map_to_js(env, r.grads));
          out.Set("trace", tensor_map_to_js(env, r.trace));
          return out;
        });
  });
}

// trainableParameters() -> [{name, shape}] in module order.
Napi::Value ModelWrap::TrainableParameters(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(state_->mutex);
    Napi::Env env = info.Env();
    auto params = state_->module->named_parameters(true);
    const auto names = state_->fm().trainable_parameter_names("model.");
    Napi::Array out = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("name", names[i]);
      const at::Tensor* p = params.find(names[i]);
      Napi::Array shape = Napi::Array::New(env, p->dim());
      for (int64_t k = 0; k < p->dim(); ++k) shape.Set(static_cast<uint32_t>(k), static_cast<double>(p->size(k)));
      e.Set("shape", shape);
      out.Set(static_cast<uint32_t>(i), e);
    }
    return out;
  });
}

// parameterNames() -> every parameter's name in module (registration) order: the order of
// PyTorch's module.parameters(), which indexes LeRobot's optimizer state.
Napi::Value ModelWrap::ParameterNames(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(state_->mutex);
    const auto params = state_->module->named_parameters(true);
    Napi::Array out = Napi::Array::New(info.Env(), params.size());
    for (size_t i = 0; i < params.size(); ++i) out.Set(static_cast<uint32_t>(i), params[i].key());
    return out;
  });
}

// parameters(names[]?) -> {name: Tensor} copies (all parameters and buffers when names is absent).
Napi::Value ModelWrap::Parameters(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(state_->mutex);
    const std::vector<std::string> names = string_list(info, 0, "names");
    TensorMap all;
    for (auto& [n, t] : model::state_dict(*state_->module)) all[n] = t;
    TensorMap out;
    if (names.empty()) {
      for (auto& [n, t] : all) out[n] = t.detach().clone();
    } else {
      for (const auto& n : names) {
        auto it = all.find(n);
        if (it == all.end()) fail_argument("names", "no parameter or buffer named '" + n + "'");
        out[n] = it->second.detach().clone();
      }
    }
    return tensor_map_to_js(info.Env(), out);
  });
}

Napi::Value ModelWrap::Info(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    std::lock_guard<std::mutex> lock(state_->mutex);
    Napi::Object out = Napi::Object::New(info.Env());
    int64_t count = 0;
    for (const auto& p : state_->module->parameters()) count += p.numel();
    out.Set("parameters", static_cast<double>(count));
    out.Set("dtype", dtype_name(state_->dtype));
    out.Set("device", state_->device.str());
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Cache

void CacheWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "NativeCache",
      {InstanceMethod<&CacheWrap::Dispose>("dispose"), InstanceAccessor<&CacheWrap::Disposed>("disposed"),
       InstanceAccessor<&CacheWrap::BatchSize>("batchSize"), InstanceAccessor<&CacheWrap::PrefixLength>("prefixLength"),
       InstanceAccessor<&CacheWrap::Bytes>("bytes"), InstanceMethod<&CacheWrap::PadMasks>("padMasks"),
       InstanceMethod<&CacheWrap::ObsClsOut>("obsClsOut")});
  addon_data(env).cache_ctor = Napi::Persistent(ctor);
  exports.Set("NativeCache", ctor);
}

Napi::Object CacheWrap::Wrap(Napi::Env env, std::shared_ptr<CacheState> state) {
  return addon_data(env).cache_ctor.New({Napi::External<std::shared_ptr<CacheState>>::New(env, &state)});
}

std::shared_ptr<CacheState> CacheWrap::StateOf(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).cache_ctor.Value())) {
    fail_argument(name, "expected a KV cache handle");
  }
  CacheWrap* w = CacheWrap::Unwrap(v.As<Napi::Object>());
  if (!w->state_) fail_argument(name, "the KV cache was disposed");
  return w->state_;
}

CacheWrap::CacheWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CacheWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeCache is created by the model, not with new");
  }
  state_ = *info[0].As<Napi::External<std::shared_ptr<CacheState>>>().Data();
}

Napi::Value CacheWrap::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();  // work in flight keeps its own reference
  return info.Env().Undefined();
}

Napi::Value CacheWrap::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !state_); }

Napi::Value CacheWrap::BatchSize(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(StateOf(Value(), "cache")->pad_masks.size(0)));
  });
}

Napi::Value CacheWrap::PrefixLength(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(StateOf(Value(), "cache")->pad_masks.size(1)));
  });
}

Napi::Value CacheWrap::Bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state_ ? static_cast<double>(state_->bytes()) : 0.0);
}

Napi::Value CacheWrap::PadMasks(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return TensorWrap::Wrap(info.Env(), StateOf(Value(), "cache")->pad_masks); });
}

Napi::Value CacheWrap::ObsClsOut(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const auto s = StateOf(Value(), "cache");
    return s->obs_cls_out.defined() ? Napi::Value(TensorWrap::Wrap(info.Env(), s->obs_cls_out)) : info.Env().Null();
  });
}

// ---------------------------------------------------------------------------------------------
// Cancellation

void CancelWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeCancel", {InstanceMethod<&CancelWrap::Cancel>("cancel")});
  addon_data(env).cancel_ctor = Napi::Persistent(ctor);
  exports.Set("NativeCancel", ctor);
}

std::shared_ptr<std::atomic<bool>> CancelWrap::FlagOf(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).cancel_ctor.Value())) {
    fail_argument("cancel", "expected a NativeCancel token");
  }
  return CancelWrap::Unwrap(v.As<Napi::Object>())->flag_;
}

CancelWrap::CancelWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CancelWrap>(info), flag_(std::make_shared<std::atomic<bool>>(false)) {}

Napi::Value CancelWrap::Cancel(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// createModel(config, seed, dtype, device) -> Promise<NativeModel>

namespace {

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  const model::ModelConfig config = model_config_from_js(info.Length() > 0 ? info[0] : info.Env().Undefined());
  const int64_t seed = arg_int(info, 1, "seed");
  const at::ScalarType dtype = parse_dtype(arg_string(info, 2, "dtype"), "dtype");
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) fail_argument("dtype", "expected float32, bfloat16 or float16");
  const c10::Device device = parse_device(arg_string(info, 3, "device"), "device");
  return run_async<std::shared_ptr<ModelState>>(
      info.Env(), "smolvla.createModel",
      [config, seed, dtype, device]() {
        auto s = std::make_shared<ModelState>();
        s->config = config;
        {
          // Random initialisation from the seed (the checkpoint, if any, overwrites it).
          torch::NoGradGuard no_grad;
          at::manual_seed(static_cast<uint64_t>(seed));
          s->module = model::PolicyModule(config);
          model::init_published(*s->module, static_cast<uint64_t>(seed));
        }
        apply_freezing(*s->module);
        s->module->to(device);
        s->fm().vlm_with_expert->to(dtype);
        s->device = device;
        s->dtype = dtype;
        return s;
      },
      [](Napi::Env env, std::shared_ptr<ModelState>& s) -> Napi::Value { return ModelWrap::Wrap(env, s); });
}

}  // namespace

void register_model(Napi::Env env, Napi::Object exports) {
  ModelWrap::Init(env, exports);
  CacheWrap::Init(env, exports);
  CancelWrap::Init(env, exports);
  exports.Set("createModel", Napi::Function::New(env, guarded<CreateModel>, "createModel"));
}

}  // namespace smolvla::napi
