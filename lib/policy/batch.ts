/**
 * Robot data -> the model's Observation and back. Cameras are resized with
 * padding to resize_imgs_with_padding (pad 0, left/top) and mapped to [-1, 1]; cameras missing from
 * the batch, up to empty_cameras, become -1 images with mask 0 after the present ones; the state's last
 * time step is normalised and zero-padded to max_state_dim; language comes from task strings (the
 * VLM's tokenizer) or ready tokens. `trainingBatch` does the same for dataset samples, plus the
 * normalised, padded action chunk.
 */
import { resolveDims, type SmolVLAConfig } from '../config';
import type { DatasetSample } from '../data';
import { actionDim } from '../config';
import { SmolVLAError } from '../errors';
import type { Observation } from '../model';
import { resizeWithPad } from '../ops';
import { disposeAll, Tensor } from '../tensor';
import {
  IMAGE_PREFIX,
  STATE_KEY,
  checkUnitRange,
  isTensorBatch,
  parseRobot,
  splitTensorBatch,
  type ChwImage,
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

  /** Validates a batch into per-sample records (robot lists keep their order). */
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

  /** A batch -> model inputs (and normalised action targets when it has `action`). */
  prepare(batch: PolicyBatch, options: { withActions?: boolean } = {}): PreparedBatch {
    return this.assemble(this.samples(batch, options.withActions ?? false));
  }

  /**
   * Dataset samples -> the trainer's batch. Images are taken as they are (CHW float32 in [0, 1]),
   * stacked per camera and resized in one call; task tokens are cached by the tokenizer.
   */
  trainingBatch(samples: readonly DatasetSample[]): TrainingBatch {
    if (samples.length === 0) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'trainingBatch: no samples');
    const spec = this.spec;
    const inputs = samples.map((s, i): SampleInput => {
      const where = `samples[${i}]`;
      const images = new Map<string, ChwImage>();
      for (const [key, img] of Object.entries(s.images)) {
        if (!spec.cameras.includes(key)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.images.${key}: not a camera of this policy (${spec.cameras.join(', ')})`);
        const [c, h, w] = img.shape;
        if (c !== 3 || img.data.length !== 3 * h * w) {
          throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}.images.${key}: expected CHW [3, H, W] with 3*H*W values, got shape [${img.shape.join(', ')}] and ${img.data.length} values`);
        }
        checkUnitRange(img.data, `${where}.images.`, key);
        images.set(key, { data: img.data, height: h, width: w });
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
    const prepared = this.assemble(inputs, true);
    return { observation: prepared.observation, actions: prepared.actions!, actionIsPad: prepared.actionIsPad! };
  }

  /** Model-space actions (B, C, A) -> per sample, cropped to the real action width and un-normalised (C x action_dim). */
  splitActions(actions: Tensor): Float32Array[] {
    const [b, c, a] = actions.shape;
    if (actions.shape.length !== 3 || b === undefined || c === undefined || a === undefined) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `actions: expected (B, C, A), got [${actions.shape.join(', ')}]`);
    }
    const ad = this.spec.actionDim;
    const data = actions.toFloat32();
    const out: Float32Array[] = [];
    const crop = new Float32Array(c * ad);
    for (let i = 0; i < b; i++) {
      for (let k = 0; k < c; k++) crop.set(data.subarray((i * c + k) * a, (i * c + k) * a + ad), k * ad);
      const chunk = this.normalizer.unnormalizeOutput(ACTION_KEY, crop);
      checkFiniteChunk(chunk, i, ad);
      out.push(chunk);
    }
    return out;
  }

  private assemble(samples: SampleInput[], withActions = false): PreparedBatch {
    const created: Tensor[] = [];
    try {
      const observation = {
        ...this.images(samples, created),
        ...this.language(samples, created),
        state: this.state(samples, created),
      };
      const prepared: PreparedBatch = { observation, size: samples.length };
      this.actions(samples, prepared, created, withActions);
      return prepared;
    } catch (err) {
      disposeAll(created);
      throw err;
    }
  }

  private images(samples: SampleInput[], created: Tensor[]): { images: Tensor[]; imgMasks: Tensor[] } {
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
    const [width, height] = this.config.resizeImgsWithPadding;
    const b = samples.length;
    const images: Tensor[] = [];
    const imgMasks: Tensor[] = [];
    for (const key of present) {
      const img = this.resizeCamera(key, samples.map((s) => s.images.get(key) ?? null), width, height);
      created.push(img);
      images.push(img);
      const mask = Uint8Array.from(samples, (s) => (s.images.has(key) && s.masks.get(key) !== false ? 1 : 0));
      const m = Tensor.from(mask, [b], 'bool');
      created.push(m);
      imgMasks.push(m);
    }
    for (let i = 0; i < missing.length; i++) {
      const img = Tensor.from(new Float32Array(b * 3 * height * width).fill(-1), [b, 3, height, width]);
      const m = Tensor.from(new Uint8Array(b), [b], 'bool');
      created.push(img, m);
      images.push(img);
      imgMasks.push(m);
    }
    return { images, imgMasks };
  }

  /**
   * One camera's images (null: the sample lacks it -> -1, masked) -> (B, 3, height, width) in [-1, 1].
   * Same-size images are stacked and resized in one call.
   */
  private resizeCamera(key: string, imgs: Array<ChwImage | null>, width: number, height: number): Tensor {
    const b = imgs.length;
    const first = imgs[0];
    const normalize = this.normalizer.normalizesImages(key);
    const uniform = first && imgs.every((im) => im && im.height === first.height && im.width === first.width);
    if (uniform) {
      const plane = first.height * first.width;
      const stacked = new Float32Array(b * 3 * plane);
      imgs.forEach((im, i) => stacked.set(im!.data, i * 3 * plane));
      if (normalize) this.normalizer.normalizeImageInPlace(key, stacked, plane);
      return toSigned(resizeStacked(stacked, b, first.height, first.width, width, height));
    }
    const out = new Float32Array(b * 3 * height * width).fill(-1);
    imgs.forEach((im, i) => {
      if (!im) return;
      const data = normalize ? Float32Array.from(im.data) : im.data;
      if (normalize) this.normalizer.normalizeImageInPlace(key, data, im.height * im.width);
      const r = resizeStacked(data, 1, im.height, im.width, width, height);
      out.set(r.toFloat32(), i * 3 * height * width);
      r.dispose();
    });
    // The -1 fill above is already in [-1, 1]; map the resized ones only.
    imgs.forEach((im, i) => {
      if (!im) return;
      for (let j = i * 3 * height * width, end = j + 3 * height * width; j < end; j++) out[j] = out[j]! * 2 - 1;
    });
    return Tensor.from(out, [b, 3, height, width]);
  }

  private state(samples: SampleInput[], created: Tensor[]): Tensor {
    const dim = samples[0]!.state.length;
    const s = this.spec.maxStateDim;
    const padded = new Float32Array(samples.length * s);
    samples.forEach((sample, i) => {
      if (sample.state.length !== dim) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `robot ${i}: ${STATE_KEY}: ${sample.state.length} values, robot 0 has ${dim}; a batch shares one state width`);
      }
      padded.set(this.normalizer.normalizeInput(STATE_KEY, sample.state), i * s);
    });
    const t = Tensor.from(padded, [samples.length, s]);
    created.push(t);
    return t;
  }

  private language(samples: SampleInput[], created: Tensor[]): { langTokens: Tensor; langMasks: Tensor } {
    const rows: Array<{ ids: ArrayLike<number>; mask: ArrayLike<number> }> = new Array(samples.length);
    const taskRows: number[] = [];
    samples.forEach((s, i) => {
      if ('task' in s.language) taskRows.push(i);
      else rows[i] = { ids: s.language.tokens, mask: s.language.mask };
    });
    // Padding of ready tokens uses the tokenizer's pad id when there is one (masked either way).
    const pad = this.tokenizer?.padTokenId ?? 0;
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
    // Ready tokens of different lengths (or mixed with task rows) are right-padded like the tokenizer pads.
    const length = Math.max(...rows.map((r) => r.ids.length));
    const ids = new BigInt64Array(samples.length * length).fill(BigInt(pad));
    const mask = new Uint8Array(samples.length * length);
    rows.forEach((r, i) => {
      for (let j = 0; j < r.ids.length; j++) {
        ids[i * length + j] = BigInt(r.ids[j]!);
        mask[i * length + j] = r.mask[j]!;
      }
    });
    const langTokens = Tensor.from(ids, [samples.length, length]);
    created.push(langTokens);
    const langMasks = Tensor.from(mask, [samples.length, length], 'bool');
    created.push(langMasks);
    return { langTokens, langMasks };
  }

  private actions(samples: SampleInput[], prepared: PreparedBatch, created: Tensor[], required: boolean): void {
    const withAction = samples.filter((s) => s.action).length;
    if (withAction === 0 && !required) return;
    if (withAction !== samples.length) {
      const i = samples.findIndex((s) => !s.action);
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `robot ${i}: action: missing while other samples of the batch have one`);
    }
    const { chunkSize: c, actionDim: ad } = this.spec;
    const a = this.config.maxActionDim;
    const b = samples.length;
    const padded = new Float32Array(b * c * a);
    samples.forEach((s, i) => {
      const norm = this.normalizer.normalizeTarget(ACTION_KEY, s.action!);
      for (let k = 0; k < c; k++) padded.set(norm.subarray(k * ad, (k + 1) * ad), (i * c + k) * a);
    });
    prepared.actions = Tensor.from(padded, [b, c, a]);
    created.push(prepared.actions);
    if (required || samples.some((s) => s.actionIsPad)) {
      const isPad = new Uint8Array(b * c);
      samples.forEach((s, i) => {
        if (s.actionIsPad) isPad.set(s.actionIsPad, i * c);
      });
      prepared.actionIsPad = Tensor.from(isPad, [b, c], 'bool');
      created.push(prepared.actionIsPad);
    }
  }
}

function checkFinite(values: ArrayLike<number>, where: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}: ${Number.isNaN(values[i]) ? 'NaN' : 'infinite value'} at index ${i}`);
  }
}

function resizeStacked(data: Float32Array, b: number, h: number, w: number, width: number, height: number): Tensor {
  const src = Tensor.from(data, [b, 3, h, w]);
  try {
    return resizeWithPad(src, width, height, 0);
  } finally {
    src.dispose();
  }
}

/** x * 2 - 1 as a new tensor (t is disposed): data() is a copy, so it cannot be changed in place. */
function toSigned(t: Tensor): Tensor {
  const d = t.toFloat32();
  const shape = t.shape;
  t.dispose();
  for (let i = 0; i < d.length; i++) d[i] = d[i]! * 2 - 1;
  return Tensor.from(d, shape);
}

/**
 * A chunk with a NaN or infinity is never handed to a robot: NaN weights, NaN noise or statistics
 * that overflow all end here, as an error naming the robot, step and action dimension.
 */
function checkFiniteChunk(chunk: Float32Array, robot: number, actionDim: number): void {
  for (let j = 0; j < chunk.length; j++) {
    if (!Number.isFinite(chunk[j]!)) {
      throw new SmolVLAError(
        'ERR_SMOLVLA_NOT_FINITE',
        `actions: the chunk of robot ${robot} has ${chunk[j]} at step ${Math.floor(j / actionDim)}, dimension ${j % actionDim} ` +
          '(non-finite weights, noise or normalisation statistics)',
      );
    }
  }
}
