#include "model/config.h"

#include "core/check.h"

namespace smolvla::model {

void ModelConfig::validate() const {
  auto positive = [](int64_t v, const char* name) { expect_positive(v, name); };
  positive(vision.hidden, "vision.hidden_size");
  positive(vision.layers, "vision.num_hidden_layers");
  positive(vision.heads, "vision.num_attention_heads");
  positive(vision.patch, "vision.patch_size");
  positive(text.hidden, "text.hidden_size");
  positive(text.heads, "text.num_attention_heads");
  positive(text.kv_heads, "text.num_key_value_heads");
  positive(text.head_dim, "text.head_dim");
  positive(num_vlm_layers, "num_vlm_layers");
  positive(num_expert_layers, "num_expert_layers");
  positive(expert_hidden, "expert_hidden");
  positive(chunk_size, "chunk_size");
  positive(max_state_dim, "max_state_dim");
  positive(max_action_dim, "max_action_dim");
  positive(num_steps, "num_steps");
  if (vision.hidden % vision.heads != 0) fail_argument("vision.hidden_size", "must be divisible by vision.num_attention_heads");
  if (text.heads % text.kv_heads != 0) fail_argument("text.num_attention_heads", "must be a multiple of num_key_value_heads");
  if (text.head_dim % 2 != 0) fail_argument("text.head_dim", "must be even (RoPE rotates halves)");
  if (num_vlm_layers % num_expert_layers != 0) {
    fail_argument("num_expert_layers", "num_vlm_layers (" + std::to_string(num_vlm_layers) +
                                           ") must be a multiple of num_expert_layers (" +
                                           std::to_string(num_expert_layers) + ")");
  }
  if (vision.image_size % vision.patch != 0) fail_argument("vision.image_size", "must be divisible by patch_size");
  const int64_t grid = vision.image_size / vision.patch;
  if (grid % scale_factor != 0) fail_argument("scale_factor", "must divide the patch grid side " + std::to_string(grid));
  if (expert_hidden % 2 != 0) fail_argument("expert_hidden", "must be even (the time embedding has sin and cos halves)");
  if (action_dim <= 0 || action_dim > max_action_dim) {
    fail_argument("action_dim", "must be in [1, max_action_dim = " + std::to_string(max_action_dim) + "], got " +
                                    std::to_string(action_dim));
  }
  if (use_cls_head) {
    if (num_cls_prefix != num_cls_suffix) fail_argument("num_cls_prefix", "must equal num_cls_suffix (VICReg pairs them)");
    if (num_cls_prefix < 2 || num_cls_prefix > 4) fail_argument("num_cls_prefix", "must be in 2..4 with the CLS head");
  }
}

}  // namespace smolvla::model
