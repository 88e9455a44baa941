#include "ops/batch_inputs.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "core/check.h"
#include "ops/preprocess.h"

namespace smolvla::ops {
namespace {

using Mode = Normalization::Mode;

// A float32 value as JS prints it in the messages the JS side used to build (NaN, Infinity).
std::string number_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

at::Tensor float_tensor(const std::vector<float>& values) {
  return at::from_blob(const_cast<float*>(values.data()), {static_cast<int64_t>(values.size())}, at::kFloat).clone();
}

// Statistics shaped to broadcast over x: (D) for vectors, (3, 1, 1) for (N, 3, H, W) images.
at::Tensor stat(const std::vector<float>& values, at::IntArrayRef shape) { return float_tensor(values).view(shape); }

// Forward normalisation as separate float32 tensor ops (each rounds, as torch does in LeRobot).
// The divisor is std + eps (or max - min + eps) summed in double and rounded once to float32, as
// the JS Normalizer computes it for the un-batched paths (lib/policy/normalize.ts).
at::Tensor normalize(const at::Tensor& x, const Normalization& n, at::IntArrayRef shape) {
  if (n.mode == Mode::kIdentity) return x;
  std::vector<float> scale(n.b.size());
  for (size_t j = 0; j < scale.size(); ++j) {
    const float spread = n.mode == Mode::kMeanStd ? n.b[j] : n.b[j] - n.a[j];
    scale[j] = static_cast<float>(static_cast<double>(spread) + n.eps);
  }
  at::Tensor y = x.sub(stat(n.a, shape)).div_(stat(scale, shape));
  if (n.mode == Mode::kMinMax) y.mul_(2).sub_(1);
  return y;
}

// The inverse, again op by op: a fused multiply-add would round once where LeRobot rounds twice.
at::Tensor unnormalize(const at::Tensor& y, const Normalization& n, at::IntArrayRef shape) {
  if (n.mode == Mode::kIdentity) return y.clone();
  const at::Tensor a = stat(n.a, shape), b = stat(n.b, shape);
  if (n.mode == Mode::kMeanStd) return y.mul(b).add_(a);
  return y.add(1).div_(2).mul_(b.sub(a)).add_(a);
}

void check_norm(const Normalization& n, int64_t dim, const std::string& name) {
  if (n.mode == Mode::kIdentity) return;
  if (static_cast<int64_t>(n.a.size()) != dim || static_cast<int64_t>(n.b.size()) != dim) {
    fail_argument(name, "expected statistics of " + std::to_string(dim) + " values, got " + std::to_string(n.a.size()) +
                            " and " + std::to_string(n.b.size()));
  }
}

// v / 255 in float32 (a correctly rounded quotient, as LeRobot's to(float32) / 255).
const std::array<float, 256>& unit_table() {
  static const std::array<float, 256> kUnit = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = static_cast<float>(v) / 255.0f;
    return t;
  }();
  return kUnit;
}

// uint8 CHW planes -> float32 CHW in [0, 1] into `out` (3, H, W), contiguous.
void planes_to_unit(const at::Tensor& chw, at::Tensor out) {
  const auto& kUnit = unit_table();
  const uint8_t* src = chw.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, chw.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] = kUnit[src[i]];
  });
}

// uint8 HWC -> float32 CHW in [0, 1] into `out` (3, H, W), contiguous; channels past 3 are dropped.
void bytes_to_unit(const at::Tensor& hwc, at::Tensor out) {
  const auto& kUnit = unit_table();
  const int64_t h = hwc.size(0), w = hwc.size(1), c = hwc.size(2), plane = h * w;
  const uint8_t* src = hwc.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  // Rows are independent; 8 rows per task keep the threads' scheduling small next to the work.
  at::parallel_for(0, h, 8, [&](int64_t begin, int64_t end) {
    for (int64_t y = begin; y < end; ++y) {
      const uint8_t* row = src + y * w * c;
      float* r = dst + y * w;
      float* g = r + plane;
      float* b = g + plane;
      for (int64_t x = 0; x < w; ++x) {
        const uint8_t* p = row + x * c;
        r[x] = kUnit[p[0]];
        g[x] = kUnit[p[1]];
        b[x] = kUnit[p[2]];
      }
    }
  });
}

bool is_bytes(const Frame& f) { return f.pixels.scalar_type() == at::kByte; }

// A frame as float32 (1, 3, H, W) in [0, 1].
at::Tensor unit_image(const Frame& f) {
  if (!is_bytes(f)) return f.pixels.unsqueeze(0);
  if (f.channels_first) {
    at::Tensor out = at::empty({1, 3, f.pixels.size(1), f.pixels.size(2)}, at::kFloat);
    planes_to_unit(f.pixels, out[0]);
    return out;
  }
  at::Tensor out = at::empty({1, 3, f.pixels.size(0), f.pixels.size(1)}, at::kFloat);
  bytes_to_unit(f.pixels, out[0]);
  return out;
}

// One camera of every robot -> (B, 3, height, width) in [-1, 1]. Frame by frame: a stack of
// full-size float frames would be one allocation of tens of MB per call, and fresh pages cost more
// than the arithmetic here; one frame's buffer is reused by the allocator from frame to frame.
at::Tensor camera_images(const CameraInput& cam, int64_t size, int64_t width, int64_t height) {
  at::Tensor out = at::full({size, 3, height, width}, -1.0f, at::kFloat);
  for (int64_t i = 0; i < size; ++i) {
    const auto& f = cam.frames[static_cast<size_t>(i)];
    if (!f) continue;
    const at::Tensor resized = resize_with_pad(normalize(unit_image(*f), cam.norm, {3, 1, 1}), width, height, 0.0);
    // LeRobot maps [0, 1] to [-1, 1] after the padding, so the pad becomes -1.
    out[i].copy_(resized[0]).mul_(2).sub_(1);
  }
  return out;
}

at::Tensor camera_mask(const CameraInput& cam, int64_t size) {
  at::Tensor mask = at::zeros({size}, at::kBool);
  bool* m = mask.data_ptr<bool>();
  for (int64_t i = 0; i < size; ++i) m[i] = cam.frames[static_cast<size_t>(i)].has_value() && cam.valid[static_cast<size_t>(i)] != 0;
  return mask;
}

void language(const BatchInputsRequest& r, BatchInputs& out) {
  int64_t length = 0;
  for (int64_t n : r.token_lengths) length = std::max(length, n);
  out.lang_tokens = at::full({r.size, length}, r.pad_id, at::kLong);
  out.lang_masks = at::zeros({r.size, length}, at::kBool);
  const int32_t* ids = r.token_ids.data_ptr<int32_t>();
  const uint8_t* mask = r.token_mask.data_ptr<uint8_t>();
  int64_t* t = out.lang_tokens.data_ptr<int64_t>();
  bool* m = out.lang_masks.data_ptr<bool>();
  int64_t at_row = 0;
  for (int64_t i = 0; i < r.size; ++i) {
    const int64_t n = r.token_lengths[static_cast<size_t>(i)];
    for (int64_t j = 0; j < n; ++j) {
      t[i * length + j] = ids[at_row + j];
      m[i * length + j] = mask[at_row + j] != 0;
    }
    at_row += n;
  }
}

}  // namespace

void check_frames(const BatchInputsRequest& request) {
  for (const CameraInput& cam : request.cameras) {
    for (const auto& f : cam.frames) {
      if (!f || is_bytes(*f)) continue;
      const at::Tensor values = f->pixels.contiguous();
      const float* v = values.data_ptr<float>();
      const int64_t n = values.numel();
      for (int64_t i = 0; i < n; ++i) {
        if (v[i] >= 0.0f && v[i] <= 1.0f) continue;
        if (!std::isfinite(v[i])) {
          throw NotFiniteError(f->name + ": " + number_text(v[i]) + " at index " + std::to_string(i) +
                               " (float images are finite values in [0, 1])");
        }
        throw ArgumentError(f->name + ": value " + number_text(v[i]) + " at index " + std::to_string(i) +
                            " is outside [0, 1] (float images are expected in [0, 1], not 0-255)");
      }
    }
  }
}

BatchInputs batch_inputs(const BatchInputsRequest& r) {
  check_frames(r);
  const int64_t state_dim = r.state.size(1);
  check_norm(r.state_norm, state_dim, "stateNorm");
  for (size_t c = 0; c < r.cameras.size(); ++c) check_norm(r.cameras[c].norm, 3, "cameras[" + std::to_string(c) + "].norm");
  if (r.actions.defined()) check_norm(r.action_norm, r.actions.size(2), "actionNorm");

  BatchInputs out;
  for (const CameraInput& cam : r.cameras) {
    out.images.push_back(camera_images(cam, r.size, r.width, r.height));
    out.img_masks.push_back(camera_mask(cam, r.size));
  }
  for (int64_t i = 0; i < r.empty_cameras; ++i) {
    out.images.push_back(at::full({r.size, 3, r.height, r.width}, -1.0f, at::kFloat));
    out.img_masks.push_back(at::zeros({r.size}, at::kBool));
  }
  out.state = pad_vector(normalize(r.state, r.state_norm, {state_dim}), r.max_state_dim);
  language(r, out);
  if (r.actions.defined()) {
    out.actions = pad_vector(normalize(r.actions, r.action_norm, {r.actions.size(2)}), r.max_action_dim);
  }
  if (r.action_is_pad.defined()) out.action_is_pad = r.action_is_pad.to(at::kBool);
  return out;
}

at::Tensor unnormalize_actions(const at::Tensor& actions, int64_t action_dim, const Normalization& norm) {
  expect_dim(actions, "actions", 3, "model-space actions of shape (B, C, max_action_dim)");
  if (action_dim < 1 || action_dim > actions.size(2)) {
    fail_argument("actionDim", "expected an integer in [1, " + std::to_string(actions.size(2)) + "], got " + std::to_string(action_dim));
  }
  check_norm(norm, action_dim, "norm");
  const at::Tensor model = actions.to(at::kCPU).to(at::kFloat).narrow(2, 0, action_dim);
  at::Tensor robot = unnormalize(model, norm, {action_dim}).contiguous();
  const float* v = robot.data_ptr<float>();
  const int64_t per_robot = robot.size(1) * action_dim;
  for (int64_t i = 0; i < robot.numel(); ++i) {
    if (std::isfinite(v[i])) continue;
    const int64_t j = i % per_robot;
    throw NotFiniteError("actions: the chunk of robot " + std::to_string(i / per_robot) + " has " + number_text(v[i]) +
                         " at step " + std::to_string(j / action_dim) + ", dimension " + std::to_string(j % action_dim) +
                         " (non-finite weights, noise or normalisation statistics)");
  }
  return robot;
}

}  // namespace smolvla::ops
