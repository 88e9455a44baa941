// N-API entry points of the policy's batch preprocessing (native/ops/batch_inputs.h): parse one
// parameter object, queue the tensor work on the libuv pool, wrap the result. Every argument is
// checked here, on the JS thread, while the arrays are only viewed; once all passed, the bytes are
// copied out of JS (JS may reuse a camera buffer while the work runs, or detach it) and never read
// again. The copies' buffers are reused by later calls (napi/staging.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/from_blob.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#include "napi/args.h"
#include "napi/async.h"
#include "napi/bindings.h"
#include "napi/errors.h"
#include "napi/staging.h"
#include "napi/tensor_wrap.h"
#include "ops/batch_inputs.h"

namespace smolvla::napi {
namespace {

// lib/policy/inputs.ts MAX_IMAGE_SIDE: larger frames are refused before any copy.
constexpr int64_t kMaxImageSide = 8192;
// Robots, widths, chunk steps and tokens (lib/ops.ts MAX_OP_SIZE): far above any real batch, low
// enough that a wrong number fails at once instead of allocating gigabytes.
constexpr int64_t kMaxSize = 1 << 16;

int64_t bounded(const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi) {
  const int64_t x = to_int(v, name);
  if (x < lo || x > hi) {
    fail_argument(name, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(x));
  }
  return x;
}

bool absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

bool is_typed(const Napi::Value& v, napi_typedarray_type type) { return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type; }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// A TypedArray of one of `types` with exactly numel(shape) elements, viewed as a tensor without a
// copy: valid only during this call on the JS thread (request_from_js stages every view before it
// returns). lib/policy passes plain objects, so no JS (no getter) runs while views are held.
at::Tensor array_view(const Napi::Value& v, const std::string& name, std::initializer_list<napi_typedarray_type> types,
                      const std::string& what, at::ScalarType dtype, const std::vector<int64_t>& shape) {
  bool ok = false;
  for (napi_typedarray_type want : types) ok = ok || is_typed(v, want);
  if (!ok) fail_argument(name, "expected " + what);
  const Napi::TypedArray view = v.As<Napi::TypedArray>();
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  if (static_cast<int64_t>(view.ElementLength()) != numel) {
    fail_argument(name, "expected " + what + " of " + std::to_string(numel) + " values (shape " + shape_text(shape) + "), got " +
                            std::to_string(view.ElementLength()));
  }
  uint8_t* src = numel > 0 ? static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset() : nullptr;
  return at::from_blob(src, shape, at::TensorOptions().dtype(dtype));
}

std::vector<float> float_values(const Napi::Value& v, const std::string& name, int64_t length) {
  const at::Tensor t = array_view(v, name, {napi_float32_array}, "a Float32Array", at::kFloat, {length});
  const float* p = t.data_ptr<float>();  // a few statistics: copied into the vector right here
  std::vector<float> out(p, p + length);
  for (int64_t i = 0; i < length; ++i) {
    if (!std::isfinite(out[static_cast<size_t>(i)])) fail_argument(name, "entry " + std::to_string(i) + " is not finite");
  }
  return out;
}

// {mode: 'MEAN_STD' | 'MIN_MAX', a, b: Float32Array(dim), eps} or absent (identity).
ops::Normalization norm_from_js(const Napi::Value& v, const std::string& name, int64_t dim) {
  ops::Normalization n;
  if (absent(v)) return n;
  if (!v.IsObject()) fail_argument(name, "expected {mode, a, b, eps} or nothing (identity)");
  const Napi::Object o = v.As<Napi::Object>();
  const std::string mode = to_string(o.Get("mode"), name + ".mode");
  if (mode == "MEAN_STD") {
    n.mode = ops::Normalization::Mode::kMeanStd;
  } else if (mode == "MIN_MAX") {
    n.mode = ops::Normalization::Mode::kMinMax;
  } else {
    fail_argument(name + ".mode", "expected 'MEAN_STD' or 'MIN_MAX', got '" + mode + "'");
  }
  n.a = float_values(o.Get("a"), name + ".a", dim);
  n.b = float_values(o.Get("b"), name + ".b", dim);
  n.eps = to_number(o.Get("eps"), name + ".eps");
  if (!(n.eps >= 0 && n.eps < 1)) fail_argument(name + ".eps", "expected a number in [0, 1)");
  return n;
}

// {name, data: Uint8Array (HWC, channels 3 or 4; or CHW with layout 'chw') | Float32Array (CHW, 3
// channels), height, width, channels?, layout?}.
ops::Frame frame_from_js(const Napi::Value& v, const std::string& where) {
  if (!v.IsObject()) fail_argument(where, "expected a frame {name, data, height, width, channels} or null");
  const Napi::Object o = v.As<Napi::Object>();
  ops::Frame f;
  f.name = to_string(o.Get("name"), where + ".name");
  const int64_t h = bounded(o.Get("height"), f.name + ": height", 1, kMaxImageSide);
  const int64_t w = bounded(o.Get("width"), f.name + ": width", 1, kMaxImageSide);
  const Napi::Value data = o.Get("data");
  if (is_typed(data, napi_float32_array)) {
    f.pixels = array_view(data, f.name, {napi_float32_array}, "CHW float32 data", at::kFloat, {3, h, w});
  } else if (is_typed(data, napi_uint8_array) || is_typed(data, napi_uint8_clamped_array)) {
    const Napi::Value layout = o.Get("layout");
    const std::string form = layout.IsUndefined() ? "hwc" : to_string(layout, f.name + ": layout");
    if (form == "chw") {
      f.channels_first = true;
      f.pixels = array_view(data, f.name, {napi_uint8_array, napi_uint8_clamped_array}, "CHW uint8 data", at::kByte, {3, h, w});
    } else if (form == "hwc") {
      const int64_t c = bounded(o.Get("channels"), f.name + ": channels", 3, 4);
      f.pixels = array_view(data, f.name, {napi_uint8_array, napi_uint8_clamped_array}, "HWC uint8 data", at::kByte, {h, w, c});
    } else {
      fail_argument(f.name + ": layout", "expected 'hwc' or 'chw', got '" + form.substr(0, 16) + "'");
    }
  } else {
    fail_argument(f.name, "expected HWC uint8 data (a Uint8Array) or CHW float32 data (a Float32Array)");
  }
  return f;
}

ops::CameraInput camera_from_js(const Napi::Value& v, const std::string& where, int64_t size) {
  if (!v.IsObject()) fail_argument(where, "expected {frames, valid, norm?}");
  const Napi::Object o = v.As<Napi::Object>();
  ops::CameraInput cam;
  const Napi::Value frames = o.Get("frames");
  if (!frames.IsArray() || frames.As<Napi::Array>().Length() != static_cast<uint32_t>(size)) {
    fail_argument(where + ".frames", "expected an array of " + std::to_string(size) + " frames (null where a robot has none)");
  }
  const Napi::Array list = frames.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value f = list.Get(i);
    if (absent(f)) {
      cam.frames.emplace_back(std::nullopt);
    } else {
      cam.frames.emplace_back(frame_from_js(f, where + ".frames[" + std::to_string(i) + "]"));
    }
  }
  const at::Tensor valid = array_view(o.Get("valid"), where + ".valid", {napi_uint8_array}, "a Uint8Array", at::kByte, {size});
  cam.valid.assign(valid.data_ptr<uint8_t>(), valid.data_ptr<uint8_t>() + size);
  cam.norm = norm_from_js(o.Get("norm"), where + ".norm", 3);
  return cam;
}

// The checked request with every view replaced by a native copy; the copies go back to the staging
// buffers once the work has let go of the request.
std::shared_ptr<const ops::BatchInputsRequest> staged_request(std::unique_ptr<ops::BatchInputsRequest> request) {
  const auto stage = [](at::Tensor& t) {
    if (t.defined()) t = staged_copy(t.data_ptr(), t.sizes().vec(), t.scalar_type());
  };
  for (auto* t : {&request->state, &request->token_ids, &request->token_mask, &request->actions, &request->action_is_pad}) stage(*t);
  for (auto& cam : request->cameras) {
    for (auto& f : cam.frames) {
      if (f) stage(f->pixels);
    }
  }
  return std::shared_ptr<const ops::BatchInputsRequest>(request.release(), [](const ops::BatchInputsRequest* r) {
    std::vector<at::Tensor> used{r->state, r->token_ids, r->token_mask, r->actions, r->action_is_pad};
    for (const auto& cam : r->cameras) {
      for (const auto& f : cam.frames) {
        if (f) used.push_back(f->pixels);
      }
    }
    delete r;
    release_staged(std::move(used));
  });
}

std::shared_ptr<const ops::BatchInputsRequest> request_from_js(const Params& p) {
  auto r = std::make_unique<ops::BatchInputsRequest>();
  r->size = bounded(p.get("size"), "size", 1, kMaxSize);
  r->width = bounded(p.get("width"), "width", 1, kMaxSize);
  r->height = bounded(p.get("height"), "height", 1, kMaxSize);
  const Napi::Value cameras = p.get("cameras");
  if (!cameras.IsArray()) fail_argument("cameras", "expected an array of cameras");
  const Napi::Array list = cameras.As<Napi::Array>();
  for (uint32_t c = 0; c < list.Length(); ++c) r->cameras.push_back(camera_from_js(list.Get(c), "cameras[" + std::to_string(c) + "]", r->size));
  r->empty_cameras = bounded(p.get("emptyCameras"), "emptyCameras", 0, kMaxSize);
  if (r->cameras.empty()) fail_argument("cameras", "expected at least one camera with images");

  r->max_state_dim = bounded(p.get("maxStateDim"), "maxStateDim", 1, kMaxSize);
  const int64_t state_dim = bounded(p.get("stateDim"), "stateDim", 0, r->max_state_dim);
  r->state = array_view(p.get("state"), "state", {napi_float32_array}, "a Float32Array", at::kFloat, {r->size, state_dim});
  r->state_norm = norm_from_js(p.get("stateNorm"), "stateNorm", state_dim);

  const at::Tensor lengths = array_view(p.get("tokenLengths"), "tokenLengths", {napi_int32_array}, "an Int32Array", at::kInt, {r->size});
  int64_t total = 0;
  for (int64_t i = 0; i < r->size; ++i) {
    const int64_t n = lengths.data_ptr<int32_t>()[i];
    if (n < 0 || n > kMaxSize) fail_argument("tokenLengths", "entry " + std::to_string(i) + " is " + std::to_string(n) + ", expected [0, 65536]");
    r->token_lengths.push_back(n);
    total += n;
  }
  r->token_ids = array_view(p.get("tokens"), "tokens", {napi_int32_array}, "an Int32Array", at::kInt, {total});
  r->token_mask = array_view(p.get("tokenMask"), "tokenMask", {napi_uint8_array}, "a Uint8Array", at::kByte, {total});
  r->pad_id = bounded(p.get("padId"), "padId", 0, INT32_MAX);

  if (p.has("actions")) {
    const int64_t chunk = bounded(p.get("chunkSize"), "chunkSize", 1, kMaxSize);
    r->max_action_dim = bounded(p.get("maxActionDim"), "maxActionDim", 1, kMaxSize);
    const int64_t action_dim = bounded(p.get("actionDim"), "actionDim", 1, r->max_action_dim);
    r->actions = array_view(p.get("actions"), "actions", {napi_float32_array}, "a Float32Array", at::kFloat, {r->size, chunk, action_dim});
    r->action_norm = norm_from_js(p.get("actionNorm"), "actionNorm", action_dim);
    if (p.has("actionIsPad")) {
      r->action_is_pad = array_view(p.get("actionIsPad"), "actionIsPad", {napi_uint8_array}, "a Uint8Array", at::kByte, {r->size, chunk});
    }
  } else if (p.has("actionIsPad")) {
    fail_argument("actionIsPad", "given without actions");
  }
  return staged_request(std::move(r));
}

Napi::Value tensors_to_js(Napi::Env env, const std::vector<at::Tensor>& list) {
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) out.Set(static_cast<uint32_t>(i), TensorWrap::Wrap(env, list[i]));
  return out;
}

Napi::Value optional_tensor(Napi::Env env, const at::Tensor& t) { return t.defined() ? Napi::Value(TensorWrap::Wrap(env, t)) : env.Null(); }

// preprocessBatch({size, width, height, cameras: [{frames, valid, norm?}], emptyCameras, state,
// stateDim, maxStateDim, stateNorm?, tokens, tokenLengths, tokenMask, padId, actions?, chunkSize?,
// actionDim?, maxActionDim?, actionNorm?, actionIsPad?, validateOnly?}) -> Promise<{images, imgMasks,
// state, langTokens, langMasks, actions, actionIsPad} | null (validateOnly: the values were checked)>
Napi::Value PreprocessBatch(const Napi::CallbackInfo& info) {
  const Params p(info);
  const bool validate_only = p.boolean("validateOnly", false);
  std::shared_ptr<const ops::BatchInputsRequest> r = request_from_js(p);
  return run_async<ops::BatchInputs>(
      info.Env(), "smolvla.preprocessBatch",
      [r, validate_only]() {
        if (!validate_only) return ops::batch_inputs(*r);
        ops::check_frames(*r);
        return ops::BatchInputs{};
      },
      [validate_only](Napi::Env env, ops::BatchInputs& b) -> Napi::Value {
        if (validate_only) return env.Null();
        Napi::Object out = Napi::Object::New(env);
        out.Set("images", tensors_to_js(env, b.images));
        out.Set("imgMasks", tensors_to_js(env, b.img_masks));
        out.Set("state", TensorWrap::Wrap(env, b.state));
        out.Set("langTokens", TensorWrap::Wrap(env, b.lang_tokens));
        out.Set("langMasks", TensorWrap::Wrap(env, b.lang_masks));
        out.Set("actions", optional_tensor(env, b.actions));
        out.Set("actionIsPad", optional_tensor(env, b.action_is_pad));
        return out;
      });
}

// unnormalizeActions({actions: (B, C, A) Tensor, actionDim, norm?}) -> Promise<Float32Array[]>:
// per robot C x actionDim, row-major, un-normalised.
Napi::Value UnnormalizeActions(const Napi::CallbackInfo& info) {
  const Params p(info);
  const at::Tensor actions = p.tensor("actions");
  expect_dim(actions, "actions", 3, "model-space actions of shape (B, C, max_action_dim)");
  const int64_t action_dim = bounded(p.get("actionDim"), "actionDim", 1, actions.size(2));
  const ops::Normalization norm = norm_from_js(p.get("norm"), "norm", action_dim);
  return run_async<at::Tensor>(
      info.Env(), "smolvla.unnormalizeActions", [actions, action_dim, norm]() { return ops::unnormalize_actions(actions, action_dim, norm); },
      [](Napi::Env env, at::Tensor& robot) -> Napi::Value {
        const int64_t b = robot.size(0), n = robot.size(1) * robot.size(2);
        Napi::Array out = Napi::Array::New(env, static_cast<size_t>(b));
        for (int64_t i = 0; i < b; ++i) {
          auto chunk = Napi::Float32Array::New(env, static_cast<size_t>(n));
          if (n > 0) std::memcpy(chunk.Data(), robot.data_ptr<float>() + i * n, static_cast<size_t>(n) * sizeof(float));
          out.Set(static_cast<uint32_t>(i), chunk);
        }
        return out;
      });
}

}  // namespace

void register_preprocess(Napi::Env env, Napi::Object exports) {
  exports.Set("preprocessBatch", Napi::Function::New(env, guarded<PreprocessBatch>, "preprocessBatch"));
  exports.Set("unnormalizeActions", Napi::Function::New(env, guarded<UnnormalizeActions>, "unnormalizeActions"));
}

}  // namespace smolvla::napi
