"""Self-check of the reference and its fixtures (run: /usr/bin/python3 test/reference/selfcheck.py).

1. every fixture file re-reads through the safetensors reader, has kind/tolerance metadata, and its header
   follows the format (8-byte aligned, contiguous offsets);
2. every op fixture is recomputed from its inputs;
3. every model fixture is recomputed from its *checkpoint directory* (config.json + model.safetensors) and
   must be bit-identical;
4. invariants that tie independent code paths together: joint training pass == cached decode, given-cache
   sampling == full sampling, the cache is never modified, pixel shuffle == SPEC §7 formula, vision position
   ids (identity for G = 32, not for 19/25/29/31/38), context interpolation == SPEC §5 formula, VICReg ==
   the published per-token loop, config.json round trip.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import fixtures_models as fm  # noqa: E402
from smolvla_ref import ops  # noqa: E402
from smolvla_ref.checkpoint import load_checkpoint  # noqa: E402
from smolvla_ref.config import SmolVLAConfig, expert_intermediate_size  # noqa: E402
from smolvla_ref.connector import pixel_shuffle  # noqa: E402
from smolvla_ref.init import init_published  # noqa: E402
from smolvla_ref.modeling import loss_dict  # noqa: E402
from smolvla_ref.safetensors_io import load_file  # noqa: E402
from smolvla_ref.vision import vision_position_ids  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL", msg)


def rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def same(name, a, b, tol=0.0):
    ok = a.shape == b.shape and a.dtype == b.dtype and (torch.equal(a, b) if tol == 0 else rel(a, b) <= tol)
    check(ok, f"{name}: mismatch" + ("" if a.shape != b.shape or a.dtype == torch.bool else f" rel={rel(a, b):.3g}"))


def check_format(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    check(n % 8 == 0, f"{path}: header length not a multiple of 8")
    meta = header.pop("__metadata__", {})
    spans = sorted(v["data_offsets"] for v in header.values())
    pos = 0
    for b, e in spans:
        check(b == pos, f"{path}: non-contiguous data")
        pos = e
    check(8 + n + pos == len(buf), f"{path}: trailing bytes")
    return meta


def check_ops():
    d = os.path.join(FIXTURES, "ops")
    for fname in sorted(os.listdir(d)):
        path = os.path.join(d, fname)
        meta = check_format(path)
        check(meta.get("kind") in ("parity", "departure") and "tolerance" in meta, f"{fname}: metadata")
        t, _ = load_file(path)
        cases = sorted({k.split(".")[0] for k in t})
        for c in cases:
            g = lambda k: t[f"{c}.{k}"]  # noqa: E731
            name = f"{fname}:{c}"
            if fname == "masks.safetensors":
                same(name, ops.make_att_2d_masks(g("pad"), g("marks")), g("out"))
            elif fname == "masks_cls.safetensors":
                out = ops.make_att_2d_masks_with_cls(
                    g("pad"), g("marks"), int(g("num_cls_prefix")), int(g("num_cls_suffix")),
                    int(g("num_action_context")), int(g("chunk_size")),
                )
                same(name, out, g("out"))
                ncs = int(g("num_cls_suffix"))
                same(name + " non-CLS rows", out[:, :-ncs], ops.make_att_2d_masks(g("pad"), g("marks"))[:, :-ncs])
            elif fname == "time_embedding.safetensors":
                out = ops.create_sinusoidal_pos_embedding(g("time"), int(g("dim")), float(g("min_period")), float(g("max_period")))
                same(name, out.float(), g("out"))
                # SPEC §3 closed form: period_i = min * (max/min)^(i/(dim/2 - 1))
                half = int(g("dim")) // 2
                i = torch.arange(half, dtype=torch.float64)
                period = float(g("min_period")) * (float(g("max_period")) / float(g("min_period"))) ** (i / (half - 1))
                ang = 2 * torch.pi * g("time").double()[:, None] / period
                same(name + " closed form", torch.cat([ang.sin(), ang.cos()], 1).float(), g("out"), 1e-6)
            elif fname == "rope.safetensors":
                same(name, ops.apply_rope(g("x"), g("pos")), g("out"))
            elif fname == "pad_vector.safetensors":
                same(name, ops.pad_vector(g("x"), int(g("new_dim"))), g("out"))
            elif fname == "resize_with_pad.safetensors":
                same(name, ops.resize_with_pad(g("img"), int(g("width")), int(g("height")), 0.0), g("out"))
            elif fname == "vicreg.safetensors":
                z1 = g("z1").double().requires_grad_(True)
                z2 = g("z2").double().requires_grad_(True)
                p = [float(g(k)) for k in ("lambda", "mu", "nu", "gamma")]
                loss, inv, var, cov = ops.vicreg_terms(z1, z2, *p)
                loss.mean().backward()
                for k, v in (("loss", loss), ("invariance", inv), ("variance", var), ("covariance", cov)):
                    same(f"{name}.{k}", v.detach().float(), g(k))
                same(name + ".grad_z1", z1.grad.float(), g("grad_z1"))
                same(name + ".grad_z2", z2.grad.float(), g("grad_z2"))
                same(name + " published loop", published_vicreg(g("z1"), g("z2"), *p), g("loss"), 1e-5)
            elif fname == "cls_similarity.safetensors":
                per, mean = ops.cls_similarity(g("cur").double(), g("prev").double())
                same(name, per.float(), g("per_sample"))
                same(name + ".mean", mean.float(), g("mean"))
            else:
                check(False, f"unknown op fixture {fname}")


def published_vicreg(z1, z2, lam, mu, nu, gamma, eps=1e-4):
    """The published vicreg_loss's per-token loop, restated independently (float32)."""
    b, n, d = z1.shape
    off = 1 - torch.eye(d)
    rows = []
    for i in range(n):
        a, c = z1[:, i], z2[:, i]
        var = torch.relu(gamma - torch.sqrt(a.var(0) + eps)).mean() + torch.relu(gamma - torch.sqrt(c.var(0) + eps)).mean()
        ac, cc = a - a.mean(0), c - c.mean(0)
        cov = (((ac.T @ ac / (b - 1)) * off) ** 2).sum() + (((cc.T @ cc / (b - 1)) * off) ** 2).sum()
        rows.append(lam * ((a - c) ** 2).mean(-1) + mu * var + nu * cov / d)
    return torch.stack(rows, 1)


def recompute(name):
    """Re-run a model fixture from its checkpoint directory; returns (policy, inputs, recomputed outputs)."""
    path = os.path.join(FIXTURES, name)
    for f in ("model.safetensors", "io.safetensors"):
        meta = check_format(os.path.join(path, f))
    check(meta.get("kind") in ("parity", "departure") and "tolerance" in meta, f"{name}: io metadata")
    with open(os.path.join(path, "config.json")) as f:
        raw = json.load(f)
    check(raw.get("type") == "smolvla", f"{name}: config type")
    cfg = SmolVLAConfig.from_dict(raw)
    known = cfg.to_dict()
    check(all(known[k] == v for k, v in raw.items() if k in known), f"{name}: config round trip")
    policy, report = load_checkpoint(path, fresh_init=lambda p: init_published(p, 0))
    t, meta = load_file(os.path.join(path, "io.safetensors"))
    ins = {k: v for k, v in t.items() if k.startswith("in.")}
    return policy, ins, t, meta, report


def check_models():
    for name in ("tiny_equal", "tiny_fewer", "tiny_delta"):
        policy, ins, t, meta, _ = recompute(name)
        out, cache, pads = fm.sampling_outputs(policy, ins)
        grads = [k[5:] for k in t if k.startswith("grad.")]
        if name == "tiny_delta":
            out.update(fm.main_loss_outputs(policy, ins)[0])
            ins_d, dout, trainable, no_grad = fm.delta_outputs(policy, ins, cache, pads, seed=302)
            out.update(dout)
            for k, v in ins_d.items():
                same(f"{name}:{k}", v, t[k])
            check(json.loads(meta["no_grad"]) == no_grad, f"{name}: no_grad list")
        else:
            lo, trainable = fm.main_loss_outputs(policy, ins, grads)
            out.update(lo)
        check(json.loads(meta["trainable"]) == trainable, f"{name}: trainable list")
        produced = {k for k in out}
        stored = {k for k in t if not k.startswith("in.")}
        check(produced == stored, f"{name}: key sets differ: {sorted(produced ^ stored)}")
        for k in sorted(produced & stored):
            same(f"{name}:{k}", out[k].detach(), t[k])
        check_invariants(name, policy, ins, t)

    policy, ins, t, meta, report = recompute("tiny_nodelta_ckpt")
    check(report["missing_initialised"] == json.loads(meta["missing"]), "nodelta: missing list")
    check(report["unused"] == json.loads(meta["unused"]), "nodelta: unused list")
    out, _, _ = fm.sampling_outputs(policy, ins)
    for k in ("out.prefix_out", "out.actions"):
        same(f"tiny_nodelta_ckpt:{k}", out[k], t[k])


def check_invariants(name, policy, ins, t):
    m = policy.model
    args = fm.model_args(ins)
    c = m.config.chunk_size
    with torch.no_grad():
        # joint training pass (cross layers take the prefix k/v directly) == decode against the cache
        prefix_out, cache, pads = m.prefix_pass(*args)
        snapshot = {i: (k.clone(), v.clone()) for i, (k, v) in cache.items()}
        te = ins["in.time"][:, None, None]
        x_t = te * ins["in.noise"] + (1 - te) * ins["in.actions"]
        v = m.denoise_step(pads, cache, x_t, ins["in.time"])
        same(f"{name}: joint pass == cached decode", (ins["in.noise"] - ins["in.actions"] - v) ** 2, t["out.losses"], 1e-5)
        check(all(torch.equal(cache[i][0], snapshot[i][0]) and torch.equal(cache[i][1], snapshot[i][1]) for i in cache),
              f"{name}: cache modified by decoding")
        # valid prefix rows of the joint pass == the cache-filling pass (the prefix never sees the suffix;
        # a fully padded row is a uniform softmax over all columns, so it differs and is left out)
        p_embs, p_pads, p_att = m.embed_prefix(*args)
        s_embs, s_pads, s_att = m.embed_suffix(x_t, ins["in.time"])
        all_pads = torch.cat([p_pads, s_pads], 1)
        mask = ops.make_att_2d_masks(all_pads, torch.cat([p_att, s_att], 1))
        (joint_prefix, _), _ = m.vlm_with_expert.forward(mask, torch.cumsum(all_pads.long(), 1) - 1, [p_embs, s_embs])
        same(f"{name}: joint prefix == prefix pass", joint_prefix[p_pads], prefix_out[p_pads], 1e-6)
        # sampling with a given cache == full sampling
        given, obs = m.sample_actions(None, None, None, None, None, noise=ins["in.noise"], past_key_values=cache, prefix_pad_masks=pads)
        same(f"{name}: given-cache sampling", given, t["out.actions"])
        check(obs is None, f"{name}: no obs_cls_out with a given cache")
        # in-episode masking and the mean over every element (SPEC §5)
        d = loss_dict(t["out.losses"], ins["in.actions_is_pad"], m.config.max_action_dim)
        same(f"{name}: loss", d["loss"], t["out.loss"], 1e-6)
        if name == "tiny_delta":
            same(f"{name}: x_noisy - x_t == cls_noise", t["out.delta.x_noisy"] - t["out.delta.x_t"], ins["in.cls_noise"], 1e-4)
            same(f"{name}: obs_cls_out == prefix_out[:, :Ncp]", t["out.delta.obs_cls_out"], t["out.prefix_out"][:, :2])
            # SPEC §5 context interpolation, restated: source (k + 0.5) * n / C - 0.5 clamped at 0
            ctx = ins["in.ctx.long"]
            enc = m.action_context_encoder(ctx)
            n = enc.shape[1]
            src = ((torch.arange(c, dtype=torch.float64) + 0.5) * n / c - 0.5).clamp_min(0)
            i0 = src.floor().long()
            i1 = (i0 + 1).clamp_max(n - 1)
            w = (src - i0).float()[None, :, None]
            same(f"{name}: interpolation", enc[:, i0] * (1 - w) + enc[:, i1] * w, m.encode_action_context(ctx), 1e-6)
            short = ins["in.ctx.short"]
            same(f"{name}: tiling", m.encode_action_context(short), m.action_context_encoder(short)[:, torch.arange(c) % 3])


def check_static():
    x = torch.randn(2, 64, 5)
    s, w = 2, 8
    ref = torch.empty(2, 16, 20)
    for i in range(w // s):
        for j in range(w // s):
            for a in range(s):
                for cc in range(s):
                    ref[:, i * (w // s) + j, (a * s + cc) * 5 : (a * s + cc + 1) * 5] = x[:, (i * s + a) * w + (j * s + cc)]
    same("pixel shuffle == SPEC §7", pixel_shuffle(x, 2), ref)
    ident = vision_position_ids(512, 16)
    same("position ids G=32 identity", ident, torch.arange(1024))
    for g in (19, 25, 29, 31, 38):
        p = vision_position_ids(g, 1)
        check(not torch.equal(p, torch.arange(g * g)), f"position ids G={g} should not be the identity")
    check(expert_intermediate_size(720) == 2048 and SmolVLAConfig().expert_hidden == 720, "SmolVLM2-500M expert dims")


def main():
    torch.set_num_threads(1)
    check_static()
    check_ops()
    check_models()
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("selfcheck passed")


if __name__ == "__main__":
    main()
