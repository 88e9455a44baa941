#include "ops/preprocess.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/check.h"

namespace smolvla::ops {

at::Tensor pad_vector(const at::Tensor& x, int64_t new_dim) {
  expect_defined(x, "vector", "a tensor whose last axis is padded");
  if (x.dim() == 0) fail_argument("vector", "a tensor with at least one axis", x);
  expect_positive(new_dim, "new_dim");
  const int64_t cur = x.size(-1);
  if (cur == new_dim) return x;
  if (cur > new_dim) {
    fail_argument("vector", "a last axis of at most new_dim = " + std::to_string(new_dim), x);
  }
  auto sizes = x.sizes().vec();
  sizes.back() = new_dim;
  at::Tensor out = at::zeros(sizes, x.options());
  out.narrow(-1, 0, cur).copy_(x);
  return out;
}

at::Tensor resize_with_pad(const at::Tensor& img, int64_t width, int64_t height, double pad_value) {
  expect_dim(img, "img", 4, "a floating tensor of shape (B, C, H, W)");
  expect_floating(img, "img", "a floating tensor of shape (B, C, H, W)");
  expect_positive(width, "width");
  expect_positive(height, "height");
  const int64_t cur_h = img.size(2), cur_w = img.size(3);
  if (cur_h == 0 || cur_w == 0) fail_argument("img", "a non-empty image", img);
  // Python float arithmetic and int() truncation, as LeRobot's resize_with_pad.
  const double ratio = std::max(static_cast<double>(cur_w) / static_cast<double>(width),
                                static_cast<double>(cur_h) / static_cast<double>(height));
  const int64_t resized_h = static_cast<int64_t>(static_cast<double>(cur_h) / ratio);
  const int64_t resized_w = static_cast<int64_t>(static_cast<double>(cur_w) / ratio);
  if (resized_h <= 0 || resized_w <= 0) {
    fail_argument("img", "an aspect ratio that leaves at least one pixel per side at " + std::to_string(width) +
                             "x" + std::to_string(height), img);
  }
  at::Tensor resized = (resized_h == cur_h && resized_w == cur_w)
                           ? img
                           : at::upsample_bilinear2d(img, {resized_h, resized_w}, /*align_corners=*/false);
  const int64_t pad_h = std::max<int64_t>(0, height - resized_h);
  const int64_t pad_w = std::max<int64_t>(0, width - resized_w);
  if (pad_h == 0 && pad_w == 0) return resized;
  return at::constant_pad_nd(resized, {pad_w, 0, pad_h, 0}, pad_value);
}

}  // namespace smolvla::ops
