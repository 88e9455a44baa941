"""Llama decoder pieces (transformers' LlamaModel names): RMSNorm, attention projections, gated MLP.

The attention computation itself lives in vlm_with_expert.py (SmolVLA runs the layers itself, SPEC §4)."""
import torch
import torch.nn.functional as F
from torch import nn

from .config import TextConfig


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.variance_epsilon = eps

    def forward(self, x):
        """SPEC §7: normalise in float32, cast back, then multiply by plain w (not 1 + w)."""
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * h.to(dtype)


class LlamaAttention(nn.Module):
    """q/k/v/o projections. `kv_in` is the k/v input width: the layer's hidden size, or Hkv*d of the VLM for
    an expert layer paired with a cross-attention layer (SPEC §2, §4)."""

    def __init__(self, hidden: int, tc: TextConfig, kv_in: int | None = None):
        super().__init__()
        self.head_dim = tc.head_dim
        h, hkv, d, bias = tc.num_attention_heads, tc.num_key_value_heads, tc.head_dim, tc.attention_bias
        kv_in = hidden if kv_in is None else kv_in
        self.q_proj = nn.Linear(hidden, h * d, bias=bias)
        self.k_proj = nn.Linear(kv_in, hkv * d, bias=bias)
        self.v_proj = nn.Linear(kv_in, hkv * d, bias=bias)
        self.o_proj = nn.Linear(h * d, hidden, bias=bias)


class LlamaMLP(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, hidden: int, intermediate: int, tc: TextConfig, kv_in: int | None = None):
        super().__init__()
        self.self_attn = LlamaAttention(hidden, tc, kv_in)
        self.mlp = LlamaMLP(hidden, intermediate)
        self.input_layernorm = LlamaRMSNorm(hidden, tc.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(hidden, tc.rms_norm_eps)


class LlamaModel(nn.Module):
    """Decoder stack. `vocab_size` None: no token embedding (the experts, SPEC §2).
    `cross_layers`: indices of layers whose k/v take `kv_in` inputs."""

    def __init__(self, hidden, intermediate, num_layers, tc: TextConfig, vocab_size=None, cross_layers=(), kv_in=None):
        super().__init__()
        if vocab_size is not None:
            self.embed_tokens = nn.Embedding(vocab_size, hidden)
        self.layers = nn.ModuleList(
            [
                LlamaDecoderLayer(hidden, intermediate, tc, kv_in if i in cross_layers else None)
                for i in range(num_layers)
            ]
        )
        self.norm = LlamaRMSNorm(hidden, tc.rms_norm_eps)
