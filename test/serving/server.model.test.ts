/**
 * PolicyServer with the real tiny model (fixture tiny_delta: CLS head on, B = 4, C = 8, A = 6,
 * action dim 4) behind a minimal PolicyLike wrapper (identity normalisation, observations already
 * preprocessed). Checks that every decision kind flows through native prefix passes, sampling from
 * the cache and delta steps, and that refined actions equal x + deltaStep(cache, x) within 1e-5
 * (float32, a single extra operation).
 */
import { ops, Tensor, type KVCache, type Observation, type SmolVLAModel } from '../../lib/index';
import { PolicyServer, calibratePolicy, type PolicyLike, type PolicyLikePredictOptions, type PolicyLikeResult } from '../../lib/serving';
import { loadModelFixture, type ModelFixture } from '../modelFixtures';

const ACTION_DIM = 4;

/** The least a policy needs for the server: batches are Observations, actions are not normalised. */
class TinyPolicy implements PolicyLike {
  readonly config: PolicyLike['config'];
  clsThreshold: number;
  private previous: Tensor | null = null;

  constructor(readonly model: SmolVLAModel) {
    this.config = model.config;
    this.clsThreshold = model.config.clsSimilarityThreshold;
  }

  reset(): void {
    this.previous = null;
  }

  /** Robots of an Observation (its state's first axis); reuse steps call it. */
  validate(batch: unknown): number {
    return (batch as Observation).state.shape[0]!;
  }

  /** (B, n, A) -> per robot n x ACTION_DIM (identity normalisation: a crop). */
  splitActions(t: Tensor): Float32Array[] {
    const [B, n, A] = t.shape as [number, number, number];
    const flat = t.toFloat32();
    return Array.from({ length: B }, (_, b) => {
      const rows = new Float32Array(n * ACTION_DIM);
      for (let k = 0; k < n; k++) rows.set(flat.subarray((b * n + k) * A, (b * n + k) * A + ACTION_DIM), k * ACTION_DIM);
      return rows;
    });
  }

  deltaStep(cache: KVCache, x: Tensor): Promise<Tensor> {
    return this.model.deltaStep(cache, x);
  }

  async predictActionChunk(batch: unknown, options: PolicyLikePredictOptions = {}): Promise<PolicyLikeResult> {
    const obs = batch as Observation;
    if (options.pastKeyValues) {
      const { actions } = await this.model.sample(options.pastKeyValues, { noise: options.noise });
      return { actions: this.splitActions(actions), actionsTensor: actions, similarity: null, shouldCache: true, perSampleShouldCache: null };
    }
    if (!options.calCache) throw new Error('TinyPolicy: only calCache and cached sampling are wired');
    const cache = await this.model.prefix(obs);
    const cls = cache.obsClsOut()!;
    const base = { actions: [], obsClsOut: cls, cache };
    const previous = this.previous;
    // A second handle: the caller owns (and disposes) the returned one.
    this.previous = cache.obsClsOut();
    if (!previous) return { ...base, similarity: null, shouldCache: true, perSampleShouldCache: null };
    const sim = ops.clsSimilarity(cls, previous);
    previous.dispose();
    return {
      ...base,
      similarity: sim,
      shouldCache: sim.mean > this.clsThreshold,
      perSampleShouldCache: Array.from(sim.perSample, (s) => s > this.clsThreshold),
    };
  }
}

/** The same observation with other images and state: a different scene. */
function changedScene(obs: Observation): Observation {
  const flip = (t: Tensor) => Tensor.from(Float32Array.from(t.toFloat32(), (v) => -v), t.shape);
  return { ...obs, images: obs.images.map(flip), state: flip(obs.state) };
}

describe('PolicyServer with the tiny model', () => {
  let f: ModelFixture;
  beforeAll(async () => {
    f = await loadModelFixture('tiny_delta');
  });

  it('flows miss -> hit-refine -> reuse -> scene change through the native model', async () => {
    const policy = new TinyPolicy(f.model);
    const server = new PolicyServer(policy, { hitMode: 'refine', reuseSteps: 1, maxCacheEntries: 2 });
    const noise = f.io.get('in.noise');

    policy.clsThreshold = -2; // every similarity is above: hits
    const miss = await server.step(f.obs, { noise });
    expect(miss.decision).toEqual({ kind: 'miss', reason: 'first' });
    expect(miss.actions).toHaveLength(4);
    expect(miss.actions.every((a) => a.length === ACTION_DIM && a.every(Number.isFinite))).toBe(true);
    const { actions: chunk } = await f.model.sample(f.obs, { noise });
    const C = 8;
    const A = 6;
    const chunkData = chunk.toFloat32();
    // Sampling from the cache of the check pass equals sampling from the observation.
    for (let b = 0; b < 4; b++) {
      for (let j = 0; j < ACTION_DIM; j++) expect(miss.actions[b]![j]).toBeCloseTo(chunkData[b * C * A + j]!, 5);
    }

    const hit = await server.step(f.obs);
    expect(hit.decision.kind).toBe('hit-refine');
    expect(hit.similarity!.perSample).toHaveLength(4);
    // Recompute the refinement: x = chunk steps 1..7 padded with step 7, against this call's cache.
    const newest = server.cacheEntries[server.cacheEntries.length - 1]!;
    const x = new Float32Array(4 * C * A);
    for (let b = 0; b < 4; b++) {
      for (let k = 0; k < C; k++) {
        const src = Math.min(k + 1, C - 1);
        x.set(chunkData.subarray((b * C + src) * A, (b * C + src + 1) * A), (b * C + k) * A);
      }
    }
    const xt = Tensor.from(x, [4, C, A]);
    const v = (await f.model.deltaStep(newest.cache, xt)).toFloat32();
    for (let b = 0; b < 4; b++) {
      for (let j = 0; j < ACTION_DIM; j++) {
        const i = b * C * A + j;
        expect(Math.abs(hit.actions[b]![j]! - (x[i]! + v[i]!))).toBeLessThan(1e-5);
      }
    }
    expect(v.some((d) => Math.abs(d) > 1e-6)).toBe(true);

    const reuse = await server.step(f.obs);
    expect(reuse.decision.kind).toBe('reuse');
    expect(reuse.similarity).toBeNull();
    expect(server.cacheEntries).toHaveLength(2);

    policy.clsThreshold = 2; // nothing is above: scene change
    const held: KVCache[] = server.cacheEntries.map((e) => e.cache);
    const changed = await server.step(changedScene(f.obs), { noise });
    expect(changed.decision).toEqual({ kind: 'miss', reason: 'scene-changed' });
    expect(changed.cacheEntries).toBe(0);
    expect(held.every((c) => c.disposed)).toBe(true);
    expect(server.stats.summary()).toMatchObject({ steps: 4, checks: 2, cached: 1, notCached: 1 });
    await server.dispose();
  });

  it('calibrates a threshold from the model with one prefix pass per frame', async () => {
    const policy = new TinyPolicy(f.model);
    const other = changedScene(f.obs);
    const c = await calibratePolicy(policy, { unchanged: [[f.obs, f.obs]], changed: [[f.obs, other]] });
    expect(c.unchangedSimilarities).toHaveLength(4);
    expect(c.changedSimilarities).toHaveLength(4);
    expect(c.threshold).toBeGreaterThanOrEqual(-1);
    expect(c.threshold).toBeLessThanOrEqual(1);
    expect(c.balancedAccuracy).toBeGreaterThanOrEqual(0.5);
  });
});
