"""Real-Time Chunking guidance (Black, Galliker, Levine 2025, "Real-Time Execution of Action Chunking Flow
Policies"), written from the paper's guided velocity and LeRobot's description of it for SmolVLA
(`policies/rtc/modeling_rtc.py`: denoise_step, get_prefix_weights).

SmolVLA's flow runs from t = 1 (noise) to t = 0 (actions): x_t = t * noise + (1 - t) * actions, v = noise - actions,
Euler steps x <- x + dt * v with dt = -1/num_steps. So the clean estimate is x1 = x_t - t * v, the paper's time is
tau = 1 - t, and the guided velocity subtracts the correction (x moves along -v):

    err        = (leftover - x1) * W                      (W: prefix weights over the chunk, broadcast over A)
    correction = err^T d x1 / d x_t                        (vector-Jacobian product through the expert)
    c          = (1 - tau) / tau,  1/r^2 = ((1 - tau)^2 + tau^2) / (1 - tau)^2
    gw         = min(c / r^2, max_guidance_weight)         (inf / nan -> max_guidance_weight, as LeRobot)
    v_guided   = v - gw * correction

`gradient="stop"` treats v as a constant (correction = err): what LeRobot's shipped code computes, because it
evaluates v before x_t requires grad. `gradient="expert"` is the paper's Jacobian through the expert.
"""
import math

import torch

SCHEDULES = ("zeros", "ones", "linear", "exp")


def _linweights(start, end, total):
    steps = total - max(total - end, 0) - start
    if end <= start or steps <= 0:
        return torch.zeros(0)
    return torch.linspace(1, 0, steps + 2)[1:-1]


def prefix_weights(schedule, start, end, total):
    """(total,) float32: 1 for the `start` (= inference delay) frozen actions, a decay to 0 at `end`
    (= execution horizon), 0 after."""
    start = min(start, end)
    if schedule == "zeros":
        w = torch.zeros(total)
        w[:start] = 1.0
        return w
    if schedule == "ones":
        w = torch.ones(total)
        w[end:] = 0.0
        return w
    if schedule not in ("linear", "exp"):
        raise ValueError(schedule)
    lin = _linweights(start, end, total)
    if schedule == "exp":
        lin = lin * torch.expm1(lin) / (math.e - 1)
    return torch.cat([torch.ones(min(start, total)), lin, torch.zeros(max(total - end, 0))])


def guidance_weight(t, max_guidance_weight):
    """min(c / r^2, max) at SmolVLA time t (tau = 1 - t), in float64; like LeRobot's nan_to_num, an infinite
    weight (t = 1) becomes max and an undefined one (0 * inf at t = 0) becomes 0."""
    tau = 1.0 - float(t)
    one_minus = 1.0 - tau
    c = one_minus / tau if tau != 0 else math.inf
    inv_r2 = (one_minus**2 + tau**2) / one_minus**2 if one_minus != 0 else math.inf
    gw = c * inv_r2
    if math.isnan(gw):
        gw = 0.0
    return min(gw, max_guidance_weight)


def padded_leftover(leftover, chunk_size, action_dim):
    """(B, n, a) with n <= C, a <= A -> (B, C, A), zeros after."""
    b, n, a = leftover.shape
    out = torch.zeros(b, chunk_size, action_dim)
    out[:, :n, :a] = leftover
    return out


def guided_step(model, prefix_pad_masks, cache, x, t, target, weights, max_guidance_weight, gradient="expert"):
    """One guided velocity at (x, t) -> dict(v, x1, err, correction, gw, guided)."""
    bsize = x.shape[0]
    x = x.detach().clone().requires_grad_(gradient == "expert")
    with torch.enable_grad():
        v = model.denoise_step(prefix_pad_masks, cache, x, t.expand(bsize))
        x1 = x - t * v
        err = ((target - x1) * weights.view(1, -1, 1)).detach()
        if gradient == "expert":
            (correction,) = torch.autograd.grad(x1, x, err)
        else:
            correction = err
    gw = guidance_weight(t, max_guidance_weight)
    guided = v.detach() - gw * correction
    return {"v": v.detach(), "x1": x1.detach(), "err": err, "correction": correction, "gw": gw, "guided": guided}


def guided_integrate(model, prefix_pad_masks, cache, x0, leftover, inference_delay, execution_horizon, schedule,
                     max_guidance_weight, gradient="expert", trace=None):
    """The Euler loop of VLAFlowMatching.integrate (float32 t, while t >= -dt/2) with every velocity guided."""
    cfg = model.config
    horizon = min(execution_horizon, leftover.shape[1])  # nothing to agree with past the leftover
    weights = prefix_weights(schedule, inference_delay, horizon, cfg.chunk_size)
    target = padded_leftover(leftover, cfg.chunk_size, cfg.max_action_dim)
    dt = torch.tensor(-1.0 / cfg.num_steps, dtype=torch.float32)
    t = torch.tensor(1.0, dtype=torch.float32)
    x = x0.clone()
    step = 0
    while t >= -dt / 2:
        s = guided_step(model, prefix_pad_masks, cache, x, t, target, weights, max_guidance_weight, gradient)
        if trace is not None:
            trace[f"x.{step}"] = x
            for k in ("v", "correction", "guided"):
                trace[f"{k}.{step}"] = s[k]
            trace[f"gw.{step}"] = torch.tensor(s["gw"], dtype=torch.float64)
        x = x + dt * s["guided"]
        t = t + dt
        step += 1
    if trace is not None:
        trace["weights"] = weights
    return x
