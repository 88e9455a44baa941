/**
 * A scripted PolicyLike for the serving tests: similarities come from a script, chunks are
 * recognisable numbers, normalisation is model = (robot − 1) / 2, and the fake delta expert adds
 * 0.25 in model space (= +0.5 in robot space).
 */
import { defaultConfig, type SmolVLAConfig } from '../../lib/config';
import type { KVCache } from '../../lib/model';
import type { PolicyLike, PolicyLikePredictOptions, PolicyLikeResult } from '../../lib/serving';
import { Tensor } from '../../lib/tensor';

export interface FakeCache {
  id: number;
  disposed: boolean;
  dispose(): void;
  padMasks(): Tensor;
}

export const CHUNK = 4;
export const MODEL_DIM = 6;
export const ACTION_DIM = 4;
export const DELTA = 0.25;

/** Robot-space value of chunk n (1-based), robot b, step k, dimension j. */
export function chunkValue(n: number, b: number, k: number, j: number): number {
  return 1000 * n + 100 * b + 10 * k + j;
}

export interface FakeOptions {
  batch?: number;
  config?: Partial<SmolVLAConfig>;
  /** Similarity per checked call after the first (a number for every robot, or per robot). */
  script?: Array<number | number[]>;
  /** Makes predictActionChunk wait for this before answering (concurrency tests). */
  gate?: () => Promise<void>;
}

export class FakePolicy implements PolicyLike {
  readonly config: SmolVLAConfig;
  clsThreshold: number;
  /** Robots: FakeOptions.batch, or the first axis of a batch's `observation.state` tensor. */
  batch: number;
  /** config.chunkSize (CHUNK unless overridden). */
  readonly chunk: number;
  readonly script: Array<number | number[]>;
  readonly calls = { prefix: 0, sample: 0, delta: 0, reset: 0 };
  readonly caches: FakeCache[] = [];
  readonly batches: unknown[] = [];
  /** The cache each sampling call decoded against. */
  readonly sampledWith: number[] = [];
  /** The x of each deltaStep call, (B, C, A) flattened. */
  readonly deltaInputs: Float32Array[] = [];
  private hasPrevious = false;
  private readonly gate: (() => Promise<void>) | undefined;

  constructor(options: FakeOptions = {}) {
    this.config = defaultConfig({ useClsHead: true, chunkSize: CHUNK, nActionSteps: CHUNK, maxActionDim: MODEL_DIM, ...options.config });
    this.clsThreshold = this.config.clsSimilarityThreshold;
    this.batch = options.batch ?? 1;
    this.chunk = this.config.chunkSize;
    this.script = [...(options.script ?? [])];
    this.gate = options.gate;
  }

  async deltaStep(cache: KVCache, x: Tensor): Promise<Tensor> {
    if ((cache as unknown as FakeCache).disposed) throw new Error('deltaStep on a disposed cache');
    this.calls.delta++;
    this.deltaInputs.push(x.toFloat32().slice());
    expectShape(x.shape, [this.batch, this.chunk, MODEL_DIM]);
    return Tensor.from(new Float32Array(x.numel).fill(DELTA), x.shape);
  }

  reset(): void {
    this.calls.reset++;
    this.hasPrevious = false;
  }

  /** Robot space -> (B, n, MODEL_DIM) model space, zero-padded. */
  toModel(a: Float32Array[]): Tensor {
    const n = a[0]!.length / ACTION_DIM;
    const out = new Float32Array(a.length * n * MODEL_DIM);
    a.forEach((rows, b) => {
      for (let k = 0; k < n; k++) for (let j = 0; j < ACTION_DIM; j++) out[(b * n + k) * MODEL_DIM + j] = (rows[k * ACTION_DIM + j]! - 1) / 2;
    });
    return Tensor.from(out, [a.length, n, MODEL_DIM]);
  }

  /** (B, n, MODEL_DIM) model space -> per robot n x ACTION_DIM robot space. */
  splitActions(t: Tensor): Float32Array[] {
    const [b, n] = t.shape as [number, number];
    const d = t.toFloat32();
    return Array.from({ length: b }, (_, i) => {
      const rows = new Float32Array(n * ACTION_DIM);
      for (let k = 0; k < n; k++) for (let j = 0; j < ACTION_DIM; j++) rows[k * ACTION_DIM + j] = 2 * d[(i * n + k) * MODEL_DIM + j]! + 1;
      return rows;
    });
  }

  /** Batches validated by reuse steps. */
  readonly validated: unknown[] = [];

  /** Like SmolVLAPolicy.validate: refuses null/undefined; robots from observation.state's first axis. */
  validate(batch: unknown): number {
    if (batch === null || batch === undefined) throw new Error('batch: expected an observation');
    this.validated.push(batch);
    const state = (batch as Record<string, unknown>)['observation.state'];
    return state instanceof Tensor ? state.shape[0]! : this.batch;
  }

  async predictActionChunk(batch: unknown, options: PolicyLikePredictOptions = {}): Promise<PolicyLikeResult> {
    this.batches.push(batch);
    const state = (batch as Record<string, unknown> | null)?.['observation.state'];
    if (state instanceof Tensor) this.batch = state.shape[0]!;
    if (this.gate) await this.gate();
    if (options.calCache) return this.check();
    if (!options.pastKeyValues) throw new Error('FakePolicy: the server should always sample from a cache');
    const cache = options.pastKeyValues as unknown as FakeCache;
    if (cache.disposed) throw new Error('sampling from a disposed cache');
    this.sampledWith.push(cache.id);
    const n = ++this.calls.sample;
    const actions = Array.from({ length: this.batch }, (_, b) => {
      const rows = new Float32Array(this.chunk * ACTION_DIM);
      for (let k = 0; k < this.chunk; k++) for (let j = 0; j < ACTION_DIM; j++) rows[k * ACTION_DIM + j] = chunkValue(n, b, k, j);
      return rows;
    });
    return {
      actions,
      actionsTensor: this.toModel(actions),
      similarity: null,
      shouldCache: true,
      perSampleShouldCache: null,
    };
  }

  private check(): PolicyLikeResult {
    this.calls.prefix++;
    const id = this.caches.length;
    const cache: FakeCache = {
      id,
      disposed: false,
      dispose() {
        this.disposed = true;
      },
      padMasks: () => Tensor.fromBools([1, 1, 0], [1, 3]),
    };
    this.caches.push(cache);
    const base = {
      actions: [],
      obsClsOut: Tensor.from(new Float32Array(this.batch * 2 * 3).fill(id), [this.batch, 2, 3]),
      cache: cache as unknown as KVCache,
    };
    if (!this.hasPrevious) {
      this.hasPrevious = true;
      return { ...base, similarity: null, shouldCache: true, perSampleShouldCache: null };
    }
    const next = this.script.shift();
    if (next === undefined) throw new Error('FakePolicy: similarity script exhausted');
    const per = Float32Array.from(typeof next === 'number' ? Array.from({ length: this.batch }, () => next) : next);
    const mean = per.reduce((a, b) => a + b, 0) / per.length;
    return {
      ...base,
      similarity: { mean, perSample: per },
      shouldCache: mean > this.clsThreshold,
      perSampleShouldCache: Array.from(per, (s) => s > this.clsThreshold),
    };
  }
}

function expectShape(actual: number[], expected: number[]): void {
  if (actual.join(',') !== expected.join(',')) throw new Error(`shape [${actual.join(', ')}], expected [${expected.join(', ')}]`);
}
