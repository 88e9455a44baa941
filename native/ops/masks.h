// Attention masks built from (pad mask, block marks), as LeRobot's make_att_2d_masks.
#pragma once

#include <ATen/core/Tensor.h>

namespace smolvla::ops {

// Standard SmolVLA mask: with m = cumsum(marks), token i attends to j iff m[j] <= m[i] and both
// tokens are valid. pad and marks are (B, N) bool (marks may also be integer); result (B, N, N) bool.
at::Tensor make_att_2d_masks(const at::Tensor& pad, const at::Tensor& marks);

// Opt-in variant for the suffix CLS rows: the last num_cls_suffix rows see the valid
// prefix (everything before the chunk_size action tokens that precede them), the first and last
// num_action_context valid action tokens (all of them when 2 * num_action_context >= chunk_size)
// and the valid suffix CLS tokens; never a padded token. Other rows are the standard mask.
// num_cls_prefix is accepted for the published signature; prefix CLS rows keep the standard rule.
at::Tensor make_att_2d_masks_with_cls(const at::Tensor& pad, const at::Tensor& marks, int64_t num_cls_prefix,
                                      int64_t num_cls_suffix, int64_t num_action_context, int64_t chunk_size);

// Rows of a suffix decoded against a cached prefix: [prefix pad broadcast over suffix rows ;
// suffix's own 2-D mask] -> (B, Ns, P + Ns).
at::Tensor make_decode_mask(const at::Tensor& prefix_pad, const at::Tensor& suffix_pad, const at::Tensor& suffix_marks);

}  // namespace smolvla::ops
