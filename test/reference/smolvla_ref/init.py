"""Weight initialisation from a seed.

init_published: what the published code does for weights it does not load (SPEC §2): transformers'
_init_weights for the VLM and the experts (Linear/Conv/Embedding N(0, 0.02^2), zero biases, LayerNorm 1/0,
RMSNorm 1), PyTorch's default Linear init for the projections and for the experts' replaced cross-attention
k/v, CLS parameters N(0, 0.02^2).

init_for_fixtures: larger, deterministic weights so that every activation (attention patterns, norms,
masked rows) is far from trivial in a tiny model; RMSNorm/LayerNorm weights are not 1 so a (1 + w) bug shows.
"""
import math

import torch
from torch import nn

from .llama import LlamaRMSNorm
from .modeling import SmolVLAPolicy


def _default_linear(m: nn.Linear, g):
    """PyTorch's nn.Linear.reset_parameters (kaiming_uniform a=sqrt(5)) drawn from generator g."""
    bound = 1 / math.sqrt(m.in_features)
    with torch.no_grad():
        m.weight.uniform_(-bound, bound, generator=g)
        if m.bias is not None:
            m.bias.uniform_(-bound, bound, generator=g)


def _hf_init(module: nn.Module, g, std=0.02):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)):
                m.weight.normal_(0.0, std, generator=g)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
            elif isinstance(m, LlamaRMSNorm):
                m.weight.fill_(1.0)


def init_published(policy: SmolVLAPolicy, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    model = policy.model
    vwe = model.vlm_with_expert
    _hf_init(vwe.vlm, g)
    for expert in (vwe.lm_expert, vwe.delta_expert):
        _hf_init(expert, g)
        for layer in expert.layers:  # replaced cross-attention k/v keep nn.Linear's default init
            a = layer.self_attn
            if a.k_proj.in_features != a.q_proj.in_features:
                _default_linear(a.k_proj, g)
                _default_linear(a.v_proj, g)
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and not name.startswith("vlm_with_expert."):
            _default_linear(m, g)
    if model.config.use_cls_head:
        with torch.no_grad():
            model.pre_cls_param.normal_(0.0, 0.02, generator=g)
            model.suf_cls_param.normal_(0.0, 0.02, generator=g)


def init_for_fixtures(policy: SmolVLAPolicy, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in policy.model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=g)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1, generator=g)
            elif isinstance(m, nn.Embedding):
                m.weight.normal_(0.0, 1.0 / math.sqrt(m.weight.shape[1]), generator=g)
            elif isinstance(m, nn.LayerNorm):
                m.weight.normal_(1.0, 0.2, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
            elif isinstance(m, LlamaRMSNorm):
                m.weight.normal_(1.0, 0.2, generator=g)
        if policy.config.use_cls_head:
            policy.model.pre_cls_param.normal_(0.0, 1.0, generator=g)
            policy.model.suf_cls_param.normal_(0.0, 1.0, generator=g)
        for mod in (policy.normalize_inputs, policy.normalize_targets, policy.unnormalize_outputs):
            for name, p in mod.named_parameters():
                if name.endswith(".mean"):
                    p.normal_(0.0, 1.0, generator=g)
                else:
                    p.uniform_(0.5, 2.0, generator=g)
        # the action statistics are one set of dataset numbers: targets and outputs share them
        for a, b in zip(policy.normalize_targets.parameters(), policy.unnormalize_outputs.parameters()):
            b.copy_(a)
