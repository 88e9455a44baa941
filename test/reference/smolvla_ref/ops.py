"""Single operations of SmolVLA (LeRobot `modeling_smolvla.py` / `smolvlm_with_expert.py`) and of the
delta-expert/CLS extension (SPEC §3, §5). Each function mirrors the published behaviour unless its
docstring says "departure"."""
import math

import torch
import torch.nn.functional as F


def make_att_2d_masks(pad_masks: torch.Tensor, att_masks: torch.Tensor) -> torch.Tensor:
    """Token i may attend to j iff cumsum(marks)[j] <= cumsum(marks)[i] and both are valid (SPEC §3)."""
    if pad_masks.ndim != 2 or att_masks.ndim != 2:
        raise ValueError("pad_masks and att_masks must be (B, N)")
    cumsum = torch.cumsum(att_masks.to(torch.int64), dim=1)
    att_2d = cumsum[:, None, :] <= cumsum[:, :, None]
    pad_2d = pad_masks[:, None, :] & pad_masks[:, :, None]
    return att_2d & pad_2d


def make_att_2d_masks_with_cls(
    pad_masks: torch.Tensor,
    att_masks: torch.Tensor,
    num_cls_prefix: int,
    num_cls_suffix: int,
    num_action_context: int = 5,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Departure (SPEC §3): standard mask, except the rows of the last `num_cls_suffix` tokens (suffix CLS).

    The C = `chunk_size` tokens just before them are the action tokens; everything before those is the
    prefix. A suffix CLS row sees every valid prefix token, the first and the last `num_action_context`
    *valid* action tokens (all valid ones when 2*ctx >= their count), and every valid suffix CLS token.
    A padded suffix CLS row sees nothing (like any padded row of the standard mask).
    `num_cls_prefix` does not change the result (prefix CLS rows are standard rows); it is accepted for
    the published signature.
    """
    del num_cls_prefix
    if chunk_size is None:
        raise ValueError("chunk_size is required to locate the action tokens")
    out = make_att_2d_masks(pad_masks, att_masks)
    n = pad_masks.shape[1]
    ncs = num_cls_suffix
    if ncs <= 0:
        return out
    if ncs + chunk_size > n:
        raise ValueError("sequence shorter than chunk_size + num_cls_suffix")
    act_start, cls_start = n - ncs - chunk_size, n - ncs
    for b in range(pad_masks.shape[0]):
        row = torch.zeros(n, dtype=torch.bool)
        row[:act_start] = pad_masks[b, :act_start]
        valid_actions = [act_start + k for k in range(chunk_size) if pad_masks[b, act_start + k]]
        if 2 * num_action_context >= len(valid_actions):
            chosen = valid_actions
        else:
            chosen = valid_actions[:num_action_context] + valid_actions[len(valid_actions) - num_action_context :]
        for j in chosen:
            row[j] = True
        row[cls_start:] = pad_masks[b, cls_start:]
        for i in range(cls_start, n):
            out[b, i] = row if pad_masks[b, i] else torch.zeros(n, dtype=torch.bool)
    return out


def create_sinusoidal_pos_embedding(time: torch.Tensor, dimension: int, min_period: float, max_period: float):
    """Sine-cosine embedding of scalar times (B,) -> (B, dimension), in float64 (SPEC §3).

    The caller casts to the activation dtype, as LeRobot's embed_suffix does."""
    if dimension % 2 != 0:
        raise ValueError(f"dimension ({dimension}) must be divisible by 2")
    if time.ndim != 1:
        raise ValueError("time must be (B,)")
    fraction = torch.linspace(0.0, 1.0, dimension // 2, dtype=torch.float64)
    period = min_period * (max_period / min_period) ** fraction
    scaling = 1.0 / period * 2 * math.pi
    sin_input = scaling[None, :] * time.to(torch.float64)[:, None]
    return torch.cat([torch.sin(sin_input), torch.cos(sin_input)], dim=1)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, max_wavelength: float = 10_000) -> torch.Tensor:
    """SmolVLA's RoPE on x (B, L, H, d) with positions (B, L), rotate-half layout, float32 (SPEC §3)."""
    d_half = x.shape[-1] // 2
    dtype = x.dtype
    x = x.to(torch.float32)
    freq_exponents = (2.0 / x.shape[-1]) * torch.arange(d_half, dtype=torch.float32)
    timescale = max_wavelength**freq_exponents
    radians = positions[..., None].to(torch.float32) / timescale[None, None, :]
    radians = radians[..., None, :]
    sin, cos = torch.sin(radians), torch.cos(radians)
    x1, x2 = x.split(d_half, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(dtype)


def pad_vector(vector: torch.Tensor, new_dim: int) -> torch.Tensor:
    """Zero-pad the last axis to new_dim (no-op when it already has that size)."""
    if vector.shape[-1] == new_dim:
        return vector
    out = torch.zeros(*vector.shape[:-1], new_dim, dtype=vector.dtype)
    out[..., : vector.shape[-1]] = vector
    return out


def resize_with_pad(img: torch.Tensor, width: int, height: int, pad_value: float = 0.0) -> torch.Tensor:
    """LeRobot resize_with_pad: keep aspect ratio, bilinear (align_corners False), pad left and top."""
    if img.ndim != 4:
        raise ValueError(f"(b,c,h,w) expected, but {img.shape}")
    cur_height, cur_width = img.shape[2:]
    ratio = max(cur_width / width, cur_height / height)
    resized_height = int(cur_height / ratio)
    resized_width = int(cur_width / ratio)
    resized = F.interpolate(img, size=(resized_height, resized_width), mode="bilinear", align_corners=False)
    pad_height = max(0, int(height - resized_height))
    pad_width = max(0, int(width - resized_width))
    return F.pad(resized, (pad_width, 0, pad_height, 0), value=pad_value)


def vicreg_terms(z1, z2, lambda_param, mu_param, nu_param, gamma=1.0, eps=1e-4):
    """VICReg per token over the batch (SPEC §5). z1, z2: (B, T, D), B >= 2.

    Returns (loss (B, T), invariance (B, T), variance (T), covariance (T))."""
    if z1.shape[0] < 2:
        raise ValueError("VICReg needs a batch of at least 2 (its variance/covariance use B - 1)")
    b, _, d = z1.shape
    invariance = ((z1 - z2) ** 2).mean(dim=-1)

    def std(z):
        return torch.sqrt(z.var(dim=0, unbiased=True) + eps)  # (T, D)

    variance = F.relu(gamma - std(z1)).mean(-1) + F.relu(gamma - std(z2)).mean(-1)

    def off_diag_sq(z):
        zc = z - z.mean(dim=0, keepdim=True)  # (B, T, D)
        cov = torch.einsum("btd,bte->tde", zc, zc) / (b - 1)  # (T, D, D)
        off = cov * (1 - torch.eye(d, dtype=cov.dtype))
        return (off**2).sum(dim=(-2, -1))

    covariance = (off_diag_sq(z1) + off_diag_sq(z2)) / d
    loss = lambda_param * invariance + mu_param * variance[None] + nu_param * covariance[None]
    return loss, invariance, variance, covariance


def vicreg_loss(z1, z2, lambda_param, mu_param, nu_param, gamma=1.0, eps=1e-4):
    """(B, T) VICReg loss (SPEC §5)."""
    return vicreg_terms(z1, z2, lambda_param, mu_param, nu_param, gamma, eps)[0]


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """x / max(||x||, eps) along the last axis (F.normalize)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def cls_similarity(cur: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine of current CLS token 0 and previous CLS token 1, per sample and its batch mean (SPEC §5)."""
    per_sample = (l2_normalize(cur[:, 0]) * l2_normalize(prev[:, 1])).sum(-1)
    return per_sample, per_sample.mean()
