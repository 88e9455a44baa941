// Checks of what callers hand the model, against its config, so every mistake names the input
// (observation.images[i], actionIsPad, noise, ...) and the expected shape; and the move of an
// observation to the model's device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

#include "model/config.h"
#include "model/flow_matching.h"

namespace smolvla::model {

// images[i] (B, 3, H, W) float, imgMasks[i] (B) bool, langTokens (B, L) int64 in [0, vocab),
// langMasks (B, L) bool, state (B, max_state_dim) float.
void check_observation(const Observation& obs, const ModelConfig& c);

// (batch, chunk_size, max_action_dim) float.
void check_actions(const at::Tensor& t, const std::string& name, const ModelConfig& c, int64_t batch);

// (batch, chunk_size) bool.
void check_action_is_pad(const at::Tensor& is_pad, int64_t batch, const ModelConfig& c);

// (batch, n >= 1, max_action_dim) float.
void check_action_context(const at::Tensor& context, int64_t batch, const ModelConfig& c);

// (batch) float.
void check_time(const at::Tensor& time, int64_t batch);

// The delta objective with the CLS head needs batch >= 2: VICReg's variance and covariance terms are
// batch statistics.
void check_delta_batch(int64_t batch, const ModelConfig& c);

// Every tensor on `device` (state as float32).
Observation observation_to(const Observation& obs, const c10::Device& device);

}  // namespace smolvla::model
