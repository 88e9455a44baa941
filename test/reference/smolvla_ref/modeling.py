"""VLAFlowMatching (LeRobot modeling_smolvla.py + the delta-expert/CLS extension of SPEC §3, §5) and the
policy-level wrapper whose state dict is the checkpoint layout (`model.*`, normalisation buffers)."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import ops
from .config import SmolVLAConfig
from .vlm_with_expert import SmolVLMWithExpertModel


class MLP(nn.Module):
    """CLS projection head: fc2(relu(fc1(x))) (SPEC §2)."""

    def __init__(self, in_dim, hidden_dim, out_dim):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def pad_tensor(t, max_len, pad_value=0):
    """Right-pad axis 1 to max_len (LeRobot pad_tensor)."""
    out = torch.full((t.shape[0], max_len, *t.shape[2:]), pad_value, dtype=t.dtype)
    out[:, : t.shape[1]] = t
    return out


class VLAFlowMatching(nn.Module):
    def __init__(self, config: SmolVLAConfig, image_special_token_ids=None):
        """image_special_token_ids: (start ids, end ids) from the tokenizer, needed only with
        add_image_special_tokens (LeRobot: [fake_image_token, global_image_token] and [fake_image_token])."""
        super().__init__()
        self.config = config
        c = config
        dv, de = c.vlm_hidden, c.expert_hidden
        self.vlm_with_expert = SmolVLMWithExpertModel(c)
        self.state_proj = nn.Linear(c.max_state_dim, dv)
        self.action_in_proj = nn.Linear(c.max_action_dim, de)
        self.action_out_proj = nn.Linear(de, c.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * de, de)
        self.action_time_mlp_out = nn.Linear(de, de)
        self.delta_action_in_proj = nn.Linear(c.max_action_dim, de)
        self.delta_action_out_proj = nn.Linear(de, c.max_action_dim)
        self.delta_action_time_mlp_in = nn.Linear(2 * de, de)
        self.delta_action_time_mlp_out = nn.Linear(de, de)
        self.action_context_encoder = nn.Sequential(nn.Linear(c.max_action_dim, de), nn.ReLU(), nn.Linear(de, c.max_action_dim))
        if c.use_cls_head:
            self.pre_cls_param = nn.Parameter(torch.randn(1, c.num_cls_prefix, dv) * 0.02)
            self.suf_cls_param = nn.Parameter(torch.randn(1, c.num_cls_suffix, de) * 0.02)
            self.obs_cls_proj = MLP(dv, dv, de)
            self.act_cls_proj = MLP(de, dv, de)
        else:
            # SPEC §1: zero placeholders of shape (1, 2, .) keep the state-dict keys; never used.
            self.register_buffer("pre_cls_param", torch.zeros(1, 2, dv))
            self.register_buffer("suf_cls_param", torch.zeros(1, 2, de))
        if c.add_image_special_tokens and image_special_token_ids is None:
            raise ValueError("add_image_special_tokens needs the tokenizer's image special token ids")
        self.image_special_token_ids = image_special_token_ids

    # ---------------------------------------------------------------- token sequences (SPEC §3)
    def embed_prefix(self, images, img_masks, lang_tokens, lang_masks, state, trace=None):
        """[CLS] [per camera: image tokens] [language] [state]; returns (embs, pad_masks, att_masks).
        trace (dict): receives vision.{cam} / connector.{cam} outputs."""
        vwe = self.vlm_with_expert
        bsize = state.shape[0]
        embs, pads, marks = [], [], []

        def special(ids):
            e = vwe.embed_language_tokens(torch.tensor(ids, dtype=torch.long))[None].expand(bsize, -1, -1)
            embs.append(e)
            pads.append(torch.ones(bsize, len(ids), dtype=torch.bool))
            marks.extend([0] * len(ids))

        for cam, (img, img_mask) in enumerate(zip(images, img_masks)):
            if self.config.add_image_special_tokens:
                special(self.image_special_token_ids[0])
            vis, img_emb = vwe.embed_image(img.to(self.backbone_dtype))
            if trace is not None:
                trace[f"vision.{cam}"], trace[f"connector.{cam}"] = vis, img_emb
            # SPEC §7: image scale is sqrt(Dv) as a tensor of the activation dtype
            img_emb = img_emb * torch.tensor(img_emb.shape[-1] ** 0.5, dtype=img_emb.dtype)
            n = img_emb.shape[1]
            embs.append(img_emb)
            pads.append(img_mask[:, None].expand(bsize, n))
            marks.extend([0] * n)
            if self.config.add_image_special_tokens:
                special(self.image_special_token_ids[1])
        lang_emb = vwe.embed_language_tokens(lang_tokens)
        lang_emb = lang_emb * math.sqrt(lang_emb.shape[-1])  # SPEC §7: float64 sqrt applied to the activation
        embs.append(lang_emb)
        pads.append(lang_masks)
        marks.extend([0] * lang_emb.shape[1])
        embs.append(self.state_proj(state)[:, None, :].to(self.backbone_dtype))
        pads.append(torch.ones(bsize, 1, dtype=torch.bool))
        marks.append(1)
        embs, pads = torch.cat(embs, 1), torch.cat(pads, 1)
        if self.config.use_cls_head:
            ncp = self.config.num_cls_prefix
            embs = torch.cat([self.pre_cls_param.to(embs.dtype).expand(bsize, -1, -1), embs], 1)
            pads = torch.cat([torch.ones(bsize, ncp, dtype=torch.bool), pads], 1)
            marks = [0] * ncp + marks
        att = torch.tensor(marks, dtype=torch.bool)[None]
        if pads.shape[1] < self.config.prefix_length:  # right-pad, never truncate
            embs = pad_tensor(embs, self.config.prefix_length, 0)
            pads = pad_tensor(pads, self.config.prefix_length, 0)
            att = pad_tensor(att, self.config.prefix_length, 0)
        return embs, pads, att.expand(bsize, -1)

    @property
    def backbone_dtype(self):
        """The VLM and expert's dtype: bfloat16 runs cast the projections' float32 outputs (and images, CLS
        tokens) into it at the backbone's input, as LeRobot's mixed precision does; float32 runs are unchanged."""
        return self.vlm_with_expert.vlm.model.text_model.embed_tokens.weight.dtype

    def _embed_actions(self, x, timestep, in_proj, mlp_in, mlp_out):
        action_emb = in_proj(x)
        time_emb = ops.create_sinusoidal_pos_embedding(
            timestep, self.config.expert_hidden, self.config.min_period, self.config.max_period
        ).to(action_emb.dtype)
        time_emb = time_emb[:, None, :].expand_as(action_emb)
        return mlp_out(F.silu(mlp_in(torch.cat([action_emb, time_emb], 2)))).to(self.backbone_dtype)

    def embed_suffix(self, x, timestep):
        """C action tokens, all valid, block mark 1 each."""
        embs = self._embed_actions(x, timestep, self.action_in_proj, self.action_time_mlp_in, self.action_time_mlp_out)
        b, n = embs.shape[:2]
        return embs, torch.ones(b, n, dtype=torch.bool), torch.ones(b, n, dtype=torch.bool)

    def embed_suffix_delta(self, x, timestep):
        """Delta action tokens followed by Ncs suffix CLS tokens (when enabled), block mark 1 each."""
        embs = self._embed_actions(
            x, timestep, self.delta_action_in_proj, self.delta_action_time_mlp_in, self.delta_action_time_mlp_out
        )
        if self.config.use_cls_head:
            embs = torch.cat([embs, self.suf_cls_param.to(embs.dtype).expand(embs.shape[0], -1, -1)], 1)
        b, n = embs.shape[:2]
        return embs, torch.ones(b, n, dtype=torch.bool), torch.ones(b, n, dtype=torch.bool)

    # ---------------------------------------------------------------- passes
    def prefix_pass(self, images, img_masks, lang_tokens, lang_masks, state, trace=None):
        """Cache-filling prefix pass -> (prefix_out, cache, pad_masks); trace gets embeddings and masks."""
        embs, pads, att = self.embed_prefix(images, img_masks, lang_tokens, lang_masks, state, trace)
        mask2d = ops.make_att_2d_masks(pads, att)
        pos = torch.cumsum(pads.to(torch.int64), 1) - 1
        (prefix_out, _), cache = self.vlm_with_expert.forward(mask2d, pos, [embs, None], fill_kv_cache=True)
        if trace is not None:
            trace.update(prefix_embs=embs, prefix_pad_masks=pads, prefix_att_masks=att, prefix_out=prefix_out)
        return prefix_out, cache, pads

    def _decode(self, suffix, prefix_pad_masks, cache, delta=False):
        """Decode suffix (embs, pad, marks) against a cache: mask [prefix pad ; suffix 2-D], positions
        offset by the valid prefix count (SPEC §3)."""
        embs, pads, att = suffix
        b, ls = pads.shape
        lp = prefix_pad_masks.shape[1]
        mask = torch.cat([prefix_pad_masks[:, None, :].expand(b, ls, lp), ops.make_att_2d_masks(pads, att)], 2)
        pos = prefix_pad_masks.sum(-1)[:, None] + torch.cumsum(pads.to(torch.int64), 1) - 1
        fwd = self.vlm_with_expert.forward_delta if delta else self.vlm_with_expert.forward
        (_, out), _ = fwd(mask, pos, [None, embs], past_key_values=cache)
        return out

    def denoise_step(self, prefix_pad_masks, cache, x, timestep):
        out = self._decode(self.embed_suffix(x, timestep), prefix_pad_masks, cache)
        return self.action_out_proj(out[:, -self.config.chunk_size :].to(torch.float32))

    def denoise_step_delta(self, prefix_pad_masks, cache, x, timestep):
        """One delta-expert step -> (v from the C action positions, full suffix output incl. CLS tokens).
        The action positions are the first C suffix tokens, before the suffix CLS tokens: as the published
        training path slices them; its cal_cache path takes the last C instead (departure, SPEC §5)."""
        out = self._decode(self.embed_suffix_delta(x, timestep), prefix_pad_masks, cache, delta=True)
        action_out = out[:, : self.config.chunk_size]
        return self.delta_action_out_proj(action_out.to(torch.float32)), out

    def integrate(self, prefix_pad_masks, cache, x0, trace=None):
        """Euler from t=1, dt=-1/num_steps while t >= -dt/2 (float32 scalars); x0 is not modified."""
        bsize = x0.shape[0]
        dt = torch.tensor(-1.0 / self.config.num_steps, dtype=torch.float32)
        t = torch.tensor(1.0, dtype=torch.float32)
        x = x0.clone()
        step = 0
        while t >= -dt / 2:
            v = self.denoise_step(prefix_pad_masks, cache, x, t.expand(bsize))
            if trace is not None:
                trace[f"x.{step}"], trace[f"velocity.{step}"], trace[f"time.{step}"] = x, v, t.clone()
            x = x + dt * v
            t = t + dt
            step += 1
        return x

    def sample_actions(
        self, images, img_masks, lang_tokens, lang_masks, state, noise=None, past_key_values=None, prefix_pad_masks=None, trace=None
    ):
        """Flow-matching sampling (SPEC §5) -> (actions (B,C,A), obs_cls_out or None).
        With a given cache + prefix pad mask the prefix pass is skipped (no obs_cls_out then)."""
        bsize = state.shape[0] if state is not None else prefix_pad_masks.shape[0]
        if noise is None:
            noise = torch.randn(bsize, self.config.chunk_size, self.config.max_action_dim)
        obs_cls_out = None
        if past_key_values is None:
            prefix_out, past_key_values, prefix_pad_masks = self.prefix_pass(
                images, img_masks, lang_tokens, lang_masks, state, trace
            )
            obs_cls_out = self.obs_cls(prefix_out)
            if trace is not None:
                trace["cache"] = past_key_values
        elif prefix_pad_masks is None:
            raise ValueError("a cache needs its prefix pad mask")
        return self.integrate(prefix_pad_masks, past_key_values, noise, trace), obs_cls_out

    def forward(self, images, img_masks, lang_tokens, lang_masks, state, actions, noise=None, time=None):
        """Main training objective: one joint pass without cache -> losses (u - v)^2, (B, C, A)."""
        if noise is None:
            noise = torch.randn_like(actions)
        if time is None:
            time = torch.distributions.Beta(1.5, 1.0).sample((actions.shape[0],)) * 0.999 + 0.001
        te = time[:, None, None]
        x_t = te * noise + (1 - te) * actions
        u_t = noise - actions
        p_embs, p_pads, p_att = self.embed_prefix(images, img_masks, lang_tokens, lang_masks, state)
        s_embs, s_pads, s_att = self.embed_suffix(x_t, time)
        pads = torch.cat([p_pads, s_pads], 1)
        mask2d = ops.make_att_2d_masks(pads, torch.cat([p_att, s_att], 1))
        pos = torch.cumsum(pads.to(torch.int64), 1) - 1
        (_, suffix_out), _ = self.vlm_with_expert.forward(mask2d, pos, [p_embs, s_embs])
        v_t = self.action_out_proj(suffix_out[:, -self.config.chunk_size :].to(torch.float32))
        return F.mse_loss(u_t, v_t, reduction="none")

    def real_action_noise(self, shape):
        """N(0, cls_noise_scale^2) on the real action columns, 0 on the padding columns (SPEC §5)."""
        ad = self.config.action_dim if self.config.output_features else self.config.max_action_dim
        noise = torch.zeros(shape)
        noise[..., :ad] = torch.randn(*shape[:-1], ad) * self.config.cls_noise_scale
        return noise

    def forward_delta_expert(self, images, img_masks, lang_tokens, lang_masks, state, main_x0=None, cls_noise=None):
        """Delta-expert objective (SPEC §5) -> dict of intermediates; "losses" is (B, C, A) incl. VICReg.
        main_x0: start of the no-grad main integration (zeros when None); cls_noise: the already-scaled noise
        added to x_t (sampled on the real action columns when None)."""
        c = self.config
        prefix_out, cache, prefix_pads = self.prefix_pass(images, img_masks, lang_tokens, lang_masks, state)
        bsize = prefix_out.shape[0]
        if main_x0 is None:
            main_x0 = torch.zeros(bsize, c.chunk_size, c.max_action_dim)
        with torch.no_grad():
            detached = {i: (k.detach(), v.detach()) for i, (k, v) in cache.items()}
            x_t = self.integrate(prefix_pads, detached, main_x0)
        if cls_noise is None:
            cls_noise = self.real_action_noise(x_t.shape)
        x_noisy = x_t + cls_noise
        t = torch.full((bsize,), 0.5, dtype=torch.float32)
        # the cache is not detached here: gradient reaches pre_cls_param through it (SPEC §5)
        v, suffix_out = self.denoise_step_delta(prefix_pads, cache, x_noisy, t)
        denoise = F.mse_loss(x_t - x_noisy, v, reduction="none")
        r = {"x_t": x_t, "x_noisy": x_noisy, "v": v, "prefix_out": prefix_out, "denoise_losses": denoise}
        losses = denoise
        if c.use_cls_head:
            obs_cls_out = prefix_out[:, : c.num_cls_prefix]
            act_cls_out = suffix_out[:, -c.num_cls_suffix :]
            obs_proj, act_proj = self.obs_cls_proj(obs_cls_out), self.act_cls_proj(act_cls_out)
            vic, inv, var, cov = ops.vicreg_terms(obs_proj, act_proj, c.vicreg_lambda, c.vicreg_mu, c.vicreg_nu)
            cosine = (ops.l2_normalize(obs_proj) * ops.l2_normalize(act_proj)).sum(-1)
            losses = denoise + c.vicreg_weight * vic.mean(-1)[:, None, None]
            r.update(
                obs_cls_out=obs_cls_out, act_cls_out=act_cls_out, obs_proj=obs_proj, act_proj=act_proj,
                vicreg=vic, vicreg_invariance=inv, vicreg_variance=var, vicreg_covariance=cov, cls_cosine=cosine,
            )
        r["losses"] = losses
        return r

    # ---------------------------------------------------------------- cache request (SPEC §5)
    def encode_action_context(self, action_context):
        """(B, n, A) -> (B, C, A): encoder per action, then tile (n < C), linear interpolation with
        align_corners=False (n > C) or as is (n == C)."""
        c = self.config.chunk_size
        enc = self.action_context_encoder(action_context)
        n = enc.shape[1]
        if n < c:
            return enc.repeat(1, (c + n - 1) // n, 1)[:, :c]
        if n > c:
            return F.interpolate(enc.transpose(1, 2), size=c, mode="linear", align_corners=False).transpose(1, 2)
        return enc

    def cal_cache(self, images, img_masks, lang_tokens, lang_masks, state, action_context=None):
        """Prefix pass -> (cache, prefix pad mask, delta actions (B, C, A), obs_cls_out or None).
        Delta actions: raw v of one delta step at t = 0.5 from the encoded context (zeros without one)."""
        prefix_out, cache, pads = self.prefix_pass(images, img_masks, lang_tokens, lang_masks, state)
        return cache, pads, self.generate_delta_actions(pads, cache, action_context), self.obs_cls(prefix_out)

    def generate_delta_actions(self, prefix_pad_masks, cache, action_context=None):
        bsize = prefix_pad_masks.shape[0]
        if action_context is not None:
            x = self.encode_action_context(action_context)
        else:
            x = torch.zeros(bsize, self.config.chunk_size, self.config.max_action_dim)
        t = torch.full((bsize,), 0.5, dtype=torch.float32)
        return self.denoise_step_delta(prefix_pad_masks, cache, x, t)[0]

    def obs_cls(self, prefix_out):
        return prefix_out[:, : self.config.num_cls_prefix] if self.config.use_cls_head else None


def loss_dict(losses, actions_is_pad=None, max_action_dim=None, prefix=""):
    """LeRobot's masking/cropping (SPEC §5): keys {prefix}losses_after_forward, ..._in_ep_bound (only with
    actions_is_pad), ..._rm_padding (crop to max_action_dim: changes nothing) and {prefix}loss (mean over
    every element). The published policy reads the typo'd batch key `actions_id_pad`."""
    d = {f"{prefix}losses_after_forward": losses}
    if actions_is_pad is not None:
        losses = losses * (~actions_is_pad)[..., None]
        d[f"{prefix}losses_after_in_ep_bound"] = losses
    if max_action_dim is not None:
        losses = losses[:, :, :max_action_dim]
    d[f"{prefix}losses_after_rm_padding"] = losses
    d[f"{prefix}loss"] = losses.mean()
    return d


class StatsBuffers(nn.Module):
    """LeRobot Normalize/Unnormalize (older layout): `buffer_<feature key with . -> _>.{mean,std}`."""

    def __init__(self, features: dict, norm_map: dict):
        super().__init__()
        for key, ft in features.items():
            if norm_map.get(ft["type"], "IDENTITY") != "MEAN_STD":
                continue
            shape = tuple(ft["shape"]) if ft["type"] != "VISUAL" else (ft["shape"][0], 1, 1)
            buf = nn.ParameterDict(
                {
                    "mean": nn.Parameter(torch.full(shape, math.inf), requires_grad=False),
                    "std": nn.Parameter(torch.full(shape, math.inf), requires_grad=False),
                }
            )
            setattr(self, "buffer_" + key.replace(".", "_"), buf)


class SmolVLAPolicy(nn.Module):
    """State-dict layout of LeRobot's SmolVLAPolicy: `model.*` + normalisation buffers."""

    def __init__(self, config: SmolVLAConfig, image_special_token_ids=None):
        super().__init__()
        self.config = config
        nm = config.normalization_mapping
        self.normalize_inputs = StatsBuffers(config.input_features, nm)
        self.normalize_targets = StatsBuffers(config.output_features, nm)
        self.unnormalize_outputs = StatsBuffers(config.output_features, nm)
        self.model = VLAFlowMatching(config, image_special_token_ids)


def trainable_parameter_names(config: SmolVLAConfig, policy: SmolVLAPolicy) -> list:
    """Names (full state-dict names) of the parameters a training run updates (SPEC §5; LeRobot freezing)."""
    names = [n for n, _ in policy.named_parameters() if n.startswith("model.")]  # not the normalisation stats
    if config.train_delta_expert:
        keep = ["model.vlm_with_expert.delta_expert.", "model.delta_action_", "model.action_context_encoder."]
        if config.use_cls_head:
            # departure (SPEC §5): the published code forgot these; the seeds list them as trainable
            keep += ["model.pre_cls_param", "model.suf_cls_param", "model.obs_cls_proj.", "model.act_cls_proj."]
        return [n for n in names if any(n.startswith(k) for k in keep)]
    vlm = "model.vlm_with_expert.vlm."
    out = []
    for n in names:
        if n.startswith(vlm):
            # train_expert_only freezes the whole VLM. Otherwise LeRobot's name filters
            # ("text_model.model.layers.{last}.", "text_model.model.norm.weight", "lm_head") match nothing
            # present here, so the whole VLM trains except the vision encoder when it is frozen.
            if config.train_expert_only:
                continue
            if config.freeze_vision_encoder and n.startswith(vlm + "model.vision_model."):
                continue
        if n.startswith("model.state_proj.") and not config.train_state_proj:
            continue
        out.append(n)
    return out
