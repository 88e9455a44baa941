// JS observation object -> model::Observation, validated against the model's config so every
// mistake names the key (images[i], imgMasks[i], langTokens, langMasks, state) and the expected shape.
#pragma once

#include <napi.h>

#include "model/config.h"
#include "model/flow_matching.h"

namespace smolvla::napi {

model::Observation observation_from_js(const Napi::Value& value, const model::ModelConfig& config);

// `actionIsPad` must be a bool (B, chunk_size) tensor; an ArgumentError naming it otherwise.
void expect_action_is_pad(const at::Tensor& is_pad, int64_t batch, const model::ModelConfig& config);

// Moves every tensor to the device (work-thread side).
model::Observation observation_to(const model::Observation& obs, const c10::Device& device);

}  // namespace smolvla::napi
