// AdamW (decoupled weight decay, PyTorch's formula and defaults as LeRobot's SmolVLA preset uses
// them) over a fixed list of parameters, with global-norm gradient clipping and a state that can be
// saved and restored exactly (resume continues the same curve).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace smolvla::train {

struct AdamWOptions {
  double betas[2] = {0.9, 0.95};
  double eps = 1e-8;
  double weight_decay = 1e-10;
  double grad_clip_norm = 10.0;  // <= 0 disables clipping
};

class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions options);

  // Clips gradients by their global L2 norm, then applies one update at learning rate lr.
  // Returns the gradient norm before clipping. Parameters without a gradient are skipped.
  double step(double lr);
  void zero_grad();

  int64_t steps() const { return steps_; }
  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }

  // exp_avg / exp_avg_sq per parameter plus the step count, as named tensors.
  std::vector<std::pair<std::string, at::Tensor>> state() const;
  void load_state(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  AdamWOptions o_;
  int64_t steps_ = 0;
};

}  // namespace smolvla::train
