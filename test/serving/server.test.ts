/** PolicyServer's decision state machine against a scripted fake policy. */
import { AdaptiveThreshold, PolicyServer, type ServerStepResult } from '../../lib/serving';
import { Tensor } from '../../lib/tensor';
import { ACTION_DIM, CHUNK, DELTA, FakePolicy, MODEL_DIM, chunkValue } from './fakePolicy';

/** Robot 0's executed action as numbers. */
function act(r: ServerStepResult, robot = 0): number[] {
  return Array.from(r.actions[robot]!);
}

function row(n: number, k: number, robot = 0, plus = 0): number[] {
  return Array.from({ length: ACTION_DIM }, (_, j) => chunkValue(n, robot, k, j) + plus);
}

async function run(server: PolicyServer, calls: number): Promise<ServerStepResult[]> {
  const out: ServerStepResult[] = [];
  for (let i = 0; i < calls; i++) out.push(await server.step(`obs${i}`));
  return out;
}

describe('PolicyServer decisions (skip mode, no reuse)', () => {
  it('misses first, skips on hits, resamples when the chunk runs out or the scene changes', async () => {
    const policy = new FakePolicy({ script: [0.9, 0.9, 0.9, 0.9, 0.1] });
    const server = new PolicyServer(policy, { reuseSteps: 0 });
    const r = await run(server, 6);
    expect(r.map((x) => [x.decision.kind, x.decision.reason])).toEqual([
      ['miss', 'first'],
      ['hit-skip', null],
      ['hit-skip', null],
      ['hit-skip', null],
      ['miss', 'queue-empty'],
      ['miss', 'scene-changed'],
    ]);
    // The queued chunk keeps executing through hits; each miss starts a new chunk.
    expect(r.map((x) => act(x))).toEqual([row(1, 0), row(1, 1), row(1, 2), row(1, 3), row(2, 0), row(3, 0)]);
    expect(r.map((x) => x.queuedActions)).toEqual([3, 2, 1, 0, 3, 3]);
    // One prefix pass per call; sampling only on misses, decoding against that call's own cache.
    expect(policy.calls).toMatchObject({ prefix: 6, sample: 3, delta: 0 });
    expect(policy.sampledWith).toEqual([0, 4, 5]);
    expect(r[0]!.similarity).toBeNull();
    expect(r[1]!.similarity).toEqual({ mean: expect.closeTo(0.9, 6), perSample: [expect.closeTo(0.9, 6)] });
    expect(r.map((x) => x.threshold)).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  });

  it('keeps a KV-cache queue: appends on should_cache, clears (disposing) on a scene change', async () => {
    const policy = new FakePolicy({ script: [0.9, 0.9, 0.1, 0.9] });
    const server = new PolicyServer(policy, { reuseSteps: 0 });
    const r = await run(server, 5);
    expect(r.map((x) => x.cacheEntries)).toEqual([1, 2, 3, 0, 1]);
    expect(policy.caches.map((c) => c.disposed)).toEqual([true, true, true, true, false]);
    const [entry] = server.cacheEntries;
    expect(entry!.cache).toBe(policy.caches[4]);
    expect(entry!.prefixPadMask.shape).toEqual([1, 3]);
    expect(entry!.obsClsOut!.toNumbers()).toEqual(new Array(6).fill(4));
  });

  it('bounds the KV-cache queue, dropping and disposing the oldest', async () => {
    let clock = 1000;
    const policy = new FakePolicy({ script: new Array(6).fill(0.9), config: { chunkSize: 8, nActionSteps: 8 } });
    const server = new PolicyServer(policy, { reuseSteps: 0, maxCacheEntries: 3, now: () => clock++ });
    await run(server, 7);
    expect(server.cacheEntries.map((e) => (e.cache as unknown as { id: number }).id)).toEqual([4, 5, 6]);
    expect(policy.caches.map((c) => c.disposed)).toEqual([true, true, true, true, false, false, false]);
    const stamps = server.cacheEntries.map((e) => e.timestamp);
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
  });

  it('queues only actionSteps actions of each chunk', async () => {
    const policy = new FakePolicy({ script: [0.9, 0.9] });
    const server = new PolicyServer(policy, { reuseSteps: 0, actionSteps: 2 });
    const r = await run(server, 3);
    expect(r.map((x) => x.decision.kind + (x.decision.reason ? `:${x.decision.reason}` : ''))).toEqual(['miss:first', 'hit-skip', 'miss:queue-empty']);
    expect(act(r[2]!)).toEqual(row(2, 0));
  });

  it('rejects actionSteps above the chunk size when the first chunk arrives', async () => {
    const server = new PolicyServer(new FakePolicy(), { actionSteps: CHUNK + 1 });
    await expect(server.step('obs')).rejects.toThrow(`actionSteps: ${CHUNK + 1} exceeds the chunk size ${CHUNK}`);
  });
});

describe('PolicyServer reuse', () => {
  it('skips the prefix pass for reuseSteps calls after a hit, then checks again', async () => {
    const policy = new FakePolicy({ script: [0.9, 0.1, 0.9], config: { chunkSize: 8, nActionSteps: 8 } });
    const server = new PolicyServer(policy, { reuseSteps: 2 });
    const r = await run(server, 6);
    expect(r.map((x) => x.decision.kind)).toEqual(['miss', 'hit-skip', 'reuse', 'reuse', 'miss', 'hit-skip']);
    expect(r[4]!.decision.reason).toBe('scene-changed');
    // Calls 3 and 4 ran no prefix pass; a scene change grants no reuse, so call 6 checks again.
    expect(policy.calls.prefix).toBe(4);
    expect(r[2]!.similarity).toBeNull();
    expect(r.slice(0, 4).map((x) => act(x))).toEqual([row(1, 0), row(1, 1), row(1, 2), row(1, 3)]);
    expect(r.map((x) => x.stats.byKind.reuse.count)).toEqual([0, 0, 1, 2, 2, 2]);
  });

  it('validates the observation of a reuse step like any other', async () => {
    const policy = new FakePolicy({ script: [0.9], config: { chunkSize: 8, nActionSteps: 8 } });
    const server = new PolicyServer(policy, { reuseSteps: 2 });
    await run(server, 2); // miss, hit: the next two calls would reuse
    await expect(server.step(null)).rejects.toThrow('batch: expected an observation');
    const twoRobots = { 'observation.state': Tensor.from(new Float32Array(6), [2, 3]) };
    await expect(server.step(twoRobots)).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT', message: expect.stringContaining('2 robot(s), but the queued actions are for 1') });
    expect(server.pendingReuse).toBe(2);
    expect((await server.step('obs')).decision.kind).toBe('reuse');
    expect(policy.validated).toEqual([twoRobots, 'obs']);
  });

  it('never queues or serves a non-finite action', async () => {
    const policy = new FakePolicy();
    const original = policy.predictActionChunk.bind(policy);
    policy.predictActionChunk = async (batch, options) => {
      const r = await original(batch, options);
      if (r.actions.length > 0) r.actions[0]![3] = Number.NaN;
      return r;
    };
    const server = new PolicyServer(policy, { reuseSteps: 0 });
    await expect(server.step('obs')).rejects.toMatchObject({ code: 'ERR_SMOLVLA_NOT_FINITE', message: expect.stringContaining("NaN in robot 0's actions (index 3)") });
    expect(server.queuedActions).toBe(0);
  });

  it('does not reuse after a first call or when the queue is empty', async () => {
    const policy = new FakePolicy({ script: [0.9, 0.9], config: { chunkSize: 2, nActionSteps: 2 } });
    const server = new PolicyServer(policy, { reuseSteps: 5 });
    const r = await run(server, 3);
    // Call 2 is a hit that empties the queue; call 3 must check and sample instead of reusing.
    expect(r.map((x) => x.decision.kind + (x.decision.reason ? `:${x.decision.reason}` : ''))).toEqual(['miss:first', 'hit-skip', 'miss:queue-empty']);
    expect(server.pendingReuse).toBe(5);
  });
});

describe('PolicyServer refine mode', () => {
  it('adds one delta step to the queued actions on hits and on reuse, padding x by repeating the last', async () => {
    const policy = new FakePolicy({ script: [0.9] });
    const server = new PolicyServer(policy, { hitMode: 'refine', reuseSteps: 1 });
    const r = await run(server, 3);
    expect(r.map((x) => x.decision.kind)).toEqual(['miss', 'hit-refine', 'reuse']);
    // model = (robot - 1) / 2 and the fake delta is +0.25 in model space: +0.5 per refinement.
    expect(act(r[1]!)).toEqual(row(1, 1, 0, 2 * DELTA));
    expect(act(r[2]!)).toEqual(row(1, 2, 0, 4 * DELTA));
    expect(policy.calls.delta).toBe(2);
    // First refinement: queue = chunk 1 steps 1..3, padded to C = 4 by repeating step 3.
    const x = policy.deltaInputs[0]!;
    const expected = [1, 2, 3, 3].flatMap((k) => [...row(1, k).map((v) => (v - 1) / 2), 0, 0]);
    expect(Array.from(x)).toEqual(expected);
    expect(x.length).toBe(CHUNK * MODEL_DIM);
  });

  it('needs deltaStep and splitActions for refine', () => {
    const policy = new FakePolicy();
    Object.defineProperty(policy, 'splitActions', { value: undefined });
    expect(() => new PolicyServer(policy, { hitMode: 'refine' })).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT', message: expect.stringMatching(/hitMode .*deltaStep and splitActions/) }));
  });
});

describe('PolicyServer batch rule', () => {
  it.each([
    ['batch-mean', 'hit-skip'],
    ['every-robot', 'miss'],
  ] as const)('%s: one robot changing while the mean stays above the threshold -> %s', async (rule, kind) => {
    const policy = new FakePolicy({ batch: 2, script: [[0.95, 0.2]] });
    const server = new PolicyServer(policy, { rule, reuseSteps: 0 });
    const r = await run(server, 2);
    expect(r[1]!.decision.kind).toBe(kind);
    expect(r[1]!.similarity!.perSample).toEqual([expect.closeTo(0.95, 6), expect.closeTo(0.2, 6)]);
    expect(r[1]!.actions.map((a) => Array.from(a))).toEqual(kind === 'miss' ? [row(2, 0, 0), row(2, 0, 1)] : [row(1, 1, 0), row(1, 1, 1)]);
  });
});

describe('PolicyServer adaptive threshold', () => {
  it('raises the policy threshold when the hit rate is above 0.8 and lowers it below 0.3', async () => {
    const policy = new FakePolicy({ script: [...new Array(4).fill(0.9), ...new Array(4).fill(0.52)], config: { chunkSize: 50, nActionSteps: 50 } });
    const server = new PolicyServer(policy, { reuseSteps: 0, adaptive: { window: 4 } });
    const r = await run(server, 9);
    expect(r[4]!.adjustment).toEqual({ from: 0.5, to: 0.55, hitRate: 1, direction: 'raise' });
    expect(r.map((x) => x.threshold)).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.55, 0.55, 0.55, 0.55]);
    // 0.52 is below 0.55: four misses, rate 0 -> lowered back.
    expect(r[8]!.adjustment).toEqual({ from: 0.55, to: 0.5, hitRate: 0, direction: 'lower' });
    expect(policy.clsThreshold).toBe(0.5);
  });

  it('accepts a shared controller', async () => {
    const controller = new AdaptiveThreshold({ window: 2 });
    const policy = new FakePolicy({ script: [0.9, 0.9] });
    const server = new PolicyServer(policy, { reuseSteps: 0, adaptive: controller });
    await run(server, 3);
    expect(policy.clsThreshold).toBe(0.55);
  });
});

describe('PolicyServer lifecycle', () => {
  it('reset clears both queues (disposing caches), the policy state and the statistics', async () => {
    const policy = new FakePolicy({ script: [0.9] });
    const server = new PolicyServer(policy);
    await run(server, 2);
    await server.reset();
    expect(policy.caches.every((c) => c.disposed)).toBe(true);
    expect(server.queuedActions).toBe(0);
    expect(server.cacheEntries).toHaveLength(0);
    expect(server.pendingReuse).toBe(0);
    expect(policy.calls.reset).toBe(1);
    expect(server.stats.summary().steps).toBe(0);
    const r = await server.step('again');
    expect(r.decision).toEqual({ kind: 'miss', reason: 'first' });
  });

  it('reset({ keepStats }) keeps counting and starts a new episode', async () => {
    const server = new PolicyServer(new FakePolicy({ script: [0.9] }));
    await run(server, 2);
    await server.reset({ keepStats: true });
    await server.step('again');
    const s = server.stats.snapshot();
    expect(s.steps).toBe(3);
    expect(s.episodes).toBe(2);
    expect(s.history.map((h) => h.episode)).toEqual([0, 0, 1]);
  });

  it('serialises concurrent callers', async () => {
    const policy = new FakePolicy({ script: [0.9, 0.9], gate: () => new Promise((r) => setImmediate(r)) });
    const server = new PolicyServer(policy, { reuseSteps: 0 });
    const r = await Promise.all([server.step('a'), server.step('b'), server.step('c')]);
    expect(policy.batches).toEqual(['a', 'a', 'b', 'c']);
    expect(r.map((x) => act(x))).toEqual([row(1, 0), row(1, 1), row(1, 2)]);
  });

  it('leaves its state alone and frees the cache when sampling fails', async () => {
    const policy = new FakePolicy({ script: [0.1] });
    const server = new PolicyServer(policy, { reuseSteps: 0 });
    await server.step('a');
    const original = policy.predictActionChunk.bind(policy);
    policy.predictActionChunk = async (batch, options) => {
      if (options?.pastKeyValues) throw new Error('sampling failed');
      return original(batch, options);
    };
    await expect(server.step('b')).rejects.toThrow('sampling failed');
    expect(policy.caches[1]!.disposed).toBe(true);
    expect(server.queuedActions).toBe(CHUNK - 1);
    expect(server.cacheEntries).toHaveLength(1);
    expect(server.stats.summary().steps).toBe(1);
  });

  it('refuses a policy without the CLS head and bad options, naming them', () => {
    expect(() => new PolicyServer(new FakePolicy({ config: { useClsHead: false } }))).toThrow('policy.config.useClsHead is false');
    expect(() => new PolicyServer(new FakePolicy(), { maxCacheEntries: 0 })).toThrow('maxCacheEntries: expected an integer >= 1, got 0');
    expect(() => new PolicyServer(new FakePolicy(), { reuseSteps: 1.5 })).toThrow('reuseSteps');
    expect(() => new PolicyServer(new FakePolicy(), { hitMode: 'fast' as never })).toThrow("hitMode: expected 'skip' or 'refine', got fast");
    expect(() => new PolicyServer(new FakePolicy(), { rule: 'max' as never })).toThrow('rule');
  });

  it('refuses calls after dispose() and frees the caches', async () => {
    const policy = new FakePolicy();
    const server = new PolicyServer(policy);
    await server.step('a');
    await server.dispose();
    expect(policy.caches[0]!.disposed).toBe(true);
    await expect(server.step('b')).rejects.toThrow('used after dispose()');
  });
});
