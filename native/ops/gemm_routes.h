// The GEMM routes libtorch and this addon offer for y = x Wᵀ + b on the CPU, the probe that picks
// the model's route at load, and the throughput measurement benchmarks take their roof from.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace smolvla::ops {

enum class GemmRoute {
  AtenLinear,    // at::linear (OpenBLAS sgemm for float32, oneDNN matmul inside libtorch for bfloat16)
  AtenMatmul,    // at::matmul on x and Wᵀ
  OnednnPlain,   // oneDNN matmul reading the (N, K) weight in place
  OnednnPacked,  // oneDNN matmul on a blocked copy of the weight made once
};

const char* route_name(GemmRoute route);
// Throws ArgumentError naming `what` for an unknown or unavailable route.
GemmRoute parse_route(const std::string& name, const std::string& what);
std::vector<GemmRoute> available_routes();

// One GEMM through `route`: x (M, K), weight (N, K), bias (N) or undefined.
at::Tensor linear_via(GemmRoute route, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// GFLOP/s of repeated (m, k) x (k, n) products through `route` for `seconds` (after a warm-up).
double gemm_throughput(GemmRoute route, int64_t m, int64_t k, int64_t n, at::ScalarType dtype, double seconds);

// The route the model's projections take for `dtype` on the CPU, at large M (prefix) or small M
// (the decode loop's M = chunk): chosen once per process and dtype by timing every available route
// on a typical shape for a few tens of milliseconds, or forced by SMOLVLA_GEMM=<route name>.
GemmRoute model_route(at::ScalarType dtype, bool small_m);

// Pins the model's route for every dtype (`route`), or with nullptr returns to the probe's choice
// (SMOLVLA_GEMM still applies). Calls already running finish on the route they started with.
void force_route(const GemmRoute* route);

// The memory-lean plan: oneDNN reading weights in place everywhere, except the action expert's
// denoising passes (inside a DenoisingScope), which keep packed copies: the decode loop is where the
// in-place route loses most (measured 42 % on the full-size bfloat16 loop, 12 % on the prefix), and
// the action expert is a fifth of the weights. Cleared by force_route.
void force_lean();

// Marks the calling thread as running the action expert's denoising passes while alive.
class DenoisingScope {
 public:
  DenoisingScope();
  ~DenoisingScope();
  DenoisingScope(const DenoisingScope&) = delete;
  DenoisingScope& operator=(const DenoisingScope&) = delete;

 private:
  bool previous_;
};

// "float32: onednn-packed (prefix), onednn-packed (decode); oneDNN 2.6.3 (libdnnl.so.2)" for the
// dtypes chosen so far, and where oneDNN came from.
std::string route_report();

}  // namespace smolvla::ops
