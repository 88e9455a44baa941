#include "napi/model_wrap.h"

#include "core/check.h"
#include "napi/addon_data.h"
#include "napi/args.h"
#include "napi/async.h"
#include "napi/errors.h"
#include "napi/observation.h"
#include "napi/tensor_wrap.h"

namespace smolvla::napi {
namespace {

Napi::Object tensor_map_to_js(Napi::Env env, const model::TensorMap& m) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [k, t] : m) out.Set(k, t.defined() ? Napi::Value(TensorWrap::Wrap(env, t)) : env.Null());
  return out;
}

Napi::Array strings_to_js(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

Napi::Value wrap_tensor(Napi::Env env, at::Tensor& t) { return TensorWrap::Wrap(env, t); }

Napi::Value objective_to_js(Napi::Env env, model::ObjectiveResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("losses", tensor_map_to_js(env, r.losses));
  out.Set("grads", tensor_map_to_js(env, r.grads));
  out.Set("trace", tensor_map_to_js(env, r.trace));
  return out;
}

at::ScalarType model_dtype(const Params& p) {
  return p.has("dtype") ? parse_dtype(p.string("dtype"), "dtype") : at::kFloat;
}

c10::Device model_device(const Params& p) {
  return p.has("device") ? parse_device(p.string("device"), "device") : c10::Device(c10::kCPU);
}

}  // namespace

void ExternalBytes::set(Napi::Env env, int64_t bytes) {
  if (closed_ || bytes == reported_) return;
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes - reported_);
  reported_ = bytes;
}

void ExternalBytes::close(Napi::Env env) {
  set(env, 0);
  closed_ = true;
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
       InstanceMethod<&ModelWrap::ParameterNames>("parameterNames"), InstanceMethod<&ModelWrap::Info>("info"),
       InstanceMethod<&ModelWrap::Dispose>("dispose"), InstanceAccessor<&ModelWrap::Disposed>("disposed"),
       InstanceAccessor<&ModelWrap::Bytes>("bytes")});
  addon_data(env).model_ctor = Napi::Persistent(ctor);
  exports.Set("NativeModel", ctor);
}

Napi::Object ModelWrap::Wrap(Napi::Env env, std::shared_ptr<model::Model> model, int64_t bytes) {
  Napi::Object obj = addon_data(env).model_ctor.New({Napi::External<std::shared_ptr<model::Model>>::New(env, &model)});
  ModelWrap::Unwrap(obj)->external_->set(env, bytes);
  return obj;
}

std::shared_ptr<model::Model> ModelWrap::ModelOf(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).model_ctor.Value())) {
    fail_argument(name, "expected a model handle");
  }
  return ModelWrap::Unwrap(v.As<Napi::Object>())->live();
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeModel is created by createModel(), not with new");
  }
  model_ = *info[0].As<Napi::External<std::shared_ptr<model::Model>>>().Data();
}

ModelWrap::~ModelWrap() { external_->close(Env()); }

std::shared_ptr<model::Model> ModelWrap::live() const {
  if (!model_) throw DisposedError("the model was disposed");
  return model_;
}

// loadState({path}) -> {loaded, initialised, unexpected}
Napi::Value ModelWrap::LoadState(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    const std::string path = p.string("path");
    return run_async<model::LoadReport>(
        info.Env(), "smolvla.loadState", [m, path]() { return m->load(path); },
        [](Napi::Env env, model::LoadReport& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loaded", strings_to_js(env, r.loaded));
          out.Set("initialised", strings_to_js(env, r.initialised));
          out.Set("unexpected", strings_to_js(env, r.unexpected));
          return out;
        });
  });
}

// saveState({path, extra?: {name: Tensor}, metadata?: {key: string}})
Napi::Value ModelWrap::SaveState(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    const std::string path = p.string("path");
    const auto extra = p.tensor_map("extra");
    const auto metadata = p.string_map("metadata");
    return run_async<bool>(
        info.Env(), "smolvla.saveState",
        [m, path, extra, metadata]() {
          m->save(path, extra, metadata);
          return true;
        },
        resolve_undefined<bool>);
  });
}

// warmStartDelta() -> the number of tensors copied
Napi::Value ModelWrap::WarmStartDelta(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto m = live();
    return run_async<int64_t>(
        info.Env(), "smolvla.warmStartDelta", [m]() { return m->warm_start_delta(); },
        [](Napi::Env env, int64_t& n) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(n)); });
  });
}

// to({dtype, device}): the backbone in dtype; projections stay float32.
Napi::Value ModelWrap::To(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    const at::ScalarType dtype = model_dtype(p);
    const c10::Device device = model_device(p);
    auto external = external_;
    return run_async<int64_t>(
        info.Env(), "smolvla.to",
        [m, dtype, device]() {
          m->to(dtype, device);
          return m->info().bytes;
        },
        [external](Napi::Env env, int64_t& bytes) -> Napi::Value {
          external->set(env, bytes);
          return env.Undefined();
        });
  });
}

// prefix({observation}) -> NativeCache
Napi::Value ModelWrap::Prefix(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    const model::Observation obs = observation_from_js(p.get("observation"));
    return run_async<std::shared_ptr<model::PrefixCache>>(
        info.Env(), "smolvla.prefix", [m, obs]() { return m->prefix(obs); },
        [](Napi::Env env, std::shared_ptr<model::PrefixCache>& c) -> Napi::Value { return CacheWrap::Wrap(env, c); });
  });
}

// sample({observation} | {cache}, noise?, cancel?) -> {actions, cache: NativeCache | null}
Napi::Value ModelWrap::Sample(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    model::SampleRequest r;
    if (p.has("observation")) r.observation = observation_from_js(p.get("observation"));
    if (p.has("cache")) r.cache = CacheWrap::CacheOf(p.get("cache"), "cache");
    r.noise = p.optional_tensor("noise");
    if (auto cancel = CancelWrap::FlagOf(p.get("cancel"))) r.stop = [cancel]() { return cancel->load(); };
    return run_async<model::SampleResult>(
        info.Env(), "smolvla.sample", [m, r]() { return m->sample(r); },
        [](Napi::Env env, model::SampleResult& s) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("actions", TensorWrap::Wrap(env, s.actions));
          out.Set("cache", s.cache ? Napi::Value(CacheWrap::Wrap(env, s.cache)) : env.Null());
          return out;
        });
  });
}

// deltaActions({cache, actionContext?}) -> (B, C, A)
Napi::Value ModelWrap::DeltaActions(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    auto cache = CacheWrap::CacheOf(p.get("cache"), "cache");
    const at::Tensor context = p.optional_tensor("actionContext");
    return run_async<at::Tensor>(
        info.Env(), "smolvla.deltaActions", [m, cache, context]() { return m->delta_actions(*cache, context); }, wrap_tensor);
  });
}

// deltaStep({cache, x}) -> velocity (B, C, A)
Napi::Value ModelWrap::DeltaStep(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    auto cache = CacheWrap::CacheOf(p.get("cache"), "cache");
    const at::Tensor x = p.tensor("x");
    return run_async<at::Tensor>(
        info.Env(), "smolvla.deltaStep", [m, cache, x]() { return m->delta_step(*cache, x); }, wrap_tensor);
  });
}

// trace({observation, noise}) -> {name: Tensor}
Napi::Value ModelWrap::Trace(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    const model::Observation obs = observation_from_js(p.get("observation"));
    const at::Tensor noise = p.tensor("noise");
    return run_async<model::TensorMap>(
        info.Env(), "smolvla.trace", [m, obs, noise]() { return m->trace(obs, noise); },
        [](Napi::Env env, model::TensorMap& t) -> Napi::Value { return tensor_map_to_js(env, t); });
  });
}

// forwardMain({observation, actions, actionIsPad?, noise?, time?, gradNames?}) -> {losses, grads, trace}
Napi::Value ModelWrap::ForwardMain(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    model::MainObjectiveRequest r;
    r.observation = observation_from_js(p.get("observation"));
    r.actions = p.tensor("actions");
    r.is_pad = p.optional_tensor("actionIsPad");
    r.noise = p.optional_tensor("noise");
    r.time = p.optional_tensor("time");
    r.grad_names = p.strings("gradNames");
    return run_async<model::ObjectiveResult>(
        info.Env(), "smolvla.forwardMain", [m, r]() { return m->forward_main(r); }, objective_to_js);
  });
}

// forwardDelta({observation, actionIsPad?, mainX0?, clsNoise?, gradNames?, trace?}) -> {losses, grads, trace}
Napi::Value ModelWrap::ForwardDelta(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    model::DeltaObjectiveRequest r;
    r.observation = observation_from_js(p.get("observation"));
    r.is_pad = p.optional_tensor("actionIsPad");
    r.main_x0 = p.optional_tensor("mainX0");
    r.cls_noise = p.optional_tensor("clsNoise");
    r.grad_names = p.strings("gradNames");
    r.trace = p.boolean("trace", false);
    return run_async<model::ObjectiveResult>(
        info.Env(), "smolvla.forwardDelta", [m, r]() { return m->forward_delta(r); }, objective_to_js);
  });
}

// trainableParameters() -> [{name, shape}] in module order
Napi::Value ModelWrap::TrainableParameters(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto m = live();
    return run_async<std::vector<model::ParameterInfo>>(
        info.Env(), "smolvla.trainableParameters", [m]() { return m->trainable_parameters(); },
        [](Napi::Env env, std::vector<model::ParameterInfo>& params) -> Napi::Value {
          Napi::Array out = Napi::Array::New(env, params.size());
          for (size_t i = 0; i < params.size(); ++i) {
            Napi::Object e = Napi::Object::New(env);
            e.Set("name", params[i].name);
            Napi::Array shape = Napi::Array::New(env, params[i].shape.size());
            for (size_t k = 0; k < params[i].shape.size(); ++k) shape.Set(static_cast<uint32_t>(k), static_cast<double>(params[i].shape[k]));
            e.Set("shape", shape);
            out.Set(static_cast<uint32_t>(i), e);
          }
          return out;
        });
  });
}

// parameters({names?}) -> {name: Tensor} copies (every parameter and buffer without names)
Napi::Value ModelWrap::Parameters(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Params p(info);
    auto m = live();
    const std::vector<std::string> names = p.strings("names");
    return run_async<model::TensorMap>(
        info.Env(), "smolvla.parameters", [m, names]() { return m->parameters(names); },
        [](Napi::Env env, model::TensorMap& t) -> Napi::Value { return tensor_map_to_js(env, t); });
  });
}

// parameterNames() -> every parameter's name in module order: the order of PyTorch's
// module.parameters(), which indexes LeRobot's optimizer state.
Napi::Value ModelWrap::ParameterNames(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto m = live();
    return run_async<std::vector<std::string>>(
        info.Env(), "smolvla.parameterNames",
        [m]() {
          return m->locked([](torch::nn::Module& module) {
            std::vector<std::string> names;
            for (const auto& p : module.named_parameters(true)) names.push_back(p.key());
            return names;
          });
        },
        [](Napi::Env env, std::vector<std::string>& names) -> Napi::Value {
          Napi::Array out = Napi::Array::New(env, names.size());
          for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
          return out;
        });
  });
}

// info() -> {parameters, bytes, dtype, device}
Napi::Value ModelWrap::Info(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto m = live();
    return run_async<model::ModelInfo>(
        info.Env(), "smolvla.info", [m]() { return m->info(); },
        [](Napi::Env env, model::ModelInfo& i) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("parameters", static_cast<double>(i.parameters));
          out.Set("bytes", static_cast<double>(i.bytes));
          out.Set("dtype", dtype_name(i.dtype));
          out.Set("device", i.device.str());
          return out;
        });
  });
}

// dispose(): drops this handle's reference (work in flight keeps its own) and the reported bytes.
Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  model_.reset();
  external_->close(info.Env());
  return info.Env().Undefined();
}

Napi::Value ModelWrap::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !model_); }

Napi::Value ModelWrap::Bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(external_->reported()));
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

Napi::Object CacheWrap::Wrap(Napi::Env env, std::shared_ptr<model::PrefixCache> cache) {
  return addon_data(env).cache_ctor.New({Napi::External<std::shared_ptr<model::PrefixCache>>::New(env, &cache)});
}

std::shared_ptr<model::PrefixCache> CacheWrap::CacheOf(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).cache_ctor.Value())) {
    fail_argument(name, "expected a KV cache handle");
  }
  CacheWrap* w = CacheWrap::Unwrap(v.As<Napi::Object>());
  if (!w->cache_) throw DisposedError(name + ": the KV cache was disposed");
  return w->cache_;
}

CacheWrap::CacheWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CacheWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeCache is created by the model, not with new");
  }
  cache_ = *info[0].As<Napi::External<std::shared_ptr<model::PrefixCache>>>().Data();
  external_.set(info.Env(), cache_->bytes());
}

CacheWrap::~CacheWrap() { external_.close(Env()); }

Napi::Value CacheWrap::Dispose(const Napi::CallbackInfo& info) {
  cache_.reset();  // work in flight keeps its own reference
  external_.close(info.Env());
  return info.Env().Undefined();
}

Napi::Value CacheWrap::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !cache_); }

Napi::Value CacheWrap::BatchSize(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(CacheOf(Value(), "cache")->batch()));
  });
}

Napi::Value CacheWrap::PrefixLength(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(CacheOf(Value(), "cache")->length()));
  });
}

Napi::Value CacheWrap::Bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cache_ ? static_cast<double>(cache_->bytes()) : 0.0);
}

Napi::Value CacheWrap::PadMasks(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return TensorWrap::Wrap(info.Env(), CacheOf(Value(), "cache")->pad_masks); });
}

Napi::Value CacheWrap::ObsClsOut(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const auto c = CacheOf(Value(), "cache");
    return c->obs_cls_out.defined() ? Napi::Value(TensorWrap::Wrap(info.Env(), c->obs_cls_out)) : info.Env().Null();
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
// createModel({config: JSON string, seed?, dtype?, device?}) -> Promise<NativeModel>

namespace {

struct Created {
  std::shared_ptr<model::Model> model;
  int64_t bytes = 0;
};

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  const Params p(info);
  const model::ModelConfig config = model::parse_model_config(p.string("config"));
  const int64_t seed = p.has("seed") ? p.integer("seed") : 0;
  const at::ScalarType dtype = model_dtype(p);
  const c10::Device device = model_device(p);
  return run_async<Created>(
      info.Env(), "smolvla.createModel",
      [config, seed, dtype, device]() {
        Created c;
        c.model = model::Model::create(config, static_cast<uint64_t>(seed), dtype, device);
        c.bytes = c.model->info().bytes;
        return c;
      },
      [](Napi::Env env, Created& c) -> Napi::Value { return ModelWrap::Wrap(env, c.model, c.bytes); });
}

}  // namespace

void register_model(Napi::Env env, Napi::Object exports) {
  ModelWrap::Init(env, exports);
  CacheWrap::Init(env, exports);
  CancelWrap::Init(env, exports);
  exports.Set("createModel", Napi::Function::New(env, guarded<CreateModel>, "createModel"));
}

}  // namespace smolvla::napi
