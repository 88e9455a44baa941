#include "ops/vicreg.h"

#include <ATen/ATen.h>

#include "core/check.h"

namespace smolvla::ops {
namespace {

// Sum over (T) of the squared off-diagonal entries of each token's (D, D) batch covariance.
at::Tensor off_diagonal_sq(const at::Tensor& z, int64_t batch) {
  const at::Tensor zc = z - z.mean(0, /*keepdim=*/true);                  // (B, T, D)
  const at::Tensor zt = zc.permute({1, 0, 2});                              // (T, B, D)
  const at::Tensor cov = at::bmm(zt.transpose(1, 2), zt) / static_cast<double>(batch - 1);  // (T, D, D)
  const at::Tensor total = cov.pow(2).sum({1, 2});
  const at::Tensor diag = at::diagonal(cov, 0, 1, 2).pow(2).sum(1);
  return total - diag;
}

}  // namespace

VicregTerms vicreg_loss(const at::Tensor& z1, const at::Tensor& z2, double lambda, double mu, double nu,
                        double gamma, double eps) {
  const std::string expected = "a floating tensor of shape (B, T, D) with B >= 2";
  expect_dim(z1, "z1", 3, expected);
  expect_floating(z1, "z1", expected);
  expect_dim(z2, "z2", 3, expected);
  expect_floating(z2, "z2", expected);
  if (z2.sizes() != z1.sizes()) fail_argument("z2", "the shape of z1, " + describe(z1), z2);
  expect_same_device(z2, "z2", z1);
  const int64_t batch = z1.size(0);
  if (batch < 2) {
    fail_argument("z1", "VICReg needs a batch of at least 2 samples (its variance and covariance terms are "
                        "batch statistics; the seeds recommend 32 or more), got batch size " +
                            std::to_string(batch));
  }
  const double dim = static_cast<double>(z1.size(2));

  const at::Tensor invariance = (z1 - z2).pow(2).mean(-1);
  const at::Tensor std1 = at::sqrt(z1.var(0, /*unbiased=*/true) + eps);  // (T, D)
  const at::Tensor std2 = at::sqrt(z2.var(0, /*unbiased=*/true) + eps);
  const at::Tensor variance = at::relu(gamma - std1).mean(-1) + at::relu(gamma - std2).mean(-1);
  const at::Tensor covariance = (off_diagonal_sq(z1, batch) + off_diagonal_sq(z2, batch)) / dim;
  const at::Tensor loss = lambda * invariance + (mu * variance + nu * covariance).unsqueeze(0);
  return {loss, invariance, variance, covariance};
}

at::Tensor cls_similarity(const at::Tensor& cur, const at::Tensor& prev) {
  const std::string expected = "a floating tensor of shape (B, N >= 2, D)";
  expect_dim(cur, "current", 3, expected);
  expect_floating(cur, "current", expected);
  if (cur.size(1) < 2) fail_argument("current", expected, cur);
  expect_dim(prev, "previous", 3, expected);
  if (prev.sizes() != cur.sizes()) {
    fail_argument("previous", "the shape of the current CLS output " + describe(cur) +
                                  " (a different batch size means the policy must be reset())",
                  prev);
  }
  expect_same_device(prev, "previous", cur);
  const at::Tensor a = cur.select(1, 0).to(at::kFloat);
  const at::Tensor b = prev.select(1, 1).to(at::kFloat);
  const at::Tensor an = a / a.norm(2, {-1}, true).clamp_min(1e-12);
  const at::Tensor bn = b / b.norm(2, {-1}, true).clamp_min(1e-12);
  return (an * bn).sum(-1);
}

}  // namespace smolvla::ops
