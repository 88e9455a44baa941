// The model as its callers use it: the module with its device, dtype and lock, and one method per
// operation (prefix pass, sampling, delta actions, objectives, checkpoints). Every method takes the
// model's lock, so callers sharing a model are serialised, never interleaved. Methods run on worker
// threads; they check their inputs against the config and throw ArgumentError naming the input.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/flow_matching.h"
#include "model/rtc.h"

namespace smolvla::model {

using TensorMap = std::map<std::string, at::Tensor>;
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// A prefix pass's results: the KV cache (read, never written, by later calls), the prefix pad mask
// (B, P) and, with the CLS head, obs_cls_out (B, Ncp, Dv).
struct PrefixCache {
  KVCache kv;
  at::Tensor pad_masks;
  at::Tensor obs_cls_out;
  const void* owner = nullptr;  // the Model that made it: caches are not portable between models
  int64_t batch() const { return pad_masks.size(0); }
  int64_t length() const { return pad_masks.size(1); }
  int64_t bytes() const;
};

struct SampleRequest {
  std::optional<Observation> observation;     // runs the prefix pass when given ...
  std::shared_ptr<const PrefixCache> cache;   // ... else samples from this cache
  at::Tensor noise;                           // (B, C, A); drawn when undefined
  StopCheck stop;                             // polled between denoising steps
};

struct SampleResult {
  at::Tensor actions;                  // (B, C, A)
  std::shared_ptr<PrefixCache> cache;  // set when this call ran the prefix pass
};

// Real-Time Chunking: sampling from a cache guided toward rtc.leftover (model/rtc.h).
struct GuidedRequest {
  std::shared_ptr<const PrefixCache> cache;
  at::Tensor noise;  // (B, C, A); drawn when undefined
  RtcOptions rtc;
  bool trace = false;  // every step's x, v, correction, guided velocity and weight
  StopCheck stop;
};

struct GuidedResult {
  at::Tensor actions;  // (B, C, A)
  TensorMap trace;
};

// The main objective with injectable noise and time (undefined: drawn).
struct MainObjectiveRequest {
  Observation observation;
  at::Tensor actions;  // (B, C, A)
  at::Tensor is_pad;   // (B, C) bool or undefined
  at::Tensor noise;    // (B, C, A) or undefined
  at::Tensor time;     // (B) or undefined
  std::vector<std::string> grad_names;
};

// The delta objective; main_x0 / cls_noise as FlowMatchingImpl::forward_delta.
struct DeltaObjectiveRequest {
  Observation observation;
  at::Tensor is_pad, main_x0, cls_noise;
  std::vector<std::string> grad_names;
  bool trace = false;
};

struct ObjectiveResult {
  TensorMap losses;  // detached
  TensorMap grads;   // gradient copies of grad_names (undefined: the parameter got none)
  TensorMap trace;   // forward_delta intermediates when asked
};

struct ParameterInfo {
  std::string name;
  std::vector<int64_t> shape;
};

struct ModelInfo {
  int64_t parameters = 0;  // scalars
  int64_t bytes = 0;       // parameters and buffers
  at::ScalarType dtype = at::kFloat;
  c10::Device device{c10::kCPU};
};

class Model {
 public:
  // Built from `config` with weights drawn from `seed` (init.h), freezing applied (the parameters
  // training updates require grad), the backbone in `dtype` (projections stay float32) on `device`.
  static std::shared_ptr<Model> create(const ModelConfig& config, uint64_t seed, at::ScalarType dtype, c10::Device device);
  ~Model();

  const ModelConfig& config() const { return config_; }

  LoadReport load(const std::string& path);
  // Parameters and buffers plus `extra` tensors, written atomically.
  void save(const std::string& path, const NamedTensors& extra, const std::map<std::string, std::string>& metadata);
  // Copies the main expert's weights into the delta expert where shapes match; returns the count.
  int64_t warm_start_delta();
  void to(at::ScalarType dtype, c10::Device device);

  std::shared_ptr<PrefixCache> prefix(const Observation& obs);
  SampleResult sample(const SampleRequest& request);
  GuidedResult guided_sample(const GuidedRequest& request);
  // cal_cache's delta actions from the encoded context (B, n, A), or zeros when undefined.
  at::Tensor delta_actions(const PrefixCache& cache, const at::Tensor& context);
  // The delta expert's velocity for x (B, C, A) at t = 0.5: the correction refine mode adds.
  at::Tensor delta_step(const PrefixCache& cache, const at::Tensor& x);
  // Every intermediate of a prefix pass and a sampling run from `noise`, by name.
  TensorMap trace(const Observation& obs, const at::Tensor& noise);

  ObjectiveResult forward_main(const MainObjectiveRequest& request);
  ObjectiveResult forward_delta(const DeltaObjectiveRequest& request);

  std::vector<ParameterInfo> trainable_parameters();
  // Copies by name; every parameter and buffer when `names` is empty.
  TensorMap parameters(const std::vector<std::string>& names);
  ModelInfo info();

  // Runs fn(module) under the model's lock (the trainer's step). With SMOLVLA_PROFILE=<file>, each
  // call also writes a Chrome trace of its libtorch operators there (chrome://tracing).
  template <typename Fn>
  auto locked(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto profile = start_profile();
    return fn(*module_);
  }
  c10::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }

 private:
  explicit Model(const ModelConfig& config);
  static std::shared_ptr<void> start_profile();
  void check_cache(const PrefixCache& cache) const;
  std::shared_ptr<PrefixCache> run_prefix(const Observation& obs);
  ObjectiveResult finish(TensorMap losses, const std::string& loss_name, const std::vector<std::string>& grad_names);
  FlowMatchingImpl& fm() { return *module_->model; }

  std::mutex mutex_;
  ModelConfig config_;
  PolicyModule module_{nullptr};
  c10::Device device_{c10::kCPU};
  at::ScalarType dtype_ = at::kFloat;
};

}  // namespace smolvla::model
