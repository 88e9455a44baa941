// JS handles of the native model, its KV caches and cancellation tokens. All tensor work of the
// model runs off the JS thread (Promises); one model runs one call at a time (a mutex), so callers
// sharing a model are serialised, never interleaved.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "model/flow_matching.h"

namespace smolvla::napi {

struct ModelState {
  std::mutex mutex;
  model::ModelConfig config;
  model::PolicyModule module{nullptr};
  c10::Device device{c10::kCPU};
  at::ScalarType dtype = at::kFloat;
  model::FlowMatchingImpl& fm() { return *module->model; }
};

// A prefix pass's results: the KV cache (never modified), the prefix pad mask and, with the CLS
// head, obs_cls_out. Holds tensors natively; JS sees an opaque handle.
struct CacheState {
  model::KVCache cache;
  at::Tensor pad_masks;
  at::Tensor obs_cls_out;
  const ModelState* owner = nullptr;
  int64_t bytes() const;
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ModelState> state);
  // The model behind a JS handle; an ArgumentError naming `name` otherwise.
  static std::shared_ptr<ModelState> StateOf(const Napi::Value& v, const std::string& name);
  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value LoadState(const Napi::CallbackInfo& info);
  Napi::Value SaveState(const Napi::CallbackInfo& info);
  Napi::Value WarmStartDelta(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Prefix(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  Napi::Value DeltaActions(const Napi::CallbackInfo& info);
  Napi::Value DeltaStep(const Napi::CallbackInfo& info);
  Napi::Value Trace(const Napi::CallbackInfo& info);
  Napi::Value ForwardMain(const Napi::CallbackInfo& info);
  Napi::Value ForwardDelta(const Napi::CallbackInfo& info);
  Napi::Value TrainableParameters(const Napi::CallbackInfo& info);
  Napi::Value Parameters(const Napi::CallbackInfo& info);
  Napi::Value ParameterNames(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelState> state_;
};

class CacheWrap : public Napi::ObjectWrap<CacheWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<CacheState> state);
  // The cache behind a JS handle; an ArgumentError naming `name` otherwise.
  static std::shared_ptr<CacheState> StateOf(const Napi::Value& v, const std::string& name);
  explicit CacheWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value BatchSize(const Napi::CallbackInfo& info);
  Napi::Value PrefixLength(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value PadMasks(const Napi::CallbackInfo& info);
  Napi::Value ObsClsOut(const Napi::CallbackInfo& info);

  std::shared_ptr<CacheState> state_;
};

// Cancels long native work between steps: JS calls cancel(), the work throws "cancelled".
class CancelWrap : public Napi::ObjectWrap<CancelWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static std::shared_ptr<std::atomic<bool>> FlagOf(const Napi::Value& v);  // null for undefined
  explicit CancelWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag_;
};

void register_model(Napi::Env env, Napi::Object exports);

}  // namespace smolvla::napi
