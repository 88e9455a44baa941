// One training step as model code: forward, backward, global-norm clipping and AdamW over the
// model's trainable parameters, under the model's lock. A non-finite loss skips the update.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "model/model.h"
#include "train/adamw.h"
#include "train/distributed.h"

namespace smolvla::train {

enum class Objective { Main, Delta };

struct StepRequest {
  model::Observation observation;
  at::Tensor actions;  // (B, C, A) model-space targets; required by the main objective
  at::Tensor is_pad;   // (B, C) bool or undefined
  double lr = 0;
  Objective objective = Objective::Delta;
};

struct StepResult {
  model::TensorMap losses;  // detached
  double grad_norm = 0;     // before clipping
  bool skipped = false;     // the loss was NaN or infinite: no update
  double comm_seconds = 0;  // data-parallel: waiting for the gradient all-reduce after backward
};

class Trainer {
 public:
  // Over the model's trainable parameters (its freezing); the model must be float32.
  static std::shared_ptr<Trainer> create(std::shared_ptr<model::Model> model, const AdamWOptions& options);

  StepResult step(const StepRequest& request);
  // Data-parallel from now on: every step averages the gradients over the group (buckets of at most
  // bucket_bytes, reduced while backward runs) and draws the global batch's noise, keeping this
  // rank's rows, so N ranks of batch b follow one process of batch N*b.
  void enable_data_parallel(std::shared_ptr<Communicator> comm, int64_t bucket_bytes);
  // The optimiser state (moments and step count), atomically written.
  void save(const std::string& path);
  void load(const std::string& path);

  // Readable from the JS thread while a step runs (no lock).
  int64_t steps() const { return steps_.load(); }
  int64_t parameter_count() const { return parameter_count_; }

 private:
  std::shared_ptr<model::Model> model_;
  std::unique_ptr<AdamW> optimizer_;
  std::atomic<int64_t> steps_{0};
  std::unique_ptr<GradientSync> sync_;
  RankSlice slice_;
  int64_t parameter_count_ = 0;
};

}  // namespace smolvla::train
