// Dimensions and switches the native model needs. TypeScript resolves config.json (defaults,
// backbone dimensions, validation) and hands it over once as JSON; parse_model_config reads it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace smolvla::model {

struct VisionDims {
  int64_t hidden = 768;
  int64_t intermediate = 3072;
  int64_t layers = 12;
  int64_t heads = 12;
  int64_t patch = 16;
  int64_t image_size = 512;
  double eps = 1e-6;
};

struct TextDims {
  int64_t vocab = 49280;
  int64_t hidden = 960;  // Dv
  int64_t intermediate = 2560;
  int64_t heads = 15;
  int64_t kv_heads = 5;
  int64_t head_dim = 64;
  double eps = 1e-5;
};

struct ModelConfig {
  VisionDims vision;
  TextDims text;
  int64_t scale_factor = 4;
  int64_t num_vlm_layers = 16;
  int64_t num_expert_layers = 16;  // already resolved (> 0)
  int64_t self_attn_every_n_layers = 2;
  bool cross_attention = true;  // attention_mode contains "cross"
  int64_t expert_hidden = 720;
  int64_t expert_intermediate = 2048;

  int64_t chunk_size = 50;
  int64_t max_state_dim = 32;
  int64_t max_action_dim = 32;
  int64_t action_dim = 32;  // real action width (noise of the delta objective goes only there)
  int64_t num_steps = 10;
  double min_period = 4e-3;
  double max_period = 4.0;
  int64_t prefix_length = -1;
  bool add_image_special_tokens = false;
  std::vector<int64_t> image_start_tokens;  // from the tokenizer when add_image_special_tokens
  std::vector<int64_t> image_end_tokens;

  bool use_cls_head = false;
  int64_t num_cls_prefix = 2;
  int64_t num_cls_suffix = 2;
  double vicreg_weight = 0.01;
  double vicreg_lambda = 25.0;
  double vicreg_mu = 25.0;
  double vicreg_nu = 1.0;
  double cls_noise_scale = 0.01;

  bool train_delta_expert = false;
  bool train_expert_only = true;
  bool freeze_vision_encoder = true;
  bool train_state_proj = true;

  // Number of expert layers per VLM layer step: expert layer j pairs with VLM layer j * k.
  int64_t expert_stride() const { return num_vlm_layers / num_expert_layers; }
  // a layer is cross-attention unless it is a self-attention layer by the interleave rule
  // (passes that fill the cache use self-attention everywhere; callers decide that).
  bool is_cross_layer(int64_t i) const {
    if (!cross_attention) return false;
    return !(self_attn_every_n_layers > 0 && i % self_attn_every_n_layers == 0);
  }
  // Expert layer paired with VLM layer i, or -1 when none.
  int64_t expert_layer_for(int64_t i) const { return i % expert_stride() == 0 ? i / expert_stride() : -1; }

  // Throws ArgumentError naming the field when the combination cannot be built.
  void validate() const;
};

// {"config": config.json keys, "resolved": lib/config ResolvedDims, "tokens": image special-token
// ids} -> ModelConfig, validated. An ArgumentError naming the key for a missing or mistyped value.
ModelConfig parse_model_config(const std::string& json);

}  // namespace smolvla::model
