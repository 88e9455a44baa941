// Native copies of JS typed arrays for work queued on the libuv pool, whose buffers are kept for
// the next call with the same shapes. A control loop sends the same camera sizes every step, and the
// copy runs on the JS thread: faulting in tens of MB of fresh pages there (about 100 ms for one
// 4-robot, 3-camera batch of 1280 x 720 frames on a virtual machine, measured) costs far more than
// the copy itself. Buffers come back when the work that read them is done; at most kStagingKeepBytes
// stay idle, the oldest are freed first.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

namespace smolvla::napi {

constexpr int64_t kStagingKeepBytes = int64_t{128} << 20;

// A contiguous CPU tensor of `shape` and `type` holding a copy of the bytes at `src` (exactly its size).
at::Tensor staged_copy(const void* src, const std::vector<int64_t>& shape, at::ScalarType type);

// Offers tensors from staged_copy back for reuse; those still referenced elsewhere are left alone.
void release_staged(std::vector<at::Tensor> used);

}  // namespace smolvla::napi
