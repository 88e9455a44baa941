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
// Parameters of a non-float32 dtype are drawn in float32 and rounded, so a model built directly in
// bfloat16 holds exactly the values a float32 model cast to bfloat16 holds.
void init_from_seed(torch::nn::Module& root, uint64_t seed);

// The dtype the backbone's modules take while they are built on this thread (float32 unless a
// BackboneBuildDtype is alive). A bfloat16 model is built layer by layer in float32 (so libtorch's
// constructors draw their throw-away initial values as they always do) and each layer is cast as
// soon as it is built: creation never holds the whole model in float32 (the full-size model: 2 GB).
class BackboneBuildDtype {
 public:
  explicit BackboneBuildDtype(at::ScalarType dtype);
  ~BackboneBuildDtype();
  BackboneBuildDtype(const BackboneBuildDtype&) = delete;
  BackboneBuildDtype& operator=(const BackboneBuildDtype&) = delete;

 private:
  at::ScalarType previous_;
};

// Casts a freshly built backbone module to the build dtype (a no-op in float32).
void to_build_dtype(torch::nn::Module& module);

}  // namespace smolvla::model
