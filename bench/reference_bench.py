"""PyTorch side of `npm run bench`: the independent reference (test/reference) timed on the same work
and the same thread count as the native run. Prints one JSON object.

usage: /usr/bin/python3 bench/reference_bench.py '{"threads": 2, "size": "full", "batch": 1, "repeats": 3}' (float32)
"""
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
    policy = SmolVLAPolicy(cfg).eval()
    model = policy.model
    b = args["batch"]
    side = cfg.resize_imgs_with_padding[1]
    images = [torch.rand(b, 3, side, side) * 2 - 1]
    img_masks = [torch.ones(b, dtype=torch.bool)]
    tokens = torch.randint(0, cfg.text.vocab_size, (b, 48))
    lang_masks = torch.ones(b, 48, dtype=torch.bool)
    state = torch.randn(b, cfg.max_state_dim)
    noise = torch.randn(b, cfg.chunk_size, cfg.max_action_dim)
    prefix_s, decode_s = [], []
    with torch.inference_mode():
        for _ in range(args["repeats"] + 1):  # the first run warms up
            t0 = time.perf_counter()
            _, cache, pads = model.prefix_pass(images, img_masks, tokens, lang_masks, state)
            t1 = time.perf_counter()
            model.integrate(pads, cache, noise)
            t2 = time.perf_counter()
            prefix_s.append(t1 - t0)
            decode_s.append(t2 - t1)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"prefix_s": prefix_s[1:], "decode_s": decode_s[1:], "peak_rss_mb": peak_mb, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
