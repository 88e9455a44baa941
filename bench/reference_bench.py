"""PyTorch side of `npm run bench`: the independent reference (test/reference) timed on the same work
and the same thread count as the native run. Prints one JSON object.

usage: /usr/bin/python3 bench/reference_bench.py '{"threads": 2, "size": "full", "batch": 1, "repeats": 3}' (float32)
Optional keys: "device" ("cuda:0": timed with synchronisation, torch.compile tried first) and
"dtype" ("bfloat16": torch.autocast on a GPU; on the CPU the VLM and expert cast to bfloat16).
"""
import contextlib
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "reference"))
from smolvla_ref.config import SmolVLAConfig  # noqa: E402
from smolvla_ref.modeling import SmolVLAPolicy  # noqa: E402


def config_for(size: str) -> SmolVLAConfig:
    features = {
        "input_features": {
            "observation.images.top": {"type": "VISUAL", "shape": [3, 512, 512]},
            "observation.state": {"type": "STATE", "shape": [6]},
        },
        "output_features": {"action": {"type": "ACTION", "shape": [6]}},
    }
    if size == "full":
        return SmolVLAConfig.from_dict({**features, "use_cls_head": True})
    with open(os.path.join(os.path.dirname(__file__), "small_config.json")) as f:
        return SmolVLAConfig.from_dict({**json.load(f), **features})


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    torch.manual_seed(0)
    cfg = config_for(args["size"])
    device = torch.device(args.get("device", "cpu"))
    policy = SmolVLAPolicy(cfg).eval().to(device)
    model = policy.model
    if device.type == "cpu" and args.get("dtype") == "bfloat16":
        # The reference's bfloat16: the VLM and expert held in bfloat16, projections in float32 (as ours).
        model.vlm_with_expert.to(torch.bfloat16)
    b = args["batch"]
    side = cfg.resize_imgs_with_padding[1]
    images = [(torch.rand(b, 3, side, side) * 2 - 1).to(device)]
    img_masks = [torch.ones(b, dtype=torch.bool, device=device)]
    tokens = torch.randint(0, cfg.text.vocab_size, (b, 48)).to(device)
    lang_masks = torch.ones(b, 48, dtype=torch.bool, device=device)
    state = torch.randn(b, cfg.max_state_dim).to(device)
    noise = torch.randn(b, cfg.chunk_size, cfg.max_action_dim).to(device)
    gpu = device.type == "cuda"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if gpu and args.get("dtype") == "bfloat16"
        else contextlib.nullcontext()
    )
    prefix_pass, integrate, compiled = model.prefix_pass, model.integrate, None

    def run():
        sync()
        t0 = time.perf_counter()
        _, cache, pads = prefix_pass(images, img_masks, tokens, lang_masks, state)
        sync()
        t1 = time.perf_counter()
        integrate(pads, cache, noise)
        sync()
        return t1 - t0, time.perf_counter() - t1

    prefix_s, decode_s = [], []
    with torch.inference_mode(), autocast:
        if gpu:  # torch.compile where it works, else eager (and say which)
            try:
                prefix_pass, integrate = torch.compile(model.prefix_pass), torch.compile(model.integrate)
                run()
                compiled = "torch.compile"
            except Exception as err:  # noqa: BLE001 - any compile failure means eager
                prefix_pass, integrate = model.prefix_pass, model.integrate
                compiled = f"eager (torch.compile failed: {type(err).__name__}: {str(err).splitlines()[0][:200]})"
        for _ in range(args["repeats"] + 1):  # the first run warms up
            p, d = run()
            prefix_s.append(p)
            decode_s.append(d)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"prefix_s": prefix_s[1:], "decode_s": decode_s[1:], "peak_rss_mb": peak_mb, "torch": torch.__version__}
    if compiled:
        out["compiled"] = compiled
    print(json.dumps(out))


if __name__ == "__main__":
    main()
