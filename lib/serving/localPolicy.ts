/**
 * LocalChunkPolicy: the in-process ChunkPolicy around a SmolVLAPolicy, with the CLS decisions of
 * the published fork's async delta inference (one prefix pass decides per request):
 *
 * - **miss** — first request, a scene change (similarity not above the threshold), or an unchanged
 *   scene whose caller has too few actions queued to last until another answer: full sampling
 *   against the fresh cache; the whole chunk comes back.
 * - **hit-refine** — unchanged scene: one delta-expert step on the caller's next queued actions
 *   (`actionContext`, robot space → model space), the refined actions come back (same steps).
 * - **hit-skip** — unchanged scene, hitMode 'skip': nothing to add (chunk 0), keep executing.
 * - **rtc** — a request from a runtime in RTC mode: always a full chunk (a miss with reason 'rtc'
 *   when the scene is unchanged), guided toward the leftover it carries; never a hit or a reuse.
 * - **reuse** — after a hit, later requests skip the prefix pass as well and refine against the
 *   hit's cache; bounded to `reuseSteps` control steps after the hit (by the request's `step`) and
 *   to `reuseSteps` requests, so a scene change goes unnoticed for at most that long. A request the
 *   check flagged as changed clears the reuse, so reuse never follows it.
 *
 * The cached prefix holds the state token of the step it was made at: reuse acts on THAT state.
 */
import { SmolVLAError, argumentError } from '../errors';
import type { KVCache, RtcOptions } from '../model';
import type { RobotObservation } from '../policy/inputs';
import { Tensor } from '../tensor';
import { SerialQueue } from '../util/serial';
import type { ChunkDecision, ChunkPolicy, ChunkPolicyInfo, ChunkRequestOptions, ChunkResult, ChunkRtcRequest } from './chunkPolicy';
import { checkScene, deltaRefine } from './sceneCheck';
import type { DecisionRule, HitMode, PolicyLike } from './server';
import { ServingStats, type MissReason } from './stats';

/** What the adapter needs of a policy: SmolVLAPolicy has all of it. */
export interface LocalPolicyLike extends PolicyLike {
  deltaStep(cache: KVCache, x: Tensor): Promise<Tensor>;
  splitActions(actions: Tensor): Float32Array[] | Promise<Float32Array[]>;
  preprocessor: { spec: { actionDim: number } };
  normalizer: { normalizeTarget(key: string, values: Float32Array): Float32Array };
}

export interface LocalChunkPolicyOptions {
  /** What an unchanged scene does with the queued actions (default 'refine'). */
  hitMode?: HitMode;
  /** Control steps (and requests) after a hit that reuse its cache without a prefix pass (default 2; 0 disables). */
  reuseSteps?: number;
  /** Chunk rows returned by a miss (default config.nActionSteps, at most chunk_size). */
  actionSteps?: number;
  rule?: DecisionRule;
  /** The control rate, for the refill rule (default 30). */
  fps?: number;
  /**
   * A hit still samples a full chunk when the caller has at most this many actions queued. Default:
   * learned, the last miss's compute time in control steps plus 2 (half a chunk before any miss).
   */
  refillAt?: number;
  historySize?: number;
}

interface ReuseSlot {
  cache: KVCache;
  step: number | null;
  left: number;
}

const ACTION_KEY = 'action';

function nonNegativeInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw argumentError(`LocalChunkPolicy ${name}`, 'an integer >= 0', v);
  return v;
}

export class LocalChunkPolicy implements ChunkPolicy {
  readonly policy: LocalPolicyLike;
  readonly info: ChunkPolicyInfo;
  readonly hitMode: HitMode;
  readonly reuseSteps: number;
  readonly actionSteps: number;
  readonly rule: DecisionRule;
  readonly stats: ServingStats;
  private readonly fps: number;
  private readonly refillOption: number | null;
  private lastMissMs: number | null = null;
  private reuse: ReuseSlot | null = null;
  private readonly serial = new SerialQueue();
  private disposed = false;

  constructor(policy: LocalPolicyLike, options: LocalChunkPolicyOptions = {}) {
    if (!policy.config.useClsHead) {
      throw new SmolVLAError('ERR_SMOLVLA_CONFIG', 'LocalChunkPolicy: use_cls_head is false; the decisions need the CLS similarity');
    }
    this.policy = policy;
    this.hitMode = options.hitMode ?? 'refine';
    if (this.hitMode !== 'skip' && this.hitMode !== 'refine') throw argumentError('LocalChunkPolicy hitMode', "'skip' or 'refine'", this.hitMode);
    this.reuseSteps = nonNegativeInt('reuseSteps', options.reuseSteps ?? 2);
    this.actionSteps = nonNegativeInt('actionSteps', options.actionSteps ?? policy.config.nActionSteps);
    if (this.actionSteps < 1 || this.actionSteps > policy.config.chunkSize) {
      throw argumentError('LocalChunkPolicy actionSteps', `an integer in [1, chunk_size = ${policy.config.chunkSize}]`, this.actionSteps);
    }
    this.rule = options.rule ?? 'batch-mean';
    if (this.rule !== 'batch-mean' && this.rule !== 'every-robot') throw argumentError('LocalChunkPolicy rule', "'batch-mean' or 'every-robot'", this.rule);
    this.fps = options.fps ?? 30;
    if (!(this.fps > 0)) throw argumentError('LocalChunkPolicy fps', 'a positive number', this.fps);
    this.refillOption = options.refillAt === undefined ? null : nonNegativeInt('refillAt', options.refillAt);
    this.stats = new ServingStats({ historySize: options.historySize ?? 1000 });
    this.info = { chunkSize: this.actionSteps, actionDim: policy.preprocessor.spec.actionDim, fps: this.fps };
  }

  /** Queued actions at or below which a hit samples a full chunk anyway. */
  get refillAt(): number {
    if (this.refillOption !== null) return this.refillOption;
    if (this.lastMissMs === null) return Math.ceil(this.actionSteps / 2);
    return Math.ceil((this.lastMissMs * this.fps) / 1000) + 2;
  }

  requestChunk(observation: RobotObservation, options: ChunkRequestOptions = {}): Promise<ChunkResult> {
    return this.serialised(() => this.serve(observation, options));
  }

  reset(): Promise<void> {
    return this.serialised(async () => {
      this.dropReuse();
      this.policy.reset();
      this.stats.newEpisode();
    });
  }

  dispose(): Promise<void> {
    return this.serialised(async () => {
      this.dropReuse();
      this.disposed = true;
    });
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    return this.serial.run(() => {
      if (this.disposed) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'LocalChunkPolicy: used after dispose()');
      return work();
    });
  }

  private dropReuse(): void {
    this.reuse?.cache.dispose();
    this.reuse = null;
  }

  /** Robot-space context rows -> (1, n, max_action_dim) model space, zero-padded columns. */
  private contextToModel(context: readonly Float32Array[]): Float32Array {
    const ad = this.info.actionDim;
    const a = this.policy.config.maxActionDim;
    const flat = new Float32Array(context.length * ad);
    context.forEach((row, k) => {
      if (!(row instanceof Float32Array) || row.length !== ad) throw argumentError(`actionContext[${k}]`, `a Float32Array of ${ad} values`, row);
      flat.set(row, k * ad);
    });
    const norm = this.policy.normalizer.normalizeTarget(ACTION_KEY, flat);
    const x = new Float32Array(context.length * a);
    for (let k = 0; k < context.length; k++) x.set(norm.subarray(k * ad, (k + 1) * ad), k * a);
    return x;
  }

  /** RTC: the robot-space leftover (at most a chunk) in model space, (1, n, max_action_dim). */
  private guidance(request: ChunkRtcRequest): RtcOptions {
    const rows = request.leftover.slice(0, this.policy.config.chunkSize);
    const { leftover: _robot, ...settings } = request;
    return { ...settings, leftover: Tensor.from(this.contextToModel(rows), [1, rows.length, this.policy.config.maxActionDim]) };
  }

  private async refine(cache: KVCache, context: readonly Float32Array[]): Promise<Float32Array> {
    const n = context.length;
    const refined = await deltaRefine(this.policy, cache, this.contextToModel(context), 1, n, 'LocalChunkPolicy');
    const t = Tensor.from(refined, [1, n, this.policy.config.maxActionDim]);
    try {
      return (await this.policy.splitActions(t))[0]!;
    } finally {
      t.dispose();
    }
  }

  private result(decision: ChunkDecision, actions: Float32Array, similarity: number | null, started: number, sceneChanged?: boolean): ChunkResult {
    const r: ChunkResult = {
      actions,
      chunk: actions.length / this.info.actionDim,
      actionDim: this.info.actionDim,
      decision,
      similarity,
      computeMs: performance.now() - started,
    };
    if (sceneChanged !== undefined) r.sceneChanged = sceneChanged;
    return r;
  }

  private record(kind: 'miss' | 'hit-skip' | 'hit-refine' | 'reuse', reason: MissReason | null, similarity: number | null, shouldCache: boolean | null, started: number): void {
    this.stats.record({
      timestamp: Date.now(),
      kind,
      reason,
      similarity,
      perSample: similarity === null ? null : [similarity],
      threshold: this.policy.clsThreshold,
      shouldCache,
      durationMs: performance.now() - started,
    });
  }

  private async serve(observation: RobotObservation, options: ChunkRequestOptions): Promise<ChunkResult> {
    const started = performance.now();
    const context = options.actionContext ?? [];
    const queued = options.queued ?? context.length;
    const refillNow = queued <= this.refillAt;
    const slot = this.reuse;
    if (slot && slot.left > 0 && !refillNow && !options.rtc && (slot.step === null || options.step === undefined || options.step - slot.step <= this.reuseSteps)) {
      slot.left--;
      const actions = this.hitMode === 'refine' && context.length > 0 ? await this.refine(slot.cache, context) : new Float32Array(0);
      this.record('reuse', null, null, null, started);
      return this.result('reuse', actions, null, started);
    }
    this.dropReuse();

    const check = await checkScene(this.policy, observation, this.rule, options, 'LocalChunkPolicy');
    const similarity = check.similarity?.mean ?? null;
    check.obsClsOut?.dispose();
    let keepCache = false;
    try {
      if (check.hit && similarity !== null && !refillNow && !options.rtc) {
        const refine = this.hitMode === 'refine' && context.length > 0;
        const actions = refine ? await this.refine(check.cache, context) : new Float32Array(0);
        if (this.reuseSteps > 0) {
          this.reuse = { cache: check.cache, step: options.step ?? null, left: this.reuseSteps };
          keepCache = true;
        }
        const kind = refine ? 'hit-refine' : 'hit-skip';
        this.record(kind, null, similarity, true, started);
        return this.result(kind, actions, similarity, started, false);
      }
      const reason: MissReason = similarity === null ? 'first' : !check.hit ? 'scene-changed' : options.rtc ? 'rtc' : 'queue-empty';
      const rtc = options.rtc && options.rtc.leftover.length > 0 ? this.guidance(options.rtc) : null;
      let sampled;
      try {
        sampled = await this.policy.predictActionChunk(observation, { pastKeyValues: check.cache, signal: options.signal, ...(rtc ? { rtc } : {}) });
      } finally {
        rtc?.leftover.dispose();
      }
      sampled.actionsTensor?.dispose();
      if (sampled.cache && sampled.cache !== check.cache) sampled.cache.dispose();
      const all = sampled.actions[0];
      if (!all) throw new SmolVLAError('ERR_SMOLVLA', 'LocalChunkPolicy: the policy returned no actions');
      const actions = all.slice(0, this.actionSteps * this.info.actionDim);
      this.lastMissMs = performance.now() - started;
      // A hit whose queue ran low keeps its cache for reuse as a hit does; a changed scene never does.
      if (check.hit && similarity !== null && this.reuseSteps > 0) {
        this.reuse = { cache: check.cache, step: options.step ?? null, left: this.reuseSteps };
        keepCache = true;
      }
      this.record('miss', reason, similarity, similarity === null ? null : check.hit, started);
      return this.result('miss', actions, similarity, started, similarity === null ? undefined : !check.hit);
    } finally {
      if (!keepCache) check.cache.dispose();
    }
  }
}
