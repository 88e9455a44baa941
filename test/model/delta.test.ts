/**
 * Delta expert, CLS head and VICReg against the PyTorch reference (fixture tiny_delta: B = 4, CLS
 * head on, fixed main-integration start and CLS noise). Tolerance: relative error <= 1e-4 (float32
 * whole-model outputs and gradients). Delta actions and the CLS trainable set are
 * departures; the loss values follow the published numerics.
 */
import { Optimizer } from '../../lib/train/optimizer';
import { expectClose } from '../helpers';
import { loadModelFixture, type ModelFixture } from '../modelFixtures';
import { SmolVLAModel, Tensor } from '../../lib/index';
import { loadFixture, fixturesDir } from '../helpers';
import * as path from 'node:path';

const TOL = 1e-4;

describe('tiny_delta', () => {
  let f: ModelFixture;
  beforeAll(async () => {
    f = await loadModelFixture('tiny_delta');
  });

  it('lists exactly the trainable parameters (CLS head included)', async () => {
    const expected = JSON.parse(f.io.metadata.trainable!) as string[];
    expect((await f.model.trainableParameters()).map((p) => p.name).sort()).toEqual([...expected].sort());
  });

  it(`matches the prefix with CLS tokens and sampling within ${TOL}`, async () => {
    const trace = await f.model.trace(f.obs, f.io.get('in.noise'));
    for (const key of ['prefix_embs', 'prefix_out', 'obs_cls_out', 'actions', 'velocity.0', 'cache.3.v']) {
      expectClose(trace[key]!, f.io.get(`out.${key}`), TOL, key);
    }
  });

  it(`matches the delta decode, every loss term and every trainable gradient within ${TOL}`, async () => {
    const gradNames = f.io.keys().filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
    const noGrad = JSON.parse(f.io.metadata.no_grad!) as string[];
    const r = await f.model.forwardDelta(f.obs, {
      actionIsPad: f.io.get('in.actions_is_pad'),
      mainX0: f.io.get('in.main_x0'),
      clsNoise: f.io.get('in.cls_noise'),
      gradNames: [...gradNames, ...noGrad],
      trace: true,
    });
    for (const key of ['x_t', 'x_noisy', 'v', 'prefix_out', 'obs_cls_out', 'act_cls_out', 'obs_proj', 'act_proj', 'denoise_losses']) {
      expectClose(r.trace[key]!, f.io.get(`out.delta.${key}`), TOL, key);
    }
    const losses: Array<[string, string]> = [
      ['delta_losses_after_forward', 'losses_after_forward'],
      ['delta_losses_after_in_ep_bound', 'losses_after_in_ep_bound'],
      ['delta_loss', 'loss'],
      ['vicreg', 'vicreg'],
      ['vicreg_invariance', 'vicreg_invariance'],
      ['vicreg_variance', 'vicreg_variance'],
      ['vicreg_covariance', 'vicreg_covariance'],
      ['cls_cosine', 'cls_cosine'],
    ];
    for (const [ours, theirs] of losses) expectClose(r.losses[ours]!, f.io.get(`out.delta.${theirs}`), TOL, ours);
    expect(gradNames.length).toBeGreaterThan(40);
    for (const n of gradNames) expectClose(r.grads[n]!, f.io.get(`grad.${n}`), TOL, `grad ${n}`);
    // action_context_encoder is trainable but the delta objective never calls it.
    for (const n of noGrad) expect(r.grads[n]).toBeNull();
  });

  it.each(['short', 'equal', 'long', 'none'])(`matches cal_cache delta actions with a %s context within ${TOL}`, async (which) => {
    const cache = await f.model.prefix(f.obs);
    const ctx = which === 'none' ? undefined : f.io.get(`in.ctx.${which}`);
    const delta = await f.model.deltaActions(cache, ctx);
    expectClose(delta, f.io.get(`out.delta_actions.${which}`), TOL, which);
    cache.dispose();
  });

  it('refuses a delta objective on a batch of one with the CLS head', async () => {
    const one = {
      images: [f.obs.images[0]!.to('float32')],
      imgMasks: [f.obs.imgMasks[0]!],
      langTokens: f.obs.langTokens,
      langMasks: f.obs.langMasks,
      state: f.obs.state,
    };
    // Build a batch of 1 by slicing on the JS side.
    const take1 = (t: Tensor) => Tensor.from(t.data().slice(0, t.numel / t.shape[0]!) as never, [1, ...t.shape.slice(1)], t.dtype);
    const obs1 = {
      images: one.images.map(take1),
      imgMasks: one.imgMasks.map(take1),
      langTokens: take1(one.langTokens),
      langMasks: take1(one.langMasks),
      state: take1(one.state),
    };
    await expect(f.model.forwardDelta(obs1)).rejects.toThrow(/at least 2 samples/);
  });
});

describe('a published SmolVLA checkpoint without delta/CLS tensors', () => {
  it('initialises and reports them, ignores lm_head, and samples as the reference', async () => {
    const dir = path.join(fixturesDir, 'tiny_nodelta_ckpt');
    const io = await loadFixture('tiny_nodelta_ckpt', 'io.safetensors');
    const { model, report } = await SmolVLAModel.fromPretrained(dir, { seed: 3 });
    expect([...report.initialised].sort()).toEqual([...(JSON.parse(io.metadata.missing!) as string[])].sort());
    expect(report.unused).toEqual(expect.arrayContaining(JSON.parse(io.metadata.unused!) as string[]));
    const { observationOf } = await import('../modelFixtures');
    const trace = await model.trace(observationOf(io), io.get('in.noise'));
    expectClose(trace.actions!, io.get('out.actions'), TOL, 'actions');
    expectClose(trace.prefix_out!, io.get('out.prefix_out'), TOL, 'prefix_out');
  });

  it('can warm-start the delta expert from the main expert', async () => {
    const { model, report } = await SmolVLAModel.fromPretrained(path.join(fixturesDir, 'tiny_nodelta_ckpt'), { warmStartDelta: true });
    expect(report.warmStarted).toBe(true);
    const p = await model.parameters([
      'model.vlm_with_expert.lm_expert.layers.0.mlp.up_proj.weight',
      'model.vlm_with_expert.delta_expert.layers.0.mlp.up_proj.weight',
    ]);
    expect(Object.values(p).map((t) => t.toNumbers())).toEqual([
      p['model.vlm_with_expert.lm_expert.layers.0.mlp.up_proj.weight']!.toNumbers(),
      p['model.vlm_with_expert.lm_expert.layers.0.mlp.up_proj.weight']!.toNumbers(),
    ]);
  });
});

describe('freezing with train_delta_expert', () => {
  it('changes only the trainable parameters in an optimiser step', async () => {
    const f = await loadModelFixture('tiny_delta');
    const before = await f.model.parameters();
    const trainable = new Set((await f.model.trainableParameters()).map((p) => p.name));
    const opt = await Optimizer.create(f.model, 'delta');
    const r = await opt.step({ observation: f.obs, actionIsPad: f.io.get('in.actions_is_pad') }, 1e-3);
    expect(r.skipped).toBe(false);
    expect(r.gradNorm).toBeGreaterThan(0);
    const after = await f.model.parameters();
    let changed = 0;
    for (const [name, t] of Object.entries(before)) {
      const a = t.toNumbers();
      const b = after[name]!.toNumbers();
      const same = a.every((v, i) => v === b[i]);
      if (!trainable.has(name) || name.startsWith('model.action_context_encoder.')) {
        // Frozen, or trainable without a gradient from this objective: untouched.
        expect({ name, same }).toEqual({ name, same: true });
      } else if (!same) {
        changed++;
      }
    }
    expect(changed).toBeGreaterThan(40);
  });
});

describe('model-level argument errors', () => {
  it('names actionIsPad, noise and the cache when they are wrong', async () => {
    const f = await loadModelFixture('tiny_delta');
    const wrongPad = Tensor.fromBools([1, 0], [1, 2]);
    await expect(f.model.forwardDelta(f.obs, { actionIsPad: wrongPad })).rejects.toThrow(/argument 'actionIsPad': expected a bool tensor of shape \(4, 8\)/);
    await expect(f.model.sample(f.obs, { noise: Tensor.from(new Float32Array(6), [1, 1, 6]) })).rejects.toThrow(/argument 'noise'/);
    const cache = await f.model.prefix(f.obs);
    cache.dispose();
    await expect(f.model.sample(cache)).rejects.toThrow(/argument 'cache': the KV cache was disposed/);
  });
});
