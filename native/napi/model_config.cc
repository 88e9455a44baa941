#include "napi/model_config.h"

#include "core/check.h"

namespace smolvla::napi {
namespace {

class Reader {
 public:
  Reader(Napi::Object obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  Napi::Object object(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsObject()) fail_argument(name(key), "expected an object");
    return v.As<Napi::Object>();
  }
  int64_t integer(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsNumber()) fail_argument(name(key), "expected an integer");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) fail_argument(name(key), "expected an integer, got " + std::to_string(d));
    return static_cast<int64_t>(d);
  }
  double number(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsNumber()) fail_argument(name(key), "expected a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  bool boolean(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsBoolean()) fail_argument(name(key), "expected a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  std::vector<int64_t> integers(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsArray()) fail_argument(name(key), "expected an array of integers");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<int64_t> out;
    for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(static_cast<int64_t>(a.Get(i).As<Napi::Number>().Int64Value()));
    return out;
  }
  std::string name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  Napi::Object obj_;
  std::string path_;
};

}  // namespace

model::ModelConfig model_config_from_js(const Napi::Value& value) {
  if (!value.IsObject()) fail_argument("config", "expected a native model config object");
  const Reader r(value.As<Napi::Object>(), "config");
  model::ModelConfig c;
  const Reader v(r.object("vision"), "config.vision");
  c.vision.hidden = v.integer("hidden");
  c.vision.intermediate = v.integer("intermediate");
  c.vision.layers = v.integer("layers");
  c.vision.heads = v.integer("heads");
  c.vision.patch = v.integer("patchSize");
  c.vision.image_size = v.integer("imageSize");
  c.vision.eps = v.number("layerNormEps");
  const Reader t(r.object("text"), "config.text");
  c.text.vocab = t.integer("vocab");
  c.text.hidden = t.integer("hidden");
  c.text.intermediate = t.integer("intermediate");
  c.text.heads = t.integer("heads");
  c.text.kv_heads = t.integer("kvHeads");
  c.text.head_dim = t.integer("headDim");
  c.text.eps = t.number("rmsNormEps");
  c.scale_factor = r.integer("scaleFactor");
  c.num_vlm_layers = r.integer("numVlmLayers");
  c.num_expert_layers = r.integer("numExpertLayers");
  c.self_attn_every_n_layers = r.integer("selfAttnEveryNLayers");
  c.cross_attention = r.boolean("crossAttention");
  c.expert_hidden = r.integer("expertHidden");
  c.expert_intermediate = r.integer("expertIntermediate");
  c.chunk_size = r.integer("chunkSize");
  c.max_state_dim = r.integer("maxStateDim");
  c.max_action_dim = r.integer("maxActionDim");
  c.action_dim = r.integer("actionDim");
  c.num_steps = r.integer("numSteps");
  c.min_period = r.number("minPeriod");
  c.max_period = r.number("maxPeriod");
  c.prefix_length = r.integer("prefixLength");
  c.add_image_special_tokens = r.boolean("addImageSpecialTokens");
  c.image_start_tokens = r.integers("imageStartTokens");
  c.image_end_tokens = r.integers("imageEndTokens");
  c.use_cls_head = r.boolean("useClsHead");
  c.num_cls_prefix = r.integer("numClsPrefix");
  c.num_cls_suffix = r.integer("numClsSuffix");
  c.vicreg_weight = r.number("vicregWeight");
  c.vicreg_lambda = r.number("vicregLambda");
  c.vicreg_mu = r.number("vicregMu");
  c.vicreg_nu = r.number("vicregNu");
  c.cls_noise_scale = r.number("clsNoiseScale");
  c.train_delta_expert = r.boolean("trainDeltaExpert");
  c.train_expert_only = r.boolean("trainExpertOnly");
  c.freeze_vision_encoder = r.boolean("freezeVisionEncoder");
  c.train_state_proj = r.boolean("trainStateProj");
  c.validate();
  return c;
}

}  // namespace smolvla::napi
