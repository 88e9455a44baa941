// The model config arrives once, as JSON (lib/model/model.ts): {"config": <LeRobot config.json as
// lib/config writes it>, "resolved": <resolveDims(config)>, "tokens": {...}}. The TypeScript schema
// (lib/config/schema.ts) stays the one definition; this file reads its serialised form, checking
// every value's type (array elements included) and naming the key on a mismatch.
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "model/config.h"

namespace smolvla::model {
namespace {

using json = nlohmann::json;

class Reader {
 public:
  Reader(const json& obj, std::string path) : obj_(obj), path_(std::move(path)) {
    if (!obj_.is_object()) fail_argument(path_, "expected an object");
  }

  Reader object(const char* key) const { return Reader(at(key), name(key)); }
  int64_t integer(const char* key) const { return integer_value(at(key), name(key)); }
  double number(const char* key) const {
    const json& v = at(key);
    if (!v.is_number()) fail_argument(name(key), "expected a number, got " + v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key) const {
    const json& v = at(key);
    if (!v.is_boolean()) fail_argument(name(key), "expected a boolean, got " + v.dump());
    return v.get<bool>();
  }
  std::vector<int64_t> integers(const char* key) const {
    const json& v = at(key);
    if (!v.is_array()) fail_argument(name(key), "expected an array of integers, got " + v.dump());
    std::vector<int64_t> out;
    for (size_t i = 0; i < v.size(); ++i) out.push_back(integer_value(v[i], name(key) + "[" + std::to_string(i) + "]"));
    return out;
  }

 private:
  const json& at(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) fail_argument(name(key), "missing");
    return *it;
  }
  std::string name(const char* key) const { return path_ + "." + key; }
  static int64_t integer_value(const json& v, const std::string& where) {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
    }
    fail_argument(where, "expected an integer, got " + v.dump());
  }

  const json& obj_;
  std::string path_;
};

}  // namespace

ModelConfig parse_model_config(const std::string& text) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    fail_argument("config", std::string("expected the model config as JSON: ") + e.what());
  }
  const Reader top(root, "config");
  const Reader r = top.object("config");    // config.json keys
  const Reader d = top.object("resolved");  // lib/config/dims.ts ResolvedDims
  const Reader tok = top.object("tokens");
  ModelConfig c;
  const Reader v = d.object("vision");
  c.vision.hidden = v.integer("hidden");
  c.vision.intermediate = v.integer("intermediate");
  c.vision.layers = v.integer("layers");
  c.vision.heads = v.integer("heads");
  c.vision.patch = v.integer("patchSize");
  c.vision.image_size = v.integer("imageSize");
  c.vision.eps = v.number("layerNormEps");
  const Reader t = d.object("text");
  c.text.vocab = t.integer("vocab");
  c.text.hidden = t.integer("hidden");
  c.text.intermediate = t.integer("intermediate");
  c.text.heads = t.integer("heads");
  c.text.kv_heads = t.integer("kvHeads");
  c.text.head_dim = t.integer("headDim");
  c.text.eps = t.number("rmsNormEps");
  c.scale_factor = d.integer("scaleFactor");
  c.num_vlm_layers = d.integer("numVlmLayers");
  c.num_expert_layers = d.integer("numExpertLayers");
  c.cross_attention = d.boolean("crossAttention");
  c.expert_hidden = d.integer("expertHidden");
  c.expert_intermediate = d.integer("expertIntermediate");
  c.action_dim = d.integer("actionDim");
  c.self_attn_every_n_layers = r.integer("self_attn_every_n_layers");
  c.chunk_size = r.integer("chunk_size");
  c.max_state_dim = r.integer("max_state_dim");
  c.max_action_dim = r.integer("max_action_dim");
  c.num_steps = r.integer("num_steps");
  c.min_period = r.number("min_period");
  c.max_period = r.number("max_period");
  c.prefix_length = r.integer("prefix_length");
  c.add_image_special_tokens = r.boolean("add_image_special_tokens");
  c.use_cls_head = r.boolean("use_cls_head");
  c.num_cls_prefix = r.integer("num_cls_prefix");
  c.num_cls_suffix = r.integer("num_cls_suffix");
  c.vicreg_weight = r.number("vicreg_weight");
  c.vicreg_lambda = r.number("vicreg_lambda");
  c.vicreg_mu = r.number("vicreg_mu");
  c.vicreg_nu = r.number("vicreg_nu");
  c.cls_noise_scale = r.number("cls_noise_scale");
  c.train_delta_expert = r.boolean("train_delta_expert");
  c.train_expert_only = r.boolean("train_expert_only");
  c.freeze_vision_encoder = r.boolean("freeze_vision_encoder");
  c.train_state_proj = r.boolean("train_state_proj");
  c.image_start_tokens = tok.integers("imageStartTokens");
  c.image_end_tokens = tok.integers("imageEndTokens");
  if (c.add_image_special_tokens && (c.image_start_tokens.empty() || c.image_end_tokens.empty())) {
    fail_argument("config.tokens", "the image start/end token ids (add_image_special_tokens) from the tokenizer");
  }
  c.validate();
  return c;
}

}  // namespace smolvla::model
