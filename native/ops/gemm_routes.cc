#include "ops/gemm_routes.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "core/check.h"
#include "ops/onednn_linear.h"

namespace smolvla::ops {

namespace {

constexpr GemmRoute kAll[] = {GemmRoute::AtenLinear, GemmRoute::AtenMatmul, GemmRoute::OnednnPlain, GemmRoute::OnednnPacked};

bool is_onednn(GemmRoute r) { return r == GemmRoute::OnednnPlain || r == GemmRoute::OnednnPacked; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Choice {
  GemmRoute large, small;
};

// Times every route on a shape typical of the model (the vision MLP at large M, the expert's MLP at
// M = 50), best of 4 rounds that each time every route once (a noisy neighbour then slows all routes
// of a round alike, not one route's every try). oneDNN's packed route wins unless another is more
// than 10 % faster in the probe: the probe's weights stay in cache, the model's come from memory,
// where the packed layout gained more than any probe showed. Measured on the full-size bfloat16
// decode loop (2-core EPYC): 210 ms packed, 337 ms after aten-matmul won a probe by a hair. In place
// the bfloat16 prefix was 19 % slower (518 against 435 ms), too: oneDNN reorders the weight every call.
Choice probe(at::ScalarType dtype) {
  const std::vector<GemmRoute> candidates = available_routes();
  const auto best = [&](int64_t m, int64_t k, int64_t n) {
    std::vector<double> rate(candidates.size(), 0.0);
    for (int round = 0; round < 4; ++round) {
      for (size_t i = 0; i < candidates.size(); ++i) rate[i] = std::max(rate[i], gemm_throughput(candidates[i], m, k, n, dtype, 0.015));
    }
    GemmRoute winner = GemmRoute::AtenLinear;
    double top = -1;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const double weighted = candidates[i] == GemmRoute::OnednnPacked ? rate[i] * 1.1 : rate[i];
      if (weighted > top) {
        top = weighted;
        winner = candidates[i];
      }
    }
    return winner;
  };
  return {best(256, 768, 3072), best(50, 720, 2048)};
}

struct Routes {
  std::mutex mutex;
  std::map<at::ScalarType, Choice> chosen;
  bool forced = false;
  GemmRoute forced_route = GemmRoute::AtenLinear;
  bool lean = false;
};

thread_local bool denoising = false;

const char* const kLeanReport = "lean (oneDNN in place; packed copies for the action expert's denoising passes)";

Routes& routes() {
  static Routes r;
  return r;
}

}  // namespace

const char* route_name(GemmRoute route) {
  switch (route) {
    case GemmRoute::AtenLinear: return "aten-linear";
    case GemmRoute::AtenMatmul: return "aten-matmul";
    case GemmRoute::OnednnPlain: return "onednn-plain";
    case GemmRoute::OnednnPacked: return "onednn-packed";
  }
  return "?";
}

GemmRoute parse_route(const std::string& name, const std::string& what) {
  for (GemmRoute r : kAll) {
    if (name != route_name(r)) continue;
    if (is_onednn(r) && !onednn_available()) fail_argument(what, "an available GEMM route; oneDNN: " + onednn_status());
    return r;
  }
  fail_argument(what, "one of aten-linear, aten-matmul, onednn-plain, onednn-packed (got '" + name + "')");
}

std::vector<GemmRoute> available_routes() {
  std::vector<GemmRoute> out;
  for (GemmRoute r : kAll) {
    if (!is_onednn(r) || onednn_available()) out.push_back(r);
  }
  return out;
}

at::Tensor linear_via(GemmRoute route, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  switch (route) {
    case GemmRoute::AtenLinear: return at::linear(x, weight, bias);
    case GemmRoute::AtenMatmul: {
      at::Tensor y = at::matmul(x, weight.t());
      return bias.defined() ? y.add_(bias) : y;
    }
    case GemmRoute::OnednnPlain: return onednn_linear(x.contiguous(), weight, bias, /*packed=*/false);
    case GemmRoute::OnednnPacked: return onednn_linear(x.contiguous(), weight, bias, /*packed=*/true);
  }
  return at::linear(x, weight, bias);
}

double gemm_throughput(GemmRoute route, int64_t m, int64_t k, int64_t n, at::ScalarType dtype, double seconds) {
  // Constant operands: GEMM speed does not depend on the values, and drawing random ones would move
  // the global generator that seeded sampling relies on.
  const auto opts = at::TensorOptions().dtype(dtype);
  const at::Tensor x = at::full({m, k}, 0.01, opts), w = at::full({n, k}, 0.02, opts);
  linear_via(route, x, w, at::Tensor());  // warm up: allocations, thread pool, the packed copy
  int64_t iters = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    linear_via(route, x, w, at::Tensor());
    ++iters;
    elapsed = seconds_since(start);
  } while (elapsed < seconds);
  return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) * static_cast<double>(iters) / elapsed / 1e9;
}

GemmRoute model_route(at::ScalarType dtype, bool small_m) {
  Routes& r = routes();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.forced) return r.forced_route;
  if (r.lean) return denoising ? GemmRoute::OnednnPacked : GemmRoute::OnednnPlain;
  auto it = r.chosen.find(dtype);
  if (it == r.chosen.end()) {
    const char* forced = std::getenv("SMOLVLA_GEMM");
    Choice c{};
    if (forced != nullptr && std::string(forced) == "lean") {
      if (!onednn_available()) fail_argument("SMOLVLA_GEMM", "'lean' needs oneDNN (" + onednn_status() + ")");
      r.lean = true;
      return denoising ? GemmRoute::OnednnPacked : GemmRoute::OnednnPlain;
    }
    if (forced != nullptr && *forced != '\0') {
      const GemmRoute f = parse_route(forced, "SMOLVLA_GEMM");
      c = {f, f};
    } else {
      c = probe(dtype);
    }
    it = r.chosen.emplace(dtype, c).first;
  }
  return small_m ? it->second.small : it->second.large;
}

void force_route(const GemmRoute* route) {
  Routes& r = routes();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.forced = route != nullptr;
  r.lean = false;
  if (route != nullptr) r.forced_route = *route;
}

void force_lean() {
  if (!onednn_available()) fail_argument("route", "'lean' needs oneDNN (" + onednn_status() + ")");
  Routes& r = routes();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.forced = false;
  r.lean = true;
}

DenoisingScope::DenoisingScope() : previous_(denoising) { denoising = true; }
DenoisingScope::~DenoisingScope() { denoising = previous_; }

std::string route_report() {
  Routes& r = routes();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.forced) return std::string("every dtype: ") + route_name(r.forced_route) + " (set by setGemmRoute); oneDNN: " + onednn_status();
  if (r.lean) return std::string("every dtype: ") + kLeanReport + "; oneDNN: " + onednn_status();
  std::string out;
  for (const auto& [dtype, c] : r.chosen) {
    if (!out.empty()) out += "; ";
    out += std::string(dtype == at::kBFloat16 ? "bfloat16" : "float32") + ": " + route_name(c.large) + " (prefix), " + route_name(c.small) + " (decode)";
  }
  if (out.empty()) out = "no model has run yet";
  return out + "; oneDNN: " + onednn_status();
}

}  // namespace smolvla::ops
