#include "napi/staging.h"

#include <ATen/ops/empty.h>

#include <cstring>
#include <deque>
#include <mutex>

namespace smolvla::napi {
namespace {

struct Idle {
  std::mutex mutex;
  std::deque<at::Tensor> buffers;  // oldest first
  int64_t bytes = 0;
};

// Shared by every environment (worker_threads): the lock covers the few list operations only.
Idle& idle() {
  static Idle* pool = new Idle();  // never destroyed: tensors must not be freed during static teardown
  return *pool;
}

int64_t bytes_of(const at::Tensor& t) { return static_cast<int64_t>(t.numel() * t.element_size()); }

}  // namespace

at::Tensor staged_copy(const void* src, const std::vector<int64_t>& shape, at::ScalarType type) {
  at::Tensor out;
  {
    Idle& pool = idle();
    std::lock_guard<std::mutex> lock(pool.mutex);
    for (auto it = pool.buffers.begin(); it != pool.buffers.end(); ++it) {
      if (it->scalar_type() == type && it->sizes().vec() == shape) {
        out = std::move(*it);
        pool.buffers.erase(it);
        pool.bytes -= bytes_of(out);
        break;
      }
    }
  }
  if (!out.defined()) out = at::empty(shape, at::TensorOptions().dtype(type));
  const int64_t n = bytes_of(out);
  if (n > 0) std::memcpy(out.data_ptr(), src, static_cast<size_t>(n));
  return out;
}

void release_staged(std::vector<at::Tensor> used) {
  Idle& pool = idle();
  std::lock_guard<std::mutex> lock(pool.mutex);
  for (at::Tensor& t : used) {
    // Still shared (a view or a result kept it): not ours to overwrite.
    if (!t.defined() || t.use_count() != 1 || t.storage().use_count() != 1) continue;
    pool.bytes += bytes_of(t);
    pool.buffers.push_back(std::move(t));
  }
  while (pool.bytes > kStagingKeepBytes && !pool.buffers.empty()) {
    pool.bytes -= bytes_of(pool.buffers.front());
    pool.buffers.pop_front();
  }
}

}  // namespace smolvla::napi
