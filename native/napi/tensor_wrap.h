// The JS-visible tensor handle: owns one at::Tensor. Freed by dispose() or by GC finalisation;
// its bytes are reported to V8 so the GC knows what a handle holds.
#pragma once

#include <ATen/core/Tensor.h>
#include <napi.h>

#include <string>

namespace smolvla::napi {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, at::Tensor tensor);
  // The tensor held by a JS handle; an ArgumentError naming `name` if v is not a live handle.
  static at::Tensor TensorOf(const Napi::Value& v, const std::string& name);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Data(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Describe(const Napi::CallbackInfo& info);

  const at::Tensor& live(const char* method) const;
  void release();

  at::Tensor tensor_;
  int64_t accounted_ = 0;
};

}  // namespace smolvla::napi
