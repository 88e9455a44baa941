// State dicts in LeRobot's layout: load from / save to safetensors.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace smolvla::model {

struct LoadReport {
  std::vector<std::string> loaded;
  // Delta-expert / CLS tensors absent from the file (a published SmolVLA checkpoint): they keep
  // their fresh initialisation.
  std::vector<std::string> initialised;
  // In the file but not used by the model (lm_head, normalisation statistics, ...).
  std::vector<std::string> unexpected;
};

// True for the tensors a published SmolVLA checkpoint lacks.
bool is_extension_key(const std::string& name);

// Copies every matching tensor of `file` into `module` (casting dtype), reading one tensor at a time.
// Missing required tensors throw, naming them; shape mismatches throw naming the key and both shapes.
LoadReport load_state(torch::nn::Module& module, const io::SafetensorsReader& file);

// Every parameter and buffer by full name.
std::vector<std::pair<std::string, at::Tensor>> state_dict(const torch::nn::Module& module);

// Warm start (explicit option): copy the main expert's weights into the delta expert where
// shapes match.
int64_t copy_expert_into_delta(torch::nn::Module& module);

}  // namespace smolvla::model
