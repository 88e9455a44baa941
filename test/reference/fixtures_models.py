"""Phase-2 fixtures: tiny SmolVLA checkpoints and their input/output tensors (test/fixtures/<name>/).

Each model is initialised from a seed, written as a LeRobot checkpoint, then *re-read from that checkpoint*
and run, so the outputs belong to exactly the weights the JS side loads."""
import json
import os

import torch

from smolvla_ref.checkpoint import DELTA_AND_CLS_PREFIXES, load_checkpoint, save_checkpoint
from smolvla_ref.config import BackboneConfig, SmolVLAConfig, TextConfig, VisionConfig
from smolvla_ref.init import init_for_fixtures, init_published
from smolvla_ref.modeling import SmolVLAPolicy, loss_dict, trainable_parameter_names
from smolvla_ref.safetensors_io import save_file
from smolvla_ref.vision import vision_position_ids

MODEL_TOL = "relative error ||a-b||2/||b||2 <= 1e-4 (float32) for out.* and grad.*; masks, ids exact; in.* are inputs"
STATE_DIM, ACTION_DIM = 5, 4  # real dims inside max_state_dim = max_action_dim = 6
DELTA_CONFIG_KEYS = (
    "train_delta_expert", "use_cls_head", "num_cls_prefix", "num_cls_suffix", "vicreg_weight", "vicreg_lambda",
    "vicreg_mu", "vicreg_nu", "cls_noise_scale", "cls_similarity_threshold",
)

# generic LeRobot PreTrainedConfig entries a published config.json carries; a loader ignores them
PUBLISHED_EXTRA_CONFIG = {
    "device": "cuda", "use_amp": False, "push_to_hub": True, "repo_id": None, "private": None, "tags": None,
    "license": None,
}


def tiny_config(num_cameras=1, patch=4, image=32, text_layers=4, **overrides) -> SmolVLAConfig:
    """tiny_equal shapes (SPEC §1 rules): vision 32 wide, text 64 wide (4 heads, 2 kv heads, head_dim 16)."""
    backbone = BackboneConfig(
        text_config=TextConfig(96, 64, 128, text_layers, 4, 2, 16, 1e-5, False),
        vision_config=VisionConfig(32, 64, 2, 4, patch, image, 1e-6),
        scale_factor=2,
    )
    feats = {f"observation.images.cam{i}": {"type": "VISUAL", "shape": [3, image, image]} for i in range(num_cameras)}
    feats["observation.state"] = {"type": "STATE", "shape": [STATE_DIM]}
    kw = dict(
        chunk_size=8, n_action_steps=8, max_state_dim=6, max_action_dim=6, num_steps=3, tokenizer_max_length=12,
        num_vlm_layers=4, num_expert_layers=-1, self_attn_every_n_layers=2, expert_width_multiplier=0.75,
        resize_imgs_with_padding=[image, image], vlm_model_name="tiny-smolvlm-test",
        input_features=feats, output_features={"action": {"type": "ACTION", "shape": [ACTION_DIM]}},
        vlm_backbone=backbone,
    )
    kw.update(overrides)
    return SmolVLAConfig(**kw)


def make_inputs(cfg: SmolVLAConfig, bsize: int, seed: int, valid_lang=None, cam_off=()):
    """Preprocessed model inputs. valid_lang[b]: number of valid language tokens (right padding);
    cam_off: (sample, camera) pairs whose image mask is false."""
    g = torch.Generator().manual_seed(seed)
    ncam, r = len(cfg.image_features), cfg.vision.image_size
    c, a, s, l = cfg.chunk_size, cfg.max_action_dim, cfg.max_state_dim, cfg.tokenizer_max_length
    images = torch.rand(bsize, ncam, 3, r, r, generator=g) * 2 - 1
    img_masks = torch.ones(bsize, ncam, dtype=torch.bool)
    for b, cam in cam_off:
        img_masks[b, cam] = False
    lang_tokens = torch.randint(0, cfg.text.vocab_size, (bsize, l), generator=g)
    lang_masks = torch.ones(bsize, l, dtype=torch.bool)
    for b, n in enumerate(valid_lang or []):
        lang_masks[b, n:] = False
        lang_tokens[b, n:] = 0
    state = torch.zeros(bsize, s)
    state[:, :STATE_DIM] = torch.randn(bsize, STATE_DIM, generator=g)
    actions = torch.zeros(bsize, c, a)
    actions[:, :, :ACTION_DIM] = torch.randn(bsize, c, ACTION_DIM, generator=g)
    actions_is_pad = torch.zeros(bsize, c, dtype=torch.bool)
    actions_is_pad[-1, c - 3 :] = True  # the last sample's episode ends 3 steps before the chunk does
    noise = torch.randn(bsize, c, a, generator=g)
    time = torch.rand(bsize, generator=g) * 0.9 + 0.05
    return {
        "in.images": images, "in.img_masks": img_masks, "in.lang_tokens": lang_tokens, "in.lang_masks": lang_masks,
        "in.state": state, "in.actions": actions, "in.actions_is_pad": actions_is_pad, "in.noise": noise,
        "in.time": time, "in.action_dim": torch.tensor(ACTION_DIM, dtype=torch.int64),
    }


def model_args(t):
    ncam = t["in.images"].shape[1]
    images = [t["in.images"][:, i] for i in range(ncam)]
    masks = [t["in.img_masks"][:, i] for i in range(ncam)]
    return images, masks, t["in.lang_tokens"], t["in.lang_masks"], t["in.state"]


def set_trainable(policy, names):
    names = set(names)
    for n, p in policy.named_parameters():
        p.requires_grad_(n in names)
        p.grad = None


def sampling_outputs(policy, t):
    """Prefix pass, cache and every Euler step of sample_actions from x = in.noise."""
    out = {}
    trace = {}
    noise = t["in.noise"].clone()
    with torch.no_grad():
        actions, obs_cls_out = policy.model.sample_actions(*model_args(t), noise=noise, trace=trace)
    assert torch.equal(noise, t["in.noise"]), "sample_actions must not mutate the caller's noise"
    if obs_cls_out is not None:
        out["out.obs_cls_out"] = obs_cls_out
    for k, v in trace.items():
        if k == "cache":
            for i, (ck, cv) in v.items():
                out[f"out.cache.{i}.k"], out[f"out.cache.{i}.v"] = ck, cv
        else:
            out[f"out.{k}"] = v
    out["out.actions"] = actions
    vc = policy.config.vision
    out["out.vision_position_ids"] = vision_position_ids(vc.image_size, vc.patch_size)
    return out, trace["cache"], trace["prefix_pad_masks"]


def main_loss_outputs(policy, t, grad_names=()):
    """Main training objective with in.noise / in.time; grad.<name> of out.loss for grad_names, under
    LeRobot's default freezing. Returns (outputs, trainable names)."""
    cfg = policy.config
    trainable = trainable_parameter_names(cfg, policy)
    set_trainable(policy, trainable if grad_names else [])
    with torch.set_grad_enabled(bool(grad_names)):
        losses = policy.model.forward(*model_args(t), t["in.actions"], t["in.noise"], t["in.time"])
        d = loss_dict(losses, t["in.actions_is_pad"], cfg.max_action_dim)
    out = {
        "out.losses": d["losses_after_forward"].detach(),
        "out.losses_in_ep_bound": d["losses_after_in_ep_bound"].detach(),
        "out.loss": d["loss"].detach(),
    }
    if grad_names:
        d["loss"].backward()
        params = dict(policy.named_parameters())
        for n in grad_names:
            assert n in trainable, n
            out[f"grad.{n}"] = params[n].grad.clone()
        set_trainable(policy, [])
    return out, trainable


def delta_outputs(policy, t, cache, prefix_pads, seed):
    """Delta-expert objective with injected main_x0 / cls_noise, its gradients, and cal_cache delta actions."""
    cfg = policy.config
    g = torch.Generator().manual_seed(seed)
    bsize, c, a = t["in.actions"].shape
    main_x0 = torch.randn(bsize, c, a, generator=g)
    cls_noise = torch.zeros(bsize, c, a)
    cls_noise[..., :ACTION_DIM] = torch.randn(bsize, c, ACTION_DIM, generator=g) * cfg.cls_noise_scale
    ins = {"in.main_x0": main_x0.clone(), "in.cls_noise": cls_noise}
    for name, n in (("short", 3), ("equal", c), ("long", 2 * c + 3)):
        ins[f"in.ctx.{name}"] = torch.randn(bsize, n, a, generator=g)

    trainable = trainable_parameter_names(cfg, policy)
    set_trainable(policy, trainable)
    r = policy.model.forward_delta_expert(*model_args(t), main_x0=main_x0, cls_noise=cls_noise)
    assert torch.equal(main_x0, ins["in.main_x0"]) and r["x_t"].data_ptr() != main_x0.data_ptr()
    d = loss_dict(r["losses"], t["in.actions_is_pad"], cfg.max_action_dim, prefix="delta_")
    d["delta_loss"].backward()
    out = {f"out.delta.{k}": v.detach() for k, v in r.items() if k != "losses"}
    out["out.delta.losses_after_forward"] = d["delta_losses_after_forward"].detach()
    out["out.delta.losses_after_in_ep_bound"] = d["delta_losses_after_in_ep_bound"].detach()
    out["out.delta.loss"] = d["delta_loss"].detach()
    no_grad = []
    for n, p in policy.named_parameters():
        if n not in trainable:
            continue
        if p.grad is None:
            no_grad.append(n)
        else:
            out[f"grad.{n}"] = p.grad.clone()
    # SPEC §5: the delta objective never calls action_context_encoder; everything else trainable gets a gradient
    assert no_grad == [n for n in trainable if n.startswith("model.action_context_encoder.")], no_grad
    set_trainable(policy, [])

    with torch.no_grad():
        for name in ("short", "equal", "long", "none"):
            ctx = ins.get(f"in.ctx.{name}")
            c_cache, c_pads, delta_actions, _ = policy.model.cal_cache(*model_args(t), action_context=ctx)
            assert torch.equal(c_pads, prefix_pads) and all(torch.equal(c_cache[i][0], cache[i][0]) for i in cache)
            out[f"out.delta_actions.{name}"] = delta_actions
    return ins, out, trainable, no_grad


def _write_io(path, tensors, meta, file="io.safetensors"):
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(path, file), {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})


def build(out_root, name, cfg, seed, **ckpt_kwargs):
    """Initialise from a seed and write the checkpoint -> (its directory, the policy as built)."""
    path = os.path.join(out_root, name)
    policy = SmolVLAPolicy(cfg)
    init_for_fixtures(policy, seed)
    save_checkpoint(policy, path, **ckpt_kwargs)
    return path, policy


def gen_tiny_equal(root):
    cfg = tiny_config(use_cls_head=True, num_cls_prefix=2, num_cls_suffix=2, train_delta_expert=False)
    path, _ = build(root, "tiny_equal", cfg, seed=100)
    policy, _ = load_checkpoint(path)
    t = make_inputs(cfg, 2, seed=101)
    out, _, _ = sampling_outputs(policy, t)
    grads = [
        "model.action_out_proj.weight", "model.action_in_proj.weight",
        "model.vlm_with_expert.lm_expert.layers.1.self_attn.k_proj.weight", "model.state_proj.weight", "model.pre_cls_param",
    ]
    lo, trainable = main_loss_outputs(policy, t, grads)
    _write_io(path, {**t, **out, **lo}, {
        "kind": "parity", "tolerance": MODEL_TOL, "config": "tiny_equal",
        "description": "Equal VLM/expert layers (4/4), interleaved self/cross attention, CLS head on, B=2. "
        "Sampling from in.noise, main training loss with in.noise/in.time, grads of out.loss under LeRobot's "
        "default freezing (train_expert_only, freeze_vision_encoder, train_state_proj).",
        "trainable": trainable, "grad_loss": "out.loss",
    })


BF16_TOL = "relative error ||a-b||2/||b||2 <= 2e-3 for out.actions and 1e-2 for out.prefix_out (bfloat16 model vs this bfloat16 run)"


def gen_tiny_equal_bf16(root):
    """The reference in bfloat16: the VLM and expert's weights cast to bfloat16 (the projections, CLS
    tokens and flow-matching arithmetic stay float32, cast at the backbone's input as LeRobot does), sampled
    from tiny_equal's inputs. Outputs are stored as float32."""
    path = os.path.join(root, "tiny_equal")
    policy, _ = load_checkpoint(path)
    policy.model.vlm_with_expert.to(torch.bfloat16)
    t = make_inputs(policy.config, 2, seed=101)
    out, _, _ = sampling_outputs(policy, t)
    keep = {k: out[k].to(torch.float32) for k in ("out.actions", "out.prefix_out", "out.velocity.0")}
    _write_io(path, keep, {
        "kind": "parity", "tolerance": BF16_TOL, "config": "tiny_equal", "dtype": "bfloat16",
        "description": "tiny_equal sampled by the reference in bfloat16 from io.safetensors' in.* tensors.",
    }, file="io_bf16.safetensors")


def gen_tiny_fewer(root):
    cfg = tiny_config(
        num_cameras=2, patch=2, image=76, text_layers=6, num_expert_layers=2, prefix_length=740,
        add_image_special_tokens=False, use_cls_head=False,
    )
    pos = vision_position_ids(76, 2)
    assert not torch.equal(pos, torch.arange(pos.numel())), "grid 38 must give non-identity vision position ids"
    path, _ = build(root, "tiny_fewer", cfg, seed=200)
    policy, _ = load_checkpoint(path)
    t = make_inputs(cfg, 2, seed=201, valid_lang=[12, 7], cam_off=[(1, 1)])
    out, _, _ = sampling_outputs(policy, t)
    assert out["out.prefix_pad_masks"].shape[1] == 740 and not out["out.prefix_pad_masks"][:, -1].any()
    grads = ["model.action_out_proj.weight", "model.vlm_with_expert.lm_expert.layers.1.self_attn.k_proj.weight", "model.state_proj.weight"]
    lo, trainable = main_loss_outputs(policy, t, grads)
    _write_io(path, {**t, **out, **lo}, {
        "kind": "departure", "tolerance": MODEL_TOL, "config": "tiny_fewer",
        "description": "4 kept VLM layers (of 6 in vlm_backbone) and 2 expert layers with self_attn_every_n_layers=2: "
        "the published code cannot build this (SPEC §4 departure: cross k/v by the paired VLM layer; here both "
        "expert layers pair with self-attention layers 0 and 2, layers 1 and 3 pass the suffix through). "
        "2 cameras (camera 1 masked for sample 1), patch 2 / image 76 (grid 38: non-identity position ids), "
        "language right-padded for sample 1, prefix_length 740 > sequence (right padding), no CLS head.",
        "trainable": trainable, "grad_loss": "out.loss",
    })


def gen_tiny_delta(root):
    cfg = tiny_config(use_cls_head=True, train_delta_expert=True, cls_noise_scale=0.01)
    path, _ = build(root, "tiny_delta", cfg, seed=300)
    policy, _ = load_checkpoint(path)
    t = make_inputs(cfg, 4, seed=301, valid_lang=[12, 12, 9, 12])
    out, cache, prefix_pads = sampling_outputs(policy, t)
    lo, _ = main_loss_outputs(policy, t)
    ins, dout, trainable, no_grad = delta_outputs(policy, t, cache, prefix_pads, seed=302)
    _write_io(path, {**t, **ins, **out, **lo, **dout}, {
        "kind": "departure", "tolerance": MODEL_TOL, "config": "tiny_delta",
        "description": "train_delta_expert + CLS head, B=4. out.delta.*: delta objective (SPEC §5) from in.main_x0 "
        "(no-grad main integration start) and in.cls_noise (already scaled, zero on action columns >= in.action_dim); "
        "grad.*: gradients of out.delta.loss for every trainable tensor; out.delta_actions.*: cal_cache delta actions "
        "for contexts of 3, C and 2C+3 actions and none (zeros). out.*/sampling keys as in tiny_equal (no grads).",
        "parity_keys": "out.delta.* and the sampling/main-loss outputs follow the published numerics",
        "departure_keys": "out.delta_actions.* (action positions exclude suffix CLS tokens), trainable/grad.* "
        "(CLS parameters and projections trainable), make_att_2d_masks is the standard one everywhere",
        "real_action_columns": list(range(ACTION_DIM)),
        "trainable": trainable, "no_grad": no_grad, "grad_loss": "out.delta.loss",
    })


def gen_tiny_nodelta_ckpt(root):
    """A checkpoint shaped like a published SmolVLA: no delta/CLS tensors or config keys, an unused lm_head,
    and (like smolvla_base's 16 of 32) only the first num_vlm_layers = 2 of the backbone's 4 text layers."""
    cfg = tiny_config(use_cls_head=False, num_vlm_layers=2)
    g = torch.Generator().manual_seed(401)
    lm_head = {"model.vlm_with_expert.vlm.lm_head.weight": torch.randn(cfg.text.vocab_size, cfg.vlm_hidden, generator=g) * 0.02}
    path, full = build(
        root, "tiny_nodelta_ckpt", cfg, seed=400, drop_prefixes=DELTA_AND_CLS_PREFIXES, extra_tensors=lm_head,
        drop_config_keys=DELTA_CONFIG_KEYS, extra_config=PUBLISHED_EXTRA_CONFIG,
    )
    policy, report = load_checkpoint(path, fresh_init=lambda p: init_published(p, 0))
    missing = report["missing_initialised"]
    assert missing == sorted(k for k in full.state_dict() if k.startswith(DELTA_AND_CLS_PREFIXES))
    t = make_inputs(cfg, 2, seed=402)
    out, _, _ = sampling_outputs(policy, t)
    keep = {k: out[k] for k in ("out.prefix_out", "out.actions")}
    _write_io(path, {**{k: t[k] for k in t if k not in ("in.actions", "in.actions_is_pad", "in.time")}, **keep}, {
        "kind": "parity", "tolerance": MODEL_TOL, "config": "tiny_nodelta_ckpt",
        "description": "Published-style checkpoint: 2 of 4 text layers kept (2 expert layers), no delta-expert/CLS "
        "tensors (initialised fresh on load), no delta/CLS config keys (defaults apply), an unused "
        "vlm.lm_head.weight. The VLM/expert weights are all "
        "present, so sampling from in.noise must give out.actions and out.prefix_out regardless of the fresh init.",
        "missing": missing, "unused": report["unused"],
    })


def generate(root):
    for fn in (gen_tiny_equal, gen_tiny_equal_bf16, gen_tiny_fewer, gen_tiny_delta, gen_tiny_nodelta_ckpt):
        fn(root)
