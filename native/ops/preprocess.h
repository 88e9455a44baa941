// Input preprocessing shared by the policy and the training loader (policy wrapper).
#pragma once

#include <ATen/core/Tensor.h>

namespace smolvla::ops {

// Zero-pad the last axis of x to new_dim (no-op when equal; an error when x is wider).
at::Tensor pad_vector(const at::Tensor& x, int64_t new_dim);

// Keep the aspect ratio: ratio = max(W / width, H / height), bilinear resize (align_corners false,
// no antialiasing) to (int(H / ratio), int(W / ratio)), then pad on the left and top with pad_value
// to (height, width). img is (B, C, H, W) floating.
at::Tensor resize_with_pad(const at::Tensor& img, int64_t width, int64_t height, double pad_value);

}  // namespace smolvla::ops
