// Robot data -> the model's inputs in one pass, and model-space actions -> robot actions: what
// lib/policy hands to the addon once per batch so that no per-pixel loop runs on the JS thread.
// Semantics are LeRobot's (SmolVLA prepare_images / prepare_state / prepare_language and the
// Normalize / Unnormalize modules), checked against the PyTorch reference (policy fixtures).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

namespace smolvla::ops {

// A feature's normalisation (LeRobot, float32): MEAN_STD y = (x - mean) / (std + eps), inverse
// x = y * std + mean; MIN_MAX y = (x - min) / (max - min + eps) * 2 - 1, inverse
// x = (y + 1) / 2 * (max - min) + min. `a` holds mean or min, `b` std or max: one value per element
// of a vector feature, one per channel of a camera.
struct Normalization {
  enum class Mode { kIdentity, kMeanStd, kMinMax };
  Mode mode = Mode::kIdentity;
  std::vector<float> a;
  std::vector<float> b;
  double eps = 1e-8;
};

// One robot's image from one camera: the last frame only, already copied out of JS memory.
struct Frame {
  // How errors name it: the robot and the key as the caller wrote them.
  std::string name;
  // uint8 (H, W, C), C = 3 or 4 (RGB, alpha dropped); uint8 (3, H, W) when channels_first; or
  // float32 (3, H, W) with values in [0, 1].
  at::Tensor pixels;
  bool channels_first = false;
};

struct CameraInput {
  // One entry per robot; nullopt: the robot lacks this camera (a -1 image, mask false).
  std::vector<std::optional<Frame>> frames;
  // Per robot: the camera's padding-mask flag (false masks a present image too).
  std::vector<uint8_t> valid;
  Normalization norm;
};

struct BatchInputsRequest {
  int64_t size = 0;  // robots
  int64_t width = 0, height = 0;  // resize_imgs_with_padding
  std::vector<CameraInput> cameras;  // present cameras, in the model's order
  int64_t empty_cameras = 0;  // placeholders after them: -1 images, mask false
  at::Tensor state;  // float32 (B, D): the last time step, real width
  int64_t max_state_dim = 0;
  Normalization state_norm;
  at::Tensor token_ids;  // int32, the robots' rows one after another
  at::Tensor token_mask;  // uint8, aligned with token_ids
  std::vector<int64_t> token_lengths;  // per robot
  int64_t pad_id = 0;
  at::Tensor actions;  // float32 (B, C, action_dim) in robot space, or undefined
  int64_t max_action_dim = 0;
  Normalization action_norm;
  at::Tensor action_is_pad;  // uint8 (B, C), or undefined
};

struct BatchInputs {
  std::vector<at::Tensor> images;  // per camera (B, 3, height, width) in [-1, 1]
  std::vector<at::Tensor> img_masks;  // per camera (B) bool
  at::Tensor state;  // (B, max_state_dim) float32, normalised, zero-padded
  at::Tensor lang_tokens;  // (B, L) int64, right-padded with pad_id
  at::Tensor lang_masks;  // (B, L) bool
  at::Tensor actions;  // (B, C, max_action_dim) normalised, zero-padded; undefined without actions
  at::Tensor action_is_pad;  // (B, C) bool; undefined without flags
};

// The float frames' values must be finite and in [0, 1] (the usual mistake is a 0-255 frame
// passed as floats): NotFiniteError / ArgumentError naming the frame and the value's index.
void check_frames(const BatchInputsRequest& request);

// Every camera resized with padding to (height, width) (bilinear, align_corners false, pad 0 at
// top/left, after normalisation), mapped x * 2 - 1; placeholders; the state normalised and
// zero-padded to max_state_dim; the token rows right-padded to the longest; actions normalised
// and zero-padded to max_action_dim. Calls check_frames first.
BatchInputs batch_inputs(const BatchInputsRequest& request);

// Model-space actions (B, C, A), any dtype or device -> (B, C, action_dim) float32 on the CPU:
// the first action_dim columns, un-normalised. A NaN or infinity is a NotFiniteError naming the
// robot, step and dimension: such a chunk must never reach a robot.
at::Tensor unnormalize_actions(const at::Tensor& actions, int64_t action_dim, const Normalization& norm);

}  // namespace smolvla::ops
