"""Checkpoints and training states between this project and Python LeRobot, seen from the Python side.

Run by test/train/interop.test.ts with /usr/bin/python3 (Debian's torch 1.13), from this folder:

  load DIR IO OUT       Loads a checkpoint saved by the project the way LeRobot does: config.json may hold
                        only keys LeRobot's SmolVLAConfig declares (draccus rejects others; the fork's
                        delta/CLS keys when the config uses them), the state-dict names must match the
                        model's, the normalisation statistics must be in the processor files. Samples
                        a chunk from IO's in.* tensors and noise and writes it to OUT (out.actions).
  save DIR SEED         Writes a checkpoint and a training_state/ as newer LeRobot does (model.* weights
                        plus an unused vlm lm_head, statistics only in the processor files, the
                        backbone in a local Hugging Face VLM folder named by vlm_model_name, AdamW
                        after one step flattened as state.<i>.*), plus what the test compares with:
                        DIR/expected.safetensors (the chunk of DIR/io.safetensors, each optimizer
                        moment by parameter name).
  init-stats CFG OUT    Initialises the policy of config.json CFG as the published code does
                        (smolvla_ref.init.init_published) and writes each parameter's statistics
                        (mean, std, min, max, numel) as JSON to OUT.
  adamw A B OUT         Loads checkpoint A's training_state with torch.optim.AdamW.load_state_dict,
                        takes the gradient that turns A's exp_avg into B's, applies one AdamW step and
                        writes the relative differences to B's weights and moments as JSON to OUT.

The keys below are LeRobot's, copied from its dataclasses (configs/policies.py PreTrainedConfig,
policies/smolvla/configuration_smolvla.py, and haomin1010/lerobot's fork for the delta/CLS keys).
"""
import json
import math
import os
import sys

import torch

from smolvla_ref.config import SmolVLAConfig
from smolvla_ref.init import init_for_fixtures, init_published
from smolvla_ref.modeling import SmolVLAPolicy, trainable_parameter_names
from smolvla_ref.safetensors_io import load_file, save_file

PRETRAINED_CONFIG_FIELDS = {
    "n_obs_steps", "input_features", "output_features", "device", "use_amp", "use_peft", "push_to_hub",
    "repo_id", "private", "tags", "license", "pretrained_path", "pretrained_revision",
}
SMOLVLA_CONFIG_FIELDS = {
    "chunk_size", "n_action_steps", "normalization_mapping", "max_state_dim", "max_action_dim",
    "resize_imgs_with_padding", "empty_cameras", "adapt_to_pi_aloha", "use_delta_joint_actions_aloha",
    "tokenizer_max_length", "num_steps", "use_cache", "freeze_vision_encoder", "train_expert_only",
    "train_state_proj", "optimizer_lr", "optimizer_betas", "optimizer_eps", "optimizer_weight_decay",
    "optimizer_grad_clip_norm", "scheduler_warmup_steps", "scheduler_decay_steps", "scheduler_decay_lr",
    "vlm_model_name", "load_vlm_weights", "add_image_special_tokens", "attention_mode", "prefix_length",
    "pad_language_to", "num_expert_layers", "num_vlm_layers", "self_attn_every_n_layers",
    "expert_width_multiplier", "min_period", "max_period", "rtc_config", "compile_model", "compile_mode",
}
FORK_FIELDS = {
    "train_delta_expert", "use_cls_head", "num_cls_prefix", "num_cls_suffix", "vicreg_weight", "vicreg_lambda",
    "vicreg_mu", "vicreg_nu", "cls_noise_scale", "cls_similarity_threshold", "load_expert_weights",
}
# torch >= 2.7 AdamW param group keys (LeRobot's deserialize_json_into_object demands exactly these)
ADAMW_GROUP_KEYS = {
    "lr", "betas", "eps", "weight_decay", "amsgrad", "foreach", "maximize", "capturable", "differentiable",
    "fused", "decoupled_weight_decay", "initial_lr", "params",
}
LAMBDALR_KEYS = {"base_lrs", "last_epoch", "_step_count", "_get_lr_called_within_step", "_last_lr", "lr_lambdas", "_is_initial"}
NORM_PREFIXES = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")
LM_HEAD = "model.vlm_with_expert.vlm.lm_head.weight"


def fail(message):
    print(f"lerobot_interop: {message}", file=sys.stderr)
    sys.exit(1)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def check_config_keys(cfg):
    if cfg.get("type") != "smolvla":
        fail(f"config.json type is {cfg.get('type')!r}")
    allowed = PRETRAINED_CONFIG_FIELDS | SMOLVLA_CONFIG_FIELDS | {"type"}
    if cfg.get("train_delta_expert") or cfg.get("use_cls_head"):
        allowed |= FORK_FIELDS
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        fail(f"config.json has keys LeRobot's SmolVLAConfig does not declare: {unknown}")


def lerobot_order(policy):
    """Python's parameters() order of LeRobot's policy: model.* (newer LeRobot has no normalisation
    modules) with SmolVLM's lm_head right after vlm.model."""
    names = [n for n, _ in policy.named_parameters() if n.startswith("model.")]
    last = max(i for i, n in enumerate(names) if n.startswith("model.vlm_with_expert.vlm.model."))
    return names[: last + 1] + [LM_HEAD] + names[last + 1 :]


def processor_stats(d):
    pre = read_json(os.path.join(d, "policy_preprocessor.json"))
    step = next(s for s in pre["steps"] if s["registry_name"] == "normalizer_processor")
    stats, _ = load_file(os.path.join(d, step["state_file"]))
    return step, stats


def sample(policy, io):
    ncam = io["in.images"].shape[1]
    images = [io["in.images"][:, i] for i in range(ncam)]
    masks = [io["in.img_masks"][:, i] for i in range(ncam)]
    with torch.no_grad():
        actions, _ = policy.model.sample_actions(
            images, masks, io["in.lang_tokens"], io["in.lang_masks"], io["in.state"], noise=io["in.noise"].clone()
        )
    return actions


def cmd_load(d, io_path, out_path):
    cfg = read_json(os.path.join(d, "config.json"))
    check_config_keys(cfg)
    if "vlm_backbone" in cfg:
        fail("config.json carries vlm_backbone")
    # Python LeRobot fetches the backbone's dimensions by vlm_model_name; this reference reads the side file
    side = read_json(os.path.join(d, "smolvla_node.json"))
    config = SmolVLAConfig.from_dict({**cfg, "vlm_backbone": side["vlm_backbone"]})
    policy = SmolVLAPolicy(config)
    tensors, _ = load_file(os.path.join(d, "model.safetensors"))
    expected = {k for k in policy.state_dict() if k.startswith("model.")}
    missing = sorted(expected - set(tensors))
    unknown = sorted(k for k in set(tensors) - expected if not k.startswith(NORM_PREFIXES))
    if missing or unknown:
        fail(f"state-dict names differ: missing {missing[:5]}, unknown {unknown[:5]}")
    policy.load_state_dict({k: v for k, v in tensors.items() if k in expected}, strict=False)
    step, stats = processor_stats(d)
    for key, ft in step["config"]["features"].items():
        if step["config"]["norm_map"].get(ft["type"]) == "MEAN_STD" and f"{key}.mean" not in stats:
            fail(f"the normalizer_processor state lacks {key}.mean")
    save_file({"out.actions": sample(policy, load_file(io_path)[0]).contiguous()}, out_path, {"format": "pt"})


def hf_vlm_config(backbone):
    t, v = backbone.text_config, backbone.vision_config
    return {
        "model_type": "smolvlm",
        "scale_factor": backbone.scale_factor,
        "text_config": {
            "model_type": "llama", "hidden_act": "silu", "mlp_bias": False, "vocab_size": t.vocab_size,
            "hidden_size": t.hidden_size, "intermediate_size": t.intermediate_size,
            "num_hidden_layers": t.num_hidden_layers, "num_attention_heads": t.num_attention_heads,
            "num_key_value_heads": t.num_key_value_heads, "head_dim": t.head_dim, "rms_norm_eps": t.rms_norm_eps,
            "attention_bias": t.attention_bias,
        },
        "vision_config": {
            "model_type": "smolvlm_vision", "hidden_act": "gelu_pytorch_tanh", "hidden_size": v.hidden_size,
            "intermediate_size": v.intermediate_size, "num_hidden_layers": v.num_hidden_layers,
            "num_attention_heads": v.num_attention_heads, "patch_size": v.patch_size, "image_size": v.image_size,
            "layer_norm_eps": v.layer_norm_eps,
        },
    }


def cmd_save(d, seed):
    here = os.path.dirname(os.path.abspath(__file__))
    fixture = os.path.join(here, "..", "fixtures", "tiny_delta")
    base = SmolVLAConfig.load(os.path.join(fixture, "config.json"))
    vlm_dir = os.path.join(d, "vlm")
    os.makedirs(vlm_dir, exist_ok=True)
    write_json(os.path.join(vlm_dir, "config.json"), hf_vlm_config(base.vlm_backbone))
    base.vlm_model_name = vlm_dir
    policy = SmolVLAPolicy(base)
    init_for_fixtures(policy, seed)
    model_dir = os.path.join(d, "pretrained_model")
    os.makedirs(model_dir, exist_ok=True)
    cfg = {k: v for k, v in base.to_dict().items() if k != "vlm_backbone"}
    check_config_keys(cfg)
    write_json(os.path.join(model_dir, "config.json"), cfg)
    g = torch.Generator().manual_seed(seed + 1)
    sd = {k: v.detach().clone().contiguous() for k, v in policy.state_dict().items() if k.startswith("model.")}
    t = base.vlm_backbone.text_config
    sd[LM_HEAD] = torch.randn(t.vocab_size, t.hidden_size, generator=g)
    save_file(sd, os.path.join(model_dir, "model.safetensors"), {"format": "pt"})

    # processor files, as PolicyProcessorPipeline.save_pretrained writes them for SmolVLA
    features = {**base.input_features, **base.output_features}
    stats = {}
    for key, ft in features.items():
        if base.normalization_mapping.get(ft["type"]) == "MEAN_STD":
            n = ft["shape"][0]
            stats[f"{key}.mean"] = torch.randn(n, generator=g)
            stats[f"{key}.std"] = torch.rand(n, generator=g) + 0.5
    norm_cfg = {"eps": 1e-8, "features": features, "norm_map": base.normalization_mapping}
    write_json(os.path.join(model_dir, "policy_preprocessor.json"), {"name": "policy_preprocessor", "steps": [
        {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
        {"registry_name": "to_batch_processor", "config": {}},
        {"registry_name": "smolvla_new_line_processor", "config": {}},
        {"registry_name": "tokenizer_processor", "config": {"max_length": base.tokenizer_max_length, "task_key": "task",
         "padding_side": "right", "padding": base.pad_language_to, "truncation": True, "tokenizer_name": vlm_dir}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
        {"registry_name": "normalizer_processor", "config": norm_cfg,
         "state_file": "policy_preprocessor_step_5_normalizer_processor.safetensors"},
    ]})
    save_file(stats, os.path.join(model_dir, "policy_preprocessor_step_5_normalizer_processor.safetensors"))
    write_json(os.path.join(model_dir, "policy_postprocessor.json"), {"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor", "config": {**norm_cfg, "features": base.output_features},
         "state_file": "policy_postprocessor_step_0_unnormalizer_processor.safetensors"},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
    ]})
    save_file({k: v for k, v in stats.items() if k.startswith("action.")},
              os.path.join(model_dir, "policy_postprocessor_step_0_unnormalizer_processor.safetensors"))

    # one AdamW step over LeRobot's parameter list (all parameters; the frozen ones get no state)
    order = lerobot_order(policy)
    named = dict(policy.named_parameters())
    named[LM_HEAD] = torch.nn.Parameter(sd[LM_HEAD].clone())
    trainable = set(trainable_parameter_names(base, policy))
    params = []
    for n in order:
        p = named[n]
        p.requires_grad_(n in trainable)
        params.append(p)
    opt = torch.optim.AdamW(params, lr=base.optimizer_lr, betas=tuple(base.optimizer_betas), eps=base.optimizer_eps,
                            weight_decay=base.optimizer_weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5)
    for n, p in zip(order, params):
        if p.requires_grad:
            p.grad = torch.randn(p.shape, generator=g)
    opt.step()
    sched.step()
    state = opt.state_dict()
    flat = {}
    for i, s in state["state"].items():
        for k, v in s.items():
            flat[f"state.{i}.{k}"] = v.reshape(()) if k == "step" else v.contiguous()
    ts_dir = os.path.join(d, "training_state")
    os.makedirs(ts_dir, exist_ok=True)
    save_file(flat, os.path.join(ts_dir, "optimizer_state.safetensors"))
    write_json(os.path.join(ts_dir, "optimizer_param_groups.json"), state["param_groups"])
    sd_sched = sched.state_dict()
    sd_sched["lr_lambdas"] = [None]
    write_json(os.path.join(ts_dir, "scheduler_state.json"), sd_sched)
    write_json(os.path.join(ts_dir, "training_step.json"), {"step": 1})
    save_file({"torch_rng_state": torch.get_rng_state()}, os.path.join(ts_dir, "rng_state.safetensors"))

    io, _ = load_file(os.path.join(fixture, "io.safetensors"))
    expected = {"out.actions": sample(policy, io).contiguous()}
    for i, s in state["state"].items():
        expected[f"exp_avg.{order[i]}"] = s["exp_avg"].contiguous()
        expected[f"exp_avg_sq.{order[i]}"] = s["exp_avg_sq"].contiguous()
    for key, v in stats.items():
        expected[f"stats.{key}"] = v
    save_file(expected, os.path.join(d, "expected.safetensors"))


def rel(a, b):
    return float((a - b).norm() / max(float(b.norm()), 1e-30))


def cmd_adamw(a_dir, b_dir, out_path):
    def part(d, *names):
        return os.path.join(d, *names)

    cfg = read_json(part(a_dir, "pretrained_model", "config.json"))
    check_config_keys(cfg)
    side = read_json(part(a_dir, "pretrained_model", "smolvla_node.json"))
    config = SmolVLAConfig.from_dict({**cfg, "vlm_backbone": side["vlm_backbone"]})
    policy = SmolVLAPolicy(config)
    order = lerobot_order(policy)
    weights_a, _ = load_file(part(a_dir, "pretrained_model", "model.safetensors"))
    weights_b, _ = load_file(part(b_dir, "pretrained_model", "model.safetensors"))
    groups = read_json(part(a_dir, "training_state", "optimizer_param_groups.json"))
    if len(groups) != 1 or set(groups[0]) != ADAMW_GROUP_KEYS:
        fail(f"param groups {[sorted(g) for g in groups]} are not torch >= 2.7 AdamW's {sorted(ADAMW_GROUP_KEYS)}")
    for key in ("lr", "eps", "weight_decay", "initial_lr"):
        if type(groups[0][key]) is not float:
            fail(f"param group '{key}' is {groups[0][key]!r}, not a float (LeRobot checks the type)")
    if groups[0]["params"] != list(range(len(order))):
        fail(f"param group params are not 0..{len(order) - 1}")
    sched = read_json(part(a_dir, "training_state", "scheduler_state.json"))
    if set(sched) != LAMBDALR_KEYS:
        fail(f"scheduler_state.json keys {sorted(sched)} are not LambdaLR's {sorted(LAMBDALR_KEYS)}")
    rng, _ = load_file(part(a_dir, "training_state", "rng_state.safetensors"))
    torch.set_rng_state(rng["torch_rng_state"])  # what LeRobot's deserialize_rng_state does with it

    shapes = {k: v.shape for k, v in policy.state_dict().items()}
    params = [torch.nn.Parameter(weights_a[n].clone() if n in weights_a else torch.zeros(shapes.get(n, (1,)))) for n in order]
    opt = torch.optim.AdamW(params)
    flat_a, _ = load_file(part(a_dir, "training_state", "optimizer_state.safetensors"))
    flat_b, _ = load_file(part(b_dir, "training_state", "optimizer_state.safetensors"))
    state = {}
    for key, v in flat_a.items():
        _, i, k = key.split(".")
        state.setdefault(int(i), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": groups})
    b1 = groups[0]["betas"][0]
    for i in state:
        m_a, m_b = flat_a[f"state.{i}.exp_avg"], flat_b[f"state.{i}.exp_avg"]
        params[i].grad = (m_b - b1 * m_a) / (1 - b1)
    opt.step()
    worst = {"param": 0.0, "exp_avg_sq": 0.0, "count": len(state)}
    for i in state:
        worst["param"] = max(worst["param"], rel(params[i].detach(), weights_b[order[i]]))
        worst["exp_avg_sq"] = max(worst["exp_avg_sq"], rel(opt.state[params[i]]["exp_avg_sq"], flat_b[f"state.{i}.exp_avg_sq"]))
    write_json(out_path, worst)


def cmd_init_stats(cfg_path, out_path):
    policy = SmolVLAPolicy(SmolVLAConfig.load(cfg_path))
    init_published(policy, 0)
    out = {}
    for n, p in policy.named_parameters():
        if n.startswith("model."):
            t = p.detach().double()
            out[n] = {"mean": t.mean().item(), "std": t.std().item() if t.numel() > 1 else 0.0,
                      "min": t.min().item(), "max": t.max().item(), "numel": t.numel()}
    write_json(out_path, out)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "load":
        cmd_load(*args)
    elif cmd == "save":
        cmd_save(args[0], int(args[1]))
    elif cmd == "init-stats":
        cmd_init_stats(*args)
    elif cmd == "adamw":
        cmd_adamw(*args)
    else:
        fail(f"unknown command {cmd!r}")
