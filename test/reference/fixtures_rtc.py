"""Real-Time Chunking fixtures (smolvla_ref/rtc.py), called by generate_fixtures.py after the model fixtures.

* rtc/weights.safetensors: prefix weights of every schedule for delays and horizons around the edges (delay past
  the horizon, horizon past the chunk, zero delay), and guidance weights over t with and without clipping.
* <model>/rtc.safetensors for tiny_equal and tiny_fewer: guided sampling from the model's in.noise and its
  prefix cache, one case per schedule / gradient mode, with every step's x, velocity, correction, guided
  velocity and guidance weight. Step 0 starts from the same x on both sides, so it checks one guided denoising
  step on its own; the later steps and out.actions check the whole guided chunk.
"""
import json
import os

import torch

import fixtures_models
from smolvla_ref import rtc
from smolvla_ref.checkpoint import load_checkpoint
from smolvla_ref.safetensors_io import load_file, save_file

TOL = "relative error ||a-b||2/||b||2 <= 1e-4 (float32) for out.*; weights <= 1e-6; in.* are inputs"

WEIGHT_CASES = [  # (schedule, delay, horizon, chunk)
    ("linear", 2, 6, 8), ("exp", 2, 6, 8), ("ones", 2, 6, 8), ("zeros", 2, 6, 8),
    ("linear", 0, 5, 10), ("exp", 3, 3, 8), ("linear", 5, 3, 8), ("exp", 1, 12, 8), ("linear", 0, 0, 4),
    ("ones", 4, 2, 6), ("zeros", 9, 20, 6), ("exp", 4, 50, 50), ("linear", 10, 25, 50),
]
GUIDANCE_TIMES = [1.0, 0.9, 2 / 3, 0.5, 1 / 3, 0.1, 0.0]
GUIDANCE_MAX = [10.0, 5.0, 1.5]

# (name, model, leftover length, leftover width, delay, horizon, schedule, max weight, gradient)
GUIDED_CASES = [
    ("linear", "tiny_equal", 6, 6, 2, 5, "linear", 10.0, "expert"),
    ("exp_clamped", "tiny_equal", 5, 4, 1, 8, "exp", 1.5, "expert"),
    ("ones_stop", "tiny_equal", 7, 6, 3, 6, "ones", 10.0, "stop"),
    ("zeros", "tiny_equal", 4, 6, 3, 4, "zeros", 5.0, "expert"),
    ("fewer_linear", "tiny_fewer", 6, 4, 2, 6, "linear", 10.0, "expert"),
]


def weight_fixtures():
    out = {}
    for k, (schedule, d, h, c) in enumerate(WEIGHT_CASES):
        out[f"prefix{k}.schedule"] = torch.tensor(rtc.SCHEDULES.index(schedule), dtype=torch.int64)
        out[f"prefix{k}.delay"] = torch.tensor(d, dtype=torch.int64)
        out[f"prefix{k}.horizon"] = torch.tensor(h, dtype=torch.int64)
        out[f"prefix{k}.chunk"] = torch.tensor(c, dtype=torch.int64)
        out[f"prefix{k}.out"] = rtc.prefix_weights(schedule, d, h, c)
    out["guidance.time"] = torch.tensor(GUIDANCE_TIMES, dtype=torch.float32)
    out["guidance.max"] = torch.tensor(GUIDANCE_MAX, dtype=torch.float64)
    out["guidance.out"] = torch.tensor(
        [[rtc.guidance_weight(torch.tensor(t, dtype=torch.float32), m) for t in GUIDANCE_TIMES] for m in GUIDANCE_MAX],
        dtype=torch.float64,
    )
    return out


def guided_fixtures(root, model_name):
    policy, _ = load_checkpoint(os.path.join(root, model_name))
    t, _ = load_file(os.path.join(root, model_name, "io.safetensors"))
    with torch.no_grad():
        _, cache, pads = policy.model.prefix_pass(*fixtures_models.model_args(t))
    noise = t["in.noise"]
    g = torch.Generator().manual_seed(1700)
    out, cases = {}, []
    for name, model, n, width, d, h, schedule, gmax, gradient in GUIDED_CASES:
        if model != model_name:
            continue
        # Random targets of the actions' scale: far from the unguided chunk, so the pull is large and visible.
        leftover = torch.randn(noise.shape[0], n, width, generator=g)
        trace = {}
        actions = rtc.guided_integrate(policy.model, pads, cache, noise, leftover, d, h, schedule, gmax, gradient, trace)
        p = f"{name}."
        out[p + "in.leftover"] = leftover
        for key, v in (("delay", d), ("horizon", h)):
            out[p + "in." + key] = torch.tensor(v, dtype=torch.int64)
        out[p + "in.max_guidance_weight"] = torch.tensor(gmax, dtype=torch.float64)
        out[p + "in.schedule"] = torch.tensor(rtc.SCHEDULES.index(schedule), dtype=torch.int64)
        out[p + "in.stop_gradient"] = torch.tensor(gradient == "stop")
        for k, v in trace.items():
            out[p + "out." + k] = v.detach()
        out[p + "out.actions"] = actions.detach()
        cases.append({"name": name, "schedule": schedule, "gradient": gradient})
    return out, cases


def generate(root):
    torch.manual_seed(1700)
    os.makedirs(os.path.join(root, "rtc"), exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in weight_fixtures().items()},
        os.path.join(root, "rtc", "weights.safetensors"),
        {"kind": "parity", "tolerance": "1e-6 absolute", "schedules": json.dumps(list(rtc.SCHEDULES)),
         "description": "prefix{k}: LeRobot's get_prefix_weights(delay, horizon, chunk) for schedule index "
         "prefix{k}.schedule into `schedules`; guidance.out[i][j]: min(c/r^2, guidance.max[i]) at guidance.time[j]"},
    )
    for model_name in ("tiny_equal", "tiny_fewer"):
        tensors, cases = guided_fixtures(root, model_name)
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            os.path.join(root, model_name, "rtc.safetensors"),
            {"kind": "parity", "tolerance": TOL, "config": model_name, "cases": json.dumps(cases),
             "schedules": json.dumps(list(rtc.SCHEDULES)),
             "description": "guided sampling (RTC) from in.noise of io.safetensors against its prefix cache; "
             "<case>.out.{x,v,correction,guided}.<step>, gw.<step>, weights and actions"},
        )
