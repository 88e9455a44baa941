/**
 * SmolVLAModel: the native model with tensors in and out (preprocessed observations, model-space
 * actions). lib/policy builds robot-facing batching, normalisation and the state machine on it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { defaultConfig, readConfig, writeConfig, type SmolVLAConfig } from '../config';
import { native, type NativeModel, type NativeObservation, type NativeTensorMap } from '../native';
import { Tensor } from '../tensor';
import { KVCache } from './cache';
import { withCancel, type Cancellable } from './cancel';
import { toNativeConfig, type TokenIds } from './nativeConfig';
import { checkpointFolder } from './localFolder';

/** Preprocessed model inputs (SPEC §3): images in [-1, 1], state normalised and zero-padded. */
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
  /** Copy the main expert's weights into a delta expert the checkpoint lacks (SPEC §2). */
  warmStartDelta?: boolean;
}

export interface LoadReport {
  /** Tensors copied from the checkpoint. */
  loaded: number;
  /** Delta-expert / CLS tensors the checkpoint lacks, initialised from the seed (SPEC §2). */
  initialised: string[];
  /** Checkpoint tensors the model does not use (lm_head, normalisation statistics, ...). */
  unused: string[];
  /** Whether the delta expert was warm-started from the main expert. */
  warmStarted: boolean;
}

export type TensorDict = Record<string, Tensor>;

function toNative(obs: Observation): NativeObservation {
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

export class SmolVLAModel {
  readonly config: SmolVLAConfig;
  readonly handle: NativeModel;

  private constructor(config: SmolVLAConfig, handle: NativeModel) {
    this.config = config;
    this.handle = handle;
  }

  /** A randomly initialised model (full-size shapes work: build weights from a seed, nothing downloads). */
  static async create(config: SmolVLAConfig = defaultConfig(), options: ModelOptions = {}): Promise<SmolVLAModel> {
    const handle = await native.createModel(
      toNativeConfig(config, options.tokens),
      options.seed ?? 0,
      options.dtype ?? 'float32',
      options.device ?? 'cpu',
    );
    return new SmolVLAModel(config, handle);
  }

  /** Loads a LeRobot checkpoint folder (config.json + model.safetensors). */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<{ model: SmolVLAModel; report: LoadReport }> {
    await checkpointFolder(dir, 'fromPretrained');
    const weights = path.join(dir, 'model.safetensors');
    if (!fs.existsSync(weights)) throw new Error(`fromPretrained: ${weights} does not exist (a LeRobot checkpoint folder has config.json and model.safetensors)`);
    const config = await readConfig(dir);
    const model = await SmolVLAModel.create(config, options);
    const r = await model.handle.loadState(weights);
    let warmStarted = false;
    if (options.warmStartDelta && r.initialised.some((n) => n.startsWith('model.vlm_with_expert.delta_expert.'))) {
      model.handle.warmStartDelta();
      warmStarted = true;
    }
    return { model, report: { loaded: r.loaded.length, initialised: r.initialised, unused: r.unexpected, warmStarted } };
  }

  /** Writes config.json and model.safetensors (plus extra tensors such as normalisation statistics). */
  async save(dir: string, extra: TensorDict = {}, metadata: Record<string, string> = {}): Promise<void> {
    await fs.promises.mkdir(dir, { recursive: true });
    await writeConfig(dir, this.config);
    const names = Object.keys(extra);
    await this.handle.saveState(
      path.join(dir, 'model.safetensors'),
      names,
      names.map((n) => extra[n]!.handle),
      { format: 'pt', ...metadata },
    );
  }

  /** Moves the model; the backbone takes `dtype`, projections stay float32. */
  async to(dtype: ModelDtype, device = 'cpu'): Promise<void> {
    await this.handle.to(dtype, device);
  }

  /** The cache-filling prefix pass (with the CLS head, the cache also carries obs_cls_out). */
  async prefix(obs: Observation): Promise<KVCache> {
    return new KVCache(await this.handle.prefix(toNative(obs)));
  }

  /**
   * Flow-matching sampling (SPEC §5) from an observation (runs the prefix pass and returns its
   * cache) or from an existing cache (skips it). `noise` is never modified.
   */
  async sample(
    source: Observation | KVCache,
    options: { noise?: Tensor } & Cancellable = {},
  ): Promise<{ actions: Tensor; cache: KVCache | null }> {
    const isCache = source instanceof KVCache;
    const r = await withCancel(options, (token) =>
      this.handle.sample(
        isCache ? null : toNative(source),
        isCache ? source.handle : null,
        options.noise?.handle ?? null,
        token,
      ),
    );
    return { actions: new Tensor(r.actions), cache: r.cache ? new KVCache(r.cache) : null };
  }

  /** cal_cache's delta actions: one delta step at t = 0.5 from the encoded context (or zeros). */
  async deltaActions(cache: KVCache, actionContext?: Tensor): Promise<Tensor> {
    return new Tensor(await this.handle.deltaActions(cache.handle, actionContext?.handle ?? null));
  }

  /** The delta expert's velocity for x (B, C, A) at t = 0.5: the correction refine mode adds. */
  async deltaStep(cache: KVCache, x: Tensor): Promise<Tensor> {
    return new Tensor(await this.handle.deltaStep(cache.handle, x.handle));
  }

  /** Every intermediate of a prefix pass and a sampling run, by name (parity checks). */
  async trace(obs: Observation, noise: Tensor): Promise<TensorDict> {
    return fromNative(await this.handle.trace(toNative(obs), noise.handle));
  }

  /** Main training objective with optional fixed noise/time; gradients of `gradNames` when asked. */
  async forwardMain(
    obs: Observation,
    actions: Tensor,
    options: { actionIsPad?: Tensor; noise?: Tensor; time?: Tensor; gradNames?: string[] } = {},
  ): Promise<{ losses: TensorDict; grads: Record<string, Tensor | null> }> {
    const r = await this.handle.forwardMain(
      toNative(obs),
      actions.handle,
      options.actionIsPad?.handle ?? null,
      options.noise?.handle ?? null,
      options.time?.handle ?? null,
      options.gradNames ?? [],
    );
    return { losses: fromNative(r.losses), grads: gradsFromNative(r.grads) };
  }

  /** Delta-expert objective (SPEC §5) with optional fixed start and CLS noise. */
  async forwardDelta(
    obs: Observation,
    options: { actionIsPad?: Tensor; mainX0?: Tensor; clsNoise?: Tensor; gradNames?: string[]; trace?: boolean } = {},
  ): Promise<{ losses: TensorDict; grads: Record<string, Tensor | null>; trace: TensorDict }> {
    const r = await this.handle.forwardDelta(
      toNative(obs),
      options.actionIsPad?.handle ?? null,
      options.mainX0?.handle ?? null,
      options.clsNoise?.handle ?? null,
      options.gradNames ?? [],
      options.trace ?? false,
    );
    return { losses: fromNative(r.losses), grads: gradsFromNative(r.grads), trace: fromNative(r.trace) };
  }

  /** The parameters training updates under this config's freezing (names as in the checkpoint). */
  trainableParameters(): Array<{ name: string; shape: number[] }> {
    return this.handle.trainableParameters();
  }

  /** Every parameter's name in module order (PyTorch's `module.parameters()` order). */
  parameterNames(): string[] {
    return this.handle.parameterNames();
  }

  /** Copies of parameters/buffers by name (all of them when `names` is omitted). */
  parameters(names?: string[]): TensorDict {
    return fromNative(this.handle.parameters(names));
  }

  info(): { parameters: number; dtype: string; device: string } {
    return this.handle.info();
  }
}

function gradsFromNative(map: NativeTensorMap): Record<string, Tensor | null> {
  const out: Record<string, Tensor | null> = {};
  for (const [k, v] of Object.entries(map)) out[k] = v ? new Tensor(v) : null;
  return out;
}
