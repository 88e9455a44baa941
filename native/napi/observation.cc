#include "napi/observation.h"

#include "core/check.h"
#include "napi/args.h"

namespace smolvla::napi {
namespace {

std::vector<at::Tensor> tensor_list(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (!v.IsArray()) fail_argument(std::string("observation.") + key, "expected an array of Tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    out.push_back(to_tensor(a.Get(i), std::string("observation.") + key + "[" + std::to_string(i) + "]"));
  }
  return out;
}

}  // namespace

model::Observation observation_from_js(const Napi::Value& value) {
  if (!value.IsObject()) fail_argument("observation", "expected an object {images, imgMasks, langTokens, langMasks, state}");
  const Napi::Object obj = value.As<Napi::Object>();
  model::Observation o;
  o.images = tensor_list(obj, "images");
  o.img_masks = tensor_list(obj, "imgMasks");
  o.lang_tokens = to_tensor(obj.Get("langTokens"), "observation.langTokens");
  o.lang_masks = to_tensor(obj.Get("langMasks"), "observation.langMasks");
  o.state = to_tensor(obj.Get("state"), "observation.state");
  return o;
}

}  // namespace smolvla::napi
