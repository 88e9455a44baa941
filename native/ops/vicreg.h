// VICReg between two sets of CLS embeddings and the cosine rule of the inference state machine.
#pragma once

#include <ATen/core/Tensor.h>

namespace smolvla::ops {

struct VicregTerms {
  at::Tensor loss;        // (B, T): lambda * invariance + mu * variance + nu * covariance
  at::Tensor invariance;  // (B, T): mean over D of (z1 - z2)^2
  at::Tensor variance;    // (T): hinge on the per-feature std over the batch, both branches
  at::Tensor covariance;  // (T): squared off-diagonal covariance / D, both branches
};

// z1, z2: (B, T, D) floating, B >= 2 (the batch statistics are undefined for one sample).
// Differentiable through libtorch autograd.
VicregTerms vicreg_loss(const at::Tensor& z1, const at::Tensor& z2, double lambda, double mu, double nu,
                        double gamma = 1.0, double eps = 1e-4);

// Cosine similarity between the current call's CLS token 0 and the previous call's CLS token 1, per
// sample: cur, prev (B, N >= 2, D) -> (B). Each vector is normalised as x / max(|x|, 1e-12).
at::Tensor cls_similarity(const at::Tensor& cur, const at::Tensor& prev);

}  // namespace smolvla::ops
