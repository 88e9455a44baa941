"""SmolVLMWithExpertModel: VLM + action expert + delta expert run layer by layer (SPEC §4).

Module names mirror LeRobot's smolvlm_with_expert.py so that state-dict keys match
(`vlm.model.vision_model...`, `vlm.model.connector...`, `vlm.model.text_model...`, `lm_expert...`,
`delta_expert...`). A cache is a dict {vlm layer index: (post-RoPE keys, un-rotated values)}, each
(B, P, Hkv, d); it is never modified after the prefix pass fills it.
"""
import torch
from torch import nn

from .config import SmolVLAConfig
from .connector import SmolVLMConnector
from .llama import LlamaModel
from .ops import apply_rope
from .vision import SmolVLMVisionTransformer


class SmolVLMModel(nn.Module):
    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        tc, vc = cfg.text, cfg.vision
        self.vision_model = SmolVLMVisionTransformer(vc)
        self.connector = SmolVLMConnector(vc.hidden_size, tc.hidden_size, cfg.vlm_backbone.scale_factor)
        # LeRobot keeps only the first num_vlm_layers layers; the others never reach a state dict.
        self.text_model = LlamaModel(tc.hidden_size, tc.intermediate_size, cfg.num_layers_vlm, tc, vocab_size=tc.vocab_size)


class SmolVLMForConditionalGeneration(nn.Module):
    """Only `.model` is kept: `lm_head` is never used by SmolVLA (a checkpoint's lm_head key is ignored)."""

    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        self.model = SmolVLMModel(cfg)


def eager_attention(mask, q, k, v, num_heads, num_kv_heads, head_dim):
    """LeRobot eager_attention_forward (SPEC §4): GQA by repeat_interleave (query head h uses kv head
    h // (H/Hkv)), float32 scores scaled by d^-0.5, masked entries = float32 min (a fully masked row gives a
    uniform softmax, never NaN). q (B,Lq,H,d), k/v (B,Lk,Hkv,d), mask (B,Lq,Lk) bool -> (B,Lq,H*d)."""
    b, lk = k.shape[:2]
    groups = num_heads // num_kv_heads
    k = k[:, :, :, None, :].expand(b, lk, num_kv_heads, groups, head_dim).reshape(b, lk, num_heads, head_dim)
    v = v[:, :, :, None, :].expand(b, lk, num_kv_heads, groups, head_dim).reshape(b, lk, num_heads, head_dim)
    qf = q.to(torch.float32).transpose(1, 2)
    kf = k.to(torch.float32).transpose(1, 2)
    w = torch.matmul(qf, kf.transpose(2, 3)) * head_dim**-0.5
    w = torch.where(mask[:, None, :, :], w, torch.finfo(torch.float32).min)
    probs = torch.softmax(w, dim=-1).to(v.dtype)
    out = torch.matmul(probs, v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
    return out.reshape(b, -1, num_heads * head_dim)


class SmolVLMWithExpertModel(nn.Module):
    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        tc = cfg.text
        self.num_vlm_layers = cfg.num_layers_vlm
        self.num_expert_layers = cfg.num_layers_expert
        self.multiple_of = self.num_vlm_layers // self.num_expert_layers
        self.self_attn_every_n_layers = cfg.self_attn_every_n_layers
        self.attention_mode = cfg.attention_mode
        self.num_attention_heads = tc.num_attention_heads
        self.num_key_value_heads = tc.num_key_value_heads
        self.head_dim = tc.head_dim
        self.expert_hidden_size = cfg.expert_hidden

        self.vlm = SmolVLMForConditionalGeneration(cfg)
        # Departure (SPEC §4): an expert layer gets cross-attention k/v (input Hkv*d) exactly when the VLM
        # layer it is paired with (i = j*k) is a cross-attention layer. The published code tests j itself.
        cross = [j for j in range(self.num_expert_layers) if self.is_cross_layer(j * self.multiple_of)]
        kv_in = tc.num_key_value_heads * tc.head_dim
        args = (cfg.expert_hidden, cfg.expert_intermediate, self.num_expert_layers, tc)
        self.lm_expert = LlamaModel(*args, cross_layers=cross, kv_in=kv_in)
        self.delta_expert = LlamaModel(*args, cross_layers=cross, kv_in=kv_in)

    def is_cross_layer(self, i: int) -> bool:
        """Layer i of a pass that does not fill the cache (SPEC §4)."""
        if "cross" not in self.attention_mode:
            return False
        return not (self.self_attn_every_n_layers > 0 and i % self.self_attn_every_n_layers == 0)

    def expert_layer(self, expert, i: int):
        """Expert layer paired with VLM layer i: i / k when k divides i, else None (stream passes through)."""
        return expert.layers[i // self.multiple_of] if i % self.multiple_of == 0 else None

    def embed_image(self, image):
        """-> (vision encoder output (B, Npatch, Dvis), connector output (B, Ntok, Dv))."""
        m = self.vlm.model
        vis = m.vision_model(image)
        return vis, m.connector(vis)

    def embed_language_tokens(self, tokens):
        return self.vlm.model.text_model.embed_tokens(tokens)

    def _attend(self, mask, q, k, v):
        return eager_attention(mask, q, k, v, self.num_attention_heads, self.num_key_value_heads, self.head_dim)

    @staticmethod
    def _qkv(layer, h):
        shape = (*h.shape[:-1], -1, layer.self_attn.head_dim)
        h = layer.input_layernorm(h)
        a = layer.self_attn
        return a.q_proj(h).view(shape), a.k_proj(h).view(shape), a.v_proj(h).view(shape)

    def _self_attn_layer(self, layers, embeds, i, position_ids, mask, cache, fill_cache, new_cache):
        """Joint self-attention over the present streams (SPEC §4). Returns per-stream attention outputs."""
        qs, ks, vs, lengths = [], [], [], []
        for layer, h in zip(layers, embeds):
            if h is None or layer is None:
                lengths.append(None)
                continue
            q, k, v = self._qkv(layer, h)
            qs.append(q), ks.append(k), vs.append(v)
            lengths.append(h.shape[1])
        if not qs:
            return [None, None]  # departure (SPEC §4): nothing to compute, the streams pass through
        q, k, v = torch.cat(qs, 1), torch.cat(ks, 1), torch.cat(vs, 1)
        n = q.shape[1]
        if n < position_ids.shape[1]:
            # the suffix has no expert layer here: the prefix attends over its own rows/columns only
            position_ids, mask = position_ids[:, :n], mask[:, :n, :n]
        q = apply_rope(q, position_ids)
        k = apply_rope(k, position_ids)
        if fill_cache:
            new_cache[i] = (k, v)
        elif cache is not None:
            k = torch.cat([cache[i][0], k], 1)
            v = torch.cat([cache[i][1], v], 1)
        out = self._attend(mask, q, k, v)
        outs, start = [], 0
        for length in lengths:
            if length is None:
                outs.append(None)
            else:
                outs.append(out[:, start : start + length])
                start += length
        return outs

    def _cross_attn_layer(self, layers, embeds, i, position_ids, mask, cache):
        """Prefix self-attention (if present) + expert cross-attention to the VLM's k/v (SPEC §4)."""
        prefix, suffix = embeds
        outs = [None, None]
        if prefix is not None:
            p = prefix.shape[1]
            pos, expert_pos = position_ids[:, :p], position_ids[:, p:]
            q, k, v = self._qkv(layers[0], prefix)
            k = apply_rope(k, pos)
            outs[0] = self._attend(mask[:, :p, :p], apply_rope(q, pos), k, v)
        else:
            expert_pos = position_ids
            k, v = cache[i]
        layer = layers[1]
        if layer is not None and suffix is not None:
            a = layer.self_attn
            h = layer.input_layernorm(suffix)
            eq = a.q_proj(h).view(*h.shape[:-1], -1, a.head_dim)
            ek = a.k_proj(k.reshape(*k.shape[:2], -1)).view(*k.shape[:2], -1, a.head_dim)
            ev = a.v_proj(v.reshape(*v.shape[:2], -1)).view(*v.shape[:2], -1, a.head_dim)
            expert_pos = expert_pos - expert_pos.min(dim=1, keepdim=True).values
            emask = mask[:, -suffix.shape[1] :, : ek.shape[1]]
            outs[1] = self._attend(emask, apply_rope(eq, expert_pos), ek, ev)
        return outs

    def forward(self, attention_mask, position_ids, inputs_embeds, past_key_values=None, fill_kv_cache=False, expert=None):
        """One pass over [prefix, suffix] (either may be None).

        fill_kv_cache: prefix-only pass, every layer self-attention, returns the filled cache.
        past_key_values: decode the suffix against this cache (it is not modified).
        expert: lm_expert (default) or delta_expert (forward_delta).
        Returns ([prefix_out, suffix_out] after each model's final RMSNorm, cache or None)."""
        expert = self.lm_expert if expert is None else expert
        text = self.vlm.model.text_model
        embeds = list(inputs_embeds)
        new_cache = {} if fill_kv_cache else None
        for i in range(self.num_vlm_layers):
            layers = [text.layers[i], self.expert_layer(expert, i)]
            if fill_kv_cache or not self.is_cross_layer(i):
                att = self._self_attn_layer(
                    layers, embeds, i, position_ids, attention_mask, past_key_values, fill_kv_cache, new_cache
                )
            else:
                att = self._cross_attn_layer(layers, embeds, i, position_ids, attention_mask, past_key_values)
            out = []
            for layer, h, a in zip(layers, embeds, att):
                if h is None or layer is None or a is None:
                    out.append(h)
                    continue
                x = layer.self_attn.o_proj(a.to(layer.self_attn.o_proj.weight.dtype)) + h
                out.append(layer.mlp(layer.post_attention_layernorm(x)) + x)
            embeds = out
        norms = [text.norm, expert.norm]
        return [None if h is None else n(h) for n, h in zip(norms, embeds)], new_cache

    def forward_delta(self, attention_mask, position_ids, inputs_embeds, past_key_values=None, fill_kv_cache=False):
        return self.forward(attention_mask, position_ids, inputs_embeds, past_key_values, fill_kv_cache, self.delta_expert)
