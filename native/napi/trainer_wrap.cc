// The JS handle of a native trainer (train/trainer.h): one async call per training step, so a step
// never blocks the event loop and never round-trips gradients through JS.
#include <cmath>
#include <memory>

#include "core/check.h"
#include "napi/addon_data.h"
#include "napi/args.h"
#include "napi/async.h"
#include "napi/bindings.h"
#include "napi/distributed_wrap.h"
#include "napi/errors.h"
#include "napi/model_wrap.h"
#include "napi/observation.h"
#include "napi/tensor_wrap.h"
#include "train/trainer.h"

namespace smolvla::napi {
namespace {

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

  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<train::Trainer> trainer) {
    return addon_data(env).trainer_ctor.New({Napi::External<std::shared_ptr<train::Trainer>>::New(env, &trainer)});
  }

  explicit TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "NativeTrainer is created by createTrainer(), not with new");
    }
    trainer_ = *info[0].As<Napi::External<std::shared_ptr<train::Trainer>>>().Data();
  }

 private:
  // step({observation, actions?, actionIsPad?, lr, objective: 'delta' | 'main'}) -> {losses, gradNorm, skipped}
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const Params p(info);
      train::StepRequest r;
      r.observation = observation_from_js(p.get("observation"));
      r.actions = p.optional_tensor("actions");
      r.is_pad = p.optional_tensor("actionIsPad");
      r.lr = p.number("lr");
      const std::string objective = p.string("objective");
      if (objective != "delta" && objective != "main") fail_argument("objective", "expected 'delta' or 'main'");
      r.objective = objective == "delta" ? train::Objective::Delta : train::Objective::Main;
      auto t = trainer_;
      return run_async<train::StepResult>(
          info.Env(), "smolvla.trainStep", [t, r]() { return t->step(r); },
          [](Napi::Env env, train::StepResult& s) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            Napi::Object losses = Napi::Object::New(env);
            for (const auto& [k, t] : s.losses) losses.Set(k, TensorWrap::Wrap(env, t));
            out.Set("losses", losses);
            out.Set("gradNorm", s.grad_norm);
            out.Set("skipped", s.skipped);
            out.Set("commSeconds", s.comm_seconds);
            return out;
          });
    });
  }

  // saveState({path})
  Napi::Value SaveState(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = Params(info).string("path");
      auto t = trainer_;
      return run_async<bool>(
          info.Env(), "smolvla.saveOptimizer",
          [t, path]() {
            t->save(path);
            return true;
          },
          resolve_undefined<bool>);
    });
  }

  // loadState({path})
  Napi::Value LoadState(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const std::string path = Params(info).string("path");
      auto t = trainer_;
      return run_async<bool>(
          info.Env(), "smolvla.loadOptimizer",
          [t, path]() {
            t->load(path);
            return true;
          },
          resolve_undefined<bool>);
    });
  }

  Napi::Value Steps(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(trainer_->steps())); }

  Napi::Value ParamCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(trainer_->parameter_count()));
  }

  std::shared_ptr<train::Trainer> trainer_;
};

// createTrainer({model, betas: [b1, b2], eps, weightDecay, gradClipNorm, processGroup?, bucketMb?})
// -> Promise<NativeTrainer> over the model's trainable parameters; with a processGroup (distributedInit)
// its steps average the gradients over the group's ranks.
Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
  const Params p(info);
  auto model = ModelWrap::ModelOf(p.get("model"), "model");
  train::AdamWOptions o;
  if (!p.get("betas").IsArray() || p.get("betas").As<Napi::Array>().Length() != 2) fail_argument("betas", "expected [beta1, beta2]");
  const Napi::Array betas = p.get("betas").As<Napi::Array>();
  o.betas[0] = to_number(betas.Get(0u), "betas[0]");
  o.betas[1] = to_number(betas.Get(1u), "betas[1]");
  o.eps = p.number("eps");
  o.weight_decay = p.number("weightDecay");
  o.grad_clip_norm = p.number("gradClipNorm");
  std::shared_ptr<train::Communicator> comm;
  int64_t bucket_bytes = 0;
  if (p.has("processGroup")) {
    comm = communicator_of(p.get("processGroup"), "processGroup");
    const double mb = p.number("bucketMb");
    if (!(mb > 0) || !std::isfinite(mb)) fail_argument("bucketMb", "expected a positive bucket size in MiB");
    bucket_bytes = static_cast<int64_t>(mb * 1024 * 1024);
  }
  return run_async<std::shared_ptr<train::Trainer>>(
      info.Env(), "smolvla.createTrainer",
      [model, o, comm, bucket_bytes]() {
        auto t = train::Trainer::create(model, o);
        if (comm) t->enable_data_parallel(comm, bucket_bytes);
        return t;
      },
      [](Napi::Env env, std::shared_ptr<train::Trainer>& t) -> Napi::Value { return TrainerWrap::Wrap(env, t); });
}

}  // namespace

void register_trainer(Napi::Env env, Napi::Object exports) {
  TrainerWrap::Init(env, exports);
  exports.Set("createTrainer", Napi::Function::New(env, guarded<CreateTrainer>, "createTrainer"));
}

}  // namespace smolvla::napi
