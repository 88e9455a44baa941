/**
 * PolicyServer: the inference guide's policy server as an in-process control-loop helper.
 *
 * The guide's server keeps a bounded queue of KV caches and clears it on a scene change; its
 * "advanced" version runs the prefix twice per step. Here each checked call runs ONE prefix pass
 * (`calCache` with the similarity), and the decision uses it to save compute where the cost is
 * (prefix ≈ 70 % of a step, the 10-step decode ≈ 30 %, one delta step ≈ 3 %):
 *
 * - **miss** — the first call, a scene change, or a stable scene whose queued chunk ran out: sample
 *   a new chunk by decoding against the fresh cache; it replaces the action queue.
 * - **hit-skip** — similarity above the threshold: no denoising; keep executing the queued chunk.
 * - **hit-refine** — the same plus one delta-expert step on the queued actions (x = the next C queued
 *   actions in model space, padded by repeating the last; refined = x + deltaStep(cache, x)), the
 *   correction the delta expert was trained to predict.
 * - **reuse** — after a hit, the next `reuseSteps` calls skip the prefix pass too. In refine mode
 *   they refine against the newest queued cache; in skip mode they only pop the next action. The
 *   cached prefix holds the state token of the step it was made at, so reuse acts on THAT robot
 *   state, not the current one: keep `reuseSteps` small (default 2). The next check then compares
 *   with the CLS output of the last checked call (reuse calls make none), i.e. across
 *   reuseSteps + 1 control steps.
 */
import type { SmolVLAConfig } from '../config';
import { argumentError, SmolVLAError } from '../errors';
import type { KVCache, RtcOptions } from '../model';
import { Tensor } from '../tensor';
import { AdaptiveThreshold, type AdaptiveThresholdOptions, type ThresholdAdjustment } from './adaptive';
import { SerialQueue } from '../util/serial';
import { checkScene, deltaRefine } from './sceneCheck';
import { ServingStats, type DecisionKind, type MissReason, type StatsSummary } from './stats';

/** Options of `PolicyLike.predictActionChunk` (the policy's own names). */
export interface PolicyLikePredictOptions {
  computeClsSimilarity?: boolean;
  /** Prefix pass only: return the cache (and, with the similarity, the decision) instead of sampling. */
  calCache?: boolean;
  /** Decode against this cache instead of running the prefix pass. */
  pastKeyValues?: KVCache;
  noise?: Tensor;
  /** Real-Time Chunking guidance of the sampled chunk (lib/model/rtc.ts). */
  rtc?: RtcOptions;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface PolicyLikeResult {
  /** Per robot: C x actionDim, un-normalised (robot space). */
  actions: Float32Array[];
  /** (B, C, A) model space; absent with calCache (nothing is sampled). */
  actionsTensor?: Tensor;
  obsClsOut?: Tensor;
  similarity: { mean: number; perSample: Float32Array } | null;
  shouldCache: boolean;
  perSampleShouldCache: boolean[] | null;
  /** calCache only; the caller owns it (and disposes it). */
  cache?: KVCache;
  deltaActions?: Tensor;
}

/**
 * What the server needs of a policy (SmolVLAPolicy implements it). Ownership: the caller owns
 * (and disposes) what a call returns — `cache`, `obsClsOut`, `actionsTensor`, `deltaActions`; the
 * policy keeps its own handle of the previous CLS output.
 */
export interface PolicyLike {
  config: SmolVLAConfig;
  predictActionChunk(batch: unknown, options?: PolicyLikePredictOptions): Promise<PolicyLikeResult>;
  /** Clears the stored previous CLS output (every episode start). */
  reset(): void;
  /** The similarity threshold used for `shouldCache` (settable: the adaptive controller moves it). */
  clsThreshold: number;
  /**
   * Refine mode: the delta expert's velocity for model-space actions x (B, C, A) at t = 0.5 against
   * `cache` (the caller owns the returned tensor).
   */
  deltaStep?(cache: KVCache, x: Tensor): Promise<Tensor>;
  /**
   * Refine mode: model-space actions (B, n, A) -> per robot n x actionDim, cropped and
   * un-normalised exactly as sampled chunks are (SmolVLAPolicy's resolves: it runs natively).
   */
  splitActions?(actions: Tensor): Float32Array[] | Promise<Float32Array[]>;
  /**
   * Checks an observation batch exactly as predictActionChunk would, without running the model,
   * and returns its number of robots. Reuse steps (no prefix pass) call it so that a bad
   * observation is refused there too; a policy without it gets no reuse steps.
   */
  validate?(batch: unknown): number | Promise<number>;
}

/** A KV-cache queue entry (the guide's cache_item). The cache stays native, never copied to JS. */
export interface CacheEntry {
  /** (B, Ncp, Dv): the prefix CLS outputs of the pass that made `cache`. */
  obsClsOut: Tensor | null;
  /** ms since the epoch. */
  timestamp: number;
  cache: KVCache;
  /** (B, P) bool. */
  prefixPadMask: Tensor;
}

export type HitMode = 'skip' | 'refine';

/**
 * How the batch decides: 'batch-mean' is the published rule (mean similarity > threshold);
 * 'every-robot' also needs every robot's own similarity above it, so one robot's scene change is
 * not averaged away (the guide's batching caveat).
 */
export type DecisionRule = 'batch-mean' | 'every-robot';

export interface PolicyServerOptions {
  /** KV-cache queue length (default 10). */
  maxCacheEntries?: number;
  /** What a hit does with the queued chunk (default 'skip'). 'refine' needs policy.deltaStep and policy.splitActions. */
  hitMode?: HitMode;
  /** Calls after a hit that skip the prefix pass (default 2; 0 disables reuse). */
  reuseSteps?: number;
  /** Actions of a new chunk that are queued (default config.nActionSteps, at most the chunk size). */
  actionSteps?: number;
  rule?: DecisionRule;
  /** Adjust policy.clsThreshold from the hit rate: true for the defaults, or options / a controller. */
  adaptive?: boolean | AdaptiveThresholdOptions | AdaptiveThreshold;
  /** Calls kept in the statistics history (default 1000). */
  historySize?: number;
  /** Clock for timestamps, ms since the epoch (default Date.now). */
  now?: () => number;
}

export interface ServerStepOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Noise for a miss's sampling (B, C, A); never modified. */
  noise?: Tensor;
}

export interface ServerDecision {
  kind: DecisionKind;
  /** Set for misses only. */
  reason: MissReason | null;
}

export interface ServerStepResult {
  /** The action to execute now, per robot (actionDim values, robot space). */
  actions: Float32Array[];
  decision: ServerDecision;
  /** Null on a first call and on reuse. */
  similarity: { mean: number; perSample: number[] } | null;
  /** The threshold this call was decided with. */
  threshold: number;
  /** Set when the adaptive controller moved the threshold after this call. */
  adjustment: ThresholdAdjustment | null;
  /** Actions left in the queue after this one. */
  queuedActions: number;
  cacheEntries: number;
  stats: StatsSummary;
}

/** One time step of the queued chunk for the whole batch. */
interface QueuedAction {
  /** B x A, model space (the delta expert's input in refine mode). */
  model: Float32Array;
  /** B x actionDim, robot space (what is executed). */
  robot: Float32Array;
}

interface ChunkShape {
  batch: number;
  chunk: number;
  modelDim: number;
  actionDim: number;
}

function checkInteger(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyServer ${name}: expected an integer >= ${min}, got ${String(value)}`);
  return value;
}

export class PolicyServer implements AsyncDisposable {
  readonly policy: PolicyLike;
  readonly stats: ServingStats;
  readonly maxCacheEntries: number;
  readonly hitMode: HitMode;
  readonly reuseSteps: number;
  readonly actionSteps: number;
  readonly rule: DecisionRule;
  readonly adaptive: AdaptiveThreshold | null;
  private readonly now: () => number;
  private cacheQueue: CacheEntry[] = [];
  private actionQueue: QueuedAction[] = [];
  private shape: ChunkShape | null = null;
  private reuseLeft = 0;
  private readonly serial = new SerialQueue();
  private disposed = false;

  constructor(policy: PolicyLike, options: PolicyServerOptions = {}) {
    if (!policy.config.useClsHead) {
      throw new SmolVLAError('ERR_SMOLVLA_CONFIG', 'PolicyServer: policy.config.useClsHead is false; the hit/miss decisions need the CLS similarity');
    }
    this.policy = policy;
    this.maxCacheEntries = checkInteger('maxCacheEntries', options.maxCacheEntries ?? 10, 1);
    this.reuseSteps = checkInteger('reuseSteps', options.reuseSteps ?? 2, 0);
    this.actionSteps = checkInteger('actionSteps', options.actionSteps ?? policy.config.nActionSteps, 1);
    const hitMode = options.hitMode ?? 'skip';
    if (hitMode !== 'skip' && hitMode !== 'refine') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyServer hitMode: expected 'skip' or 'refine', got ${String(hitMode)}`);
    if (hitMode === 'refine' && (typeof policy.deltaStep !== 'function' || typeof policy.splitActions !== 'function')) {
      throw argumentError('hitMode', "'skip' for a policy without deltaStep and splitActions ('refine' corrects the queued actions with the delta expert and maps them back to robot space)", hitMode);
    }
    this.hitMode = hitMode;
    const rule = options.rule ?? 'batch-mean';
    if (rule !== 'batch-mean' && rule !== 'every-robot') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyServer rule: expected 'batch-mean' or 'every-robot', got ${String(rule)}`);
    this.rule = rule;
    const adaptive = options.adaptive ?? false;
    this.adaptive = adaptive instanceof AdaptiveThreshold ? adaptive : adaptive === false ? null : new AdaptiveThreshold(adaptive === true ? {} : adaptive);
    this.stats = new ServingStats({ historySize: options.historySize ?? 1000 });
    this.now = options.now ?? Date.now;
  }

  /** Actions left in the queue. */
  get queuedActions(): number {
    return this.actionQueue.length;
  }

  /** The KV-cache queue, oldest first (a copy of the list; the entries are the live ones). */
  get cacheEntries(): readonly CacheEntry[] {
    return [...this.cacheQueue];
  }

  /** Calls left that will reuse the queued cache without a prefix pass. */
  get pendingReuse(): number {
    return this.reuseLeft;
  }

  /**
   * Serves one control-loop tick: `batch` is the policy's observation batch. Calls are serialised
   * (a second caller waits for the first), never interleaved.
   */
  step(batch: unknown, options: ServerStepOptions = {}): Promise<ServerStepResult> {
    return this.serialised(() => this.serve(batch, options));
  }

  /**
   * New episode: clears the action queue, the KV-cache queue (disposing the caches), pending
   * reuse, the policy's previous CLS output and the adaptive window. Statistics are cleared too
   * unless `keepStats` (then an episode boundary is recorded). The threshold keeps its value.
   */
  reset(options: { keepStats?: boolean } = {}): Promise<void> {
    return this.serialised(async () => {
      this.clearEpisode();
      if (options.keepStats) this.stats.newEpisode();
      else this.stats.clear();
    });
  }

  /**
   * Frees the queued caches once the calls already queued have run; the server refuses further calls
   * (ERR_SMOLVLA_DISPOSED). The policy stays the caller's: dispose it separately. `await using`
   * calls this too.
   */
  dispose(): Promise<void> {
    return this.serialised(async () => {
      this.clearEpisode();
      this.disposed = true;
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private clearEpisode(): void {
    this.clearCacheQueue();
    this.actionQueue = [];
    this.shape = null;
    this.reuseLeft = 0;
    this.policy.reset();
    this.adaptive?.reset();
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    return this.serial.run(() => {
      if (this.disposed) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'PolicyServer: used after dispose()');
      return work();
    });
  }

  private async serve(batch: unknown, options: ServerStepOptions): Promise<ServerStepResult> {
    const started = performance.now();
    const threshold = this.policy.clsThreshold;
    const newest = this.cacheQueue[this.cacheQueue.length - 1];
    if (this.reuseLeft > 0 && this.actionQueue.length > 0 && newest && this.policy.validate) {
      // Reuse skips the model, not the checks: the observation is validated like any step's.
      const robots = await this.policy.validate(batch);
      if (robots !== this.shape?.batch) {
        throw new SmolVLAError(
          'ERR_SMOLVLA_ARGUMENT',
          `batch: ${robots} robot(s), but the queued actions are for ${this.shape?.batch ?? 0}; call reset() when the robots change`,
        );
      }
      if (this.hitMode === 'refine') await this.refine(newest.cache);
      this.reuseLeft--;
      return this.finish({ kind: 'reuse', reason: null }, null, null, threshold, started);
    }

    const checked = await checkScene(this.policy, batch, this.rule, options, 'PolicyServer');
    const cache = checked.cache;
    const similarity = checked.similarity;
    const hit = checked.hit;
    let decision: ServerDecision;
    try {
      if (hit && similarity !== null && this.actionQueue.length > 0) {
        decision = { kind: this.hitMode === 'refine' ? 'hit-refine' : 'hit-skip', reason: null };
        if (this.hitMode === 'refine') await this.refine(cache);
      } else {
        decision = { kind: 'miss', reason: similarity === null ? 'first' : hit ? 'queue-empty' : 'scene-changed' };
        const sampled = await this.policy.predictActionChunk(batch, {
          pastKeyValues: cache,
          noise: options.noise,
          signal: options.signal,
          timeoutMs: options.timeoutMs,
        });
        if (sampled.cache && sampled.cache !== cache) sampled.cache.dispose();
        this.replaceQueue(sampled);
      }
    } catch (err) {
      cache.dispose();
      checked.obsClsOut?.dispose();
      throw err;
    }

    // The guide's queue: append on should_cache (dropping the oldest), clear on a scene change.
    if (hit) {
      this.cacheQueue.push({
        obsClsOut: checked.obsClsOut,
        timestamp: this.now(),
        cache,
        prefixPadMask: cache.padMasks(),
      });
      while (this.cacheQueue.length > this.maxCacheEntries) disposeEntry(this.cacheQueue.shift()!);
    } else {
      this.clearCacheQueue();
      cache.dispose();
      checked.obsClsOut?.dispose();
    }
    this.reuseLeft = hit && similarity !== null ? this.reuseSteps : 0;
    const measured = similarity ? { mean: similarity.mean, perSample: Array.from(similarity.perSample) } : null;
    return this.finish(decision, measured, similarity ? hit : null, threshold, started);
  }

  private finish(
    decision: ServerDecision,
    similarity: ServerStepResult['similarity'],
    shouldCache: boolean | null,
    threshold: number,
    started: number,
  ): ServerStepResult {
    const next = this.actionQueue.shift();
    const shape = this.shape;
    if (!next || !shape) throw new SmolVLAError('ERR_SMOLVLA', 'PolicyServer: no queued action to execute (internal state error)');
    const actions = Array.from({ length: shape.batch }, (_, b) => next.robot.slice(b * shape.actionDim, (b + 1) * shape.actionDim));

    let adjustment: ThresholdAdjustment | null = null;
    if (this.adaptive && shouldCache !== null) {
      const update = this.adaptive.observe(shouldCache, threshold);
      adjustment = update.adjustment;
      if (adjustment) this.policy.clsThreshold = update.threshold;
    }
    this.stats.record({
      timestamp: this.now(),
      kind: decision.kind,
      reason: decision.reason,
      similarity: similarity?.mean ?? null,
      perSample: similarity?.perSample ?? null,
      threshold,
      shouldCache,
      durationMs: performance.now() - started,
    });
    return {
      actions,
      decision,
      similarity,
      threshold,
      adjustment,
      queuedActions: this.actionQueue.length,
      cacheEntries: this.cacheQueue.length,
      stats: this.stats.summary(),
    };
  }

  /** A miss: the first `actionSteps` actions of the new chunk replace the queue. */
  private replaceQueue(r: PolicyLikeResult): void {
    const tensor = r.actionsTensor;
    if (!tensor) throw new SmolVLAError('ERR_SMOLVLA', 'PolicyServer: policy.predictActionChunk({ pastKeyValues }) returned no actionsTensor');
    const [batch, chunk, modelDim] = tensor.shape;
    if (tensor.shape.length !== 3 || batch === undefined || chunk === undefined || modelDim === undefined) {
      throw new SmolVLAError('ERR_SMOLVLA', `PolicyServer: policy actionsTensor must be (B, C, A), got [${tensor.shape.join(', ')}]`);
    }
    if (r.actions.length !== batch) throw new SmolVLAError('ERR_SMOLVLA', `PolicyServer: policy returned ${r.actions.length} robots' actions for a batch of ${batch}`);
    const actionDim = r.actions[0]!.length / chunk;
    if (!Number.isInteger(actionDim) || r.actions.some((a) => a.length !== chunk * actionDim)) {
      throw new SmolVLAError('ERR_SMOLVLA', `PolicyServer: policy actions must be ${chunk} x actionDim per robot, got lengths [${r.actions.map((a) => a.length).join(', ')}]`);
    }
    if (this.actionSteps > chunk) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `PolicyServer actionSteps: ${this.actionSteps} exceeds the chunk size ${chunk}`);
    checkFiniteActions(r.actions);
    const model = tensor.toFloat32();
    tensor.dispose();
    this.shape = { batch, chunk, modelDim, actionDim };
    this.actionQueue = Array.from({ length: this.actionSteps }, (_, k) => {
      const q: QueuedAction = { model: new Float32Array(batch * modelDim), robot: new Float32Array(batch * actionDim) };
      for (let b = 0; b < batch; b++) {
        q.model.set(model.subarray((b * chunk + k) * modelDim, (b * chunk + k + 1) * modelDim), b * modelDim);
        q.robot.set(r.actions[b]!.subarray(k * actionDim, (k + 1) * actionDim), b * actionDim);
      }
      return q;
    });
  }

  /** Refine mode: queued actions += the delta expert's correction against `cache`. */
  private async refine(cache: KVCache): Promise<void> {
    const shape = this.shape!;
    const { batch, modelDim } = shape;
    const queued = this.actionQueue.length;
    const x = new Float32Array(batch * queued * modelDim);
    for (let b = 0; b < batch; b++) {
      for (let k = 0; k < queued; k++) x.set(this.actionQueue[k]!.model.subarray(b * modelDim, (b + 1) * modelDim), (b * queued + k) * modelDim);
    }
    const refined = await deltaRefine(this.policy, cache, x, batch, queued, 'PolicyServer');
    const rt = Tensor.from(refined, [batch, queued, modelDim]);
    let robot: Float32Array[];
    try {
      robot = await this.policy.splitActions!(rt);
    } finally {
      rt.dispose();
    }
    const { actionDim } = shape;
    if (robot.length !== batch || robot.some((a) => a.length !== queued * actionDim)) {
      throw new SmolVLAError('ERR_SMOLVLA', `PolicyServer: policy.splitActions returned lengths [${robot.map((a) => a.length).join(', ')}], expected ${batch} x ${queued * actionDim}`);
    }
    checkFiniteActions(robot);
    this.actionQueue = this.actionQueue.map((_, k) => {
      const q: QueuedAction = { model: new Float32Array(batch * modelDim), robot: new Float32Array(batch * actionDim) };
      for (let b = 0; b < batch; b++) {
        q.model.set(refined.subarray((b * queued + k) * modelDim, (b * queued + k + 1) * modelDim), b * modelDim);
        q.robot.set(robot[b]!.subarray(k * actionDim, (k + 1) * actionDim), b * actionDim);
      }
      return q;
    });
  }

  private clearCacheQueue(): void {
    for (const e of this.cacheQueue) disposeEntry(e);
    this.cacheQueue = [];
  }
}

function disposeEntry(e: CacheEntry): void {
  e.cache.dispose();
  e.obsClsOut?.dispose();
  e.prefixPadMask.dispose();
}

/** Whatever the policy, a NaN or infinite action is an error, never queued or served. */
function checkFiniteActions(actions: readonly Float32Array[]): void {
  for (const [robot, chunk] of actions.entries()) {
    const i = chunk.findIndex((x) => !Number.isFinite(x));
    if (i >= 0) throw new SmolVLAError('ERR_SMOLVLA_NOT_FINITE', `PolicyServer: the policy returned ${chunk[i]} in robot ${robot}'s actions (index ${i})`);
  }
}
