/**
 * LocalChunkPolicy's decisions on the scripted FakePolicy (threshold 0.5; model = (robot - 1) / 2;
 * the fake delta expert adds +0.5 in robot space), and the runtime around a real (tiny, random)
 * SmolVLA: ticks keep firing while the native work runs.
 */
import { SmolVLAPolicy } from '../../../lib/policy';
import { ControlRuntime, LocalChunkPolicy, SimRobot, type LocalPolicyLike } from '../../../lib/serving';
import { byteTokenizer } from '../../../lib/train/byteTokenizer';
import { tinyConfig, TINY_CAMERA } from '../../../lib/train/presets';
import { ACTION_DIM, CHUNK, DELTA, FakePolicy, chunkValue } from '../fakePolicy';

function local(script: number[], options: ConstructorParameters<typeof LocalChunkPolicy>[1] = {}) {
  const fake = new FakePolicy({ script });
  Object.assign(fake, {
    preprocessor: { spec: { actionDim: ACTION_DIM } },
    normalizer: { normalizeTarget: (_k: string, v: Float32Array) => v.map((x) => (x - 1) / 2) },
  });
  return { fake, policy: new LocalChunkPolicy(fake as unknown as LocalPolicyLike, { refillAt: 2, ...options }) };
}

const obs = { 'observation.state': [0, 0], task: 't' };
const row = (...v: number[]) => Float32Array.from(v);
const context = [row(1, 2, 3, 4), row(5, 6, 7, 8)];

describe('LocalChunkPolicy decisions', () => {
  it('first request: full sampling, the whole chunk, no similarity', async () => {
    const { fake, policy } = local([]);
    const r = await policy.requestChunk(obs);
    expect(r.decision).toBe('miss');
    expect(r.chunk).toBe(CHUNK);
    expect(r.similarity).toBeNull();
    expect(r.sceneChanged).toBeUndefined();
    expect(r.actions[ACTION_DIM + 2]).toBe(chunkValue(1, 0, 1, 2));
    expect(fake.calls).toMatchObject({ prefix: 1, sample: 1 });
    // The check's cache is freed after a first call (no reuse after a miss by "first").
    expect(fake.caches.every((c) => c.disposed)).toBe(true);
  });

  it('hit: refines the action context (one delta step), then reuses the cache within reuseSteps steps', async () => {
    const { fake, policy } = local([0.9, 0.8], { reuseSteps: 2 });
    await policy.requestChunk(obs, { step: 0 });
    const hit = await policy.requestChunk(obs, { step: 10, actionContext: context, queued: 8 });
    expect(hit.decision).toBe('hit-refine');
    expect(hit.sceneChanged).toBe(false);
    expect(hit.chunk).toBe(2);
    expect(Array.from(hit.actions)).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((v) => v + 2 * DELTA));
    const reuse = await policy.requestChunk(obs, { step: 12, actionContext: context, queued: 6 });
    expect(reuse.decision).toBe('reuse');
    expect(fake.calls.prefix).toBe(2);
    expect(fake.calls.delta).toBe(2);
    // Past the bound (step 13 > 10 + 2): a new check.
    const later = await policy.requestChunk(obs, { step: 13, actionContext: context, queued: 6 });
    expect(later.decision).toBe('hit-refine');
    expect(fake.calls.prefix).toBe(3);
  });

  it('a scene change samples a full chunk and is never followed by reuse', async () => {
    const { fake, policy } = local([0.1, 0.9], { reuseSteps: 5 });
    await policy.requestChunk(obs, { step: 0 });
    const changed = await policy.requestChunk(obs, { step: 1, actionContext: context, queued: 8 });
    expect(changed).toMatchObject({ decision: 'miss', sceneChanged: true, chunk: CHUNK });
    const next = await policy.requestChunk(obs, { step: 2, actionContext: context, queued: 8 });
    expect(next.decision).toBe('hit-refine');
    expect(fake.calls.prefix).toBe(3);
  });

  it('an unchanged scene with too few actions queued still samples; skip mode answers nothing', async () => {
    const { policy } = local([0.9], { reuseSteps: 0 });
    await policy.requestChunk(obs);
    const low = await policy.requestChunk(obs, { actionContext: context, queued: 2 });
    expect(low).toMatchObject({ decision: 'miss', sceneChanged: false, chunk: CHUNK });
    const skip = local([0.9], { hitMode: 'skip', reuseSteps: 0 }).policy;
    await skip.requestChunk(obs);
    expect(await skip.requestChunk(obs, { actionContext: context, queued: 8 })).toMatchObject({ decision: 'hit-skip', chunk: 0 });
  });

  it('rejects bad options and use after dispose with codes', async () => {
    expect(() => local([], { hitMode: 'blend' as never })).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
    const { policy } = local([]);
    await policy.dispose();
    await expect(policy.requestChunk(obs)).rejects.toMatchObject({ code: 'ERR_SMOLVLA_DISPOSED' });
  });
});

describe('ControlRuntime around a real SmolVLA', () => {
  it('keeps ticking while chunks are computed off the event loop (counted, not timed)', async () => {
    const model = await SmolVLAPolicy.create(tinyConfig(), { seed: 1, tokenizer: byteTokenizer() });
    const policy = new LocalChunkPolicy(model, { reuseSteps: 0 });
    const robot = new SimRobot({ camera: TINY_CAMERA, sceneEvery: 20 });
    const runtime = new ControlRuntime(policy, robot, { fps: 500 });
    const summary = await runtime.run(300);
    const { ticks, requests } = runtime.records();
    const during = ticks.filter((t) => requests.some((r) => r.receivedAt !== null && t.at > r.sentAt && t.at < r.receivedAt)).length;
    expect(summary.requests).toBeGreaterThan(0);
    expect(requests.some((r) => r.outcome === 'merged')).toBe(true);
    expect(during).toBeGreaterThan(0);
    expect(summary.executed).toBeGreaterThan(0);
    await policy.dispose();
  });
});
