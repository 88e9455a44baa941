// Reused storage for the large activations of inference GEMMs.
//
// The addon pins glibc's mmap threshold at 4 MiB (see napi/addon.cc: a higher or dynamic one lets
// GC-lived buffers fragment the heap by hundreds of MB). Every tensor above it is then a fresh
// mapping whose pages fault in on first write: a (1024 x 3072) float32 GEMM output ran at a third
// of the GEMM's rate. Blocks here are kept when their tensor dies and handed to the next request
// of the same size, so the model's recurring outputs (the vision qkv and MLP projections) stay
// mapped and faulted in. Bounded: past the cap a released block is freed.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace smolvla {

// at::empty(sizes, options) for a CPU tensor, its storage from the pool when it is at least
// kPooledMinBytes (smaller ones come from malloc's heap without page faults anyway).
at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options);

constexpr int64_t kPooledMinBytes = 1 << 20;

// Bytes held by released blocks waiting for reuse.
int64_t pooled_idle_bytes();

// Frees the blocks waiting for reuse (a model was disposed: its activations' sizes may not recur).
void free_idle_blocks();

}  // namespace smolvla
