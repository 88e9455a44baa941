#include "core/block_pool.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace smolvla {
namespace {

// Enough for the full-size model's recurring outputs several times over (float32: 9 and 12 MB).
constexpr size_t kCapBytes = size_t{256} << 20;

struct Pool {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> idle;
  size_t idle_bytes = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: tensors may die during static destruction
  return *p;
}

void release(void* block, size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.idle_bytes + bytes <= kCapBytes) {
      p.idle[bytes].push_back(block);
      p.idle_bytes += bytes;
      return;
    }
  }
  std::free(block);
}

void* acquire(size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    auto it = p.idle.find(bytes);
    if (it != p.idle.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      p.idle_bytes -= bytes;
      return block;
    }
  }
  void* block = nullptr;
  // 64-byte alignment, as libtorch's CPU allocator gives.
  if (posix_memalign(&block, 64, bytes) != 0) throw std::bad_alloc();
  return block;
}

}  // namespace

at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const auto bytes = static_cast<size_t>(numel) * options.dtype().itemsize();
  if (options.device().type() != c10::DeviceType::CPU || bytes < static_cast<size_t>(kPooledMinBytes)) return at::empty(sizes, options);
  void* block = acquire(bytes);
  return at::from_blob(block, sizes, [bytes](void* b) { release(b, bytes); }, options);
}

int64_t pooled_idle_bytes() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  return static_cast<int64_t>(p.idle_bytes);
}

void free_idle_blocks() {
  std::unordered_map<size_t, std::vector<void*>> idle;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    idle.swap(p.idle);
    p.idle_bytes = 0;
  }
  for (auto& [bytes, blocks] : idle) {
    for (void* block : blocks) std::free(block);
  }
}

}  // namespace smolvla
