/**
 * SmolVLAModel: the native model with tensors in and out (preprocessed observations, model-space
 * actions). lib/policy builds robot-facing batching, normalisation and the state machine on it.
 * Every method that touches the model's tensors is async: the work runs on the libuv pool.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { configToJson, defaultConfig, readConfig, resolveDims, writeConfig, type SmolVLAConfig } from '../config';
import { argumentError, SmolVLAError } from '../errors';
import { native, type NativeModel, type NativeObservation, type NativeTensor, type NativeTensorMap } from '../native';
import { Tensor } from '../tensor';
import { choiceArg, intArg, optionsArg, stringListArg, tensorArg } from '../util/args';
import { makeDirectory, pathArg } from '../util/files';
import { observationArg, tensorOptionsArg } from './args';
import { KVCache } from './cache';
import { withCancel, type Cancellable } from './cancel';
import { resolveRtcOptions, type RtcOptions } from './rtc';
import { checkpointFolder } from './localFolder';

/** Preprocessed model inputs: images in [-1, 1], state normalised and zero-padded. */
export interface Observation {
  /** One (B, 3, H, W) tensor per camera, in config order. */
  images: Tensor[];
  /** One (B) bool tensor per camera: false for a missing camera's placeholder. */
  imgMasks: Tensor[];
  /** (B, L) int64 */
  langTokens: Tensor;
  /** (B, L) bool */
  langMasks: Tensor;
  /** (B, max_state_dim) float32 */
  state: Tensor;
}

export type ModelDtype = 'float32' | 'bfloat16';

export interface TokenIds {
  /** Tokens framing each camera's image tokens (add_image_special_tokens), from the tokenizer. */
  imageStartTokens?: number[];
  imageEndTokens?: number[];
}

export interface ModelOptions {
  /** Seed of the random initialisation (also of tensors a checkpoint lacks). Default 0. */
  seed?: number;
  /** Backbone dtype; projections stay float32. Default float32. */
  dtype?: ModelDtype;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Image special-token ids (add_image_special_tokens) from the tokenizer. */
  tokens?: TokenIds;
}

export interface LoadOptions extends ModelOptions {
  /** Copy the main expert's weights into a delta expert the checkpoint lacks (docs/DEPARTURES.md). */
  warmStartDelta?: boolean;
}

export interface LoadReport {
  /** Tensors copied from the checkpoint. */
  loaded: number;
  /** Delta-expert / CLS tensors the checkpoint lacks, initialised from the seed. */
  initialised: string[];
  /** Checkpoint tensors the model does not use (lm_head, normalisation statistics, ...). */
  unused: string[];
  /** Whether the delta expert was warm-started from the main expert. */
  warmStarted: boolean;
}

export interface ModelInfo {
  /** Scalars in the parameters. */
  parameters: number;
  /** Native bytes of the parameters and buffers. */
  bytes: number;
  dtype: string;
  device: string;
}

export type TensorDict = Record<string, Tensor>;

/** The observation as native handles (library-internal: the trainer passes it too). */
export function toNative(obs: Observation): NativeObservation {
  return {
    images: obs.images.map((t) => t.handle),
    imgMasks: obs.imgMasks.map((t) => t.handle),
    langTokens: obs.langTokens.handle,
    langMasks: obs.langMasks.handle,
    state: obs.state.handle,
  };
}

function fromNative(map: NativeTensorMap): TensorDict {
  const out: TensorDict = {};
  for (const [k, v] of Object.entries(map)) if (v) out[k] = new Tensor(v);
  return out;
}

function gradsFromNative(map: NativeTensorMap): Record<string, Tensor | null> {
  const out: Record<string, Tensor | null> = {};
  for (const [k, v] of Object.entries(map)) out[k] = v ? new Tensor(v) : null;
  return out;
}

/** The config as the native side reads it, once (library-internal): config.json keys, the derived dimensions, token ids. */
export function nativeConfigJson(config: SmolVLAConfig, tokens: TokenIds = {}): string {
  return JSON.stringify({
    config: configToJson(config),
    resolved: resolveDims(config),
    tokens: { imageStartTokens: tokens.imageStartTokens ?? [], imageEndTokens: tokens.imageEndTokens ?? [] },
  });
}

export class SmolVLAModel implements Disposable {
  readonly config: SmolVLAConfig;
  private readonly native: NativeModel;

  private constructor(config: SmolVLAConfig, handle: NativeModel) {
    this.config = config;
    this.native = handle;
  }

  /** The native handle (library-internal: the trainer is built on it). Throws once disposed. */
  get handle(): NativeModel {
    if (this.native.disposed) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', 'SmolVLAModel: the model was disposed');
    return this.native;
  }

  /** A randomly initialised model (full-size shapes work: build weights from a seed, nothing downloads). */
  static async create(config: SmolVLAConfig = defaultConfig(), options: ModelOptions = {}): Promise<SmolVLAModel> {
    checkModelOptions(options);
    const handle = await native.createModel({
      config: nativeConfigJson(config, options.tokens),
      seed: options.seed ?? 0,
      dtype: options.dtype ?? 'float32',
      device: options.device ?? 'cpu',
    });
    return new SmolVLAModel(config, handle);
  }

  /** Loads a LeRobot checkpoint folder (config.json + model.safetensors). */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<{ model: SmolVLAModel; report: LoadReport }> {
    pathArg('dir', dir);
    checkModelOptions(options);
    await checkpointFolder(dir, 'fromPretrained');
    const weights = path.join(dir, 'model.safetensors');
    if (!fs.existsSync(weights)) {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `fromPretrained: ${weights} does not exist (a LeRobot checkpoint folder has config.json and model.safetensors)`);
    }
    const config = await readConfig(dir);
    const model = await SmolVLAModel.create(config, options);
    const r = await model.handle.loadState({ path: weights });
    let warmStarted = false;
    if (options.warmStartDelta && r.initialised.some((n) => n.startsWith('model.vlm_with_expert.delta_expert.'))) {
      await model.handle.warmStartDelta();
      warmStarted = true;
    }
    return { model, report: { loaded: r.loaded.length, initialised: r.initialised, unused: r.unexpected, warmStarted } };
  }

  /** Writes config.json and model.safetensors (plus extra tensors such as normalisation statistics). */
  async save(dir: string, extra: TensorDict = {}, metadata: Record<string, string> = {}): Promise<void> {
    pathArg('dir', dir);
    for (const [name, t] of Object.entries(optionsArg('extra', extra))) tensorArg(`extra.${name}`, t);
    for (const [key, v] of Object.entries(optionsArg('metadata', metadata))) {
      if (typeof v !== 'string') throw argumentError(`metadata.${key}`, 'a string', v);
    }
    await makeDirectory(dir);
    await writeConfig(dir, this.config);
    const tensors = Object.fromEntries(Object.entries(extra).map(([n, t]) => [n, t.handle]));
    await this.handle.saveState({ path: path.join(dir, 'model.safetensors'), extra: tensors, metadata: { format: 'pt', ...metadata } });
  }

  /** Moves the model; the backbone takes `dtype`, projections stay float32. */
  async to(dtype: ModelDtype, device = 'cpu'): Promise<void> {
    choiceArg('dtype', dtype, MODEL_DTYPES);
    if (typeof device !== 'string') throw argumentError('device', "a device string ('cpu', 'cuda', 'cuda:N')", device);
    await this.handle.to({ dtype, device });
  }

  /** The cache-filling prefix pass (with the CLS head, the cache also carries obs_cls_out). */
  async prefix(obs: Observation): Promise<KVCache> {
    observationArg('obs', obs);
    return new KVCache(await this.handle.prefix({ observation: toNative(obs) }));
  }

  /**
   * Flow-matching sampling from an observation (runs the prefix pass and returns its cache) or from
   * an existing cache (skips it). `noise` is never modified.
   */
  async sample(
    source: Observation | KVCache,
    options: { noise?: Tensor; rtc?: RtcOptions } & Cancellable = {},
  ): Promise<{ actions: Tensor; cache: KVCache | null }> {
    if (!(source instanceof KVCache)) observationArg('source', source);
    tensorOptionsArg('options', options, ['noise']);
    if (options.rtc) {
      // Guided sampling needs the cache as a constant of its backward pass: a prefix pass first.
      const isCache = source instanceof KVCache;
      const cache = isCache ? source : await this.prefix(source);
      const r = await this.guided(cache, options.rtc, { ...options, trace: false });
      return { actions: r.actions, cache: isCache ? null : cache };
    }
    const handle = this.handle;
    const from = source instanceof KVCache ? { cache: source.handle } : { observation: toNative(source) };
    const noise = options.noise ? { noise: options.noise.handle } : {};
    const r = await withCancel(options, (token) => handle.sample({ ...from, ...noise, ...(token ? { cancel: token } : {}) }));
    return { actions: new Tensor(r.actions), cache: r.cache ? new KVCache(r.cache) : null };
  }

  /**
   * Real-Time Chunking: sampling guided toward `rtc.leftover` (lib/model/rtc.ts). With `trace`, every
   * Euler step's x, velocity, correction, guided velocity and guidance weight (parity checks).
   */
  async guided(
    cache: KVCache,
    rtc: RtcOptions,
    options: { noise?: Tensor; trace?: boolean } & Cancellable = {},
  ): Promise<{ actions: Tensor; trace: TensorDict }> {
    const resolved = resolveRtcOptions(rtc);
    const noise = options.noise ? { noise: options.noise.handle } : {};
    const r = await withCancel(options, (token) =>
      native.rtcSample({ model: this.handle, cache: cache.handle, rtc: resolved, trace: options.trace ?? false, ...noise, ...(token ? { cancel: token } : {}) }),
    );
    return { actions: new Tensor(r.actions), trace: r.trace ? fromNative(r.trace) : {} };
  }

  /** cal_cache's delta actions: one delta step at t = 0.5 from the encoded context (or zeros). */
  async deltaActions(cache: KVCache, actionContext?: Tensor): Promise<Tensor> {
    cacheArg('cache', cache);
    if (actionContext !== undefined) tensorArg('actionContext', actionContext);
    return new Tensor(await this.handle.deltaActions({ cache: cache.handle, ...(actionContext ? { actionContext: actionContext.handle } : {}) }));
  }

  /** The delta expert's velocity for x (B, C, A) at t = 0.5: the correction refine mode adds. */
  async deltaStep(cache: KVCache, x: Tensor): Promise<Tensor> {
    cacheArg('cache', cache);
    tensorArg('x', x);
    return new Tensor(await this.handle.deltaStep({ cache: cache.handle, x: x.handle }));
  }

  /** Every intermediate of a prefix pass and a sampling run, by name (parity checks). */
  async trace(obs: Observation, noise: Tensor): Promise<TensorDict> {
    observationArg('obs', obs);
    tensorArg('noise', noise);
    return fromNative(await this.handle.trace({ observation: toNative(obs), noise: noise.handle }));
  }

  /** Main training objective with optional fixed noise/time; gradients of `gradNames` when asked. */
  async forwardMain(
    obs: Observation,
    actions: Tensor,
    options: { actionIsPad?: Tensor; noise?: Tensor; time?: Tensor; gradNames?: string[] } = {},
  ): Promise<{ losses: TensorDict; grads: Record<string, Tensor | null> }> {
    observationArg('obs', obs);
    tensorArg('actions', actions);
    tensorOptionsArg('options', options, ['actionIsPad', 'noise', 'time']);
    const r = await this.handle.forwardMain({
      observation: toNative(obs),
      actions: actions.handle,
      ...handles({ actionIsPad: options.actionIsPad, noise: options.noise, time: options.time }),
      gradNames: options.gradNames ?? [],
    });
    return { losses: fromNative(r.losses), grads: gradsFromNative(r.grads) };
  }

  /** Delta-expert objective with optional fixed start and CLS noise. */
  async forwardDelta(
    obs: Observation,
    options: { actionIsPad?: Tensor; mainX0?: Tensor; clsNoise?: Tensor; gradNames?: string[]; trace?: boolean } = {},
  ): Promise<{ losses: TensorDict; grads: Record<string, Tensor | null>; trace: TensorDict }> {
    observationArg('obs', obs);
    tensorOptionsArg('options', options, ['actionIsPad', 'mainX0', 'clsNoise']);
    const r = await this.handle.forwardDelta({
      observation: toNative(obs),
      ...handles({ actionIsPad: options.actionIsPad, mainX0: options.mainX0, clsNoise: options.clsNoise }),
      gradNames: options.gradNames ?? [],
      trace: options.trace ?? false,
    });
    return { losses: fromNative(r.losses), grads: gradsFromNative(r.grads), trace: fromNative(r.trace) };
  }

  /** The parameters training updates under this config's freezing (names as in the checkpoint). */
  async trainableParameters(): Promise<Array<{ name: string; shape: number[] }>> {
    return this.handle.trainableParameters();
  }

  /** Every parameter's name in module order (PyTorch's `module.parameters()` order). */
  async parameterNames(): Promise<string[]> {
    return this.handle.parameterNames();
  }

  /** Copies of parameters/buffers by name (all of them when `names` is omitted). */
  async parameters(names?: string[]): Promise<TensorDict> {
    if (names !== undefined) stringListArg('names', names);
    return fromNative(await this.handle.parameters(names ? { names } : {}));
  }

  async info(): Promise<ModelInfo> {
    return this.handle.info();
  }

  /** Native bytes this model holds (its parameters and buffers), as reported to V8's GC; 0 once disposed. */
  get bytes(): number {
    return this.native.bytes;
  }

  get disposed(): boolean {
    return this.native.disposed;
  }

  /**
   * Frees the weights now instead of at garbage collection. Work already running keeps its own
   * reference and completes; later calls reject with ERR_SMOLVLA_DISPOSED.
   */
  dispose(): void {
    this.native.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

const MODEL_DTYPES = ['float32', 'bfloat16'] as const;

function checkModelOptions(options: LoadOptions): void {
  optionsArg('options', options);
  if (options.seed !== undefined) intArg('options.seed', options.seed, 0, Number.MAX_SAFE_INTEGER);
  if (options.dtype !== undefined) choiceArg('options.dtype', options.dtype, MODEL_DTYPES);
  if (options.device !== undefined && typeof options.device !== 'string') {
    throw argumentError('options.device', "a device string ('cpu', 'cuda', 'cuda:N')", options.device);
  }
}

function cacheArg(name: string, cache: unknown): KVCache {
  if (!(cache instanceof KVCache)) throw argumentError(name, 'a KVCache (from prefix() or sample())', cache);
  return cache;
}

/** The defined tensors of `o` as native handles (absent ones are left out). */
function handles(o: Record<string, Tensor | undefined>): Record<string, NativeTensor> {
  const out: Record<string, NativeTensor> = {};
  for (const [k, t] of Object.entries(o)) if (t) out[k] = t.handle;
  return out;
}
