#include "ops/masks.h"

#include <ATen/ATen.h>

#include "core/check.h"

namespace smolvla::ops {
namespace {

void check_pad_marks(const at::Tensor& pad, const at::Tensor& marks) {
  expect_dim(pad, "pad", 2, "a bool tensor of shape (B, N)");
  if (pad.scalar_type() != at::kBool) fail_argument("pad", "a bool tensor of shape (B, N)", pad);
  expect_dim(marks, "marks", 2, "a bool or integer tensor of shape (B, N) matching pad");
  if (marks.sizes() != pad.sizes() || at::isFloatingType(marks.scalar_type())) {
    fail_argument("marks", "a bool or integer tensor of shape (B, N) matching pad " + describe(pad), marks);
  }
  expect_same_device(marks, "marks", pad);
}

}  // namespace

at::Tensor make_att_2d_masks(const at::Tensor& pad, const at::Tensor& marks) {
  check_pad_marks(pad, marks);
  const at::Tensor cum = at::cumsum(marks.to(at::kLong), 1);
  const at::Tensor block = cum.unsqueeze(1) <= cum.unsqueeze(2);
  const at::Tensor both_valid = pad.unsqueeze(1).logical_and(pad.unsqueeze(2));
  return block.logical_and(both_valid);
}

at::Tensor make_att_2d_masks_with_cls(const at::Tensor& pad, const at::Tensor& marks, int64_t num_cls_prefix,
                                      int64_t num_cls_suffix, int64_t num_action_context, int64_t chunk_size) {
  check_pad_marks(pad, marks);
  expect_non_negative(num_cls_prefix, "num_cls_prefix");
  expect_non_negative(num_cls_suffix, "num_cls_suffix");
  expect_non_negative(num_action_context, "num_action_context");
  expect_positive(chunk_size, "chunk_size");
  const int64_t n = pad.size(1);
  if (num_cls_prefix + chunk_size + num_cls_suffix > n) {
    fail_argument("chunk_size", "num_cls_prefix + chunk_size + num_cls_suffix = " +
                                    std::to_string(num_cls_prefix + chunk_size + num_cls_suffix) +
                                    " exceeds the sequence length " + std::to_string(n));
  }
  at::Tensor mask = make_att_2d_masks(pad, marks);
  if (num_cls_suffix == 0) return mask;

  const int64_t act_begin = n - num_cls_suffix - chunk_size;
  const int64_t cls_begin = n - num_cls_suffix;
  // Columns a suffix CLS row may see, per sample: (B, N).
  at::Tensor visible = at::zeros_like(pad);
  visible.narrow(1, 0, act_begin).copy_(pad.narrow(1, 0, act_begin));
  const at::Tensor act_pad = pad.narrow(1, act_begin, chunk_size);
  if (2 * num_action_context >= chunk_size) {
    visible.narrow(1, act_begin, chunk_size).copy_(act_pad);
  } else {
    // Rank of each valid action token from the front and from the back.
    const at::Tensor valid = act_pad.to(at::kLong);
    const at::Tensor from_front = at::cumsum(valid, 1);
    const at::Tensor from_back = at::cumsum(valid.flip({1}), 1).flip({1});
    const at::Tensor keep = act_pad.logical_and(
        (from_front <= num_action_context).logical_or(from_back <= num_action_context));
    visible.narrow(1, act_begin, chunk_size).copy_(keep);
  }
  visible.narrow(1, cls_begin, num_cls_suffix).copy_(pad.narrow(1, cls_begin, num_cls_suffix));
  // A padded CLS row sees nothing, as a padded row does in the standard mask.
  const at::Tensor rows = visible.unsqueeze(1).logical_and(pad.narrow(1, cls_begin, num_cls_suffix).unsqueeze(2));
  mask.narrow(1, cls_begin, num_cls_suffix).copy_(rows);
  return mask;
}

at::Tensor make_decode_mask(const at::Tensor& prefix_pad, const at::Tensor& suffix_pad, const at::Tensor& suffix_marks) {
  expect_dim(prefix_pad, "prefix_pad_masks", 2, "a bool tensor of shape (B, P)");
  if (prefix_pad.scalar_type() != at::kBool) fail_argument("prefix_pad_masks", "a bool tensor of shape (B, P)", prefix_pad);
  const at::Tensor suffix_2d = make_att_2d_masks(suffix_pad, suffix_marks);
  if (prefix_pad.size(0) != suffix_pad.size(0)) {
    fail_argument("prefix_pad_masks", "a batch of " + std::to_string(suffix_pad.size(0)) + " rows", prefix_pad);
  }
  const int64_t ns = suffix_pad.size(1);
  const at::Tensor prefix_2d = prefix_pad.unsqueeze(1).expand({prefix_pad.size(0), ns, prefix_pad.size(1)});
  return at::cat({prefix_2d, suffix_2d}, 2);
}

}  // namespace smolvla::ops
