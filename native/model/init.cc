#include "model/init.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <cmath>

#include "model/flow_matching.h"

namespace smolvla::model {
namespace {

void uniform_fan_in(at::Tensor& weight, at::Tensor& bias, int64_t fan_in, at::Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  weight.uniform_(-bound, bound, gen);
  if (bias.defined()) bias.uniform_(-bound, bound, gen);
}

}  // namespace

void init_from_seed(torch::nn::Module& root, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (const auto& item : root.named_modules()) {
    torch::nn::Module& m = *item.value();
    if (auto* linear = m.as<torch::nn::Linear>()) {
      uniform_fan_in(linear->weight, linear->bias, linear->weight.size(1), gen);
    } else if (auto* conv = m.as<torch::nn::Conv2d>()) {
      const at::Tensor& w = conv->weight;
      uniform_fan_in(conv->weight, conv->bias, w.size(1) * w.size(2) * w.size(3), gen);
    } else if (auto* embedding = m.as<torch::nn::Embedding>()) {
      embedding->weight.normal_(0.0, 1.0, gen);
    } else if (auto* fm = m.as<FlowMatching>()) {
      if (fm->config().use_cls_head) {
        fm->pre_cls_param.normal_(0.0, 0.02, gen);
        fm->suf_cls_param.normal_(0.0, 0.02, gen);
      }
    }
  }
}

}  // namespace smolvla::model
