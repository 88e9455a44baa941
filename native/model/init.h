// Initialisation of a freshly constructed policy as the published (Python) code initialises the
// weights it does not load: transformers' _init_weights for the VLM and both experts (Linear, Conv2d
// and Embedding weights N(0, 0.02^2), biases 0, LayerNorm 1/0, RMSNorm 1), PyTorch's default
// nn.Linear init for the experts' cross-attention k/v (replaced after the expert was built) and for
// every projection outside the VLM-with-expert, CLS parameters N(0, 0.02^2).
#pragma once

#include <torch/nn/module.h>

#include <cstdint>

namespace smolvla::model {

// Re-initialises every parameter of `policy` (a PolicyModule, names "model....") from `seed`.
// A checkpoint loaded afterwards overwrites what it holds; the rest keeps this initialisation.
void init_published(torch::nn::Module& policy, uint64_t seed);

}  // namespace smolvla::model
