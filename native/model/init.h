// Seeded random initialisation from a local generator, as the published (Python) code initialises
// the weights it does not load: two models created at once on different pool threads each get
// exactly their seed's weights, and libtorch's process-wide generator is never reseeded behind the
// user's back.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>

namespace smolvla::model {

// Redraws every parameter of `root` (a PolicyModule, names "model....") in module order from a
// generator seeded with `seed`: transformers' _init_weights for the VLM and both experts (Linear,
// Conv2d and Embedding weights N(0, 0.02^2), biases 0, LayerNorm / RMSNorm weights 1), PyTorch's
// nn.Linear default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the experts' cross-attention k/v (built
// after the expert, as plain nn.Linear) and for every projection outside the VLM-with-expert, the
// CLS parameters N(0, 0.02^2). A checkpoint, when loaded, overwrites what it holds.
void init_from_seed(torch::nn::Module& root, uint64_t seed);

}  // namespace smolvla::model
