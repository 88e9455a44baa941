// Real-Time Chunking: guided sampling (model/rtc.h) and its weights, for the JS side.
//   rtcSample(model, cache, noise | null, options, trace, cancel | null) -> Promise<{actions, trace | null}>
//   rtcPrefixWeights(schedule, delay, horizon, chunk) -> number[]   (plain arithmetic, no tensors)
//   rtcGuidanceWeight(t, maxGuidanceWeight) -> number
#include <ATen/ATen.h>

#include <cmath>
#include <mutex>

#include "core/check.h"
#include "model/rtc.h"
#include "napi/args.h"
#include "napi/async.h"
#include "napi/bindings.h"
#include "napi/errors.h"
#include "napi/model_wrap.h"
#include "napi/tensor_wrap.h"

namespace smolvla::napi {
namespace {

using TensorMap = std::map<std::string, at::Tensor>;

int64_t int_field(const Napi::Object& o, const char* key) {
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber() || std::floor(v.As<Napi::Number>().DoubleValue()) != v.As<Napi::Number>().DoubleValue()) {
    fail_argument(std::string("rtc.") + key, "expected an integer");
  }
  return v.As<Napi::Number>().Int64Value();
}

model::RtcOptions options_from_js(const Napi::Value& v) {
  if (!v.IsObject()) fail_argument("rtc", "expected an object {leftover, inferenceDelay, executionHorizon, schedule, maxGuidanceWeight, stopGradient}");
  const Napi::Object o = v.As<Napi::Object>();
  model::RtcOptions r;
  r.leftover = TensorWrap::TensorOf(o.Get("leftover"), "rtc.leftover");
  r.inference_delay = int_field(o, "inferenceDelay");
  r.execution_horizon = int_field(o, "executionHorizon");
  const Napi::Value schedule = o.Get("schedule");
  if (!schedule.IsString()) fail_argument("rtc.schedule", "expected 'zeros', 'ones', 'linear' or 'exp'");
  r.schedule = model::parse_prefix_schedule(schedule.As<Napi::String>().Utf8Value(), "rtc.schedule");
  const Napi::Value gmax = o.Get("maxGuidanceWeight");
  if (!gmax.IsNumber()) fail_argument("rtc.maxGuidanceWeight", "expected a number > 0");
  r.max_guidance_weight = gmax.As<Napi::Number>().DoubleValue();
  const Napi::Value stop = o.Get("stopGradient");
  if (!stop.IsBoolean()) fail_argument("rtc.stopGradient", "expected a boolean");
  r.stop_gradient = stop.As<Napi::Boolean>().Value();
  return r;
}

struct GuidedOutput {
  at::Tensor actions;
  TensorMap trace;
};

Napi::Value RtcSample(const Napi::CallbackInfo& info) {
  auto s = ModelWrap::StateOf(info.Length() > 0 ? info[0] : info.Env().Undefined(), "model");
  auto cache = CacheWrap::StateOf(info.Length() > 1 ? info[1] : info.Env().Undefined(), "cache");
  if (cache->owner != s.get()) fail_argument("cache", "a cache made by this model (caches are not portable between models)");
  const model::ModelConfig& c = s->config;
  const int64_t batch = cache->pad_masks.size(0);
  at::Tensor noise;
  if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) {
    noise = TensorWrap::TensorOf(info[2], "noise");
    const std::string shape = "a float tensor of shape (" + std::to_string(batch) + ", " + std::to_string(c.chunk_size) +
                              ", " + std::to_string(c.max_action_dim) + ")";
    expect_dim(noise, "noise", 3, shape);
    expect_floating(noise, "noise", shape);
    if (noise.size(0) != batch || noise.size(1) != c.chunk_size || noise.size(2) != c.max_action_dim) fail_argument("noise", shape, noise);
  }
  const model::RtcOptions options = options_from_js(info.Length() > 3 ? info[3] : info.Env().Undefined());
  model::validate_rtc_options(options, c, batch);
  const bool trace = arg_bool(info, 4, "trace");
  const auto cancel = CancelWrap::FlagOf(info.Length() > 5 ? info[5] : info.Env().Undefined());
  return run_async<GuidedOutput>(
      info.Env(), "smolvla.rtcSample",
      [s, cache, noise, options, trace, cancel, batch]() {
        std::lock_guard<std::mutex> lock(s->mutex);
        const auto& cfg = s->config;
        const at::Tensor x0 = noise.defined() ? noise.to(s->device)
                                              : at::randn({batch, cfg.chunk_size, cfg.max_action_dim},
                                                          at::TensorOptions().dtype(at::kFloat).device(s->device));
        model::RtcOptions o = options;
        o.leftover = options.leftover.to(s->device, at::kFloat);
        model::StopCheck stop;
        if (cancel) stop = [cancel]() { return cancel->load(); };
        GuidedOutput out;
        out.actions = model::rtc_integrate(s->fm(), cache->pad_masks, cache->cache, x0, o, trace ? &out.trace : nullptr, stop);
        return out;
      },
      [](Napi::Env env, GuidedOutput& r) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("actions", TensorWrap::Wrap(env, r.actions));
        if (r.trace.empty()) {
          out.Set("trace", env.Null());
        } else {
          Napi::Object t = Napi::Object::New(env);
          for (const auto& [k, v] : r.trace) t.Set(k, TensorWrap::Wrap(env, v));
          out.Set("trace", t);
        }
        return out;
      });
}

Napi::Value RtcPrefixWeights(const Napi::CallbackInfo& info) {
  const model::PrefixSchedule schedule = model::parse_prefix_schedule(arg_string(info, 0, "schedule"), "schedule");
  const int64_t delay = arg_int(info, 1, "delay"), horizon = arg_int(info, 2, "horizon"), chunk = arg_int(info, 3, "chunk");
  expect_non_negative(delay, "delay");
  expect_non_negative(horizon, "horizon");
  expect_positive(chunk, "chunk");
  if (chunk > 1 << 20) fail_argument("chunk", "expected at most 1048576 actions");
  const at::Tensor w = model::rtc_prefix_weights(schedule, delay, horizon, chunk).contiguous();
  Napi::Array out = Napi::Array::New(info.Env(), static_cast<size_t>(chunk));
  const float* p = w.data_ptr<float>();
  for (int64_t i = 0; i < chunk; ++i) out.Set(static_cast<uint32_t>(i), static_cast<double>(p[i]));
  return out;
}

Napi::Value RtcGuidanceWeight(const Napi::CallbackInfo& info) {
  const double t = arg_number(info, 0, "t"), gmax = arg_number(info, 1, "maxGuidanceWeight");
  if (!(t >= 0.0 && t <= 1.0)) fail_argument("t", "expected a number in [0, 1]");
  if (!(gmax > 0.0)) fail_argument("maxGuidanceWeight", "expected a number > 0");
  return Napi::Number::New(info.Env(), model::rtc_guidance_weight(t, gmax));
}

}  // namespace

void register_rtc(Napi::Env env, Napi::Object exports) {
  exports.Set("rtcSample", Napi::Function::New(env, guarded<RtcSample>, "rtcSample"));
  exports.Set("rtcPrefixWeights", Napi::Function::New(env, guarded<RtcPrefixWeights>, "rtcPrefixWeights"));
  exports.Set("rtcGuidanceWeight", Napi::Function::New(env, guarded<RtcGuidanceWeight>, "rtcGuidanceWeight"));
}

}  // namespace smolvla::napi
