// JS handles of the native model (model/model.h), its prefix caches and cancellation tokens. Each
// method parses one parameter object, queues the model call on the libuv pool (a Promise) and wraps
// the result; nothing here touches the model on the JS thread. A model's and a cache's native
// bytes are reported to V8 while the handle holds them, and released by dispose() or GC.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "model/model.h"

namespace smolvla::napi {

// Native bytes a handle has reported to V8 (AdjustExternalMemory), kept equal to what it holds.
// JS thread only. After close() (dispose or GC) later updates, e.g. from work that was in flight,
// are ignored.
class ExternalBytes {
 public:
  void set(Napi::Env env, int64_t bytes);
  void close(Napi::Env env);
  int64_t reported() const { return reported_; }

 private:
  int64_t reported_ = 0;
  bool closed_ = false;
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<model::Model> model, int64_t bytes);
  // The model behind a JS handle; an ArgumentError naming `name` otherwise, a DisposedError after
  // dispose().
  static std::shared_ptr<model::Model> ModelOf(const Napi::Value& v, const std::string& name);
  explicit ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override;

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
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);

  std::shared_ptr<model::Model> live() const;

  std::shared_ptr<model::Model> model_;
  std::shared_ptr<ExternalBytes> external_ = std::make_shared<ExternalBytes>();  // to() updates it
};

class CacheWrap : public Napi::ObjectWrap<CacheWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<model::PrefixCache> cache);
  // The cache behind a JS handle; an ArgumentError naming `name` otherwise, a DisposedError after
  // dispose().
  static std::shared_ptr<model::PrefixCache> CacheOf(const Napi::Value& v, const std::string& name);
  explicit CacheWrap(const Napi::CallbackInfo& info);
  ~CacheWrap() override;

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value BatchSize(const Napi::CallbackInfo& info);
  Napi::Value PrefixLength(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value PadMasks(const Napi::CallbackInfo& info);
  Napi::Value ObsClsOut(const Napi::CallbackInfo& info);

  std::shared_ptr<model::PrefixCache> cache_;
  ExternalBytes external_;
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
