// Several Linear layers applied to the same input as one GEMM: their weights concatenated along the
// output axis (q/k/v, gate/up). The packed copy is rebuilt when a source weight or bias changes
// (version counter, storage, dtype or device); under autograd with trainable parts the concatenation is done per
// call so gradients reach the original parameters.
#pragma once

#include <torch/nn/modules/linear.h>

#include <mutex>
#include <vector>

namespace smolvla::model {

// x (.., K) @ W^T + b through a 2-D GEMM with the bias fused (addmm): libtorch 1.x sends 3-D inputs
// through matmul and a separate bias add.
at::Tensor dense(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
inline at::Tensor dense(const at::Tensor& x, const torch::nn::Linear& layer) { return dense(x, layer->weight, layer->bias); }
// tanh-GELU(dense(x)): on the oneDNN routes the GELU runs inside the GEMM on its float32 accumulator
// (one pass over the output instead of two, and no bfloat16 rounding between the two); elsewhere
// libtorch's gelu after the product.
at::Tensor dense_gelu_tanh(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

class PackedLinear {
 public:
  // y = x @ cat(W_i)^T + cat(b_i): (.., sum of out_i). All parts must agree on having a bias.
  at::Tensor forward(const at::Tensor& x, const std::vector<torch::nn::Linear>& parts);

 private:
  bool stale(const std::vector<torch::nn::Linear>& parts) const;
  at::Tensor weight_, bias_;
  std::vector<int64_t> versions_;
  std::vector<const void*> storages_;
  std::mutex mutex_;
};

}  // namespace smolvla::model
