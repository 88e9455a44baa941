"""Policy-level fixtures (test/fixtures/policy/, test/fixtures/tokenizer/). Called by generate_fixtures.py.

* tokenizer/: a tiny byte-level BPE `tokenizer.json` shaped like SmolLM2's (Digits + ByteLevel pre-tokenizer,
  ByteLevel decoder, SmolVLM's special tokens) with fewer than 96 ids, so its ids fit the tiny models' vocab,
  plus `tokenizer_config.json` (pad token `<|im_end|>`, as SmolVLM2's).
* policy/tokenizer_cases.json: ids of a few texts from an independent classic BPE encoder written here.
* policy/preprocess.safetensors: raw robot inputs (uint8 HWC frames of odd sizes, one with a time axis; states
  of the real width) and LeRobot's preprocessing of them for tiny_delta (resize_with_pad, x*2-1, MEAN_STD with
  the checkpoint's statistics, zero padding).
* policy/batch_inputs.safetensors: the whole batch preprocessing of two robots with two cameras (odd frame
  sizes, an RGBA frame, a time axis, a masked camera) and a placeholder camera, under each normalisation
  mode (IDENTITY, MEAN_STD, MIN_MAX for cameras, state and actions): images, masks, state, language,
  training targets, and un-normalised actions from model-space ones.
* policy/sequence.safetensors: three predict_action_chunk calls with compute_cls_similarity on tiny_delta
  (first call, a nearly unchanged scene, a scene where robot 1 changed), the similarities, decisions and
  un-normalised actions.
"""
import json
import os
import re

import torch

from smolvla_ref import ops
from smolvla_ref.normalize import normalize, unnormalize
from smolvla_ref.checkpoint import load_checkpoint
from smolvla_ref.safetensors_io import save_file

POLICY_TOL = (
    "images/state: relative error <= 1e-5 (single operations); actions, obs_cls_out, similarities: <= 1e-4 "
    "(whole policy output); decisions and masks exact"
)

# ---------------------------------------------------------------- tiny tokenizer
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<global-img>", "<image>", "<end_of_utterance>"]
# GPT-2 byte -> unicode map restricted to the bytes this vocabulary has: printable ASCII maps to itself,
# space to U+0120 'Ġ', newline to U+010A 'Ċ'.
BASE = ["\u010a", "\u0120"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)] + [".", ","]
MERGES = [
    ("p", "i"), ("c", "k"), ("pi", "ck"), ("\u0120", "t"), ("h", "e"), ("\u0120t", "he"), ("\u0120", "c"), ("u", "b"),
    ("\u0120c", "ub"), ("\u0120cub", "e"), ("\u0120", "u"), ("\u0120u", "p"), ("\u0120", "b"), ("l", "o"), ("lo", "ck"),
    ("\u0120b", "lock"), ("\u0120", "r"), ("e", "d"), ("\u0120r", "ed"), ("\u0120", "pick"), ("\u0120", "o"),
    ("\u0120o", "n"), ("s", "t"), ("st", "a"), ("sta", "ck"),
]


def tokenizer_json():
    vocab = {t: i for i, t in enumerate(SPECIAL + BASE)}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    assert len(vocab) < 96, len(vocab)
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, t in enumerate(SPECIAL)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            ],
        },
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<|endoftext|>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in MERGES],
        },
    }


TOKENIZER_CONFIG = {
    "add_prefix_space": False,
    "bos_token": "<|im_start|>",
    "eos_token": "<end_of_utterance>",
    "pad_token": "<|im_end|>",
    "unk_token": "<|endoftext|>",
    "model_max_length": 8192,
    "tokenizer_class": "GPT2Tokenizer",
    "additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
}


def reference_encode(text, vocab):
    """Classic byte-level BPE, ASCII only: Digits(individual) split, GPT-2 regex, byte map, lowest-rank merges;
    characters outside the vocabulary become the unk token (BPE model with unk_token, fuse_unk false)."""
    ranks = {m: i for i, m in enumerate(MERGES)}
    gpt2 = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")
    ids = []
    for piece in re.split(r"([0-9])", text):
        for word in gpt2.findall(piece):
            syms = ["\u0120" if ch == " " else "\u010a" if ch == "\n" else ch for ch in word]
            while len(syms) > 1:
                pairs = [(ranks.get((syms[i], syms[i + 1]), 1 << 30), i) for i in range(len(syms) - 1)]
                rank, i = min(pairs)
                if rank == 1 << 30:
                    break
                syms = syms[:i] + [syms[i] + syms[i + 1]] + syms[i + 2 :]
            ids.extend(vocab.get(s, vocab["<|endoftext|>"]) for s in syms)
    return ids


TOKENIZER_TEXTS = [
    "pick up the cube\n",
    "stack the red block on the blue block\n",
    "pick 12 red blocks\n",
    "Pick up the cube\n",
    "pickup\n",
    "stack the red block on the blue block, then pick up the cube\n",
]


def gen_tokenizer(fixtures):
    tok = tokenizer_json()
    d = os.path.join(fixtures, "tokenizer")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tok, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(TOKENIZER_CONFIG, f, indent=2)
        f.write("\n")
    vocab = tok["model"]["vocab"]
    cases = [{"text": t, "ids": reference_encode(t, vocab)} for t in TOKENIZER_TEXTS]
    with open(os.path.join(fixtures, "policy", "tokenizer_cases.json"), "w") as f:
        json.dump({"description": "ids from a classic byte-level BPE encoder (fixtures_policy.reference_encode), "
                   "add_special_tokens adds nothing (ByteLevel post-processor)", "cases": cases}, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------- preprocessing and the similarity sequence
def frame_to_input(frame_u8):
    """uint8 (..., H, W, 3 or 4) -> float (1, 3, H, W) in [0, 1] of the last time step (LeRobot: last frame;
    an alpha channel is dropped)."""
    f = frame_u8.reshape(-1, *frame_u8.shape[-3:])[-1][..., :3]
    return (f.to(torch.float32) / 255.0).permute(2, 0, 1)[None]


def preprocess(cfg, stats, frames, states):
    """LeRobot prepare_images / prepare_state for one camera: resize_with_pad (pad 0), x*2-1; state (last step)
    normalised (x - mean) / (std + 1e-8) and zero-padded to max_state_dim."""
    w, h = cfg.resize_imgs_with_padding
    imgs = torch.cat([ops.resize_with_pad(frame_to_input(f), w, h, 0) for f in frames]) * 2.0 - 1.0
    mean, std = stats["normalize_inputs.buffer_observation_state.mean"], stats["normalize_inputs.buffer_observation_state.std"]
    state = torch.stack([s.reshape(-1, s.shape[-1])[-1] for s in states])
    state = ops.pad_vector((state - mean) / (std + 1e-8), cfg.max_state_dim)
    return imgs, state


def random_frame(g, h, w):
    return torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.int64).to(torch.uint8)


def perturb(g, frame, amount):
    noise = torch.randint(-amount, amount + 1, frame.shape, generator=g, dtype=torch.int64)
    return (frame.to(torch.int64) + noise).clamp(0, 255).to(torch.uint8)


def gen_preprocess(fixtures, cfg, stats):
    g = torch.Generator().manual_seed(500)
    frames = [random_frame(g, 24, 37), random_frame(g, 45, 19), torch.stack([random_frame(g, 20, 20), random_frame(g, 20, 20)])]
    states = [torch.randn(5, generator=g) * 2, torch.randn(5, generator=g) * 2, torch.randn(2, 5, generator=g) * 2]
    imgs, state = preprocess(cfg, stats, frames, states)
    t = {f"in.r{i}.frame": f.to(torch.int32) for i, f in enumerate(frames)}
    t.update({f"in.r{i}.state": s for i, s in enumerate(states)})
    t.update({"out.images": imgs, "out.state": state})
    save_file(t, os.path.join(fixtures, "policy", "preprocess.safetensors"), {
        "kind": "parity", "tolerance": POLICY_TOL, "config": "tiny_delta",
        "description": "Three robots, camera observation.images.cam0: uint8 HWC frames 24x37, 45x19 and 2x20x20 "
        "(time axis: the last frame is used) as I32; states of width 5 (robot 2 with a time axis of 2). out.images "
        "(3,3,32,32): /255, resize_with_pad to 32x32 (pad 0, left/top), x*2-1; out.state (3,6): MEAN_STD with "
        "tiny_delta's normalize_inputs statistics ((x - mean) / (std + 1e-8)), zero-padded.",
    })


BATCH_MODES = ("IDENTITY", "MEAN_STD", "MIN_MAX")


def feature_stats(g, shape, centre, spread):
    """Dataset-like statistics: mean around `centre`, std in [0.5, 2] * spread, min < max around the mean."""
    mean = centre + torch.randn(shape, generator=g) * spread
    std = (torch.rand(shape, generator=g) * 1.5 + 0.5) * spread
    lo = mean - (torch.rand(shape, generator=g) + 0.5) * spread
    hi = mean + (torch.rand(shape, generator=g) + 0.5) * spread
    return {"mean": mean, "std": std, "min": lo, "max": hi}


def gen_batch_inputs(fixtures, cfg):
    """policy/batch_inputs.safetensors: LeRobot's preprocessing of a two-robot batch under every normalisation mode."""
    g = torch.Generator().manual_seed(700)
    size = cfg.resize_imgs_with_padding[0]  # [32, 32]
    cams = ["observation.images.cam0", "observation.images.cam1"]
    frames = [
        # robot 0: a wide frame (padded at the top) and a tall RGBA one (padded at the left, alpha dropped)
        [random_frame(g, 23, 37), torch.randint(0, 256, (45, 19, 4), generator=g, dtype=torch.int64).to(torch.uint8)],
        # robot 1: another odd size, and a time axis of 2 (the last frame is used)
        [random_frame(g, 29, 51), torch.stack([random_frame(g, 17, 31), random_frame(g, 17, 31)])],
    ]
    masks = torch.tensor([[True, True], [True, False], [False, False]])  # cam0, cam1 (robot 1's masked), placeholder
    states = [torch.randn(5, generator=g) * 2, torch.randn(3, 5, generator=g) * 2]
    actions = torch.randn(2, cfg.chunk_size, 4, generator=g) * 2
    is_pad = torch.zeros(2, cfg.chunk_size, dtype=torch.bool)
    is_pad[1, -3:] = True
    actions_model = torch.randn(2, cfg.chunk_size, cfg.max_action_dim, generator=g)
    stats = {cam: {k: v.reshape(3, 1, 1) for k, v in feature_stats(g, 3, 0.45, 0.2).items()} for cam in cams}
    stats["observation.state"] = feature_stats(g, 5, 0.0, 1.5)
    stats["action"] = feature_stats(g, 4, 0.0, 1.5)

    t = {"in.actions": actions, "in.action_is_pad": is_pad,
         "in.actions_model": actions_model, "out.img_masks": masks}
    for r, fs in enumerate(frames):
        for c, f in enumerate(fs):
            t[f"in.r{r}.cam{c}.frame"] = f
        t[f"in.r{r}.state"] = states[r]
    for key, st in stats.items():
        for name, v in st.items():
            t[f"stats.{key}.{name}"] = v
    # ready language tokens: robot 0 three, robot 1 five with the last masked; right-padded with 0
    t["out.lang_tokens"] = torch.tensor([[9, 10, 11, 0, 0], [5, 6, 7, 8, 9]])
    t["out.lang_masks"] = torch.tensor([[True, True, True, False, False], [True, True, True, True, False]])
    for mode in BATCH_MODES:
        m = mode.lower()
        for c, cam in enumerate(cams):
            imgs = [ops.resize_with_pad(normalize(frame_to_input(fs[c]), mode, stats[cam]), size, size, 0) for fs in frames]
            t[f"out.{m}.image{c}"] = torch.cat(imgs) * 2.0 - 1.0
        last = torch.stack([s.reshape(-1, 5)[-1] for s in states])
        t[f"out.{m}.state"] = ops.pad_vector(normalize(last, mode, stats["observation.state"]), cfg.max_state_dim)
        t[f"out.{m}.action_targets"] = ops.pad_vector(normalize(actions, mode, stats["action"]), cfg.max_action_dim)
        t[f"out.{m}.actions"] = unnormalize(actions_model[:, :, :4], mode, stats["action"])
    save_file(t, os.path.join(fixtures, "policy", "batch_inputs.safetensors"), {
        "kind": "parity", "tolerance": POLICY_TOL, "config": "tiny_delta",
        "description": "Batch preprocessing of two robots (tiny_delta's dims; cameras observation.images.cam0 and cam1, "
        "empty_cameras 1, resize_imgs_with_padding [32, 32]). Frames uint8 HWC: r0.cam0 23x37, r0.cam1 45x19 RGBA, "
        "r1.cam0 29x51, r1.cam1 2x17x31 (time axis); robot 1's cam1 has padding mask false. States of width 5 "
        "(robot 1 [3, 5]: the last row is used). Statistics stats.<feature>.<mean|std|min|max> (cameras (3,1,1)). "
        "For each mode m in identity, mean_std, min_max (the normalization_mapping of VISUAL, STATE and ACTION "
        "alike): out.m.image{0,1} (2,3,32,32) = /255, normalise, resize_with_pad (pad 0, left/top), x*2-1 (the "
        "placeholder camera is all -1); out.m.state (2,6) normalised, zero-padded; out.m.action_targets (2,8,6) "
        "in.actions normalised, zero-padded; out.m.actions (2,8,4) = in.actions_model's first 4 columns "
        "un-normalised. out.img_masks (camera, robot); out.lang_tokens/lang_masks from ready tokens [9,10,11] and "
        "[5,6,7,8,9] with mask [1,1,1,1,0].",
    })


def gen_sequence(fixtures, cfg, policy, stats):
    g = torch.Generator().manual_seed(600)
    scene = [random_frame(g, 24, 37), random_frame(g, 45, 19)]
    calls = [
        scene,
        [perturb(g, scene[0], 3), perturb(g, scene[1], 3)],  # nearly the same scene for both robots
        # robot 1's scene changed: a random tiny model's CLS tokens barely react to one random texture
        # replacing another, so the change is a saturated (bright) frame
        [perturb(g, scene[0], 3), perturb(g, torch.full((45, 19, 3), 250, dtype=torch.uint8), 3)],
    ]
    base_state = torch.randn(2, 5, generator=g)
    lang_tokens = torch.zeros(2, 6, dtype=torch.int64)
    lang_tokens[0] = torch.randint(7, 96, (6,), generator=g)
    lang_tokens[1, :4] = torch.randint(7, 96, (4,), generator=g)
    lang_masks = lang_tokens != 0
    a_mean, a_std = stats["unnormalize_outputs.buffer_action.mean"], stats["unnormalize_outputs.buffer_action.std"]
    t = {"in.lang_tokens": lang_tokens, "in.lang_masks": lang_masks}
    prev = None
    sims = {}
    for k, frames in enumerate(calls):
        states = base_state + 0.01 * k
        noise = torch.randn(2, cfg.chunk_size, cfg.max_action_dim, generator=g)
        imgs, state = preprocess(cfg, stats, frames, list(states))
        with torch.no_grad():
            actions, obs_cls = policy.model.sample_actions([imgs], [torch.ones(2, dtype=torch.bool)], lang_tokens, lang_masks, state, noise=noise)
        for r, f in enumerate(frames):
            t[f"in.call{k}.r{r}.frame"] = f.to(torch.int32)
        t[f"in.call{k}.state"] = states
        t[f"in.call{k}.noise"] = noise
        t[f"out.call{k}.images"] = imgs
        t[f"out.call{k}.actions_model"] = actions
        t[f"out.call{k}.actions"] = actions[:, :, :4] * a_std + a_mean
        t[f"out.call{k}.obs_cls_out"] = obs_cls
        if prev is not None:
            per, mean = ops.cls_similarity(obs_cls, prev)
            sims[k] = (per, mean)
            t[f"out.call{k}.similarity"] = per
            t[f"out.call{k}.similarity_mean"] = mean
        prev = obs_cls
    # a threshold between call 2's mean and its larger per-sample similarity: the robots' decisions differ
    # there, and the mean decision differs from one of them (SPEC §5: the mean hides per-sample changes)
    per2, mean2 = sims[2]
    threshold = float((per2.max() + mean2) / 2)
    values = torch.cat([torch.cat([p, m[None]]) for p, m in sims.values()])
    assert abs(float(per2[0] - per2[1])) > 0.05, per2
    assert (values - threshold).abs().min() > 1e-3, (values, threshold)
    t["in.threshold"] = torch.tensor(threshold, dtype=torch.float64)
    for k, (per, mean) in sims.items():
        t[f"out.call{k}.should_cache"] = torch.tensor(bool(mean > threshold))
        t[f"out.call{k}.per_sample_should_cache"] = per > threshold
    save_file(t, os.path.join(fixtures, "policy", "sequence.safetensors"), {
        "kind": "departure", "tolerance": POLICY_TOL, "config": "tiny_delta",
        "description": "CLS similarity state machine (new in the seeds, SPEC §5): three calls with two robots "
        "(frames 24x37 and 45x19, uint8 as I32; ready language tokens, robot 1 with 4 valid of 6; states of "
        "width 5; noise per call). Call 0 has no previous CLS output (null, should_cache true); call 1 perturbs "
        "both scenes by +-3; call 2 replaces robot 1's scene by a bright frame. similarity = cosine(current CLS token 0, previous "
        "CLS token 1); should_cache = mean > in.threshold (strict), per sample likewise. out.call{k}.actions are "
        "un-normalised (x * std + mean, real width 4); actions_model are the sampled chunk in model space.",
    })


def generate(fixtures):
    os.makedirs(os.path.join(fixtures, "policy"), exist_ok=True)
    gen_tokenizer(fixtures)
    policy, _ = load_checkpoint(os.path.join(fixtures, "tiny_delta"))
    policy.eval()
    stats = {k: v for k, v in policy.state_dict().items() if k.startswith(("normalize_", "unnormalize_"))}
    gen_preprocess(fixtures, policy.config, stats)
    gen_batch_inputs(fixtures, policy.config)
    gen_sequence(fixtures, policy.config, policy, stats)
