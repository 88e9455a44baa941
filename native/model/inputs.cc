#include "model/inputs.h"

#include <ATen/ATen.h>

#include "core/check.h"

namespace smolvla::model {

void check_observation(const Observation& o, const ModelConfig& c) {
  const std::string state_shape = "a float tensor of shape (B, " + std::to_string(c.max_state_dim) + ") (normalised, zero-padded)";
  expect_dim(o.state, "observation.state", 2, state_shape);
  expect_floating(o.state, "observation.state", state_shape);
  expect_size(o.state, "observation.state", 1, c.max_state_dim, state_shape);
  const int64_t b = o.state.size(0);
  if (b == 0) fail_argument("observation.state", "a batch of at least one sample", o.state);
  if (o.images.empty()) fail_argument("observation.images", "at least one camera image");
  if (o.img_masks.size() != o.images.size()) {
    fail_argument("observation.imgMasks", "one mask per image (" + std::to_string(o.images.size()) + "), got " +
                                              std::to_string(o.img_masks.size()));
  }
  const int64_t patch = c.vision.patch;
  for (size_t i = 0; i < o.images.size(); ++i) {
    const std::string name = "observation.images[" + std::to_string(i) + "]";
    const std::string shape = "a float tensor of shape (" + std::to_string(b) +
                              ", 3, H, W) in [-1, 1], H and W multiples of the patch size " + std::to_string(patch) +
                              " (resize_imgs_with_padding)";
    expect_dim(o.images[i], name, 4, shape);
    expect_floating(o.images[i], name, shape);
    if (o.images[i].size(0) != b || o.images[i].size(1) != 3 || o.images[i].size(2) % patch != 0 ||
        o.images[i].size(3) % patch != 0 || o.images[i].size(2) == 0) {
      fail_argument(name, shape, o.images[i]);
    }
    const std::string mname = "observation.imgMasks[" + std::to_string(i) + "]";
    expect_dim(o.img_masks[i], mname, 1, "a bool tensor of shape (" + std::to_string(b) + ")");
    if (o.img_masks[i].scalar_type() != at::kBool || o.img_masks[i].size(0) != b) {
      fail_argument(mname, "a bool tensor of shape (" + std::to_string(b) + ")", o.img_masks[i]);
    }
  }
  const std::string tok_shape = "an int64 tensor of shape (" + std::to_string(b) + ", L)";
  expect_dim(o.lang_tokens, "observation.langTokens", 2, tok_shape);
  if (o.lang_tokens.scalar_type() != at::kLong || o.lang_tokens.size(0) != b) fail_argument("observation.langTokens", tok_shape, o.lang_tokens);
  const std::string mask_shape = "a bool tensor of shape (" + std::to_string(b) + ", " + std::to_string(o.lang_tokens.size(1)) + ")";
  expect_dim(o.lang_masks, "observation.langMasks", 2, mask_shape);
  if (o.lang_masks.scalar_type() != at::kBool || o.lang_masks.sizes() != o.lang_tokens.sizes()) {
    fail_argument("observation.langMasks", mask_shape, o.lang_masks);
  }
  if (o.lang_tokens.numel() > 0) {
    const int64_t lo = o.lang_tokens.min().item<int64_t>(), hi = o.lang_tokens.max().item<int64_t>();
    if (lo < 0 || hi >= c.text.vocab) {
      fail_argument("observation.langTokens", "token ids in [0, " + std::to_string(c.text.vocab) + "), got range [" +
                                                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
  }
}

void check_actions(const at::Tensor& t, const std::string& name, const ModelConfig& c, int64_t batch) {
  const std::string shape = "a float tensor of shape (" + std::to_string(batch) + ", " + std::to_string(c.chunk_size) +
                            ", " + std::to_string(c.max_action_dim) + ")";
  expect_dim(t, name, 3, shape);
  expect_floating(t, name, shape);
  if (t.size(0) != batch || t.size(1) != c.chunk_size || t.size(2) != c.max_action_dim) fail_argument(name, shape, t);
}

void check_action_is_pad(const at::Tensor& is_pad, int64_t batch, const ModelConfig& c) {
  const std::string shape = "a bool tensor of shape (" + std::to_string(batch) + ", " + std::to_string(c.chunk_size) + ")";
  expect_dim(is_pad, "actionIsPad", 2, shape);
  if (is_pad.scalar_type() != at::kBool || is_pad.size(0) != batch || is_pad.size(1) != c.chunk_size) {
    fail_argument("actionIsPad", shape, is_pad);
  }
}

void check_action_context(const at::Tensor& context, int64_t batch, const ModelConfig& c) {
  const std::string shape =
      "a float tensor of shape (" + std::to_string(batch) + ", n, " + std::to_string(c.max_action_dim) + ")";
  expect_dim(context, "actionContext", 3, shape);
  expect_floating(context, "actionContext", shape);
  if (context.size(0) != batch || context.size(2) != c.max_action_dim || context.size(1) == 0) {
    fail_argument("actionContext", shape, context);
  }
}

void check_time(const at::Tensor& time, int64_t batch) {
  if (time.dim() != 1 || time.size(0) != batch) fail_argument("time", "a float tensor of shape (" + std::to_string(batch) + ")", time);
}

void check_delta_batch(int64_t batch, const ModelConfig& c) {
  if (c.use_cls_head && batch < 2) {
    fail_argument("observation", "a batch of at least 2 samples with the CLS head: VICReg's variance and covariance "
                                 "terms are batch statistics (the seeds recommend 32 or more)");
  }
}

Observation observation_to(const Observation& obs, const c10::Device& device) {
  Observation o;
  for (const auto& t : obs.images) o.images.push_back(t.to(device));
  for (const auto& t : obs.img_masks) o.img_masks.push_back(t.to(device));
  o.lang_tokens = obs.lang_tokens.to(device);
  o.lang_masks = obs.lang_masks.to(device);
  o.state = obs.state.to(device, at::kFloat);
  return o;
}

}  // namespace smolvla::model
