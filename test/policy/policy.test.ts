/**
 * SmolVLAPolicy's CLS state machine on tiny_delta
 * against the PyTorch reference (fixture policy/sequence.safetensors, kind departure: the state machine
 * is new in the seeds): three calls of two robots from raw frames, their un-normalised actions, CLS
 * outputs, similarities and decisions. Tolerance: relative error <= 1e-4 for whole policy outputs
 *, similarities within 1e-4 absolute; decisions exact (the generator keeps every similarity
 * more than 1e-3 away from the threshold).
 */
import * as path from 'node:path';

import { SmolVLAModel, Tensor } from '../../lib/index';
import { SmolVLAPolicy, type ChunkPrediction } from '../../lib/policy';
import { expectClose, fixturesDir, loadFixture, type Fixture } from '../helpers';
import { sequenceCall, TINY_DELTA, TOKENIZER_JSON } from './fixtures';

const TOL = 1e-4;

let fx: Fixture;
let policy: SmolVLAPolicy;
beforeAll(async () => {
  fx = await loadFixture('policy', 'sequence.safetensors');
  policy = await SmolVLAPolicy.fromPretrained(TINY_DELTA, { tokenizer: null });
});
beforeEach(() => {
  policy.reset();
  policy.clsThreshold = fx.float('in.threshold');
});

const call = (k: number, extra: Record<string, unknown> = {}): Promise<ChunkPrediction> =>
  policy.predictActionChunk(sequenceCall(fx, k), { computeClsSimilarity: true, noise: fx.get(`in.call${k}.noise`), ...extra });

function actionsTensor(r: ChunkPrediction): Tensor {
  return Tensor.from(Float32Array.from(r.actions.flatMap((a) => [...a])), [r.actions.length, 8, 4]);
}

function expectSimilarity(r: ChunkPrediction, k: number): void {
  expect(r.similarity).not.toBeNull();
  const per = fx.get(`out.call${k}.similarity`).toFloat32();
  r.similarity!.perSample.forEach((v, i) => expect(Math.abs(v - per[i]!)).toBeLessThan(TOL));
  expect(Math.abs(r.similarity!.mean - fx.float(`out.call${k}.similarity_mean`))).toBeLessThan(TOL);
  expect(r.shouldCache).toBe(fx.int(`out.call${k}.should_cache`) === 1);
  expect(r.perSampleShouldCache).toEqual(fx.get(`out.call${k}.per_sample_should_cache`).toNumbers().map((v) => v === 1));
}

describe('the reference sequence', () => {
  it(`matches actions, CLS outputs, similarities and decisions of three calls within ${TOL}`, async () => {
    const results: ChunkPrediction[] = [];
    for (let k = 0; k < 3; k++) results.push(await call(k));
    for (const [k, r] of results.entries()) {
      expect(r.batchSize).toBe(2);
      expectClose(actionsTensor(r), fx.get(`out.call${k}.actions`), TOL, `call ${k} actions`);
      expectClose(r.actionsTensor!, fx.get(`out.call${k}.actions_model`), TOL, `call ${k} model-space actions`);
      expectClose(r.obsClsOut!, fx.get(`out.call${k}.obs_cls_out`), TOL, `call ${k} obs_cls_out`);
    }
    // the first call after reset(): no previous CLS output
    expect(results[0]!.similarity).toBeNull();
    expect(results[0]!.shouldCache).toBe(true);
    expect(results[0]!.perSampleShouldCache).toEqual([true, true]);
    expectSimilarity(results[1]!, 1);
    expectSimilarity(results[2]!, 2);
    // call 2: robot 1's scene changed; the mean decision hides robot 0's
    expect(results[2]!.perSampleShouldCache).toEqual([true, false]);
    expect(results[2]!.shouldCache).toBe(false);
  });

  it('decides strictly: a threshold equal to the similarity does not cache, one just below does', async () => {
    await call(0);
    const m = (await call(1)).similarity!.mean;
    for (const [threshold, expected] of [[m, false], [m - 1e-9, true]] as const) {
      policy.reset();
      policy.clsThreshold = threshold;
      await call(0);
      const r = await call(1);
      expect(r.similarity!.mean).toBe(m);
      expect(r.shouldCache).toBe(expected);
    }
    expect(() => (policy.clsThreshold = NaN)).toThrow(/clsThreshold must be a finite number, got NaN/);
  });
});

describe('the stored CLS output', () => {
  it('is replaced only by calls that ask for the similarity', async () => {
    await call(0);
    // plain sampling and selectAction of another scene leave it alone
    await policy.predictActionChunk(sequenceCall(fx, 2));
    await policy.selectAction(sequenceCall(fx, 2));
    expectSimilarity(await call(1), 1);
  });

  it('is cleared by reset(): the next similarity is null again', async () => {
    await call(0);
    expect((await call(1)).similarity).not.toBeNull();
    policy.reset();
    const r = await call(1);
    expect(r.similarity).toBeNull();
    expect(r.shouldCache).toBe(true);
  });

  it('is not taken from a call that a reset() overtook (the call belongs to the old episode)', async () => {
    await call(0);
    const original = policy.model.sample.bind(policy.model);
    const spy = jest.spyOn(policy.model, 'sample').mockImplementationOnce(async (...args) => {
      policy.reset(); // e.g. an episode ends while this chunk is being sampled
      return original(...args);
    });
    try {
      const r = await call(1);
      expect(r.similarity).toBeNull();
      expect(r.shouldCache).toBe(true);
      expect((await call(2)).similarity).toBeNull();
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses a batch of another size and says to call reset()', async () => {
    await call(0);
    await expect(policy.predictActionChunk([sequenceCall(fx, 1)[0]!], { computeClsSimilarity: true })).rejects.toThrow(
      /the batch has 1 sample\(s\) but the stored CLS output of the previous call has 2; call reset\(\)/,
    );
    policy.reset();
    const r = await policy.predictActionChunk([sequenceCall(fx, 1)[0]!], { computeClsSimilarity: true });
    expect(r.similarity).toBeNull();
  });
});

describe('caches (cal_cache and past_key_values)', () => {
  it('calCache returns the cache, delta actions and the similarity of that same prefix pass', async () => {
    await call(0);
    const c = await policy.predictActionChunk(sequenceCall(fx, 1), { computeClsSimilarity: true, calCache: true });
    expectSimilarity(c, 1);
    expect(c.actions).toEqual([]);
    expect(c.actionsTensor).toBeUndefined();
    expect(c.deltaActions!.shape).toEqual([2, 8, 6]);
    expect(c.cache!.batchSize).toBe(2);
    // sampling with that cache skips the prefix pass: same actions, no similarity, stored CLS untouched
    const s = await policy.predictActionChunk(null, {
      pastKeyValues: c.cache!,
      prefixPadMasks: c.cache!.padMasks(),
      noise: fx.get('in.call1.noise'),
      computeClsSimilarity: true,
    });
    expectClose(actionsTensor(s), fx.get('out.call1.actions'), TOL, 'actions from the cache');
    expect(s.similarity).toBeNull();
    expect(s.shouldCache).toBe(true);
    expect(s.obsClsOut).toBeUndefined();
    expectSimilarity(await call(2), 2);
    c.cache!.dispose();
  });

  it('calCache with an action context gives the model-space delta actions of model.deltaActions', async () => {
    const ctx = Tensor.from(Float32Array.from({ length: 2 * 3 * 6 }, (_, i) => Math.cos(i)), [2, 3, 6]);
    const c = await policy.predictActionChunk(sequenceCall(fx, 0), { calCache: true, actionContext: ctx });
    const direct = await policy.model.deltaActions(c.cache!, ctx);
    expect(c.deltaActions!.toNumbers()).toEqual(direct.toNumbers());
    expect(c.similarity).toBeNull();
    c.cache!.dispose();
  });

  it('keepCache returns the sampling pass\'s cache, which reproduces the chunk', async () => {
    const r = await call(0, { keepCache: true });
    const again = await policy.predictActionChunk(null, { pastKeyValues: r.cache!, noise: fx.get('in.call0.noise') });
    expect(again.actionsTensor!.toNumbers()).toEqual(r.actionsTensor!.toNumbers());
    r.cache!.dispose();
  });

  it('rejects contradictory or misshapen options with clear errors', async () => {
    const c = await policy.predictActionChunk(sequenceCall(fx, 0), { calCache: true });
    const cases: Array<[Parameters<SmolVLAPolicy['predictActionChunk']>, RegExp]> = [
      [[sequenceCall(fx, 0), { calCache: true, pastKeyValues: c.cache! }], /calCache computes a new cache; it cannot be combined with pastKeyValues/],
      [[null, {}], /a batch is required unless pastKeyValues is given/],
      [[null, { pastKeyValues: c.cache!, prefixPadMasks: Tensor.fromBools([1, 1], [1, 2]) }], /prefixPadMasks must have shape \(2, 25\), got \[1, 2\]/],
      [[sequenceCall(fx, 0), { noise: Tensor.from(new Float32Array(8 * 6), [1, 8, 6]) }], /noise must have shape \(2, 8, 6\), got \[1, 8, 6\]/],
      [[sequenceCall(fx, 0), { actionContext: Tensor.from(new Float32Array(6), [1, 6]) }], /actionContext is only used with calCache/],
      [[[sequenceCall(fx, 0)[0]!], { pastKeyValues: c.cache! }], /the batch has 1 sample\(s\), pastKeyValues was made for 2/],
    ];
    for (const [args, message] of cases) await expect(policy.predictActionChunk(...args)).rejects.toThrow(message);
    const aborted = new AbortController();
    aborted.abort();
    await expect(policy.predictActionChunk(sequenceCall(fx, 0), { signal: aborted.signal })).rejects.toMatchObject({ name: 'AbortError' });
    c.cache!.dispose();
  });

  it('refuses the similarity without the CLS head, and then returns no CLS output', async () => {
    const plain = await SmolVLAPolicy.fromPretrained(path.join(fixturesDir, 'tiny_nodelta_ckpt'), { tokenizer: null });
    const batch = sequenceCall(fx, 0);
    await expect(plain.predictActionChunk(batch, { computeClsSimilarity: true })).rejects.toThrow(
      /computeClsSimilarity needs the CLS head \(use_cls_head is false in this config\)/,
    );
    const r = await plain.predictActionChunk(batch);
    expect(r.obsClsOut).toBeUndefined();
    expect(r.similarity).toBeNull();
    expect(r.actions[0]!.length).toBe(8 * 4);
  });
});

describe('selectAction', () => {
  it('pops n_action_steps queued actions per chunk, samples again when empty and after reset()', async () => {
    const sample = jest.spyOn(policy.model, 'sample');
    try {
      const batch = sequenceCall(fx, 0);
      const first = await policy.predictActionChunk(batch, { noise: fx.get('in.call0.noise') });
      const popped: Float32Array[][] = [];
      popped.push(await policy.selectAction(batch, { noise: fx.get('in.call0.noise') }));
      for (let k = 1; k < 8; k++) popped.push(await policy.selectAction(batch));
      expect(sample).toHaveBeenCalledTimes(2);
      for (let k = 0; k < 8; k++) {
        for (let r = 0; r < 2; r++) expect(Array.from(popped[k]![r]!)).toEqual(Array.from(first.actions[r]!.subarray(k * 4, (k + 1) * 4)));
      }
      await policy.selectAction(batch);
      expect(sample).toHaveBeenCalledTimes(3);
      await expect(policy.selectAction([batch[0]!])).rejects.toThrow(/the batch has 1 robot\(s\) but the queued actions are for 2; call reset\(\)/);
      policy.reset();
      await policy.selectAction([batch[0]!]);
      expect(sample).toHaveBeenCalledTimes(4);
    } finally {
      sample.mockRestore();
    }
  });
});

describe('concurrency', () => {
  it('serialises concurrent calls: never two model calls at once, and the state machine sees call order', async () => {
    const original = policy.model.sample.bind(policy.model);
    let inFlight = 0;
    let maxInFlight = 0;
    const spy = jest.spyOn(policy.model, 'sample').mockImplementation(async (...args) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await original(...args);
      } finally {
        inFlight--;
      }
    });
    try {
      const [r0, r1, r2] = await Promise.all([call(0), call(1), call(2)]);
      expect(maxInFlight).toBe(1);
      expect(r0!.similarity).toBeNull();
      expectSimilarity(r1!, 1);
      expectSimilarity(r2!, 2);
      // a failing call does not block the ones queued after it
      const failing = policy.predictActionChunk([sequenceCall(fx, 0)[0]!], { computeClsSimilarity: true });
      const next = call(0);
      await expect(failing).rejects.toThrow(/call reset\(\)/);
      expect((await next).similarity).not.toBeNull();
      expect(policy.pendingCalls).toBe(0);
    } finally {
      spy.mockRestore();
    }
  });

  it('keeps the event loop running while a chunk is predicted', async () => {
    const config = { ...policy.config, numSteps: 200 };
    const slow = await SmolVLAPolicy.create(config, { stats: policy.normalizer.stats });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const ticksAtEnd = await slow.predictActionChunk(sequenceCall(fx, 0)).then(() => ticks);
      expect(ticksAtEnd).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
    }
  });
});

describe('training and loading', () => {
  it('forward computes the delta objective (train_delta_expert) from a robot batch with actions', async () => {
    const batch = sequenceCall(fx, 0).map((o, r) => ({
      ...o,
      action: Float32Array.from({ length: 32 }, (_, i) => Math.sin(i + r)),
      actions_id_pad: Array.from({ length: 8 }, (_, i) => i >= 6),
    }));
    const r = await policy.forward(batch);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.losses.delta_losses_after_in_ep_bound!.shape).toEqual([2, 8, 6]);
    expect(r.loss).toBeCloseTo(r.losses.delta_loss!.toFloat32()[0]!, 6);
    expect(await policy.trainableParameters()).toEqual(await policy.model.trainableParameters());
    const main = await SmolVLAPolicy.fromPretrained(path.join(fixturesDir, 'tiny_nodelta_ckpt'), { tokenizer: null });
    await expect(main.forward(sequenceCall(fx, 0))).rejects.toThrow(/robot 0: action: missing \(training needs the action chunk\)/);
    const m = await main.forward(batch);
    expect(m.losses.losses_after_forward!.shape).toEqual([2, 8, 6]);
    expect(Number.isFinite(m.loss)).toBe(true);
  });

  it('tokenises task strings with a found tokenizer exactly as the ready tokens', async () => {
    const withTok = await SmolVLAPolicy.fromPretrained(TINY_DELTA, { tokenizer: TOKENIZER_JSON });
    expect(withTok.tokenizer!.source).toBe(TOKENIZER_JSON);
    const ids = withTok.tokenizer!.encode('pick up the cube\n');
    const batch = sequenceCall(fx, 0);
    const byTask = batch.map((o) => ({ ...o, 'observation.language.tokens': undefined, task: 'pick up the cube' }));
    const byIds = batch.map((o) => ({ ...o, 'observation.language.tokens': ids }));
    const a = await withTok.predictActionChunk(byTask, { noise: fx.get('in.call0.noise') });
    const b = await withTok.predictActionChunk(byIds, { noise: fx.get('in.call0.noise') });
    expect(a.actionsTensor!.toNumbers()).toEqual(b.actionsTensor!.toNumbers());
    // without a tokenizer the search result is reported when a task string needs one
    await expect(policy.predictActionChunk(byTask)).rejects.toThrow(/task: a task string needs the VLM's tokenizer/);
  });

  it('needs the tokenizer for add_image_special_tokens', async () => {
    const config = { ...policy.config, addImageSpecialTokens: true };
    await expect(SmolVLAPolicy.create(config)).rejects.toThrow(/add_image_special_tokens: the image token ids come from the VLM tokenizer/);
    const p = await SmolVLAPolicy.create(config, { tokenizer: TOKENIZER_JSON, stats: policy.normalizer.stats });
    expect(p.model).toBeInstanceOf(SmolVLAModel);
    const r = await p.predictActionChunk(sequenceCall(fx, 0));
    expect(r.actions).toHaveLength(2);
  });
});
