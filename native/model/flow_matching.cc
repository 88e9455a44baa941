#include "model/flow_matching.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>

#include <cmath>
#include <optional>
#include <stdexcept>

#include "core/check.h"
#include "ops/gemm_routes.h"
#include "ops/masks.h"
#include "ops/positional.h"
#include "ops/vicreg.h"

namespace smolvla::model {
namespace {

at::Tensor ones_bool(int64_t b, int64_t n, const at::Device& device) {
  return at::ones({b, n}, at::TensorOptions().dtype(at::kBool).device(device));
}

// x / max(|x|, 1e-12) along the last axis.
at::Tensor l2_normalize(const at::Tensor& x) { return x / x.norm(2, {-1}, true).clamp_min(1e-12); }

}  // namespace

ClsMlpImpl::ClsMlpImpl(int64_t in, int64_t hidden, int64_t out) {
  fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, out));
}

at::Tensor ClsMlpImpl::forward(const at::Tensor& x) { return fc2(at::relu(fc1(x))); }

FlowMatchingImpl::FlowMatchingImpl(const ModelConfig& c) : c_(c) {
  c.validate();
  const int64_t dv = c.text.hidden, de = c.expert_hidden, a = c.max_action_dim;
  vlm_with_expert = register_module("vlm_with_expert", VlmWithExpert(c));
  state_proj = register_module("state_proj", torch::nn::Linear(c.max_state_dim, dv));
  action_in_proj = register_module("action_in_proj", torch::nn::Linear(a, de));
  action_out_proj = register_module("action_out_proj", torch::nn::Linear(de, a));
  action_time_mlp_in = register_module("action_time_mlp_in", torch::nn::Linear(2 * de, de));
  action_time_mlp_out = register_module("action_time_mlp_out", torch::nn::Linear(de, de));
  delta_action_in_proj = register_module("delta_action_in_proj", torch::nn::Linear(a, de));
  delta_action_out_proj = register_module("delta_action_out_proj", torch::nn::Linear(de, a));
  delta_action_time_mlp_in = register_module("delta_action_time_mlp_in", torch::nn::Linear(2 * de, de));
  delta_action_time_mlp_out = register_module("delta_action_time_mlp_out", torch::nn::Linear(de, de));
  action_context_encoder = register_module(
      "action_context_encoder",
      torch::nn::Sequential(torch::nn::Linear(a, de), torch::nn::ReLU(), torch::nn::Linear(de, a)));
  if (c.use_cls_head) {
    pre_cls_param = register_parameter("pre_cls_param", torch::randn({1, c.num_cls_prefix, dv}) * 0.02);
    suf_cls_param = register_parameter("suf_cls_param", torch::randn({1, c.num_cls_suffix, de}) * 0.02);
    obs_cls_proj = register_module("obs_cls_proj", ClsMlp(dv, dv, de));
    act_cls_proj = register_module("act_cls_proj", ClsMlp(de, dv, de));
  } else {
    // zero placeholders keep the state-dict keys; never used.
    pre_cls_param = register_buffer("pre_cls_param", torch::zeros({1, 2, dv}));
    suf_cls_param = register_buffer("suf_cls_param", torch::zeros({1, 2, de}));
  }
}

at::ScalarType FlowMatchingImpl::backbone_dtype() const {
  return vlm_with_expert->vlm->model->text_model->norm->weight.scalar_type();
}

FlowMatchingImpl::Sequence FlowMatchingImpl::embed_prefix(const Observation& obs, Trace* trace) {
  const int64_t b = obs.batch();
  const auto device = obs.state.device();
  const auto dtype = backbone_dtype();
  auto& vlm = *vlm_with_expert->vlm->model;
  std::vector<at::Tensor> embs, pads;
  std::vector<int64_t> marks;

  auto special = [&](const std::vector<int64_t>& ids) {
    const at::Tensor t = at::tensor(ids, at::TensorOptions().dtype(at::kLong)).to(device);
    embs.push_back(vlm.text_model->embed_tokens(t).unsqueeze(0).expand({b, -1, -1}));
    pads.push_back(ones_bool(b, static_cast<int64_t>(ids.size()), device));
    marks.insert(marks.end(), ids.size(), 0);
  };

  for (size_t cam = 0; cam < obs.images.size(); ++cam) {
    if (c_.add_image_special_tokens) special(c_.image_start_tokens);
    const at::Tensor vision = vlm.vision_model(obs.images[cam].to(dtype));
    at::Tensor img = vlm.connector(vision);
    if (trace) {
      (*trace)["vision." + std::to_string(cam)] = vision;
      (*trace)["connector." + std::to_string(cam)] = img;
    }
    // sqrt(Dv) as a tensor of the activation dtype (31.0 in bfloat16).
    img = img * at::scalar_tensor(std::sqrt(static_cast<double>(img.size(-1))), img.options());
    const int64_t n = img.size(1);
    embs.push_back(img);
    pads.push_back(obs.img_masks[cam].view({b, 1}).expand({b, n}));
    marks.insert(marks.end(), n, 0);
    if (c_.add_image_special_tokens) special(c_.image_end_tokens);
  }
  // the language scale is a float64 sqrt(Dv) applied to the activation.
  const at::Tensor lang = vlm.text_model->embed_tokens(obs.lang_tokens);
  embs.push_back(lang * std::sqrt(static_cast<double>(lang.size(-1))));
  pads.push_back(obs.lang_masks);
  marks.insert(marks.end(), lang.size(1), 0);
  embs.push_back(state_proj(obs.state).unsqueeze(1).to(dtype));
  pads.push_back(ones_bool(b, 1, device));
  marks.push_back(1);

  Sequence seq{at::cat(embs, 1), at::cat(pads, 1), at::Tensor()};
  if (c_.use_cls_head) {
    seq.embs = at::cat({pre_cls_param.to(dtype).expand({b, -1, -1}), seq.embs}, 1);
    seq.pad = at::cat({ones_bool(b, c_.num_cls_prefix, device), seq.pad}, 1);
    marks.insert(marks.begin(), c_.num_cls_prefix, 0);
  }
  seq.marks = at::tensor(marks, at::TensorOptions().dtype(at::kLong)).to(at::kBool).to(device).unsqueeze(0).expand({b, -1});
  const int64_t len = seq.embs.size(1);
  if (c_.prefix_length > len) {  // right-pad to prefix_length, never truncate
    const int64_t extra = c_.prefix_length - len;
    seq.embs = at::cat({seq.embs, at::zeros({b, extra, seq.embs.size(2)}, seq.embs.options())}, 1);
    seq.pad = at::cat({seq.pad, at::zeros({b, extra}, seq.pad.options())}, 1);
    seq.marks = at::cat({seq.marks, at::zeros({b, extra}, seq.marks.options())}, 1);
  }
  return seq;
}

FlowMatchingImpl::Sequence FlowMatchingImpl::embed_suffix(const at::Tensor& x, const at::Tensor& time, Expert expert) {
  const bool delta = expert == Expert::Delta;
  auto& in_proj = delta ? delta_action_in_proj : action_in_proj;
  auto& mlp_in = delta ? delta_action_time_mlp_in : action_time_mlp_in;
  auto& mlp_out = delta ? delta_action_time_mlp_out : action_time_mlp_out;
  const at::Tensor action = dense(x, in_proj);
  const at::Tensor time_emb = ops::sinusoidal_time_embedding(time, c_.expert_hidden, c_.min_period, c_.max_period,
                                                             action.scalar_type())
                                  .unsqueeze(1)
                                  .expand_as(action);
  at::Tensor embs = dense(at::silu(dense(at::cat({action, time_emb}, 2), mlp_in)), mlp_out).to(backbone_dtype());
  if (delta && c_.use_cls_head) {
    embs = at::cat({embs, suf_cls_param.to(embs.scalar_type()).expand({embs.size(0), -1, -1})}, 1);
  }
  const at::Tensor ones = ones_bool(embs.size(0), embs.size(1), embs.device());
  return {embs, ones, ones};
}

PrefixResult FlowMatchingImpl::prefix_pass(const Observation& obs, Trace* trace) {
  const Sequence seq = embed_prefix(obs, trace);
  const at::Tensor mask = ops::make_att_2d_masks(seq.pad, seq.marks);
  const at::Tensor positions = at::cumsum(seq.pad.to(at::kLong), 1) - 1;
  const PassPlan plan = PassPlan::build(mask, positions, seq.embs.size(1), 0, c_.text.head_dim);
  PrefixResult r;
  r.prefix_out = vlm_with_expert->forward(seq.embs, at::Tensor(), plan, Expert::Action, /*fill_cache=*/true, &r.cache,
                                          nullptr, nullptr)
                     .prefix;
  r.pad_masks = seq.pad;
  if (c_.use_cls_head) r.obs_cls_out = r.prefix_out.narrow(1, 0, c_.num_cls_prefix);
  if (trace) {
    (*trace)["prefix_embs"] = seq.embs;
    (*trace)["prefix_pad_masks"] = seq.pad;
    (*trace)["prefix_att_masks"] = seq.marks;
    (*trace)["prefix_out"] = r.prefix_out;
    for (size_t i = 0; i < r.cache.keys.size(); ++i) {
      (*trace)["cache." + std::to_string(i) + ".k"] = r.cache.keys[i];
      (*trace)["cache." + std::to_string(i) + ".v"] = r.cache.values[i];
    }
  }
  return r;
}

PassPlan FlowMatchingImpl::decode_plan(const at::Tensor& prefix_pad, const at::Tensor& suffix_pad,
                                       const at::Tensor& suffix_marks) const {
  const at::Tensor mask = ops::make_decode_mask(prefix_pad, suffix_pad, suffix_marks);
  const at::Tensor positions =
      prefix_pad.to(at::kLong).sum(-1, /*keepdim=*/true) + at::cumsum(suffix_pad.to(at::kLong), 1) - 1;
  return PassPlan::build(mask, positions, 0, suffix_pad.size(1), c_.text.head_dim);
}

at::Tensor FlowMatchingImpl::decode(const Sequence& suffix, const PassPlan& plan, const KVCache& cache,
                                    const ExpertKV* expert_kv, Expert expert) {
  std::optional<ops::DenoisingScope> denoising;  // the memory-lean GEMM plan packs only these passes
  if (expert == Expert::Action) denoising.emplace();
  return vlm_with_expert->forward(at::Tensor(), suffix.embs, plan, expert, false, nullptr, &cache, expert_kv).suffix;
}

at::Tensor FlowMatchingImpl::velocity(const at::Tensor& suffix_out, Expert expert) {
  // Main: the last C outputs. Delta: the C action outputs, before the suffix CLS tokens.
  const at::Tensor actions = expert == Expert::Delta ? suffix_out.narrow(1, 0, c_.chunk_size)
                                                     : suffix_out.narrow(1, suffix_out.size(1) - c_.chunk_size, c_.chunk_size);
  auto& out_proj = expert == Expert::Delta ? delta_action_out_proj : action_out_proj;
  return dense(actions.to(out_proj->weight.scalar_type()), out_proj);
}

FlowMatchingImpl::DecodeSetup FlowMatchingImpl::action_decode_setup(const at::Tensor& prefix_pad, const KVCache& cache) {
  const at::Tensor ones = ones_bool(prefix_pad.size(0), c_.chunk_size, prefix_pad.device());
  return {decode_plan(prefix_pad, ones, ones), vlm_with_expert->project_cache(cache, Expert::Action)};
}

at::Tensor FlowMatchingImpl::action_velocity(const at::Tensor& x, float t, const DecodeSetup& setup, const KVCache& cache) {
  const at::Tensor time = at::full({x.size(0)}, t, at::TensorOptions().dtype(at::kFloat).device(x.device()));
  const Sequence suffix = embed_suffix(x, time, Expert::Action);
  return velocity(decode(suffix, setup.plan, cache, &setup.expert_kv, Expert::Action), Expert::Action);
}

at::Tensor FlowMatchingImpl::integrate(const at::Tensor& prefix_pad, const KVCache& cache, const at::Tensor& noise,
                                       Trace* trace, const StopCheck& stop) {
  const int64_t b = noise.size(0);
  // Euler from t = 1 with dt = -1/num_steps while t >= -dt/2, in float32 scalars as LeRobot.
  const float dt = static_cast<float>(-1.0 / static_cast<double>(c_.num_steps));
  float t = 1.0f;
  at::Tensor x = noise.to(at::kFloat).clone();  // never mutate the caller's noise
  const at::Tensor ones = ones_bool(b, c_.chunk_size, noise.device());
  const PassPlan plan = decode_plan(prefix_pad, ones, ones);  // the same for every step
  const ExpertKV expert_kv = vlm_with_expert->project_cache(cache, Expert::Action);
  const auto time_opts = at::TensorOptions().dtype(at::kFloat).device(noise.device());
  for (int step = 0; t >= -dt / 2; ++step) {
    if (stop && stop()) throw std::runtime_error("cancelled");
    const Sequence suffix = embed_suffix(x, at::full({b}, t, time_opts), Expert::Action);
    const at::Tensor v = velocity(decode(suffix, plan, cache, &expert_kv, Expert::Action), Expert::Action);
    if (trace) {
      (*trace)["x." + std::to_string(step)] = x.clone();
      (*trace)["velocity." + std::to_string(step)] = v;
    }
    x.add_(v, dt);
    t += dt;
  }
  return x;
}

at::Tensor FlowMatchingImpl::sample(const at::Tensor& prefix_pad, const KVCache& cache, const at::Tensor& noise,
                                    const StopCheck& stop) {
  const at::Tensor x0 =
      noise.defined() ? noise.to(prefix_pad.device())
                      : at::randn({prefix_pad.size(0), c_.chunk_size, c_.max_action_dim},
                                  at::TensorOptions().dtype(at::kFloat).device(prefix_pad.device()));
  return integrate(prefix_pad, cache, x0, nullptr, stop);
}

at::Tensor FlowMatchingImpl::delta_actions(const at::Tensor& prefix_pad, const KVCache& cache, const at::Tensor& context) {
  const at::Tensor x = context.defined()
                           ? encode_action_context(context.to(prefix_pad.device()))
                           : at::zeros({prefix_pad.size(0), c_.chunk_size, c_.max_action_dim},
                                       at::TensorOptions().dtype(at::kFloat).device(prefix_pad.device()));
  return delta_step(prefix_pad, cache, x).first;
}

std::pair<at::Tensor, at::Tensor> FlowMatchingImpl::delta_step(const at::Tensor& prefix_pad, const KVCache& cache,
                                                               const at::Tensor& x) {
  const int64_t b = x.size(0);
  const at::Tensor t = at::full({b}, 0.5f, at::TensorOptions().dtype(at::kFloat).device(x.device()));
  const Sequence suffix = embed_suffix(x, t, Expert::Delta);
  const PassPlan plan = decode_plan(prefix_pad, suffix.pad, suffix.marks);
  const at::Tensor out = decode(suffix, plan, cache, nullptr, Expert::Delta);
  return {velocity(out, Expert::Delta), out};
}

at::Tensor FlowMatchingImpl::encode_action_context(const at::Tensor& context) {
  expect_dim(context, "action_context", 3, "a float tensor of shape (B, n, max_action_dim)");
  expect_size(context, "action_context", 2, c_.max_action_dim,
              "a float tensor of shape (B, n, " + std::to_string(c_.max_action_dim) + ")");
  if (context.size(1) == 0) fail_argument("action_context", "at least one action", context);
  const int64_t chunk = c_.chunk_size;
  const at::Tensor enc = action_context_encoder->forward(context.to(at::kFloat));
  const int64_t n = enc.size(1);
  if (n < chunk) return enc.repeat({1, (chunk + n - 1) / n, 1}).narrow(1, 0, chunk);
  if (n > chunk) {
    return at::upsample_linear1d(enc.transpose(1, 2), {chunk}, /*align_corners=*/false).transpose(1, 2);
  }
  return enc;
}

LossDict FlowMatchingImpl::loss_dict(const at::Tensor& losses, const at::Tensor& is_pad, const std::string& prefix) const {
  // LeRobot's masking and cropping: the crop is to max_action_dim, so padded columns and
  // masked steps still count in the mean over B*C*A.
  LossDict d;
  d[prefix + "losses_after_forward"] = losses;
  at::Tensor l = losses;
  if (is_pad.defined()) {
    l = l * is_pad.logical_not().unsqueeze(-1);
    d[prefix + "losses_after_in_ep_bound"] = l;
  }
  l = l.narrow(2, 0, std::min<int64_t>(l.size(2), c_.max_action_dim));
  d[prefix + "losses_after_rm_padding"] = l;
  d[prefix + "loss"] = l.mean();
  return d;
}

LossDict FlowMatchingImpl::forward_main(const Observation& obs, const at::Tensor& actions, const at::Tensor& is_pad,
                                        const at::Tensor& noise_in, const at::Tensor& time_in) {
  const int64_t b = actions.size(0);
  const at::Tensor noise = noise_in.defined() ? noise_in : at::randn_like(actions);
  at::Tensor time = time_in;
  if (!time.defined()) {
    // Beta(1.5, 1) as X / (X + Y) with X ~ Gamma(1.5), Y ~ Gamma(1).
    const auto opts = actions.options().dtype(at::kFloat);
    const at::Tensor gx = at::_standard_gamma(at::full({b}, 1.5, opts));
    const at::Tensor gy = at::_standard_gamma(at::full({b}, 1.0, opts));
    time = gx / (gx + gy) * 0.999 + 0.001;
  }
  const at::Tensor te = time.view({b, 1, 1});
  const at::Tensor x_t = te * noise + (1 - te) * actions;
  const at::Tensor u_t = noise - actions;
  const Sequence prefix = embed_prefix(obs, nullptr);
  const Sequence suffix = embed_suffix(x_t, time, Expert::Action);
  const at::Tensor pad = at::cat({prefix.pad, suffix.pad}, 1);
  const at::Tensor mask = ops::make_att_2d_masks(pad, at::cat({prefix.marks, suffix.marks}, 1));
  const at::Tensor positions = at::cumsum(pad.to(at::kLong), 1) - 1;
  const PassPlan plan = PassPlan::build(mask, positions, prefix.embs.size(1), suffix.embs.size(1), c_.text.head_dim);
  const StreamOutputs out =
      vlm_with_expert->forward(prefix.embs, suffix.embs, plan, Expert::Action, false, nullptr, nullptr, nullptr);
  const at::Tensor v_t = velocity(out.suffix, Expert::Action);
  return loss_dict((u_t - v_t).pow(2), is_pad, "");
}

LossDict FlowMatchingImpl::forward_delta(const Observation& obs, const at::Tensor& is_pad, const at::Tensor& main_x0,
                                         const at::Tensor& cls_noise_in, Trace* trace) {
  const int64_t b = obs.batch();
  const auto f32 = obs.state.options().dtype(at::kFloat);
  PrefixResult prefix = prefix_pass(obs, nullptr);
  at::Tensor x_t;
  {
    // The main expert's actions are the starting point, not a target to learn through.
    at::NoGradGuard no_grad;
    KVCache detached;
    for (size_t i = 0; i < prefix.cache.keys.size(); ++i) {
      detached.keys.push_back(prefix.cache.keys[i].detach());
      detached.values.push_back(prefix.cache.values[i].detach());
    }
    const at::Tensor x0 = main_x0.defined() ? main_x0 : at::zeros({b, c_.chunk_size, c_.max_action_dim}, f32);
    x_t = integrate(prefix.pad_masks.detach(), detached, x0, nullptr, nullptr);
  }
  at::Tensor cls_noise = cls_noise_in;
  if (!cls_noise.defined()) {
    // N(0, cls_noise_scale^2) on the real action columns only.
    cls_noise = at::zeros_like(x_t);
    cls_noise.narrow(2, 0, c_.action_dim).normal_(0.0, c_.cls_noise_scale);
  }
  const at::Tensor x_noisy = x_t + cls_noise;
  // The cache is not detached here: gradient reaches the prefix CLS tokens through it.
  const auto [v, suffix_out] = delta_step(prefix.pad_masks, prefix.cache, x_noisy);
  const at::Tensor denoise = (x_t - x_noisy - v).pow(2);
  at::Tensor losses = denoise;
  LossDict extra;
  if (c_.use_cls_head) {
    const at::Tensor act_cls_out = suffix_out.narrow(1, suffix_out.size(1) - c_.num_cls_suffix, c_.num_cls_suffix);
    const at::Tensor obs_proj = obs_cls_proj(prefix.obs_cls_out.to(at::kFloat));
    const at::Tensor act_proj = act_cls_proj(act_cls_out.to(at::kFloat));
    const ops::VicregTerms vic = ops::vicreg_loss(obs_proj, act_proj, c_.vicreg_lambda, c_.vicreg_mu, c_.vicreg_nu);
    losses = denoise + c_.vicreg_weight * vic.loss.mean(-1).view({b, 1, 1});
    extra["vicreg"] = vic.loss;
    extra["vicreg_invariance"] = vic.invariance;
    extra["vicreg_variance"] = vic.variance;
    extra["vicreg_covariance"] = vic.covariance;
    extra["cls_cosine"] = (l2_normalize(obs_proj) * l2_normalize(act_proj)).sum(-1);
    if (trace) {
      (*trace)["obs_cls_out"] = prefix.obs_cls_out;
      (*trace)["act_cls_out"] = act_cls_out;
      (*trace)["obs_proj"] = obs_proj;
      (*trace)["act_proj"] = act_proj;
    }
  }
  if (trace) {
    (*trace)["x_t"] = x_t;
    (*trace)["x_noisy"] = x_noisy;
    (*trace)["v"] = v;
    (*trace)["prefix_out"] = prefix.prefix_out;
    (*trace)["denoise_losses"] = denoise;
  }
  LossDict d = loss_dict(losses, is_pad, "delta_");
  for (auto& [k, t] : extra) d[k] = t;
  return d;
}

std::vector<std::string> FlowMatchingImpl::trainable_parameter_names(const std::string& prefix) const {
  std::vector<std::string> out;
  auto starts = [](const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; };
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& n = item.key();
    if (c_.train_delta_expert) {
      bool keep = starts(n, "vlm_with_expert.delta_expert.") || starts(n, "delta_action_") ||
                  starts(n, "action_context_encoder.");
      // Departure (docs/DEPARTURES.md): the published code forgot the CLS head; the seeds list it as trainable.
      if (c_.use_cls_head) {
        keep = keep || n == "pre_cls_param" || n == "suf_cls_param" || starts(n, "obs_cls_proj.") || starts(n, "act_cls_proj.");
      }
      if (keep) out.push_back(prefix + n);
      continue;
    }
    if (starts(n, "vlm_with_expert.vlm.")) {
      // train_expert_only freezes the VLM; otherwise only the vision encoder may be frozen.
      if (c_.train_expert_only) continue;
      if (c_.freeze_vision_encoder && starts(n, "vlm_with_expert.vlm.model.vision_model.")) continue;
    }
    if (starts(n, "state_proj.") && !c_.train_state_proj) continue;
    out.push_back(prefix + n);
  }
  return out;
}

PolicyModuleImpl::PolicyModuleImpl(const ModelConfig& c) { model = register_module("model", FlowMatching(c)); }

}  // namespace smolvla::model
