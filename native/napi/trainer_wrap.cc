// Training steps from JS: forward, backward, clipping and AdamW in one async native call, so a
// step never blocks the event loop and never round-trips gradients through JS.
#include <ATen/ATen.h>

#include <cmath>
#include <memory>
#include <tuple>

#include "core/check.h"
#include "io/safetensors.h"
#include "napi/addon_data.h"
#include "napi/args.h"
#include "napi/async.h"
#include "napi/distributed_wrap.h"
#include "napi/errors.h"
#include "napi/model_wrap.h"
#include "napi/observation.h"
#include "napi/tensor_wrap.h"
#include "train/adamw.h"
#include "train/distributed.h"

namespace smolvla::napi {
namespace {

struct TrainerState {
  std::shared_ptr<ModelState> model;
  std::unique_ptr<train::AdamW> optimizer;
  // Data-parallel runs only: gradient all-reduce and this rank's share of the per-step draws.
  std::unique_ptr<train::GradientSync> sync;
  train::RankSlice slice;
};

struct StepResult {
  std::map<std::string, at::Tensor> losses;
  double grad_norm = 0;
  bool skipped = false;
  double comm_seconds = 0;  // data-parallel: time spent waiting for gradients after backward
};

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "NativeTrainer",
                                      {InstanceMethod<&TrainerWrap::Step>("step"),
                                       InstanceMethod<&TrainerWrap::SaveState>("saveState"),
                                       InstanceMethod<&TrainerWrap::LoadState>("loadState"),
                                       InstanceAccessor<&TrainerWrap::Steps>("steps"),
                                       InstanceAccessor<&TrainerWrap::ParamCount>("parameterCount")});
    addon_data(env).trainer_ctor = Napi::Persistent(ctor);
    exports.Set("NativeTrainer", ctor);
  }

  explicit TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "NativeTrainer is created by createTrainer(), not with new");
    }
    state_ = *info[0].As<Napi::External<std::shared_ptr<TrainerState>>>().Data();
  }

 private:
  // step(observation, actions | null, isPad | null, lr, objective 'delta' | 'main')
  //   -> {losses, gradNorm, skipped}; a non-finite loss skips the update.
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const auto& c = state_->model->config;
      const model::Observation obs = observation_from_js(info.Length() > 0 ? info[0] : info.Env().Undefined(), c);
      const bool has_actions = info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined();
      const at::Tensor actions = has_actions ? arg_tensor(info, 1, "actions") : at::Tensor();
      const bool has_pad = info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined();
      const at::Tensor is_pad = has_pad ? arg_tensor(info, 2, "actionIsPad") : at::Tensor();
      const double lr = arg_number(info, 3, "lr");
      if (!(lr >= 0) || !std::isfinite(lr)) fail_argument("lr", "expected a finite non-negative learning rate");
      const std::string objective = arg_string(info, 4, "objective");
      if (objective != "delta" && objective != "main") fail_argument("objective", "expected 'delta' or 'main'");
      if (objective == "main" && !has_actions) fail_argument("actions", "the main objective needs the target actions");
      if (has_pad) expect_action_is_pad(is_pad, obs.batch(), c);
      if (objective == "delta" && c.use_cls_head && obs.batch() < 2) {
        fail_argument("observation", "a batch of at least 2 samples: VICReg needs batch statistics");
      }
      auto s = state_;
      return run_async<StepResult>(
          info.Env(), "smolvla.trainStep",
          [s, obs, actions, is_pad, lr, objective]() {
            std::lock_guard<std::mutex> lock(s->model->mutex);
            const auto d = s->model->device;
            const model::Observation o = observation_to(obs, d);
            const at::Tensor pad = is_pad.defined() ? is_pad.to(d) : at::Tensor();
            StepResult r;
            s->optimizer->zero_grad();
            const at::Tensor target = actions.defined() ? actions.to(d, at::kFloat) : at::Tensor();
            // Undefined draws: the model samples its own; data-parallel: this rank's rows of the global batch's.
            at::Tensor noise, time, cls_noise;
            if (s->sync && objective == "main") std::tie(noise, time) = train::main_noise_and_time(s->slice, target);
            const auto& mc = s->model->config;
            if (s->sync && objective == "delta") {
              cls_noise = train::delta_cls_noise(s->slice, obs.batch(), mc.chunk_size, mc.max_action_dim, mc.action_dim, mc.cls_noise_scale).to(d);
            }
            r.losses = objective == "delta" ? s->model->fm().forward_delta(o, pad, at::Tensor(), cls_noise, nullptr)
                                            : s->model->fm().forward_main(o, target, pad, noise, time);
            const at::Tensor loss = r.losses[objective == "delta" ? "delta_loss" : "loss"];
            if (s->sync ? !s->sync->all_finite(loss) : !std::isfinite(loss.item<double>())) {
              r.skipped = true;
            } else {
              if (s->sync) s->sync->begin();
              loss.backward();
              if (s->sync) r.comm_seconds = s->sync->finish();
              r.grad_norm = s->optimizer->step(lr);
            }
            s->optimizer->zero_grad();
            for (auto& [k, t] : r.losses) t = t.detach();
            return r;
          },
          [](Napi::Env env, StepResult& r) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            Napi::Object losses = Napi::Object::New(env);
            for (const auto& [k, t] : r.losses) losses.Set(k, TensorWrap::Wrap(env, t));
            out.Set("losses", losses);
            out.Set("gradNorm", r.grad_norm);
            out.Set("skipped", r.skipped);
            out.Set("commSeconds", r.comm_seconds);
            return out;
          });
    });
  }

  Napi::Value SaveState(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = arg_string(info, 0, "path");
      auto s = state_;
      return run_async<bool>(
          info.Env(), "smolvla.saveOptimizer",
          [s, path]() {
            std::lock_guard<std::mutex> lock(s->model->mutex);
            io::write_safetensors(path, s->optimizer->state(), {{"format", "smolvla-node-adamw"}});
            return true;
          },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  Napi::Value LoadState(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = arg_string(info, 0, "path");
      auto s = state_;
      return run_async<bool>(
          info.Env(), "smolvla.loadOptimizer",
          [s, path]() {
            std::lock_guard<std::mutex> lock(s->model->mutex);
            s->optimizer->load_state(io::read_safetensors(path).tensors);
            return true;
          },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  Napi::Value Steps(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(state_->optimizer->steps()));
  }

  Napi::Value ParamCount(const Napi::CallbackInfo& info) {
    int64_t n = 0;
    for (const auto& [name, p] : state_->optimizer->params()) n += p.numel();
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  std::shared_ptr<TrainerState> state_;
};

// createTrainer(model, beta1, beta2, eps, weightDecay, gradClipNorm[, processGroup, bucketMb]) ->
// NativeTrainer over the model's trainable parameters (SPEC §5 freezing); with a process group its
// steps average gradients over the group's ranks.
Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
  auto model = ModelWrap::StateOf(info.Length() > 0 ? info[0] : info.Env().Undefined(), "model");
  train::AdamWOptions o;
  o.betas[0] = arg_number(info, 1, "beta1");
  o.betas[1] = arg_number(info, 2, "beta2");
  o.eps = arg_number(info, 3, "eps");
  o.weight_decay = arg_number(info, 4, "weightDecay");
  o.grad_clip_norm = arg_number(info, 5, "gradClipNorm");
  if (!(o.betas[0] >= 0 && o.betas[0] < 1 && o.betas[1] >= 0 && o.betas[1] < 1)) fail_argument("beta1", "betas must be in [0, 1)");
  std::lock_guard<std::mutex> lock(model->mutex);
  if (model->dtype != at::kFloat) fail_argument("model", "training needs a float32 model (call to('float32') first)");
  auto params = model->module->named_parameters(true);
  std::vector<std::pair<std::string, at::Tensor>> trainable;
  for (const auto& name : model->fm().trainable_parameter_names("model.")) trainable.emplace_back(name, *params.find(name));
  auto state = std::make_shared<TrainerState>();
  state->model = model;
  std::vector<at::Tensor> synced;
  for (const auto& [name, p] : trainable) synced.push_back(p);
  state->optimizer = std::make_unique<train::AdamW>(std::move(trainable), o);
  if (info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsNull()) {
    auto comm = communicator_of(info[6], "processGroup");
    const double mb = arg_number(info, 7, "bucketMb");
    if (!(mb > 0) || !std::isfinite(mb)) fail_argument("bucketMb", "expected a positive bucket size in MiB");
    state->slice = {comm->rank(), comm->world_size()};
    state->sync = std::make_unique<train::GradientSync>(comm, std::move(synced), static_cast<int64_t>(mb * 1024 * 1024));
  }
  return addon_data(info.Env()).trainer_ctor.New({Napi::External<std::shared_ptr<TrainerState>>::New(info.Env(), &state)});
}

}  // namespace

void register_trainer(Napi::Env env, Napi::Object exports) {
  TrainerWrap::Init(env, exports);
  exports.Set("createTrainer", Napi::Function::New(env, guarded<CreateTrainer>, "createTrainer"));
}

}  // namespace smolvla::napi
