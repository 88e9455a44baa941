/**
 * Robot data -> the model's Observation and back, with one native call each way, run on the libuv
 * pool (native/ops/batch_inputs.h): cameras are resized with padding to resize_imgs_with_padding
 * (pad 0, left/top) and mapped to [-1, 1]; cameras missing from the batch, up to empty_cameras,
 * become -1 images with mask 0 after the present ones; the state's last time step is normalised and
 * zero-padded to max_state_dim; language comes from task strings (the VLM's tokenizer) or ready
 * tokens. `trainingBatch` does the same for dataset samples, plus the normalised, padded action
 * chunk. The JS thread only validates keys and shapes and tokenises; it never loops over pixels.
 */
import { resolveDims, type SmolVLAConfig } from '../config';
import type { DatasetSample } from '../data';
import { actionDim } from '../config';
import { asSmolVLAError, SmolVLAError } from '../errors';
import type { Observation } from '../model';
import { native, type NativeBatchRequest } from '../native';
import { disposeAll, Tensor } from '../tensor';
import { boolArg, optionsArg } from '../util/args';
import {
  IMAGE_PREFIX,
  STATE_KEY,
  isTensorBatch,
  parseRobot,
  splitTensorBatch,
  type FrameView,
  type InputSpec,
  type PolicyBatch,
  type RobotObservation,
  type SampleInput,
} from './inputs';
import type { Normalizer } from './normalize';
import type { TaskTokenizer } from './tokenizer';

const ACTION_KEY = 'action';

/** A preprocessed batch: the model inputs (and training targets when the batch had actions). */
export interface PreparedBatch {
  observation: Observation;
  /** Number of samples (robots). */
  size: number;
  /** (B, C, max_action_dim) normalised, zero-padded. */
  actions?: Tensor;
  /** (B, C) bool: chunk steps past the episode end. */
  actionIsPad?: Tensor;
}

/** What the trainer's optimiser step takes. */
export interface TrainingBatch {
  observation: Observation;
  /** (B, C, max_action_dim) normalised, zero-padded. */
  actions: Tensor;
  /** (B, C) bool */
  actionIsPad: Tensor;
}

/** Frees the native memory of a prepared or training batch. */
export function disposeBatch(batch: PreparedBatch | TrainingBatch): void {
  disposeAll(batch);
}

/** A tokenizer, or why there is none (the search's error, shown when a task string needs one). */
export type TokenizerSlot = TaskTokenizer | { missing: string };

type LanguageFields = Pick<NativeBatchRequest, 'tokens' | 'tokenLengths' | 'tokenMask' | 'padId'>;
type ActionFields = Pick<NativeBatchRequest, 'actions' | 'chunkSize' | 'actionDim' | 'maxActionDim' | 'actionNorm' | 'actionIsPad'>;

export class Preprocessor {
  readonly config: SmolVLAConfig;
  readonly normalizer: Normalizer;
  readonly spec: InputSpec;
  private readonly tokenizerSlot: TokenizerSlot;

  constructor(config: SmolVLAConfig, normalizer: Normalizer, tokenizer: TokenizerSlot | null) {
    const dims = resolveDims(config);
    this.config = config;
    this.normalizer = normalizer;
    this.tokenizerSlot = tokenizer ?? { missing: 'no tokenizer was given to this policy (tokenizer option)' };
    const declared = config.inputFeatures[STATE_KEY];
    this.spec = {
      cameras: dims.cameras,
      stateDim: declared ? declared.shape.reduce((a, b) => a * b, 1) : null,
      maxStateDim: config.maxStateDim,
      actionDim: actionDim(config),
      chunkSize: config.chunkSize,
      vocabSize: dims.text.vocab,
      maxTokens: config.tokenizerMaxLength,
    };
  }

  get tokenizer(): TaskTokenizer | null {
    return 'missing' in this.tokenizerSlot ? null : this.tokenizerSlot;
  }

  /** Validates a batch's keys and shapes into per-sample records (robot lists keep their order). */
  samples(batch: PolicyBatch, withActions = false): SampleInput[] {
    if (typeof batch !== 'object' || batch === null) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `batch: expected an observation object, a list of them or a tensor batch, got ${String(batch)}`);
    if (Array.isArray(batch)) {
      if (batch.length === 0) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'batch: the list of robot observations is empty');
      return (batch as readonly RobotObservation[]).map((o, i) => parseRobot(o, this.spec, `robot ${i}: `, withActions));
    }
    if (isTensorBatch(batch)) {
      const rows = splitTensorBatch(batch);
      return rows.map((o, i) => parseRobot(o, this.spec, `sample ${i}: `, withActions));
    }
    return [parseRobot(batch as RobotObservation, this.spec, '', withActions)];
  }

  /** The number of samples a batch holds, without preprocessing it. */
  sizeOf(batch: PolicyBatch): number {
    if (Array.isArray(batch)) return batch.length;
    if (isTensorBatch(batch)) {
      const t = Object.values(batch).find((v): v is Tensor => v instanceof Tensor);
      return t?.shape[0] ?? 0;
    }
    return 1;
  }

  /**
   * A batch -> model inputs (and normalised action targets when it has `action`). The frames are
   * copied when the call starts: the caller may reuse its buffers once this returns its Promise.
   */
  async prepare(batch: PolicyBatch, options?: { withActions?: boolean }): Promise<PreparedBatch> {
    const { withActions = false } = optionsArg('options', options);
    boolArg('options.withActions', withActions);
    return this.assemble(this.samples(batch, withActions), withActions);
  }

  /**
   * Checks a batch as `prepare` would, the values of float images included, without building the
   * model inputs; resolves with its number of samples.
   */
  async validate(batch: PolicyBatch): Promise<number> {
    const samples = this.samples(batch);
    const request = this.request(samples, false);
    // Only float frames have values to check (bytes are always in range): send those alone.
    const cameras = request.cameras.map((c) => ({ ...c, frames: c.frames.map((f) => (f && f.data instanceof Float32Array ? f : null)) }));
    if (cameras.some((c) => c.frames.some((f) => f !== null))) await coded(() => native.preprocessBatch({ ...request, cameras, validateOnly: true }));
    return samples.length;
  }

  /**
   * Dataset samples -> the trainer's batch. Images are taken as they are (CHW float32 in [0, 1]);
   * task tokens are cached by the tokenizer.
   */
  async trainingBatch(samples: readonly DatasetSample[]): Promise<TrainingBatch> {
    if (!Array.isArray(samples) || samples.length === 0) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'trainingBatch: expected a non-empty array of dataset samples');
    const spec = this.spec;
    const inputs = samples.map((s: DatasetSample, i): SampleInput => {
      const where = `samples[${i}]`;
      const fields = typeof s === 'object' && s !== null && typeof s.images === 'object' && s.images !== null;
      if (!fields || !(s.state instanceof Float32Array) || !(s.actions instanceof Float32Array) || !(s.actionIsPad instanceof Uint8Array)) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}: expected a dataset sample {images, state: Float32Array, actions: Float32Array, actionIsPad: Uint8Array, task}`);
      }
      const images = new Map<string, FrameView>();
      for (const [key, img] of Object.entries(s.images)) {
        if (!spec.cameras.includes(key)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.images.${key}: not a camera of this policy (${spec.cameras.join(', ')})`);
        const shape: unknown = img?.shape;
        if (!(img?.data instanceof Float32Array) || !Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
          throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.images.${key}: expected {data: Float32Array, shape: [3, H, W]}`);
        }
        const [c, h, w] = img.shape;
        if (c !== 3 || img.data.length !== 3 * h * w) {
          throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.images.${key}: expected CHW [3, H, W] with 3*H*W values, got shape [${img.shape.join(', ')}] and ${img.data.length} values`);
        }
        images.set(key, { name: `${where}.images.${key}`, data: img.data, height: h, width: w });
      }
      if (spec.stateDim !== null && s.state.length !== spec.stateDim) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.state: expected ${spec.stateDim} values (input_features ${STATE_KEY}), got ${s.state.length}`);
      }
      if (s.actionIsPad.length !== spec.chunkSize) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.actionIsPad: expected chunk_size = ${spec.chunkSize} flags, got ${s.actionIsPad.length}`);
      }
      if (s.actions.length !== spec.chunkSize * spec.actionDim) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.actions: expected ${spec.chunkSize} x ${spec.actionDim} values, got ${s.actions.length}`);
      }
      if (typeof s.task !== 'string') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.task: expected a string, got ${typeof s.task}`);
      checkFinite(s.state, `${where}.state`);
      checkFinite(s.actions, `${where}.actions`);
      return { images, masks: new Map(), state: s.state, language: { task: s.task }, action: s.actions, actionIsPad: s.actionIsPad };
    });
    const prepared = await this.assemble(inputs, true);
    return { observation: prepared.observation, actions: prepared.actions!, actionIsPad: prepared.actionIsPad! };
  }

  /**
   * Model-space actions (B, C, A) -> per sample C x action_dim: cropped to the real action width and
   * un-normalised natively. A chunk with a NaN or infinity rejects (ERR_SMOLVLA_NOT_FINITE, naming
   * the robot, step and dimension): NaN weights, noise or overflowing statistics end there, never
   * at a robot.
   */
  async splitActions(actions: Tensor): Promise<Float32Array[]> {
    if (!(actions instanceof Tensor) || actions.shape.length !== 3) {
      const got = actions instanceof Tensor ? `[${actions.shape.join(', ')}]` : String(actions);
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `actions: expected a (B, C, A) tensor, got ${got}`);
    }
    return coded(() => native.unnormalizeActions({ actions: actions.handle, actionDim: this.spec.actionDim, norm: this.normalizer.nativeStats('outputs', ACTION_KEY) }));
  }

  private async assemble(samples: SampleInput[], withActions: boolean): Promise<PreparedBatch> {
    const request = this.request(samples, withActions);
    const r = await coded(() => native.preprocessBatch(request));
    const observation: Observation = {
      images: r.images.map((t) => new Tensor(t)),
      imgMasks: r.imgMasks.map((t) => new Tensor(t)),
      langTokens: new Tensor(r.langTokens),
      langMasks: new Tensor(r.langMasks),
      state: new Tensor(r.state),
    };
    const prepared: PreparedBatch = { observation, size: samples.length };
    if (r.actions) prepared.actions = new Tensor(r.actions);
    if (r.actionIsPad) prepared.actionIsPad = new Tensor(r.actionIsPad);
    return prepared;
  }

  /** The native call's parameters; every error a batch can have beyond its values is thrown here. */
  private request(samples: SampleInput[], withActions: boolean): NativeBatchRequest {
    const [width, height] = this.config.resizeImgsWithPadding;
    const { present, empty } = this.cameraSlots(samples);
    const cameras = present.map((key) => ({
      frames: samples.map((s) => s.images.get(key) ?? null),
      valid: Uint8Array.from(samples, (s) => (s.masks.get(key) === false ? 0 : 1)),
      norm: this.normalizer.nativeStats('inputs', key),
    }));
    const state = this.state(samples);
    return {
      size: samples.length,
      width,
      height,
      cameras,
      emptyCameras: empty,
      state,
      stateDim: state.length / samples.length,
      maxStateDim: this.spec.maxStateDim,
      stateNorm: this.normalizer.nativeStats('inputs', STATE_KEY),
      ...this.language(samples),
      ...this.actions(samples, withActions),
    };
  }

  /** The cameras the batch has (model order), then how many placeholders stand in for the rest. */
  private cameraSlots(samples: SampleInput[]): { present: string[]; empty: number } {
    const { cameras } = this.spec;
    const present = cameras.filter((key) => samples.some((s) => s.images.has(key)));
    const missing = cameras.filter((key) => !present.includes(key));
    if (present.length === 0) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `batch: no camera image; expected at least one of ${cameras.join(', ')} (as ${IMAGE_PREFIX}<name>)`);
    }
    const allowed = this.config.emptyCameras;
    if (missing.length > allowed) {
      // Name the real cameras first: the placeholders' own keys are rarely what the caller forgot.
      const real = missing.filter((k) => !k.startsWith(`${IMAGE_PREFIX}empty_camera_`));
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT',
        `${(real.length > 0 ? real : missing).join(', ')}: camera missing from the batch; the config has ${cameras.length} ` +
          `camera(s) and empty_cameras = ${allowed} placeholder(s) for missing ones, ${missing.length} are missing`,
      );
    }
    return { present, empty: missing.length };
  }

  /** The robots' states (real width, one after another); a batch shares one width. */
  private state(samples: SampleInput[]): Float32Array {
    const dim = samples[0]!.state.length;
    const out = new Float32Array(samples.length * dim);
    samples.forEach((sample, i) => {
      if (sample.state.length !== dim) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `robot ${i}: ${STATE_KEY}: ${sample.state.length} values, robot 0 has ${dim}; a batch shares one state width`);
      }
      out.set(sample.state, i * dim);
    });
    return out;
  }

  /** Token rows of every sample (task strings tokenised here); the native side right-pads them to the longest. */
  private language(samples: SampleInput[]): LanguageFields {
    const rows: Array<{ ids: Int32Array; mask: Uint8Array }> = new Array(samples.length);
    const taskRows: number[] = [];
    samples.forEach((s, i) => {
      if ('task' in s.language) taskRows.push(i);
      else rows[i] = { ids: s.language.tokens, mask: s.language.mask };
    });
    if (taskRows.length > 0) {
      const slot = this.tokenizerSlot;
      if ('missing' in slot) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `task: a task string needs the VLM's tokenizer (or pass observation.language.tokens): ${slot.missing}`);
      const tok = slot.tokenizeTasks(
        taskRows.map((i) => (samples[i]!.language as { task: string }).task),
        { maxLength: this.config.tokenizerMaxLength, padTo: this.config.padLanguageTo },
      );
      if (tok.ids.some((id) => id >= this.spec.vocabSize)) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `task: the tokenizer produced ids >= the VLM's vocabulary size ${this.spec.vocabSize}: wrong tokenizer for this model`);
      }
      taskRows.forEach((i, r) => {
        rows[i] = { ids: tok.ids.subarray(r * tok.length, (r + 1) * tok.length), mask: tok.mask.subarray(r * tok.length, (r + 1) * tok.length) };
      });
    }
    const tokenLengths = Int32Array.from(rows, (r) => r.ids.length);
    const tokens = new Int32Array(tokenLengths.reduce((a, b) => a + b, 0));
    const tokenMask = new Uint8Array(tokens.length);
    let at = 0;
    for (const r of rows) {
      tokens.set(r.ids, at);
      tokenMask.set(r.mask, at);
      at += r.ids.length;
    }
    // Padding of ready tokens uses the tokenizer's pad id when there is one (masked either way).
    return { tokens, tokenLengths, tokenMask, padId: this.tokenizer?.padTokenId ?? 0 };
  }

  /** The action chunks (robot space) and their padding flags, when the batch has them. */
  private actions(samples: SampleInput[], required: boolean): ActionFields {
    const withAction = samples.filter((s) => s.action).length;
    if (withAction === 0 && !required) return {};
    if (withAction !== samples.length) {
      const i = samples.findIndex((s) => !s.action);
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `robot ${i}: action: missing while other samples of the batch have one`);
    }
    const { chunkSize: c, actionDim: ad } = this.spec;
    const b = samples.length;
    const actions = new Float32Array(b * c * ad);
    samples.forEach((s, i) => actions.set(s.action!, i * c * ad));
    const out: ActionFields = { actions, chunkSize: c, actionDim: ad, maxActionDim: this.config.maxActionDim, actionNorm: this.normalizer.nativeStats('targets', ACTION_KEY) };
    if (required || samples.some((s) => s.actionIsPad)) {
      const isPad = new Uint8Array(b * c);
      samples.forEach((s, i) => {
        if (s.actionIsPad) isPad.set(s.actionIsPad, i * c);
      });
      out.actionIsPad = isPad;
    }
    return out;
  }
}

/** The native call's outcome, its errors as SmolVLAErrors (the native checks replace JS ones that threw those). */
async function coded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw asSmolVLAError(err);
  }
}

function checkFinite(values: ArrayLike<number>, where: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}: ${Number.isNaN(values[i]) ? 'NaN' : 'infinite value'} at index ${i}`);
  }
}
