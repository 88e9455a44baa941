// Seeded random initialisation from a local generator: two models created at once on different
// pool threads each get exactly their seed's weights, and libtorch's process-wide generator is
// never reseeded behind the user's back.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>

namespace smolvla::model {

// Redraws every randomly initialised parameter of `root` (libtorch's defaults: Linear and Conv2d
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, Embedding N(0, 1); the CLS parameters
// N(0, 0.02^2)) in module order from a generator seeded with `seed`. Norm weights keep their
// constant initialisation. A checkpoint, when loaded, overwrites all of it.
void init_from_seed(torch::nn::Module& root, uint64_t seed);

}  // namespace smolvla::model
