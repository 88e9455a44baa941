"""LeRobot checkpoint directory: config.json ("type": "smolvla") + model.safetensors (SPEC §2)."""
import json
import os

from .config import SmolVLAConfig
from .modeling import SmolVLAPolicy
from .safetensors_io import load_file, save_file

# prefixes of the tensors a published SmolVLA checkpoint does not have (SPEC §2)
DELTA_AND_CLS_PREFIXES = (
    "model.vlm_with_expert.delta_expert.",
    "model.delta_action_",
    "model.action_context_encoder.",
    "model.pre_cls_param",
    "model.suf_cls_param",
    "model.obs_cls_proj.",
    "model.act_cls_proj.",
)


def state_dict_f32(policy: SmolVLAPolicy) -> dict:
    return {k: v.detach().clone().contiguous() for k, v in policy.state_dict().items()}


def save_checkpoint(
    policy: SmolVLAPolicy, path: str, drop_prefixes=(), extra_tensors=None, drop_config_keys=(), extra_config=None
):
    """Write `path`/config.json and `path`/model.safetensors. drop_prefixes / drop_config_keys: tensors and
    config entries left out; extra_tensors / extra_config: entries the model does not use (to mimic a
    published checkpoint: no delta/CLS parts, a vlm lm_head, LeRobot's generic policy keys)."""
    os.makedirs(path, exist_ok=True)
    cfg = {k: v for k, v in policy.config.to_dict().items() if k not in drop_config_keys}
    cfg.update(extra_config or {})
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    sd = {k: v for k, v in state_dict_f32(policy).items() if not k.startswith(tuple(drop_prefixes))}
    sd.update(extra_tensors or {})
    save_file(sd, os.path.join(path, "model.safetensors"), {"format": "pt"})


def load_checkpoint(path: str, fresh_init=None):
    """Read a checkpoint directory -> (policy, report). Missing delta/CLS tensors are initialised by
    `fresh_init(policy)` (required then); any other missing key is an error; unused keys are reported."""
    config = SmolVLAConfig.load(os.path.join(path, "config.json"))
    policy = SmolVLAPolicy(config)
    tensors, _ = load_file(os.path.join(path, "model.safetensors"))
    expected = policy.state_dict()
    unused = sorted(k for k in tensors if k not in expected)
    missing = sorted(k for k in expected if k not in tensors)
    not_fresh = [k for k in missing if not k.startswith(DELTA_AND_CLS_PREFIXES)]
    if not_fresh:
        raise KeyError(f"checkpoint {path} lacks required tensors: {not_fresh}")
    if missing:
        if fresh_init is None:
            raise KeyError(f"checkpoint {path} lacks delta/CLS tensors and no fresh_init was given: {missing}")
        fresh_init(policy)
    for k in expected:
        if k in tensors and tensors[k].shape != expected[k].shape:
            raise ValueError(f"{k}: shape {tuple(tensors[k].shape)} != {tuple(expected[k].shape)}")
    policy.load_state_dict({k: v for k, v in tensors.items() if k in expected}, strict=False)
    return policy, {"missing_initialised": missing, "unused": unused}
