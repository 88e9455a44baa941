// Threads, devices, seeds and build facts.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <mutex>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <dlfcn.h>

#include "core/blas_threads.h"
#include "core/check.h"
#include "core/compute_thread.h"
#include "model/attention.h"
#include "ops/gemm_routes.h"
#include "ops/onednn_linear.h"
#include "ops/pointwise_kernels.h"
#include "napi/args.h"
#include "napi/bindings.h"
#include "napi/errors.h"
#include "napi/tensor_wrap.h"

#ifndef SMOLVLA_TORCH_SOURCE
#define SMOLVLA_TORCH_SOURCE "unknown"
#endif

namespace smolvla::napi {
namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  const int64_t n = arg_int(info, 0, "threads");
  if (n < 1 || n > 4096) fail_argument("threads", "expected an integer in [1, 4096], got " + std::to_string(n));
  // For the compute thread, which runs all tensor work (core/compute_thread.h); this thread keeps one.
  set_compute_threads(static_cast<int>(n));
  // A pthread OpenBLAS (Debian's fast one) runs its own thread pool that libtorch 1.x does not
  // size; keep it at the same count so "n threads" means n cores, for us and for benchmarks.
  set_blas_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), compute_threads()); }

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

// cpuRngState() -> uint8 tensor: libtorch's default CPU generator state, byte for byte what
// Python's torch.get_rng_state() returns (LeRobot stores it as `torch_rng_state`).
Napi::Value CpuRngState(const Napi::CallbackInfo& info) {
  at::Tensor state;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state();
  }
  return TensorWrap::Wrap(info.Env(), state);
}

// matmulThroughput(m, k, n, dtype, seconds, device = 'cpu', route = 'aten-linear') -> GFLOP/s of
// x (m, k) @ w^T (n, k) through one GEMM route (ops/gemm_routes.h): a probe of the matrix roof for
// a dtype, measured in-process. On a GPU only at::linear runs, and each timing waits for the device.
Napi::Value MatmulThroughput(const Napi::CallbackInfo& info) {
  const int64_t m = arg_int(info, 0, "m"), k = arg_int(info, 1, "k"), n = arg_int(info, 2, "n");
  const at::ScalarType dtype = parse_dtype(arg_string(info, 3, "dtype"), "dtype");
  const double seconds = arg_number(info, 4, "seconds");
  const bool has_device = info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsNull();
  const c10::Device device = has_device ? parse_device(arg_string(info, 5, "device"), "device") : c10::Device(c10::kCPU);
  const bool has_route = info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsNull();
  const ops::GemmRoute route = has_route ? ops::parse_route(arg_string(info, 6, "route"), "route") : ops::GemmRoute::AtenLinear;
  if (m <= 0 || k <= 0 || n <= 0) fail_argument("m", "matrix sizes must be positive");
  if (device.is_cpu()) {
    // On the thread and libgomp team the model's GEMMs run on, so the roof is measured as they run.
    double rate = 0;
    run_on_compute_thread([&] {
      c10::InferenceMode guard;
      rate = ops::gemm_throughput(route, m, k, n, dtype, seconds);
    });
    return Napi::Number::New(info.Env(), rate);
  }
  c10::InferenceMode guard;
  if (route != ops::GemmRoute::AtenLinear) fail_argument("route", "'aten-linear' on a GPU");
  const auto opts = at::TensorOptions().device(device);
  const at::Tensor x = at::randn({m, k}, opts).to(dtype), w = at::randn({n, k}, opts).to(dtype);
  const auto wait = [&] { torch::cuda::synchronize(device.has_index() ? device.index() : -1); };
  at::linear(x, w);  // warm up (allocations, thread pool)
  wait();
  int64_t iters = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    at::linear(x, w);
    ++iters;
    wait();
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  return Napi::Number::New(info.Env(), 2.0 * m * k * n * iters / elapsed / 1e9);
}

// setGemmRoute(route | 'lean' | 'auto'): pins the model's CPU GEMM route, takes the memory-lean plan
// (ops/gemm_routes.h), or returns to the probe's choice.
Napi::Value SetGemmRoute(const Napi::CallbackInfo& info) {
  const std::string name = arg_string(info, 0, "route");
  if (name == "auto") {
    ops::force_route(nullptr);
  } else if (name == "lean") {
    ops::force_lean();
  } else {
    const ops::GemmRoute route = ops::parse_route(name, "route");
    ops::force_route(&route);
  }
  return info.Env().Undefined();
}

// gemmRoutes() -> { available: string[], report: string }: the CPU routes a probe may try, and the
// routes the model chose so far (ops/gemm_routes.h).
Napi::Value GemmRoutes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  const auto routes = ops::available_routes();
  Napi::Array names = Napi::Array::New(env, routes.size());
  for (size_t i = 0; i < routes.size(); ++i) names.Set(static_cast<uint32_t>(i), ops::route_name(routes[i]));
  out.Set("available", names);
  out.Set("report", ops::route_report());
  out.Set("packedBytes", static_cast<double>(ops::onednn_packed_bytes()));
  return out;
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  out.Set("torchSource", SMOLVLA_TORCH_SOURCE);
  out.Set("cudaCompiled", at::hasCUDA());
  out.Set("mkldnn", at::hasMKLDNN());
  out.Set("parallel", at::get_parallel_info());
  out.Set("attentionKernel", model::vision_attention_kernel());
  out.Set("pointwiseKernels", ops::avx512_pointwise_available() ? "avx512" : "aten");
  // Where the libtorch in use was loaded from (compared with the build's by lib/native.ts).
  Dl_info where{};
  if (dladdr(reinterpret_cast<void*>(&at::get_num_threads), &where) != 0 && where.dli_fname != nullptr) {
    out.Set("torchLibrary", where.dli_fname);
  }
  return out;
}

}  // namespace

void register_runtime(Napi::Env env, Napi::Object exports) {
  exports.Set("setNumThreads", Napi::Function::New(env, guarded<SetNumThreads>, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, guarded<GetNumThreads>, "getNumThreads"));
  exports.Set("checkDevice", Napi::Function::New(env, guarded<CheckDevice>, "checkDevice"));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, guarded<CudaDeviceCount>, "cudaDeviceCount"));
  exports.Set("manualSeed", Napi::Function::New(env, guarded<ManualSeed>, "manualSeed"));
  exports.Set("cpuRngState", Napi::Function::New(env, guarded<CpuRngState>, "cpuRngState"));
  exports.Set("matmulThroughput", Napi::Function::New(env, guarded<MatmulThroughput>, "matmulThroughput"));
  exports.Set("setGemmRoute", Napi::Function::New(env, guarded<SetGemmRoute>, "setGemmRoute"));
  exports.Set("gemmRoutes", Napi::Function::New(env, guarded<GemmRoutes>, "gemmRoutes"));
  exports.Set("buildInfo", Napi::Function::New(env, guarded<BuildInfo>, "buildInfo"));
}

}  // namespace smolvla::napi
