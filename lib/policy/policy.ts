/**
 * SmolVLAPolicy: the robot-facing policy. Raw robot observations in, un-normalised action chunks out,
 * with the inference guide's state machine: the previous call's CLS output, the similarity of the current CLS token 0 to
 * the previous CLS token 1, and the cache decision `mean > threshold` (strictly). Calls on one policy
 * run one after another; the model and the per-pixel preprocessing run off the event loop.
 */
import { readConfig, type SmolVLAConfig } from '../config';
import { argumentError, SmolVLAError } from '../errors';
import type { DatasetSample } from '../data';
import { type KVCache, SmolVLAModel, type Cancellable, type LoadOptions, type LoadReport, type ModelOptions, type RtcOptions, type TensorDict } from '../model';
import { abortError } from '../model/cancel';
import { clsSimilarity } from '../ops';
import { disposeAll, type Tensor } from '../tensor';
import { Preprocessor, type PreparedBatch, type TrainingBatch } from './batch';
import type { PolicyBatch } from './inputs';
import { Normalizer, readCheckpointStats, toPolicyStats, type PolicyStats, type StatsMap } from './normalize';
import { SerialQueue } from '../util/serial';
import { loadTokenizer, VlmTokenizer } from './tokenizer';
import { checkpointFolder } from '../model/localFolder';

/** The VLM's tokenizer: an instance, a path (tokenizer.json or its folder), or null for none. */
export type TokenizerOption = VlmTokenizer | string | null;

/** A loaded tokenizer, or why the search found none. */
type VlmSlot = VlmTokenizer | { missing: string };

export interface PolicyCreateOptions extends Omit<ModelOptions, 'tokens'> {
  /** Default: none (task strings then fail; ready tokens work). */
  tokenizer?: TokenizerOption;
  /** Dataset statistics; without them MEAN_STD features use identity and `warnings` says so. */
  stats?: StatsMap | PolicyStats;
}

export interface PolicyLoadOptions extends Omit<LoadOptions, 'tokens'> {
  /**
   * Default: searched (the checkpoint folder, then a local folder or the Hugging Face cache for
   * vlm_model_name); a path is searched after the checkpoint folder; null: none.
   */
  tokenizer?: TokenizerOption;
  /** Statistics replacing the checkpoint's (e.g. a new dataset's). */
  stats?: StatsMap | PolicyStats;
}

export interface PredictOptions extends Cancellable {
  /** Compare this call's CLS output with the previous one (CLS head required) and store it. */
  computeClsSimilarity?: boolean;
  /** Prefix pass only: return the cache and the delta actions instead of sampling. */
  calCache?: boolean;
  /** A cache from an earlier call: sampling skips the prefix pass (no similarity then). */
  pastKeyValues?: KVCache;
  /** The seeds pass the cache's prefix pad mask beside it; the KVCache holds it, so this is only checked. */
  prefixPadMasks?: Tensor;
  /** (B, n, max_action_dim) model-space actions for calCache's delta actions (zeros when absent). */
  actionContext?: Tensor;
  /** (B, C, max_action_dim) start of sampling; never modified. */
  noise?: Tensor;
  /** Return the sampling pass's cache in `cache` (the caller disposes it). Default false. */
  keepCache?: boolean;
  /** Real-Time Chunking: guide the chunk toward a model-space leftover (lib/model/rtc.ts). Off when absent. */
  rtc?: RtcOptions;
}

export interface ClsSimilarityValue {
  /** Batch mean: the value the decision uses. */
  mean: number;
  /** Per sample (robot). */
  perSample: Float32Array;
}

export interface ChunkPrediction {
  batchSize: number;
  /** Per robot: C x action_dim, un-normalised, row-major. Empty with calCache (nothing is sampled). */
  actions: Float32Array[];
  /** (B, C, max_action_dim) in model space; absent with calCache. */
  actionsTensor?: Tensor;
  /** (B, Ncp, Dv) prefix CLS outputs of this call's prefix pass (CLS head only; none when a cache was passed). */
  obsClsOut?: Tensor;
  /** Null on the first call after reset(), without computeClsSimilarity, or when a cache was passed. */
  similarity: ClsSimilarityValue | null;
  /** similarity.mean > threshold (strictly); true when there is no similarity. */
  shouldCache: boolean;
  /** Per robot: perSample > threshold; all true when there is no similarity. */
  perSampleShouldCache: boolean[];
  /** calCache: the prefix cache (the caller disposes it); sampling: only with keepCache. */
  cache?: KVCache;
  /** calCache: (B, C, max_action_dim) raw delta-expert velocity, model space (not un-normalised). */
  deltaActions?: Tensor;
}

export interface ForwardResult {
  /** `loss` (main objective) or `delta_loss` (train_delta_expert) as a number. */
  loss: number;
  /** Every loss tensor the objective reports (LeRobot's keys). */
  losses: TensorDict;
}

function abortIfNeeded(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

async function resolveTokenizer(option: TokenizerOption | undefined, dir: string | null, config: SmolVLAConfig): Promise<VlmSlot | null> {
  if (option === null) return null;
  if (option instanceof VlmTokenizer) return option;
  if (typeof option === 'string') {
    return loadTokenizer(dir ? { checkpointDir: dir, path: option, vlmModelName: config.vlmModelName } : { path: option });
  }
  if (!dir) return null;
  try {
    return await loadTokenizer({ checkpointDir: dir, vlmModelName: config.vlmModelName });
  } catch (err) {
    // Ready tokens work without one; a task string reports this search.
    return { missing: (err as Error).message };
  }
}

/** The image special-token ids when the config asks for them. */
function tokenIds(config: SmolVLAConfig, slot: VlmSlot | null): ModelOptions['tokens'] {
  if (!config.addImageSpecialTokens) return undefined;
  if (!slot) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', 'add_image_special_tokens: the image token ids come from the VLM tokenizer, and none was given (tokenizer option)');
  if ('missing' in slot) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `add_image_special_tokens needs the VLM tokenizer: ${slot.missing}`);
  return slot.imageSpecialTokens();
}

export class SmolVLAPolicy implements Disposable, AsyncDisposable {
  readonly model: SmolVLAModel;
  readonly config: SmolVLAConfig;
  readonly normalizer: Normalizer;
  readonly preprocessor: Preprocessor;
  /** fromPretrained only: what the checkpoint supplied. */
  readonly loadReport: LoadReport | null;
  /** Things a user should know (identity statistics, ...). */
  readonly warnings: string[];
  private readonly vlmTokenizer: VlmTokenizer | null;
  private readonly serial = new SerialQueue();
  private threshold: number;
  private prevCls: Tensor | null = null;
  /** queue[k][robot]: the k-th queued action of each robot (select_action). */
  private queue: Float32Array[][] = [];
  private queueBatch = 0;
  /** Bumped by reset(): results of calls that started before it do not become state. */
  private generation = 0;

  private constructor(model: SmolVLAModel, normalizer: Normalizer, tokenizer: VlmSlot | null, loadReport: LoadReport | null, warnings: string[]) {
    this.model = model;
    this.config = model.config;
    this.normalizer = normalizer;
    this.preprocessor = new Preprocessor(model.config, normalizer, tokenizer);
    this.vlmTokenizer = tokenizer instanceof VlmTokenizer ? tokenizer : null;
    this.loadReport = loadReport;
    this.warnings = warnings;
    this.threshold = model.config.clsSimilarityThreshold;
  }

  /**
   * Loads a checkpoint folder: config.json, model.safetensors, normalisation statistics (either
   * LeRobot layout; missing MEAN_STD statistics are an error unless `stats` is given) and the tokenizer.
   */
  static async fromPretrained(dir: string, options: PolicyLoadOptions = {}): Promise<SmolVLAPolicy> {
    const { tokenizer: tokOption, stats: statsOption, ...modelOptions } = options;
    await checkpointFolder(dir, 'fromPretrained');
    const config = await readConfig(dir);
    const slot = await resolveTokenizer(tokOption, dir, config);
    const tokens = tokenIds(config, slot);
    const stats = statsOption ? { stats: toPolicyStats(statsOption), eps: undefined } : await readCheckpointStats(dir, config);
    const normalizer = new Normalizer(config, stats.stats, stats.eps === undefined ? {} : { eps: stats.eps });
    const { model, report } = await SmolVLAModel.fromPretrained(dir, tokens ? { ...modelOptions, tokens } : modelOptions);
    const warnings = report.initialised.length > 0
      ? [`${report.initialised.length} delta-expert/CLS tensors are not in the checkpoint and were initialised from seed ${options.seed ?? 0}` +
          (report.warmStarted ? ' (delta expert warm-started from the main expert)' : '')]
      : [];
    return new SmolVLAPolicy(model, normalizer, slot, report, warnings);
  }

  /** A randomly initialised policy (nothing downloads). Statistics are optional: identity without them. */
  static async create(config: SmolVLAConfig, options: PolicyCreateOptions = {}): Promise<SmolVLAPolicy> {
    const { tokenizer: tokOption, stats: statsOption, ...modelOptions } = options;
    const slot = await resolveTokenizer(tokOption, null, config);
    const tokens = tokenIds(config, slot);
    const normalizer = new Normalizer(config, statsOption ? toPolicyStats(statsOption) : { inputs: {}, targets: {}, outputs: {} }, { allowMissing: true });
    const model = await SmolVLAModel.create(config, tokens ? { ...modelOptions, tokens } : modelOptions);
    const warnings = normalizer.missing.map(
      (key) => `no normalisation statistics for ${key}: identity is used instead of its normalization_mapping mode (pass stats)`,
    );
    return new SmolVLAPolicy(model, normalizer, slot, null, warnings);
  }

  /** True when some MEAN_STD/MIN_MAX feature runs as identity for lack of statistics (create() only). */
  get usesIdentityStats(): boolean {
    return this.normalizer.missing.length > 0;
  }

  get tokenizer(): VlmTokenizer | null {
    return this.vlmTokenizer;
  }

  /** cls_similarity_threshold in effect (starts at the config's); the decision is similarity > threshold. */
  get clsThreshold(): number {
    return this.threshold;
  }

  set clsThreshold(value: number) {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw argumentError('clsThreshold', 'a finite number', value);
    this.threshold = value;
  }

  /** Calls queued or running on this policy. */
  get pendingCalls(): number {
    return this.serial.pending;
  }

  /**
   * Predicts an action chunk per robot. With computeClsSimilarity the CLS state machine
   * runs: the first call after reset() gives similarity null and shouldCache true; later calls compare
   * with the previous call's CLS output, which only such calls replace. With calCache the prefix pass's
   * cache and delta actions come back instead of actions (and the similarity of that same pass). With
   * pastKeyValues the prefix pass is skipped: no similarity, shouldCache true, the stored CLS output
   * untouched; `batch` may then be null.
   */
  predictActionChunk(batch: PolicyBatch | null, options: PredictOptions = {}): Promise<ChunkPrediction> {
    return this.serial.run(() => this.predict(batch, options));
  }

  private checkLive(): void {
    if (this.model.disposed) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'SmolVLAPolicy: used after dispose()');
  }

  /**
   * One action per robot from a queue of n_action_steps; a new chunk is sampled when the queue is
   * empty (plain sampling: the stored CLS output is left alone).
   */
  selectAction(batch: PolicyBatch, options: Cancellable & { noise?: Tensor } = {}): Promise<Float32Array[]> {
    return this.serial.run(async () => {
      this.checkLive();
      const size = this.preprocessor.sizeOf(batch);
      if (this.queue.length > 0 && size !== this.queueBatch) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `selectAction: the batch has ${size} robot(s) but the queued actions are for ${this.queueBatch}; call reset() when the robots change`);
      }
      if (this.queue.length === 0) {
        const generation = this.generation;
        const r = await this.predict(batch, options);
        r.actionsTensor?.dispose();
        r.obsClsOut?.dispose();
        const steps = Array.from({ length: this.config.nActionSteps }, (_, k) =>
          r.actions.map((chunk) => chunk.slice(k * this.preprocessor.spec.actionDim, (k + 1) * this.preprocessor.spec.actionDim)),
        );
        if (generation !== this.generation) return steps[0]!;
        this.queue = steps;
        this.queueBatch = size;
      }
      return this.queue.shift()!;
    });
  }

  /**
   * Validates an observation batch as predictActionChunk would, the values of float images included,
   * without running the model; resolves with its robot count.
   */
  validate(batch: PolicyBatch): Promise<number> {
    return this.preprocessor.validate(batch);
  }

  /** Clears the action queue and the stored CLS output (call it at every episode start). */
  reset(): void {
    this.generation++;
    this.queue = [];
    this.queueBatch = 0;
    this.prevCls?.dispose();
    this.prevCls = null;
  }

  /** Training losses of a batch with `action` (delta objective with train_delta_expert, else the main one). */
  forward(batch: PolicyBatch, options: { noise?: Tensor; time?: Tensor } = {}): Promise<ForwardResult> {
    return this.serial.run(async () => {
      this.checkLive();
      const prepared = await this.preprocessor.prepare(batch, { withActions: !this.config.trainDeltaExpert });
      try {
        const pad = prepared.actionIsPad ? { actionIsPad: prepared.actionIsPad } : {};
        const r = this.config.trainDeltaExpert
          ? await this.model.forwardDelta(prepared.observation, pad)
          : await this.model.forwardMain(prepared.observation, prepared.actions!, { ...pad, ...options });
        const total = r.losses.loss ?? r.losses.delta_loss;
        if (!total) throw new SmolVLAError('ERR_SMOLVLA', `forward: the objective reported no loss (got ${Object.keys(r.losses).join(', ')})`);
        return { loss: total.toFloat32()[0]!, losses: r.losses };
      } finally {
        disposeAll(prepared);
      }
    });
  }

  /** Dataset samples -> the trainer's batch (see Preprocessor.trainingBatch). */
  trainingBatch(samples: readonly DatasetSample[]): Promise<TrainingBatch> {
    return this.preprocessor.trainingBatch(samples);
  }

  /** A batch -> model inputs, built off the event loop (the caller disposes them). */
  prepare(batch: PolicyBatch): Promise<PreparedBatch> {
    return this.preprocessor.prepare(batch);
  }

  trainableParameters(): Promise<Array<{ name: string; shape: number[] }>> {
    return this.model.trainableParameters();
  }

  /**
   * The delta expert's velocity for model-space actions x (B, C, max_action_dim) at t = 0.5 against a
   * cache of this policy's model: the correction a serving refine step adds (the caller disposes it).
   */
  deltaStep(cache: KVCache, x: Tensor): Promise<Tensor> {
    return this.model.deltaStep(cache, x);
  }

  /** Model-space actions (B, n, max_action_dim) -> per robot n x action_dim, cropped and un-normalised (off the event loop). */
  splitActions(actions: Tensor): Promise<Float32Array[]> {
    return this.preprocessor.splitActions(actions);
  }

  get disposed(): boolean {
    return this.model.disposed;
  }

  /**
   * Frees the model's weights and the stored CLS output now. A call already running completes; later
   * calls reject with ERR_SMOLVLA_DISPOSED. `await using` (Symbol.asyncDispose) waits for queued calls first.
   */
  dispose(): void {
    this.reset();
    this.model.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.serial.run(async () => undefined);
    this.dispose();
  }

  /** Writes the checkpoint with its normalisation statistics (older in-file layout) and tokenizer. */
  async save(dir: string): Promise<void> {
    const stats = this.normalizer.toTensors();
    try {
      await this.model.save(dir, stats);
    } finally {
      disposeAll(stats);
    }
    await this.tokenizer?.save(dir);
  }

  private checkOptions(batch: PolicyBatch | null, o: PredictOptions): void {
    if (o.pastKeyValues && o.calCache) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'predictActionChunk: calCache computes a new cache; it cannot be combined with pastKeyValues (a given cache)');
    }
    if (o.computeClsSimilarity && !this.config.useClsHead) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'predictActionChunk: computeClsSimilarity needs the CLS head (use_cls_head is false in this config)');
    }
    if (o.actionContext && !o.calCache) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'predictActionChunk: actionContext is only used with calCache');
    if (o.prefixPadMasks && !o.pastKeyValues) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'predictActionChunk: prefixPadMasks is only checked against pastKeyValues; it cannot be given without it');
    }
    if (batch === null && !o.pastKeyValues) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'predictActionChunk: a batch is required unless pastKeyValues is given');
  }

  private checkShape(name: string, t: Tensor, expected: Array<number | null>): void {
    const shape = t.shape;
    if (shape.length !== expected.length || expected.some((e, i) => e !== null && e !== shape[i])) {
      const want = expected.map((e) => e ?? 'n').join(', ');
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `predictActionChunk: ${name} must have shape (${want}), got [${shape.join(', ')}]`);
    }
  }

  private async predict(batch: PolicyBatch | null, o: PredictOptions): Promise<ChunkPrediction> {
    this.checkLive();
    this.checkOptions(batch, o);
    abortIfNeeded(o.signal);
    const { chunkSize: c, maxActionDim: a } = this.config;
    const cancel: Cancellable = {};
    if (o.signal) cancel.signal = o.signal;
    if (o.timeoutMs !== undefined) cancel.timeoutMs = o.timeoutMs;
    if (o.pastKeyValues) {
      const cache = o.pastKeyValues;
      if (cache.disposed) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'predictActionChunk: pastKeyValues was disposed');
      const b = cache.batchSize;
      if (batch !== null && this.preprocessor.sizeOf(batch) !== b) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `predictActionChunk: the batch has ${this.preprocessor.sizeOf(batch)} sample(s), pastKeyValues was made for ${b}`);
      }
      if (o.prefixPadMasks) this.checkShape('prefixPadMasks', o.prefixPadMasks, [b, cache.prefixLength]);
      if (o.noise) this.checkShape('noise', o.noise, [b, c, a]);
      const r = await this.model.sample(cache, { ...cancel, ...(o.noise ? { noise: o.noise } : {}), ...(o.rtc ? { rtc: o.rtc } : {}) });
      return { ...this.noSimilarity(b), actions: await this.splitOrDispose(r.actions, r.cache), actionsTensor: r.actions };
    }
    const prepared = await this.preprocessor.prepare(batch!);
    const b = prepared.size;
    try {
      if (o.computeClsSimilarity && this.prevCls && this.prevCls.shape[0] !== b) {
        throw new SmolVLAError(
          'ERR_SMOLVLA_ARGUMENT',
          `predictActionChunk: the batch has ${b} sample(s) but the stored CLS output of the previous call has ${this.prevCls.shape[0]}; ` +
            'call reset() when the robots change (e.g. at an episode start)',
        );
      }
      if (o.noise) this.checkShape('noise', o.noise, [b, c, a]);
      if (o.actionContext) this.checkShape('actionContext', o.actionContext, [b, null, a]);
      const generation = this.generation;
      if (o.calCache) {
        const cache = await this.model.prefix(prepared.observation);
        try {
          const deltaActions = await this.model.deltaActions(cache, o.actionContext);
          return { ...this.similarity(cache, b, o.computeClsSimilarity ?? false, generation), actions: [], cache, deltaActions };
        } catch (err) {
          cache.dispose();
          throw err;
        }
      }
      const r = await this.model.sample(prepared.observation, { ...cancel, ...(o.noise ? { noise: o.noise } : {}), ...(o.rtc ? { rtc: o.rtc } : {}) });
      const cache = r.cache!;
      const actions = await this.splitOrDispose(r.actions, cache);
      const sim = this.similarity(cache, b, o.computeClsSimilarity ?? false, generation);
      const out: ChunkPrediction = { ...sim, actions, actionsTensor: r.actions };
      if (o.keepCache) out.cache = cache;
      else cache.dispose();
      return out;
    } finally {
      disposeAll(prepared);
    }
  }

  /** The robots' chunks; on an error (a non-finite chunk) the native results are freed at once. */
  private async splitOrDispose(actions: Tensor, cache: KVCache | null): Promise<Float32Array[]> {
    try {
      return await this.preprocessor.splitActions(actions);
    } catch (err) {
      actions.dispose();
      cache?.dispose();
      throw err;
    }
  }

  private noSimilarity(b: number): Pick<ChunkPrediction, 'batchSize' | 'similarity' | 'shouldCache' | 'perSampleShouldCache'> {
    return { batchSize: b, similarity: null, shouldCache: true, perSampleShouldCache: new Array<boolean>(b).fill(true) };
  }

  /** The CLS state machine on a fresh prefix pass's cache. */
  private similarity(
    cache: KVCache,
    b: number,
    compute: boolean,
    generation: number,
  ): Pick<ChunkPrediction, 'batchSize' | 'similarity' | 'shouldCache' | 'perSampleShouldCache' | 'obsClsOut'> {
    const base = this.noSimilarity(b);
    const obsClsOut = cache.obsClsOut();
    if (!obsClsOut) return base;
    if (!compute) return { ...base, obsClsOut };
    // A reset() while this call ran makes it the first call of the new episode, and its output not the
    // stored one (it belongs to the old episode).
    const current = generation === this.generation;
    const prev = current ? this.prevCls : null;
    if (current) {
      // A second handle: the caller may dispose the returned obsClsOut.
      this.prevCls = cache.obsClsOut();
    }
    if (!prev) return { ...base, obsClsOut };
    try {
      const s = clsSimilarity(obsClsOut, prev);
      return {
        batchSize: b,
        obsClsOut,
        similarity: { mean: s.mean, perSample: s.perSample },
        shouldCache: s.mean > this.threshold,
        perSampleShouldCache: Array.from(s.perSample, (v) => v > this.threshold),
      };
    } finally {
      prev.dispose();
    }
  }
}
