// Real-Time Chunking: guided sampling (model/rtc.h) and its weights, for the JS side.
//   rtcSample({model, cache, noise?, rtc, trace?, cancel?}) -> Promise<{actions, trace | null}>
//   rtcPrefixWeights(schedule, delay, horizon, chunk) -> number[]   (plain arithmetic, no tensors)
//   rtcGuidanceWeight(t, maxGuidanceWeight) -> number
#include <ATen/ATen.h>

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

model::RtcOptions options_from_js(const Napi::Value& v) {
  if (!v.IsObject()) fail_argument("rtc", "expected an object {leftover, inferenceDelay, executionHorizon, schedule, maxGuidanceWeight, stopGradient}");
  const Napi::Object o = v.As<Napi::Object>();
  model::RtcOptions r;
  r.leftover = to_tensor(o.Get("leftover"), "rtc.leftover");
  r.inference_delay = to_int(o.Get("inferenceDelay"), "rtc.inferenceDelay");
  r.execution_horizon = to_int(o.Get("executionHorizon"), "rtc.executionHorizon");
  r.schedule = model::parse_prefix_schedule(to_string(o.Get("schedule"), "rtc.schedule"), "rtc.schedule");
  r.max_guidance_weight = to_number(o.Get("maxGuidanceWeight"), "rtc.maxGuidanceWeight");
  r.stop_gradient = to_bool(o.Get("stopGradient"), "rtc.stopGradient");
  return r;
}

Napi::Value RtcSample(const Napi::CallbackInfo& info) {
  const Params p(info);
  auto m = ModelWrap::ModelOf(p.get("model"), "model");
  model::GuidedRequest r;
  r.cache = CacheWrap::CacheOf(p.get("cache"), "cache");
  r.noise = p.optional_tensor("noise");
  r.rtc = options_from_js(p.get("rtc"));
  r.trace = p.boolean("trace", false);
  if (auto cancel = CancelWrap::FlagOf(p.get("cancel"))) r.stop = [cancel]() { return cancel->load(); };
  return run_async<model::GuidedResult>(
      info.Env(), "smolvla.rtcSample", [m, r]() { return m->guided_sample(r); },
      [](Napi::Env env, model::GuidedResult& g) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("actions", TensorWrap::Wrap(env, g.actions));
        if (g.trace.empty()) {
          out.Set("trace", env.Null());
        } else {
          Napi::Object t = Napi::Object::New(env);
          for (const auto& [k, v] : g.trace) t.Set(k, TensorWrap::Wrap(env, v));
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
