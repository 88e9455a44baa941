"""SmolVLM connector: pixel shuffle + bias-free Linear (SPEC §2, §7)."""
from torch import nn


def pixel_shuffle(x, scale_factor: int):
    """transformers' SmolVLMConnector.pixel_shuffle (view/permute sequence kept verbatim in structure).

    Equivalent to out[b, i*(w/s)+j, (a*s+c)*D+ch] = in[b, (i*s+a)*w + (j*s+c), ch] (SPEC §7)."""
    bsz, seq, dim = x.size()
    height = width = int(seq**0.5)
    s = scale_factor
    x = x.view(bsz, height, width, dim)
    x = x.view(bsz, height, width // s, dim * s)
    x = x.permute(0, 2, 1, 3)
    x = x.reshape(bsz, width // s, height // s, dim * s * s)
    x = x.permute(0, 2, 1, 3)
    return x.reshape(bsz, seq // (s * s), dim * s * s)


class SmolVLMSimpleMLP(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x):
        return self.proj(x)


class SmolVLMConnector(nn.Module):
    def __init__(self, vision_hidden: int, text_hidden: int, scale_factor: int):
        super().__init__()
        self.scale_factor = scale_factor
        self.modality_projection = SmolVLMSimpleMLP(vision_hidden * scale_factor**2, text_hidden)

    def forward(self, image_hidden_states):
        return self.modality_projection(pixel_shuffle(image_hidden_states, self.scale_factor))
