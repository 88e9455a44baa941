// N-API entry points of the standalone tensor operations. Small and synchronous:
// each is microseconds to milliseconds; the model's long work is async elsewhere.
#include <ATen/core/Tensor.h>

#include "napi/args.h"
#include "napi/bindings.h"
#include "napi/errors.h"
#include "napi/tensor_wrap.h"
#include "ops/masks.h"
#include "ops/positional.h"
#include "ops/preprocess.h"
#include "ops/vicreg.h"

namespace smolvla::napi {
namespace {

// Arguments are read into locals first: C++ leaves the order of evaluation of call arguments
// unspecified, and errors must name the first bad argument.

Napi::Value MakeAtt2dMasks(const Napi::CallbackInfo& info) {
  const at::Tensor pad = arg_tensor(info, 0, "pad");
  const at::Tensor marks = arg_tensor(info, 1, "marks");
  return TensorWrap::Wrap(info.Env(), ops::make_att_2d_masks(pad, marks));
}

Napi::Value MakeAtt2dMasksWithCls(const Napi::CallbackInfo& info) {
  const at::Tensor pad = arg_tensor(info, 0, "pad");
  const at::Tensor marks = arg_tensor(info, 1, "marks");
  const int64_t ncp = arg_int(info, 2, "numClsPrefix");
  const int64_t ncs = arg_int(info, 3, "numClsSuffix");
  const int64_t context = arg_int(info, 4, "numActionContext");
  const int64_t chunk = arg_int(info, 5, "chunkSize");
  return TensorWrap::Wrap(info.Env(), ops::make_att_2d_masks_with_cls(pad, marks, ncp, ncs, context, chunk));
}

Napi::Value TimeEmbedding(const Napi::CallbackInfo& info) {
  const at::Tensor time = arg_tensor(info, 0, "time");
  const int64_t dim = arg_int(info, 1, "dim");
  const double min_period = arg_number(info, 2, "minPeriod");
  const double max_period = arg_number(info, 3, "maxPeriod");
  const at::ScalarType dtype = parse_dtype(arg_string(info, 4, "dtype"), "dtype");
  return TensorWrap::Wrap(info.Env(), ops::sinusoidal_time_embedding(time, dim, min_period, max_period, dtype));
}

Napi::Value ApplyRope(const Napi::CallbackInfo& info) {
  const at::Tensor x = arg_tensor(info, 0, "x");
  const at::Tensor positions = arg_tensor(info, 1, "positions");
  return TensorWrap::Wrap(info.Env(), ops::apply_rope(x, positions));
}

Napi::Value PadVector(const Napi::CallbackInfo& info) {
  const at::Tensor vector = arg_tensor(info, 0, "vector");
  const int64_t new_dim = arg_int(info, 1, "newDim");
  return TensorWrap::Wrap(info.Env(), ops::pad_vector(vector, new_dim));
}

Napi::Value ResizeWithPad(const Napi::CallbackInfo& info) {
  const at::Tensor img = arg_tensor(info, 0, "img");
  const int64_t width = arg_int(info, 1, "width");
  const int64_t height = arg_int(info, 2, "height");
  const double pad_value = arg_number(info, 3, "padValue");
  return TensorWrap::Wrap(info.Env(), ops::resize_with_pad(img, width, height, pad_value));
}

// vicregLoss(z1, z2, lambda, mu, nu, gamma, eps, withGrad) -> {loss, invariance, variance,
// covariance[, gradZ1, gradZ2]}; the gradients are those of loss.mean().
Napi::Value VicregLoss(const Napi::CallbackInfo& info) {
  at::Tensor z1 = arg_tensor(info, 0, "z1");
  at::Tensor z2 = arg_tensor(info, 1, "z2");
  const double lambda = arg_number(info, 2, "lambda");
  const double mu = arg_number(info, 3, "mu");
  const double nu = arg_number(info, 4, "nu");
  const double gamma = arg_number(info, 5, "gamma");
  const double eps = arg_number(info, 6, "eps");
  const bool with_grad = arg_bool(info, 7, "withGrad");
  if (with_grad) {
    z1 = z1.detach().requires_grad_(true);
    z2 = z2.detach().requires_grad_(true);
  }
  ops::VicregTerms terms = ops::vicreg_loss(z1, z2, lambda, mu, nu, gamma, eps);
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  if (with_grad) {
    terms.loss.mean().backward();
    out.Set("gradZ1", TensorWrap::Wrap(env, z1.grad()));
    out.Set("gradZ2", TensorWrap::Wrap(env, z2.grad()));
  }
  out.Set("loss", TensorWrap::Wrap(env, terms.loss.detach()));
  out.Set("invariance", TensorWrap::Wrap(env, terms.invariance.detach()));
  out.Set("variance", TensorWrap::Wrap(env, terms.variance.detach()));
  out.Set("covariance", TensorWrap::Wrap(env, terms.covariance.detach()));
  return out;
}

Napi::Value ClsSimilarity(const Napi::CallbackInfo& info) {
  const at::Tensor current = arg_tensor(info, 0, "current");
  const at::Tensor previous = arg_tensor(info, 1, "previous");
  return TensorWrap::Wrap(info.Env(), ops::cls_similarity(current, previous));
}

}  // namespace

void register_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("makeAtt2dMasks", Napi::Function::New(env, guarded<MakeAtt2dMasks>, "makeAtt2dMasks"));
  exports.Set("makeAtt2dMasksWithCls", Napi::Function::New(env, guarded<MakeAtt2dMasksWithCls>, "makeAtt2dMasksWithCls"));
  exports.Set("timeEmbedding", Napi::Function::New(env, guarded<TimeEmbedding>, "timeEmbedding"));
  exports.Set("applyRope", Napi::Function::New(env, guarded<ApplyRope>, "applyRope"));
  exports.Set("padVector", Napi::Function::New(env, guarded<PadVector>, "padVector"));
  exports.Set("resizeWithPad", Napi::Function::New(env, guarded<ResizeWithPad>, "resizeWithPad"));
  exports.Set("vicregLoss", Napi::Function::New(env, guarded<VicregLoss>, "vicregLoss"));
  exports.Set("clsSimilarity", Napi::Function::New(env, guarded<ClsSimilarity>, "clsSimilarity"));
}

}  // namespace smolvla::napi
