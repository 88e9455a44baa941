"""Phase-1 fixtures: single operations (test/fixtures/ops/*.safetensors). Called by generate_fixtures.py."""
import os

import torch

from smolvla_ref import ops
from smolvla_ref.safetensors_io import save_file

OP_TOL = "relative error ||a-b||2/||b||2 <= 1e-5 (float32); boolean and integer outputs exact"


def i64(v):
    return torch.tensor(int(v), dtype=torch.int64)


def f64(v):
    return torch.tensor(float(v), dtype=torch.float64)


def b(rows):
    return torch.tensor(rows, dtype=torch.bool)


def _write(out_dir, name, tensors, kind, description):
    save_file(tensors, os.path.join(out_dir, name), {"kind": kind, "tolerance": OP_TOL, "description": description})


def gen_masks(out_dir):
    """make_att_2d_masks (LeRobot) on hand-picked pad/mark patterns."""
    # prefix of 3 image tokens, 3 language tokens (the last padded) and the state token
    prefix_pad = [1, 1, 1, 1, 1, 0, 1]
    # (pad, marks) per case
    cases = [
        # all valid; causal vs prefix-LM marks
        ([[1] * 6, [1] * 6], [[0, 0, 0, 1, 1, 1], [1] * 6]),
        # right padding
        ([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]], [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]]),
        # an all-padding row (its 2-D mask is all false)
        ([[0] * 5, [1, 1, 0, 1, 1]], [[0, 0, 0, 0, 1], [0, 0, 0, 0, 1]]),
        # LeRobot prefix (images, language, state mark 1) + suffix of 4 action tokens (mark 1 each)
        (
            [prefix_pad + [1] * 4, [1, 1, 1, 0, 0, 0, 1] + [1] * 4],
            [[0, 0, 0, 0, 0, 0, 1] + [1] * 4] * 2,
        ),
        # big_vision example: causal attention between 4 blocks, with a padded token inside a block
        ([[1] * 10, [1, 1, 1, 1, 1, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]], [[1, 0, 1, 0, 1, 0, 0, 1, 0, 0]] * 3),
    ]
    t = {}
    for k, (pad, marks) in enumerate(cases):
        pad, marks = b(pad), b(marks)
        t[f"case{k}.pad"], t[f"case{k}.marks"] = pad, marks
        t[f"case{k}.out"] = ops.make_att_2d_masks(pad, marks)
    _write(out_dir, "masks.safetensors", t, "parity", "LeRobot make_att_2d_masks(pad, marks) -> (B,N,N) bool (SPEC §3)")


def gen_masks_cls(out_dir):
    """make_att_2d_masks_with_cls: SPEC §3 rule (departure: the published code only sketched it)."""

    def seq(prefix_pad, action_pad, cls_pad):
        # prefix: marks 0 except the last (state) token; actions and suffix CLS: mark 1 each
        pad = prefix_pad + action_pad + cls_pad
        marks = [0] * (len(prefix_pad) - 1) + [1] + [1] * (len(action_pad) + len(cls_pad))
        return pad, marks

    # each case: list of (prefix_pad, action_pad, cls_pad) per sample, ncp, ncs, ctx, C
    cases = [
        # ctx 2 of C 8: CLS rows see prefix, actions 0,1,6,7, both CLS; padded prefix tokens in sample 1
        ([([1] * 7, [1] * 8, [1, 1]), ([1, 1, 1, 0, 1, 0, 1], [1] * 8, [1, 1])], 2, 2, 2, 8),
        # 2*ctx >= C: every valid action token
        ([([1] * 5, [1] * 4, [1, 1]), ([1, 1, 0, 1, 1], [1] * 4, [1, 1])], 2, 2, 2, 4),
        ([([1] * 5, [1] * 4, [1, 1, 1]), ([1, 1, 1, 1, 1], [1] * 4, [1, 1, 1])], 3, 3, 5, 4),
        # padded suffix CLS: one CLS padded (its row empty, nobody sees it), and a sample with both padded
        ([([1] * 4, [1] * 6, [1, 0]), ([1] * 4, [1] * 6, [0, 0]), ([1, 1, 0, 0], [1] * 6, [0, 1])], 2, 2, 1, 6),
        # padding inside the action tokens: first/last ctx *valid* action tokens
        ([([1] * 4, [1, 0, 1, 1, 1, 1, 0, 1, 1, 1], [1, 1]), ([1] * 4, [0, 0, 1, 1, 1, 1, 1, 1, 0, 0], [1, 1])], 2, 2, 2, 10),
        # padding inside the actions leaves fewer than 2*ctx valid ones; ctx 0 sees no action at all
        ([([1] * 4, [1, 0, 0, 1, 1, 0], [1, 1]), ([1] * 4, [0, 0, 0, 0, 0, 0], [1, 1])], 2, 2, 2, 6),
        ([([1] * 4, [1] * 6, [1, 1]), ([1, 0, 1, 1], [1] * 6, [1, 1])], 2, 2, 0, 6),
        # default ctx 5 with C 12
        ([([1] * 5, [1] * 12, [1, 1]), ([1, 1, 1, 1, 0], [1] * 12, [1, 1])], 2, 2, 5, 12),
    ]
    t = {}
    for k, (samples, ncp, ncs, ctx, c) in enumerate(cases):
        rows = [seq(*s) for s in samples]
        pad, marks = b([r[0] for r in rows]), b([r[1] for r in rows])
        t[f"case{k}.pad"], t[f"case{k}.marks"] = pad, marks
        t[f"case{k}.num_cls_prefix"], t[f"case{k}.num_cls_suffix"] = i64(ncp), i64(ncs)
        t[f"case{k}.num_action_context"], t[f"case{k}.chunk_size"] = i64(ctx), i64(c)
        t[f"case{k}.out"] = ops.make_att_2d_masks_with_cls(pad, marks, ncp, ncs, ctx, c)
    _write(
        out_dir,
        "masks_cls.safetensors",
        t,
        "departure",
        "make_att_2d_masks_with_cls (SPEC §3): standard mask except suffix-CLS rows (last num_cls_suffix tokens), "
        "which see valid prefix tokens (before the chunk_size action tokens), the first and last num_action_context "
        "valid action tokens (all when 2*ctx >= their count) and the valid suffix CLS tokens; a padded CLS row is empty",
    )


def gen_time_embedding(out_dir):
    g = torch.Generator().manual_seed(11)
    cases = [
        (torch.tensor([0.0, 0.5, 1.0, 0.001]), 16, 0.004, 4.0),
        (torch.rand(3, generator=g), 48, 0.004, 4.0),
        (torch.tensor([0.999, 0.25]), 720, 0.004, 4.0),
        (torch.rand(2, generator=g), 10, 0.01, 2.0),
    ]
    t = {}
    for k, (time, dim, lo, hi) in enumerate(cases):
        t[f"case{k}.time"], t[f"case{k}.dim"] = time.float(), i64(dim)
        t[f"case{k}.min_period"], t[f"case{k}.max_period"] = f64(lo), f64(hi)
        t[f"case{k}.out"] = ops.create_sinusoidal_pos_embedding(time.float(), dim, lo, hi).float()
    _write(
        out_dir,
        "time_embedding.safetensors",
        t,
        "parity",
        "LeRobot create_sinusoidal_pos_embedding(time, dim, min_period, max_period) computed in float64 "
        "(periods from linspace(0,1,dim/2)), cast to float32; [sin..., cos...] (SPEC §3)",
    )


def gen_rope(out_dir):
    g = torch.Generator().manual_seed(12)
    cases = [
        (torch.randn(2, 5, 3, 8, generator=g), torch.tensor([[0, 1, 2, 3, 4], [-1, -1, 0, 1, 2]])),
        (torch.randn(1, 4, 2, 16, generator=g), torch.tensor([[500, 501, 1234, 7]])),
        (torch.randn(2, 3, 5, 64, generator=g), torch.tensor([[0, 40, 80], [-1, 300, 999]])),
    ]
    t = {}
    for k, (x, pos) in enumerate(cases):
        t[f"case{k}.x"], t[f"case{k}.pos"] = x, pos
        t[f"case{k}.out"] = ops.apply_rope(x, pos)
    _write(
        out_dir,
        "rope.safetensors",
        t,
        "parity",
        "SmolVLA apply_rope(x (B,L,H,d), pos (B,L)), max_wavelength 10000, rotate-half, float32 (SPEC §3)",
    )


def gen_pad_vector(out_dir):
    g = torch.Generator().manual_seed(13)
    cases = [(torch.randn(2, 4, generator=g), 6), (torch.randn(2, 3, 5, generator=g), 8), (torch.randn(3, 6, generator=g), 6)]
    t = {}
    for k, (x, n) in enumerate(cases):
        t[f"case{k}.x"], t[f"case{k}.new_dim"] = x, i64(n)
        t[f"case{k}.out"] = ops.pad_vector(x, n)
    _write(out_dir, "pad_vector.safetensors", t, "parity", "LeRobot pad_vector(x, new_dim): zero-pad the last axis")


def gen_resize_with_pad(out_dir):
    g = torch.Generator().manual_seed(14)
    # (B, H, W, width, height)
    cases = [
        (2, 24, 32, 16, 16),  # 4:3 downscale into a square: 12x16, 4 rows of padding on top
        (1, 6, 8, 16, 16),  # upscale: 12x16
        (1, 32, 20, 16, 16),  # tall: 16x10, 6 columns of padding on the left
        (2, 16, 16, 16, 16),  # already the right size
        (1, 30, 41, 24, 18),  # non-integer ratio, non-square target (width 24, height 18)
    ]
    t = {}
    for k, (bs, h, w, width, height) in enumerate(cases):
        img = torch.rand(bs, 3, h, w, generator=g)
        t[f"case{k}.img"], t[f"case{k}.width"], t[f"case{k}.height"] = img, i64(width), i64(height)
        t[f"case{k}.out"] = ops.resize_with_pad(img, width, height, pad_value=0.0)
    _write(
        out_dir,
        "resize_with_pad.safetensors",
        t,
        "parity",
        "LeRobot resize_with_pad(img, width, height, pad_value=0): ratio=max(W/width,H/height), "
        "size (int(H/ratio), int(W/ratio)), bilinear align_corners=False no antialias, pad left and top with 0",
    )


def gen_vicreg(out_dir):
    g = torch.Generator().manual_seed(15)
    # (B, T, D, lambda, mu, nu, gamma); z scaled by 0.6 so that several per-dim stds fall under gamma
    cases = [
        (2, 2, 8, 25.0, 25.0, 1.0, 1.0),
        (4, 2, 16, 25.0, 25.0, 1.0, 0.5),
        (5, 3, 6, 50.0, 10.0, 2.0, 1.0),
    ]
    t = {}
    for k, (bs, tt, d, lam, mu, nu, gamma) in enumerate(cases):
        z1 = 0.6 * torch.randn(bs, tt, d, generator=g)
        z2 = z1 + 0.3 * torch.randn(bs, tt, d, generator=g)
        # computed in float64 from the float32 inputs, stored as float32
        a = z1.double().requires_grad_(True)
        c = z2.double().requires_grad_(True)
        loss, inv, var, cov = ops.vicreg_terms(a, c, lam, mu, nu, gamma)
        loss.mean().backward()
        t[f"case{k}.z1"], t[f"case{k}.z2"] = z1, z2
        t[f"case{k}.lambda"], t[f"case{k}.mu"], t[f"case{k}.nu"], t[f"case{k}.gamma"] = f64(lam), f64(mu), f64(nu), f64(gamma)
        t[f"case{k}.loss"], t[f"case{k}.invariance"] = loss.detach().float(), inv.detach().float()
        t[f"case{k}.variance"], t[f"case{k}.covariance"] = var.detach().float(), cov.detach().float()
        t[f"case{k}.grad_z1"], t[f"case{k}.grad_z2"] = a.grad.float(), c.grad.float()
    _write(
        out_dir,
        "vicreg.safetensors",
        t,
        "departure",
        "VICReg per token over the batch (SPEC §5), eps 1e-4, unbiased variance, cov=Zc^T Zc/(B-1), "
        "off-diagonal squared sum / D; loss (B,T) = lambda*inv + mu*var + nu*cov; grads of loss.mean(). "
        "Reference computed in float64 from the float32 inputs.",
    )


def gen_cls_similarity(out_dir):
    g = torch.Generator().manual_seed(16)
    cases = [torch.randn(3, 2, 12, generator=g), torch.randn(2, 3, 8, generator=g)]
    prevs = [torch.randn(3, 2, 12, generator=g), torch.randn(2, 3, 8, generator=g)]
    prevs[0][1, 1] = 0.0  # zero vector: normalised to 0 (max(||x||, 1e-12)), similarity 0
    prevs[1][0, 1] = cases[1][0, 0] * 3.0  # parallel: similarity 1
    t = {}
    for k, (cur, prev) in enumerate(zip(cases, prevs)):
        per, mean = ops.cls_similarity(cur.double(), prev.double())
        t[f"case{k}.cur"], t[f"case{k}.prev"] = cur, prev
        t[f"case{k}.per_sample"], t[f"case{k}.mean"] = per.float(), mean.float()
    _write(
        out_dir,
        "cls_similarity.safetensors",
        t,
        "departure",
        "cosine of cur[:,0] and prev[:,1], each x/max(||x||,1e-12) (SPEC §5); per sample (B) and batch mean ()",
    )


def generate(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for fn in (gen_masks, gen_masks_cls, gen_time_embedding, gen_rope, gen_pad_vector, gen_resize_with_pad, gen_vicreg, gen_cls_similarity):
        fn(out_dir)
