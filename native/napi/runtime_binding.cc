// Threads, devices, seeds and build facts.
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "core/check.h"
#include "napi/args.h"
#include "napi/bindings.h"
#include "napi/errors.h"

#ifndef SMOLVLA_TORCH_SOURCE
#define SMOLVLA_TORCH_SOURCE "unknown"
#endif

namespace smolvla::napi {
namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  const int64_t n = arg_int(info, 0, "threads");
  if (n < 1 || n > 4096) fail_argument("threads", "expected an integer in [1, 4096], got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), parse_device(arg_string(info, 0, "device"), "device").str());
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), torch::cuda::is_available() ? static_cast<double>(torch::cuda::device_count()) : 0);
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  const int64_t seed = arg_int(info, 0, "seed");
  if (seed < 0) fail_argument("seed", "expected a non-negative integer");
  at::manual_seed(static_cast<uint64_t>(seed));
  return info.Env().Undefined();
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  out.Set("torchSource", SMOLVLA_TORCH_SOURCE);
  out.Set("cudaCompiled", at::hasCUDA());
  out.Set("mkldnn", at::hasMKLDNN());
  out.Set("parallel", at::get_parallel_info());
  return out;
}

}  // namespace

void register_runtime(Napi::Env env, Napi::Object exports) {
  exports.Set("setNumThreads", Napi::Function::New(env, guarded<SetNumThreads>, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, guarded<GetNumThreads>, "getNumThreads"));
  exports.Set("checkDevice", Napi::Function::New(env, guarded<CheckDevice>, "checkDevice"));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, guarded<CudaDeviceCount>, "cudaDeviceCount"));
  exports.Set("manualSeed", Napi::Function::New(env, guarded<ManualSeed>, "manualSeed"));
  exports.Set("buildInfo", Napi::Function::New(env, guarded<BuildInfo>, "buildInfo"));
}

}  // namespace smolvla::napi
