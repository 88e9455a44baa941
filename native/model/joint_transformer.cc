#include "model/joint_transformer.h"

#include <ATen/ATen.h>

#include "core/check.h"
#include "model/init.h"

namespace smolvla::model {
namespace {

struct Qkv {
  at::Tensor q, k, v;
};

// Input RMSNorm and q/k/v projections of one stream: q (B, L, H, d), k/v (B, L, Hkv, d).
Qkv project(DecoderLayer layer, const at::Tensor& h, int64_t head_dim) {
  const at::Tensor x = layer->input_layernorm(h);
  const int64_t b = h.size(0), l = h.size(1);
  auto& a = *layer->self_attn;
  const int64_t q_width = a.q_proj->weight.size(0), kv_width = a.k_proj->weight.size(0);
  const at::Tensor qkv = a.qkv(x);
  return {qkv.narrow(-1, 0, q_width).view({b, l, -1, head_dim}),
          qkv.narrow(-1, q_width, kv_width).view({b, l, -1, head_dim}),
          qkv.narrow(-1, q_width + kv_width, kv_width).view({b, l, -1, head_dim})};
}

// o_proj + residual, post-attention RMSNorm, gated MLP + residual.
at::Tensor finish(DecoderLayer layer, const at::Tensor& h, const at::Tensor& attention) {
  const at::Tensor x = dense(attention, layer->self_attn->o_proj) + h;
  return layer->mlp(layer->post_attention_layernorm(x)) + x;
}

}  // namespace

PassPlan PassPlan::build(const at::Tensor& mask, const at::Tensor& positions, int64_t prefix_len, int64_t suffix_len,
                         int64_t head_dim) {
  PassPlan p;
  p.prefix_len = prefix_len;
  p.suffix_len = suffix_len;
  p.joint = AttentionMask::from(mask);
  p.joint_rope = ops::rope_table(positions, head_dim);
  const int64_t prefix_keys = mask.size(2) - suffix_len;  // cached or present prefix columns
  if (prefix_len > 0) {
    p.prefix_only = AttentionMask::from(mask.narrow(1, 0, prefix_len).narrow(2, 0, prefix_len));
    p.prefix_rope = ops::rope_table(positions.narrow(1, 0, prefix_len), head_dim);
  }
  if (suffix_len > 0 && prefix_keys > 0) {
    const int64_t rows = mask.size(1);
    p.cross = AttentionMask::from(mask.narrow(1, rows - suffix_len, suffix_len).narrow(2, 0, prefix_keys));
    const at::Tensor pos = positions.narrow(1, positions.size(1) - suffix_len, suffix_len);
    p.cross_rope = ops::rope_table(pos - std::get<0>(pos.min(1, /*keepdim=*/true)), head_dim);
  }
  return p;
}

SmolVLMModelImpl::SmolVLMModelImpl(const ModelConfig& c) {
  vision_model = register_module("vision_model", VisionTransformer(c.vision));
  connector = register_module("connector", Connector(c.vision.hidden, c.text.hidden, c.scale_factor));
  to_build_dtype(*connector);
  const auto& t = c.text;
  // Only the first num_vlm_layers text layers exist (LeRobot truncates the backbone).
  text_model = register_module("text_model", LlamaStack(t.vocab, t.hidden, t.intermediate, c.num_vlm_layers, t.heads,
                                                         t.kv_heads, t.head_dim, t.eps, std::vector<bool>{}, 0));
}

SmolVLMHolderImpl::SmolVLMHolderImpl(const ModelConfig& c) { model = register_module("model", SmolVLMModel(c)); }

VlmWithExpertImpl::VlmWithExpertImpl(const ModelConfig& c) : c_(c) {
  vlm = register_module("vlm", SmolVLMHolder(c));
  // Departure (docs/DEPARTURES.md): an expert layer gets cross-attention k/v exactly when the VLM layer it is
  // paired with is a cross-attention layer (the published code tests the expert index itself).
  std::vector<bool> cross(c.num_expert_layers);
  for (int64_t j = 0; j < c.num_expert_layers; ++j) cross[j] = c.is_cross_layer(j * c.expert_stride());
  const int64_t kv_width = c.text.kv_heads * c.text.head_dim;
  auto make_expert = [&]() {
    return LlamaStack(0, c.expert_hidden, c.expert_intermediate, c.num_expert_layers, c.text.heads, c.text.kv_heads,
                      c.text.head_dim, c.text.eps, cross, kv_width);
  };
  lm_expert = register_module("lm_expert", make_expert());
  delta_expert = register_module("delta_expert", make_expert());
}

ExpertKV VlmWithExpertImpl::project_cache(const KVCache& cache, Expert which) {
  LlamaStack stack = expert(which);
  ExpertKV out;
  out.keys.resize(c_.num_vlm_layers);
  out.values.resize(c_.num_vlm_layers);
  for (int64_t i = 0; i < c_.num_vlm_layers; ++i) {
    const int64_t j = c_.expert_layer_for(i);
    if (j < 0 || !c_.is_cross_layer(i)) continue;
    auto& a = *stack->layer(j)->self_attn;
    const at::Tensor& k = cache.keys[i];
    const at::Tensor& v = cache.values[i];
    const int64_t b = k.size(0), p = k.size(1), d = c_.text.head_dim;
    out.keys[i] = dense(k.reshape({b, p, -1}), a.k_proj).view({b, p, -1, d});
    out.values[i] = dense(v.reshape({b, p, -1}), a.v_proj).view({b, p, -1, d});
  }
  return out;
}

StreamOutputs VlmWithExpertImpl::forward(const at::Tensor& prefix_in, const at::Tensor& suffix_in, const PassPlan& plan,
                                         Expert which, bool fill_cache, KVCache* cache_out, const KVCache* past,
                                         const ExpertKV* expert_kv) {
  const int64_t d = c_.text.head_dim;
  LlamaStack text = vlm->model->text_model;
  LlamaStack stack = expert(which);
  at::Tensor prefix = prefix_in, suffix = suffix_in;
  if (fill_cache) {
    cache_out->keys.assign(c_.num_vlm_layers, at::Tensor());
    cache_out->values.assign(c_.num_vlm_layers, at::Tensor());
  }

  for (int64_t i = 0; i < c_.num_vlm_layers; ++i) {
    DecoderLayer vlm_layer = text->layer(i);
    const int64_t j = c_.expert_layer_for(i);
    DecoderLayer expert_layer = j >= 0 ? stack->layer(j) : DecoderLayer(nullptr);
    const bool has_prefix = prefix.defined();
    const bool has_suffix = suffix.defined() && !expert_layer.is_empty();
    at::Tensor prefix_att, suffix_att;

    if (fill_cache || !c_.is_cross_layer(i)) {
      // Self-attention: the present streams attend jointly.
      if (!has_prefix && !has_suffix) continue;  // departure: nothing to compute, streams pass through
      Qkv pq, sq;
      if (has_prefix) pq = project(vlm_layer, prefix, d);
      if (has_suffix) sq = project(expert_layer, suffix, d);
      at::Tensor q, k, v;
      if (has_prefix && has_suffix) {
        q = at::cat({pq.q, sq.q}, 1);
        k = at::cat({pq.k, sq.k}, 1);
        v = at::cat({pq.v, sq.v}, 1);
      } else {
        const Qkv& one = has_prefix ? pq : sq;
        q = one.q;
        k = one.k;
        v = one.v;
      }
      // Prefix alone while a suffix is present (no expert layer here): prefix rows/columns only.
      const bool prefix_alone = has_prefix && !has_suffix && suffix.defined();
      const ops::RopeTable& rope = prefix_alone ? plan.prefix_rope : plan.joint_rope;
      const AttentionMask& mask = prefix_alone ? plan.prefix_only : plan.joint;
      q = ops::apply_rope(q, rope);
      k = ops::apply_rope(k, rope);
      if (fill_cache) {
        cache_out->keys[i] = k;
        cache_out->values[i] = v;
      } else if (past != nullptr) {
        k = at::cat({past->keys[i], k}, 1);
        v = at::cat({past->values[i], v}, 1);
      }
      const at::Tensor att = grouped_attention(q, k, v, mask);
      if (has_prefix) prefix_att = att.narrow(1, 0, prefix.size(1));
      if (has_suffix) suffix_att = att.narrow(1, att.size(1) - suffix.size(1), suffix.size(1));
    } else {
      // Cross-attention: the prefix attends to itself; the expert's queries attend to the VLM's
      // keys/values of this layer through the expert's own k/v projections.
      at::Tensor keys, values;
      if (has_prefix) {
        const Qkv pq = project(vlm_layer, prefix, d);
        keys = ops::apply_rope(pq.k, plan.prefix_rope);
        values = pq.v;
        prefix_att = grouped_attention(ops::apply_rope(pq.q, plan.prefix_rope), keys, values, plan.prefix_only);
      } else if (past != nullptr) {
        keys = past->keys[i];
        values = past->values[i];
      }
      if (has_suffix) {
        if (!keys.defined()) throw std::logic_error("cross-attention layer without prefix keys or a cache");
        auto& a = *expert_layer->self_attn;
        const int64_t b = suffix.size(0), s = suffix.size(1), p = keys.size(1);
        const at::Tensor q = dense(expert_layer->input_layernorm(suffix), a.q_proj).view({b, s, -1, d});
        at::Tensor ek, ev;
        if (!has_prefix && expert_kv != nullptr && expert_kv->keys[i].defined()) {
          ek = expert_kv->keys[i];
          ev = expert_kv->values[i];
        } else {
          ek = dense(keys.reshape({b, p, -1}), a.k_proj).view({b, p, -1, d});
          ev = dense(values.reshape({b, p, -1}), a.v_proj).view({b, p, -1, d});
        }
        suffix_att = grouped_attention(ops::apply_rope(q, plan.cross_rope), ek, ev, plan.cross);
      }
    }
    if (prefix_att.defined()) prefix = finish(vlm_layer, prefix, prefix_att);
    if (suffix_att.defined()) suffix = finish(expert_layer, suffix, suffix_att);
  }
  StreamOutputs out;
  if (prefix.defined()) out.prefix = text->norm(prefix);
  if (suffix.defined()) out.suffix = stack->norm(suffix);
  return out;
}

}  // namespace smolvla::model
