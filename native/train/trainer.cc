#include "train/trainer.h"

#include <ATen/ATen.h>

#include <cmath>
#include <tuple>

#include "core/check.h"
#include "io/safetensors.h"
#include "model/inputs.h"

namespace smolvla::train {

std::shared_ptr<Trainer> Trainer::create(std::shared_ptr<model::Model> model, const AdamWOptions& o) {
  for (double b : o.betas) {
    if (!(b >= 0 && b < 1)) fail_argument("betas", "each in [0, 1), got " + std::to_string(b));
  }
  if (!(o.eps > 0)) fail_argument("eps", "a positive number");
  if (!(o.weight_decay >= 0)) fail_argument("weightDecay", "a non-negative number");
  auto t = std::make_shared<Trainer>();
  model->locked([&](model::PolicyModuleImpl& module) {
    if (model->dtype() != at::kFloat) fail_argument("model", "training needs a float32 model (call to('float32') first)");
    auto params = module.named_parameters(true);
    model::NamedTensors trainable;
    for (const auto& name : module.model->trainable_parameter_names("model.")) trainable.emplace_back(name, *params.find(name));
    for (const auto& [name, p] : trainable) t->parameter_count_ += p.numel();
    t->optimizer_ = std::make_unique<AdamW>(std::move(trainable), o);
  });
  t->model_ = std::move(model);
  return t;
}

StepResult Trainer::step(const StepRequest& r) {
  const auto& c = model_->config();
  const int64_t b = r.observation.batch();
  model::check_observation(r.observation, c);
  if (!(r.lr >= 0) || !std::isfinite(r.lr)) fail_argument("lr", "expected a finite non-negative learning rate");
  if (r.objective == Objective::Main && !r.actions.defined()) fail_argument("actions", "the main objective needs the target actions");
  if (r.actions.defined()) model::check_actions(r.actions, "actions", c, b);
  if (r.is_pad.defined()) model::check_action_is_pad(r.is_pad, b, c);
  if (r.objective == Objective::Delta) model::check_delta_batch(b, c);
  return model_->locked([&](model::PolicyModuleImpl& module) {
    const auto d = model_->device();
    const model::Observation obs = model::observation_to(r.observation, d);
    const at::Tensor pad = r.is_pad.defined() ? r.is_pad.to(d) : at::Tensor();
    auto& fm = *module.model;
    StepResult out;
    optimizer_->zero_grad();
    const at::Tensor target = r.actions.defined() ? r.actions.to(d, at::kFloat) : at::Tensor();
    // Undefined draws: the model samples its own; data-parallel: this rank's rows of the global batch's.
    at::Tensor noise, time, cls_noise;
    if (sync_ && r.objective == Objective::Main) std::tie(noise, time) = main_noise_and_time(slice_, target);
    if (sync_ && r.objective == Objective::Delta) {
      cls_noise = delta_cls_noise(slice_, b, c.chunk_size, c.max_action_dim, c.action_dim, c.cls_noise_scale).to(d);
    }
    out.losses = r.objective == Objective::Delta ? fm.forward_delta(obs, pad, at::Tensor(), cls_noise, nullptr)
                                                 : fm.forward_main(obs, target, pad, noise, time);
    const at::Tensor loss = out.losses[r.objective == Objective::Delta ? "delta_loss" : "loss"];
    if (sync_ ? !sync_->all_finite(loss) : !std::isfinite(loss.item<double>())) {
      out.skipped = true;
    } else {
      if (sync_) sync_->begin();
      loss.backward();
      if (sync_) out.comm_seconds = sync_->finish();
      out.grad_norm = optimizer_->step(r.lr);
      steps_.store(optimizer_->steps());
    }
    optimizer_->zero_grad();
    for (auto& [k, t] : out.losses) t = t.detach();
    return out;
  });
}

void Trainer::enable_data_parallel(std::shared_ptr<Communicator> comm, int64_t bucket_bytes) {
  if (bucket_bytes < 1) fail_argument("bucketMb", "a positive bucket size");
  model_->locked([&](model::PolicyModuleImpl&) {
    std::vector<at::Tensor> params;
    for (const auto& [name, p] : optimizer_->params()) params.push_back(p);
    slice_ = {comm->rank(), comm->world_size()};
    sync_ = std::make_unique<GradientSync>(std::move(comm), std::move(params), bucket_bytes);
  });
}

void Trainer::save(const std::string& path) {
  model_->locked([&](model::PolicyModuleImpl&) {
    io::write_safetensors(path, optimizer_->state(), {{"format", "smolvla-node-adamw"}});
  });
}

void Trainer::load(const std::string& path) {
  model_->locked([&](model::PolicyModuleImpl&) {
    optimizer_->load_state(io::read_safetensors(path).tensors);
    steps_.store(optimizer_->steps());
  });
}

}  // namespace smolvla::train
