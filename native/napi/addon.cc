// Module entry: one registration call per binding file.
#include <napi.h>

#include "napi/bindings.h"
#include "napi/distributed_wrap.h"
#include "napi/model_wrap.h"
#include "napi/tensor_wrap.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  smolvla::napi::TensorWrap::Init(env, exports);
  smolvla::napi::register_runtime(env, exports);
  smolvla::napi::register_ops(env, exports);
  smolvla::napi::register_preprocess(env, exports);
  smolvla::napi::register_io(env, exports);
  smolvla::napi::register_model(env, exports);
  smolvla::napi::register_trainer(env, exports);
  smolvla::napi::register_rtc(env, exports);
  smolvla::napi::register_distributed(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(smolvla_node, Init)
