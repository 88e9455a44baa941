"""SmolVLM (Idefics3/SigLIP) vision transformer; names as transformers' SmolVLMVisionTransformer (SPEC §2, §7)."""
import torch
import torch.nn.functional as F
from torch import nn

from .config import VisionConfig


def vision_position_ids(image_size: int, patch_size: int, nb_h: int | None = None, nb_w: int | None = None):
    """Position ids of an nb_h x nb_w patch grid (SPEC §7), exactly as transformers' SmolVLMVisionEmbeddings.

    boundaries use a Python-float (float64) step; the fractional coordinates use step = 1/nb computed as a
    float32 tensor (transformers divides by the patch count tensor). Not the identity for e.g. G = 38."""
    g = image_size // patch_size
    nb_h = g if nb_h is None else nb_h
    nb_w = g if nb_w is None else nb_w
    f32 = torch.float32  # transformers' default dtype; float64 gives other buckets
    boundaries = torch.arange(1 / g, 1.0, 1 / g, dtype=f32)
    step_h = 1 / torch.tensor(nb_h, dtype=f32)
    step_w = 1 / torch.tensor(nb_w, dtype=f32)
    coords_h = torch.arange(0, 1 - 1e-6, float(step_h), dtype=f32)
    coords_w = torch.arange(0, 1 - 1e-6, float(step_w), dtype=f32)
    bucket_h = torch.bucketize(coords_h, boundaries, right=True)
    bucket_w = torch.bucketize(coords_w, boundaries, right=True)
    return (bucket_h[:, None] * g + bucket_w).flatten()


class SmolVLMVisionEmbeddings(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.image_size, self.patch_size = cfg.image_size, cfg.patch_size
        self.patch_embedding = nn.Conv2d(3, cfg.hidden_size, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        g = cfg.image_size // cfg.patch_size
        self.position_embedding = nn.Embedding(g * g, cfg.hidden_size)

    def forward(self, pixel_values):
        emb = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        nb_h = pixel_values.shape[2] // self.patch_size
        nb_w = pixel_values.shape[3] // self.patch_size
        pos = vision_position_ids(self.image_size, self.patch_size, nb_h, nb_w)
        return emb + self.position_embedding(pos)[None]


class SmolVLMVisionAttention(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.scale = self.head_dim**-0.5
        d = cfg.hidden_size
        self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.q_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape

        def heads(t):
            return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        w = torch.matmul(q, k.transpose(-1, -2)) * self.scale  # no mask: every patch is valid
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(w, v).transpose(1, 2).reshape(b, n, d)
        return self.out_proj(out)


class SmolVLMVisionMLP(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))  # gelu_pytorch_tanh


class SmolVLMEncoderLayer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.self_attn = SmolVLMVisionAttention(cfg)
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = SmolVLMVisionMLP(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SmolVLMEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.layers = nn.ModuleList([SmolVLMEncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class SmolVLMVisionTransformer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.embeddings = SmolVLMVisionEmbeddings(cfg)
        self.encoder = SmolVLMEncoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixel_values):
        """(B, 3, H, W) in [-1, 1] -> last_hidden_state (B, Npatch, Dvis), after post_layernorm."""
        return self.post_layernorm(self.encoder(self.embeddings(pixel_values)))
