// Data-parallel training from JS: distributedInit() joins the group (rendezvous off the JS thread),
// the NativeProcessGroup it resolves to reduces metrics, broadcasts rank 0's weights and checks that
// every rank holds the same parameters. Gradients are synchronised inside the trainer's step.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/check.h"
#include "napi/addon_data.h"
#include "napi/args.h"
#include "napi/async.h"
#include "napi/distributed_wrap.h"
#include "napi/errors.h"
#include "model/model.h"
#include "napi/model_wrap.h"
#include "train/distributed.h"

namespace smolvla::napi {
namespace {

using train::Communicator;

// Every parameter and buffer of the model, in module order (the same on every rank).
std::vector<at::Tensor> model_tensors(model::PolicyModuleImpl& module) {
  std::vector<at::Tensor> out;
  for (const auto& p : module.parameters(true)) out.push_back(p);
  for (const auto& b : module.buffers(true)) out.push_back(b);
  return out;
}

struct SyncCheck {
  int64_t local = 0, lo = 0, hi = 0;
};

std::string hex(int64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "NativeProcessGroup",
                                      {InstanceAccessor<&ProcessGroupWrap::Rank>("rank"),
                                       InstanceAccessor<&ProcessGroupWrap::WorldSize>("worldSize"),
                                       InstanceAccessor<&ProcessGroupWrap::Backend>("backend"),
                                       InstanceMethod<&ProcessGroupWrap::AllreduceMean>("allreduceMean"),
                                       InstanceMethod<&ProcessGroupWrap::BroadcastModel>("broadcastModel"),
                                       InstanceMethod<&ProcessGroupWrap::CheckInSync>("checkInSync")});
    addon_data(env).process_group_ctor = Napi::Persistent(ctor);
    exports.Set("NativeProcessGroup", ctor);
  }

  explicit ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "NativeProcessGroup is created by distributedInit(), not with new");
    }
    comm_ = *info[0].As<Napi::External<std::shared_ptr<Communicator>>>().Data();
  }

  const std::shared_ptr<Communicator>& comm() const { return comm_; }

 private:
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), comm_->rank()); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), comm_->world_size()); }
  Napi::Value Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), comm_->backend()); }

  // allreduceMean(Float64Array) -> Promise<Float64Array>: the element-wise mean over the ranks.
  Napi::Value AllreduceMean(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
        fail_argument("values", "expected a Float64Array");
      }
      const auto in = info[0].As<Napi::Float64Array>();
      at::Tensor t = at::empty({static_cast<int64_t>(in.ElementLength())}, at::kDouble);
      std::copy(in.Data(), in.Data() + in.ElementLength(), t.data_ptr<double>());
      auto c = comm_;
      return run_async<at::Tensor>(
          info.Env(), "smolvla.allreduceMean",
          [c, t]() mutable {
            at::Tensor dev = t.to(c->backend() == "nccl" ? at::Device(at::kCUDA) : at::Device(at::kCPU));
            c->allreduce_sum(dev, "the metrics all-reduce");
            return (dev / static_cast<double>(c->world_size())).to(at::kCPU);
          },
          [](Napi::Env env, at::Tensor& r) -> Napi::Value {
            auto out = Napi::Float64Array::New(env, static_cast<size_t>(r.numel()));
            std::copy(r.data_ptr<double>(), r.data_ptr<double>() + r.numel(), out.Data());
            return out;
          },
          Lane::io);
    });
  }

  // broadcastModel(model) -> Promise<void>: every parameter and buffer takes rank 0's values.
  Napi::Value BroadcastModel(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto m = ModelWrap::ModelOf(info.Length() > 0 ? info[0] : info.Env().Undefined(), "model");
      auto c = comm_;
      return run_async<bool>(
          info.Env(), "smolvla.broadcastModel",
          [c, m]() {
            m->locked([&](model::PolicyModuleImpl& module) { c->broadcast(model_tensors(module), 0, "the broadcast of rank 0's weights"); });
            return true;
          },
          [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); },
          Lane::io);
    });
  }

  // checkInSync(model) -> Promise<{hash, inSync}>: this rank's parameter hash (hex) and whether
  // every rank's is the same (min == max over the group).
  Napi::Value CheckInSync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto m = ModelWrap::ModelOf(info.Length() > 0 ? info[0] : info.Env().Undefined(), "model");
      auto c = comm_;
      return run_async<SyncCheck>(
          info.Env(), "smolvla.checkInSync",
          [c, m]() {
            SyncCheck r;
            m->locked([&](model::PolicyModuleImpl& module) { r.local = train::hash_tensors(model_tensors(module)); });
            const auto dev = c->backend() == "nccl" ? at::Device(at::kCUDA) : at::Device(at::kCPU);
            at::Tensor lo = at::full({1}, r.local, at::TensorOptions().dtype(at::kLong).device(dev));
            at::Tensor hi = lo.clone();
            c->allreduce_min_max(lo, hi, "the parameter-hash comparison");
            r.lo = lo.item<int64_t>();
            r.hi = hi.item<int64_t>();
            return r;
          },
          [](Napi::Env env, SyncCheck& r) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            out.Set("hash", hex(r.local));
            out.Set("inSync", r.lo == r.hi);
            return out;
          },
          Lane::io);
    });
  }

  std::shared_ptr<Communicator> comm_;
};

// distributedInit({rank, worldSize, masterAddr, masterPort, timeoutMs, device}) -> Promise<NativeProcessGroup>
Napi::Value DistributedInit(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) fail_argument("options", "expected {rank, worldSize, masterAddr, masterPort, timeoutMs, device}");
  const Napi::Object o = info[0].As<Napi::Object>();
  auto integer = [&](const char* key) -> int64_t {
    const Napi::Value v = o.Get(key);
    if (!v.IsNumber()) fail_argument(std::string("options.") + key, "expected an integer");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) fail_argument(std::string("options.") + key, "expected an integer");
    return static_cast<int64_t>(d);
  };
  auto text = [&](const char* key) -> std::string {
    const Napi::Value v = o.Get(key);
    if (!v.IsString()) fail_argument(std::string("options.") + key, "expected a string");
    return v.As<Napi::String>().Utf8Value();
  };
  train::DistributedOptions d;
  d.rank = static_cast<int>(integer("rank"));
  d.world_size = static_cast<int>(integer("worldSize"));
  d.master_addr = text("masterAddr");
  d.master_port = static_cast<int>(integer("masterPort"));
  const int64_t timeout = integer("timeoutMs");
  if (timeout < 1) fail_argument("options.timeoutMs", "expected a positive number of milliseconds");
  d.timeout = std::chrono::milliseconds(timeout);
  d.device = text("device");
  return run_async<std::shared_ptr<Communicator>>(
      info.Env(), "smolvla.distributedInit", [d]() { return Communicator::connect(d); },
      [](Napi::Env env, std::shared_ptr<Communicator>& c) -> Napi::Value {
        return addon_data(env).process_group_ctor.New({Napi::External<std::shared_ptr<Communicator>>::New(env, &c)});
      },
      Lane::io);
}

// Which c10d backends this build has.
Napi::Value DistributedBackends(const Napi::CallbackInfo& info) {
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t n = 0;
#ifdef USE_C10D_GLOO
  out.Set(n++, "gloo");
#endif
#ifdef USE_C10D_NCCL
  out.Set(n++, "nccl");
#endif
  return out;
}

}  // namespace

std::shared_ptr<train::Communicator> communicator_of(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).process_group_ctor.Value())) {
    fail_argument(name, "expected a NativeProcessGroup from distributedInit()");
  }
  return ProcessGroupWrap::Unwrap(v.As<Napi::Object>())->comm();
}

void register_distributed(Napi::Env env, Napi::Object exports) {
  ProcessGroupWrap::Init(env, exports);
  exports.Set("distributedInit", Napi::Function::New(env, guarded<DistributedInit>, "distributedInit"));
  exports.Set("distributedBackends", Napi::Function::New(env, guarded<DistributedBackends>, "distributedBackends"));
}

}  // namespace smolvla::napi
