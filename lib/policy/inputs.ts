/**
 * Robot-facing inputs: the batch shapes a caller may pass, LeRobot's key
 * names (and the seeds' `obs.` alias), and their validation into one sample record per robot. Every
 * error names the key as the caller wrote it (and the robot, in a list of robots).
 */
import { SmolVLAError } from '../errors';
import type { NativeFrame } from '../native';
import { Tensor } from '../tensor';

/**
 * An 8-bit camera frame, row-major HWC (RGB, or RGBA with channels 4: alpha is dropped), or with
 * `layout: 'chw'` three planes R, G, B (openpi's ALOHA clients send uint8 CHW).
 */
export interface RgbFrame {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 3 (default) or 4; CHW frames have 3. */
  channels?: 3 | 4;
  /** 'hwc' (default) or 'chw'. */
  layout?: 'hwc' | 'chw';
  /** Frames stacked on a leading time axis (default 1): the last one is used. */
  frames?: number;
}

/** A float camera image, CHW ([3, H, W]) or with a time axis ([T, 3, H, W], the last is used), values in [0, 1]. */
export interface FloatImage {
  data: Float32Array;
  shape: readonly number[];
}

export type CameraImage = RgbFrame | FloatImage;

/** Values with a shape, e.g. a state history [T, D] (the last row is used) or an action chunk [C, A]. */
export interface Series {
  data: Float32Array | Float64Array | readonly number[];
  shape: readonly number[];
}

export type VectorInput = Float32Array | Float64Array | readonly number[] | Series;
export type FlagsInput = ArrayLike<boolean | number>;

/**
 * One robot's observation (one sample), keyed as LeRobot keys its batches; `obs.` may replace
 * `observation.` (the seeds' alias). Training adds `action` (C x action_dim) and its padding flags
 * (`action_is_pad`, or the published policy's `actions_id_pad`: same meaning).
 */
export interface RobotObservation {
  /** Camera frames, and `<camera key>_padding_mask` flags (false: that camera's image is masked). */
  [key: `observation.images.${string}` | `obs.images.${string}`]: CameraImage | boolean | number | undefined;
  'observation.state'?: VectorInput;
  'obs.state'?: VectorInput;
  /** The task instruction (tokenised with the VLM's tokenizer). */
  task?: string;
  /** Ready language tokens instead of a task string. */
  'observation.language.tokens'?: ArrayLike<number | bigint>;
  'obs.language.tokens'?: ArrayLike<number | bigint>;
  'observation.language.attention_mask'?: FlagsInput;
  'obs.language.attention_mask'?: FlagsInput;
  action?: VectorInput;
  action_is_pad?: FlagsInput;
  actions_id_pad?: FlagsInput;
  [key: string]: unknown;
}

/**
 * A batched LeRobot dict of tensors: cameras (B, 3, H, W) or (B, T, 3, H, W) float32 in [0, 1], their
 * padding masks (B), `observation.state` (B, D) or (B, T, D), language tokens (B, L) and attention mask
 * (B, L), `action` (B, C, A), `action_is_pad` (B, C); `task` a string (every sample) or B strings.
 */
export type TensorBatch = Record<string, Tensor | string | readonly string[]>;

/** One robot, several robots (stacked in this order, results split back per robot), or a tensor batch. */
export type PolicyBatch = RobotObservation | readonly RobotObservation[] | TensorBatch;

/**
 * A camera image of one sample as the native preprocessing takes it: the last frame as a view of
 * the caller's data (HWC bytes with `channels`, or CHW floats), named for errors. Its values are
 * read (and float frames range-checked) natively, off the JS thread.
 */
export type FrameView = NativeFrame;

export type LanguageEntry = { task: string } | { tokens: Int32Array; mask: Uint8Array };

/** One validated sample. */
export interface SampleInput {
  images: Map<string, FrameView>;
  /** Padding-mask flags by camera key (absent: valid). */
  masks: Map<string, boolean>;
  /** observation.state of the last time step, real width. */
  state: Float32Array;
  language: LanguageEntry;
  /** (C x action_dim) row-major, not normalised. */
  action?: Float32Array;
  /** (C) 1 = padded step. */
  actionIsPad?: Uint8Array;
}

/** What validation needs to know about the model. */
export interface InputSpec {
  cameras: readonly string[];
  /** observation.state's declared width, or null (any width up to maxStateDim). */
  stateDim: number | null;
  maxStateDim: number;
  actionDim: number;
  chunkSize: number;
  vocabSize: number;
  /** Most ready language tokens per robot (tokenizer_max_length: what the tokenizer would keep). */
  maxTokens: number;
}

export const OBS_PREFIX = 'observation.';
export const IMAGE_PREFIX = 'observation.images.';
export const STATE_KEY = 'observation.state';
export const TOKENS_KEY = 'observation.language.tokens';
export const ATTENTION_MASK_KEY = 'observation.language.attention_mask';
export const PADDING_MASK_SUFFIX = '_padding_mask';
/** LeRobot dataset bookkeeping keys a batch may carry; ignored, as are `<key>_is_pad` flags of observation history. */
const IGNORED_KEYS = new Set(['timestamp', 'frame_index', 'episode_index', 'index', 'task_index', 'next.done', 'next.reward', 'next.success']);

/** `obs.x` -> `observation.x`; other keys unchanged. */
export function canonicalKey(key: string): string {
  return key.startsWith('obs.') ? OBS_PREFIX + key.slice(4) : key;
}

/** Throws an Error whose message starts with where the problem is. */
function fail(where: string, key: string, message: string): never {
  throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${where}${key}: ${message}`);
}

/** A NaN or infinity where a finite number is required (ERR_SMOLVLA_NOT_FINITE, key named). */
function failNotFinite(where: string, key: string, message: string): never {
  throw new SmolVLAError('ERR_SMOLVLA_NOT_FINITE', `${where}${key}: ${message}`);
}

/** Largest image width or height accepted (8K): larger frames are refused before any copy. */
export const MAX_IMAGE_SIDE = 8192;
/** Longest task instruction (characters). */
export const MAX_TASK_CHARS = 65536;
/** Most frames of observation history one image input may carry. */
const MAX_FRAMES = 64;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Tensor) return `a tensor ${v.dtype} [${v.shape.join(', ')}]`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<unknown>).length})`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v === 'object' ? `an object with keys ${Object.keys(v as object).join(', ') || '(none)'}` : `${typeof v} ${String(v)}`;
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function rgbView(frame: RgbFrame, where: string, key: string): FrameView {
  const { width, height } = frame;
  const channels = frame.channels ?? 3;
  const frames = frame.frames ?? 1;
  const layout = frame.layout ?? 'hwc';
  if (layout !== 'hwc' && layout !== 'chw') fail(where, key, `layout must be 'hwc' or 'chw', got ${String(layout)}`);
  if (layout === 'chw' && channels !== 3) fail(where, key, `CHW frames have 3 channels, got ${String(channels)}`);
  if (!isPositiveInt(width) || !isPositiveInt(height) || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    fail(where, key, `width and height must be integers in [1, ${MAX_IMAGE_SIDE}], got ${String(width)} x ${String(height)}`);
  }
  if (channels !== 3 && channels !== 4) fail(where, key, `channels must be 3 (RGB) or 4 (RGBA), got ${String(channels)}`);
  if (!isPositiveInt(frames) || frames > MAX_FRAMES) fail(where, key, `frames must be an integer in [1, ${MAX_FRAMES}], got ${String(frames)}`);
  const plane = width * height;
  const need = frames * plane * channels;
  if (frame.data.length !== need) {
    fail(where, key, `${frames} frame(s) of ${width} x ${height} x ${channels} need ${need} bytes, got ${frame.data.length}`);
  }
  const view: FrameView = { name: `${where}${key}`, data: frame.data.subarray((frames - 1) * plane * channels), height, width, channels };
  if (layout === 'chw') view.layout = 'chw';
  return view;
}

function floatView(image: FloatImage, where: string, key: string): FrameView {
  const shape = image.shape;
  if (!Array.isArray(shape) || (shape.length !== 3 && shape.length !== 4) || !shape.every(isPositiveInt)) {
    fail(where, key, `shape must be [3, H, W] or [T, 3, H, W], got ${JSON.stringify(shape)}`);
  }
  const [c, h, w] = shape.slice(-3) as [number, number, number];
  if (c !== 3) fail(where, key, `expected 3 channels first (CHW), got shape [${shape.join(', ')}]`);
  if (h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE || (shape.length === 4 && shape[0]! > MAX_FRAMES)) {
    fail(where, key, `images are at most ${MAX_FRAMES} frames of ${MAX_IMAGE_SIDE} x ${MAX_IMAGE_SIDE}, got shape [${shape.join(', ')}]`);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (image.data.length !== numel) fail(where, key, `shape [${shape.join(', ')}] needs ${numel} values, got ${image.data.length}`);
  // The values (finite, in [0, 1]) are checked natively with the rest of the per-pixel work.
  return { name: `${where}${key}`, data: image.data.subarray(numel - 3 * h * w), height: h, width: w };
}

function toImage(v: unknown, where: string, key: string): FrameView {
  if (typeof v === 'object' && v !== null) {
    const o = v as { data?: unknown; shape?: unknown; width?: unknown };
    if (o.data instanceof Float32Array && o.shape !== undefined) return floatView(v as FloatImage, where, key);
    if ((o.data instanceof Uint8Array || o.data instanceof Uint8ClampedArray) && o.width !== undefined) return rgbView(v as RgbFrame, where, key);
  }
  return fail(
    where,
    key,
    `expected {data: Uint8Array, width, height} (HWC RGB) or {data: Float32Array, shape: [3, H, W]} in [0, 1], got ${describe(v)}`,
  );
}

/** Numbers of a vector (or the last row of a [T, D] series), checked finite. */
function toVector(v: unknown, where: string, key: string, lastRow: boolean): { values: Float32Array; rows: number } {
  let data: ArrayLike<number>;
  let shape: readonly number[] | undefined;
  if (v instanceof Float32Array || v instanceof Float64Array || Array.isArray(v)) {
    data = v as ArrayLike<number>;
  } else if (typeof v === 'object' && v !== null && 'data' in v && 'shape' in v) {
    const s = v as Series;
    if (!(s.data instanceof Float32Array || s.data instanceof Float64Array || Array.isArray(s.data))) {
      fail(where, key, `data must be a Float32Array, Float64Array or number[], got ${describe(s.data)}`);
    }
    data = s.data;
    shape = s.shape;
    if (!Array.isArray(shape) || shape.length < 1 || shape.length > 2 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(where, key, `shape must be [D] or [T, D], got ${JSON.stringify(shape)}`);
    }
    const numel = shape.reduce((a, b) => a * b, 1);
    if (data.length !== numel) fail(where, key, `shape [${shape.join(', ')}] needs ${numel} values, got ${data.length}`);
  } else {
    return fail(where, key, `expected a Float32Array, number[] or {data, shape}, got ${describe(v)}`);
  }
  const rows = shape && shape.length === 2 ? shape[0]! : 1;
  const dim = shape ? shape[shape.length - 1]! : data.length;
  const start = lastRow ? (rows - 1) * dim : 0;
  const values = Float32Array.from({ length: lastRow ? dim : data.length }, (_, i) => {
    const x = data[start + i];
    if (typeof x !== 'number') fail(where, key, `entry ${start + i} must be a number, got ${describe(x)}`);
    // Math.fround: a double such as 1e39 is finite but becomes Infinity as float32, the model's type.
    if (!Number.isFinite(Math.fround(x))) {
      failNotFinite(where, key, `${Number.isFinite(x) ? `value ${x} (beyond float32's range)` : Number.isNaN(x) ? 'NaN' : `non-finite value ${x}`} at index ${start + i}`);
    }
    return x;
  });
  return { values, rows: lastRow ? 1 : rows };
}

function toFlags(v: unknown, length: number, where: string, key: string): Uint8Array {
  if (typeof v !== 'object' || v === null || typeof (v as ArrayLike<unknown>).length !== 'number') {
    fail(where, key, `expected ${length} booleans, got ${describe(v)}`);
  }
  const a = v as ArrayLike<unknown>;
  if (a.length !== length) fail(where, key, `expected ${length} flags, got ${a.length}`);
  return Uint8Array.from({ length }, (_, i) => {
    const x = a[i];
    if (typeof x === 'boolean') return x ? 1 : 0;
    if (x === 0 || x === 1 || x === 0n || x === 1n) return Number(x);
    return fail(where, key, `entry ${i} must be a boolean or 0/1, got ${String(x)}`);
  });
}

function toTokens(v: unknown, spec: InputSpec, where: string, key: string): Int32Array {
  if (typeof v !== 'object' || v === null || typeof (v as ArrayLike<unknown>).length !== 'number') {
    fail(where, key, `expected an array of token ids, got ${describe(v)}`);
  }
  const a = v as ArrayLike<unknown>;
  if (a.length === 0) fail(where, key, 'no tokens');
  if (a.length > spec.maxTokens) fail(where, key, `at most ${spec.maxTokens} tokens (tokenizer_max_length), got ${a.length}`);
  return Int32Array.from({ length: a.length }, (_, i) => {
    const x = typeof a[i] === 'bigint' ? Number(a[i]) : a[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= spec.vocabSize) {
      fail(where, key, `token ${i} must be an integer in [0, ${spec.vocabSize}) (the VLM's vocabulary), got ${String(a[i])}`);
    }
    return x;
  });
}

function toMaskFlag(v: unknown, where: string, key: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1;
  return fail(where, key, `expected a boolean (false: the camera's image is masked), got ${describe(v)}`);
}

/**
 * Validates one robot's observation. `where` prefixes messages ('robot 1: ' in a list). `withActions`
 * requires `action`; otherwise an `action` present is still validated (so `forward` and prediction
 * accept the same batches).
 */
export function parseRobot(obs: RobotObservation, spec: InputSpec, where: string, withActions: boolean): SampleInput {
  if (typeof obs !== 'object' || obs === null || Array.isArray(obs)) {
    return fail(where, 'observation', `expected an object keyed like a LeRobot batch, got ${describe(obs)}`);
  }
  const seen = new Map<string, string>();
  const images = new Map<string, FrameView>();
  const masks = new Map<string, boolean>();
  let state: Float32Array | undefined;
  let tokens: { key: string; value: unknown } | undefined;
  let attention: { key: string; value: unknown } | undefined;
  let task: string | undefined;
  let action: Float32Array | undefined;
  let isPad: { key: string; value: unknown } | undefined;
  for (const [rawKey, value] of Object.entries(obs)) {
    if (value === undefined) continue;
    const key = canonicalKey(rawKey);
    const earlier = seen.get(key);
    if (earlier !== undefined) fail(where, rawKey, `given twice (also as '${earlier}'); use one of the two names`);
    seen.set(key, rawKey);
    if (key.startsWith(IMAGE_PREFIX) && !key.endsWith('_is_pad')) {
      if (key.endsWith(PADDING_MASK_SUFFIX)) {
        const camera = key.slice(0, -PADDING_MASK_SUFFIX.length);
        if (!spec.cameras.includes(camera)) fail(where, rawKey, `padding mask of an unknown camera; the config's cameras are ${spec.cameras.join(', ')}`);
        masks.set(camera, toMaskFlag(value, where, rawKey));
      } else {
        if (!spec.cameras.includes(key)) fail(where, rawKey, `not a camera of this policy; the config's cameras are ${spec.cameras.join(', ')}`);
        images.set(key, toImage(value, where, rawKey));
      }
    } else if (key === STATE_KEY) {
      state = toVector(value, where, rawKey, true).values;
      const expected = spec.stateDim;
      if (expected !== null ? state.length !== expected : state.length > spec.maxStateDim) {
        fail(where, rawKey, `expected ${expected ?? `at most ${spec.maxStateDim}`} values (input_features), got ${state.length}`);
      }
    } else if (key === TOKENS_KEY) {
      tokens = { key: rawKey, value };
    } else if (key === ATTENTION_MASK_KEY) {
      attention = { key: rawKey, value };
    } else if (key === 'task') {
      if (typeof value !== 'string') fail(where, rawKey, `expected a string, got ${describe(value)}`);
      // The tokenizer truncates to tokenizer_max_length, but only after encoding the whole text.
      if (value.length > MAX_TASK_CHARS) fail(where, rawKey, `at most ${MAX_TASK_CHARS} characters, got ${value.length}`);
      task = value;
    } else if (key === 'action') {
      const { values } = toVector(value, where, rawKey, false);
      const need = spec.chunkSize * spec.actionDim;
      if (values.length !== need) {
        fail(where, rawKey, `expected chunk_size x action_dim = ${spec.chunkSize} x ${spec.actionDim} = ${need} values, got ${values.length}`);
      }
      action = values;
    } else if (key === 'action_is_pad' || key === 'actions_id_pad') {
      if (isPad) fail(where, rawKey, `given together with '${isPad.key}' (same meaning: 'actions_id_pad' is the published policy's name)`);
      isPad = { key: rawKey, value };
    } else if (!IGNORED_KEYS.has(key) && !key.endsWith('_is_pad')) {
      fail(
        where,
        rawKey,
        `unknown batch key; expected observation.images.<camera> (${spec.cameras.join(', ')}), observation.state, ` +
          `task or observation.language.tokens/attention_mask, action, action_is_pad ('obs.' may replace 'observation.')`,
      );
    }
  }
  if (!state) return fail(where, STATE_KEY, 'missing (the robot state is required)');
  let language: LanguageEntry;
  if (tokens) {
    const ids = toTokens(tokens.value, spec, where, tokens.key);
    const mask = attention ? toFlags(attention.value, ids.length, where, attention.key) : new Uint8Array(ids.length).fill(1);
    language = { tokens: ids, mask };
  } else if (attention) {
    return fail(where, attention.key, `given without ${TOKENS_KEY}`);
  } else if (task !== undefined) {
    language = { task };
  } else {
    return fail(where, 'task', `missing: give the task string or ${TOKENS_KEY}`);
  }
  if (withActions && !action) fail(where, 'action', 'missing (training needs the action chunk)');
  if (isPad && !action) fail(where, isPad.key, "given without 'action'");
  const sample: SampleInput = { images, masks, state, language };
  if (action) sample.action = action;
  if (isPad) sample.actionIsPad = toFlags(isPad.value, spec.chunkSize, where, isPad.key);
  return sample;
}

/** Rows of a (B, ...) tensor as per-sample values. */
function rowsOf(t: Tensor, key: string, ranks: number[], batch: number | null): { b: number; row: number; data: ArrayLike<number | bigint>; shape: number[] } {
  const shape = t.shape;
  if (!ranks.includes(shape.length)) fail('', key, `expected a tensor of rank ${ranks.join(' or ')} (batch first), got shape [${shape.join(', ')}]`);
  const b = shape[0]!;
  if (batch !== null && b !== batch) fail('', key, `batch size ${b} differs from the other entries' ${batch}`);
  const data = t.data() as ArrayLike<number | bigint>;
  return { b, row: b === 0 ? 0 : data.length / b, data, shape };
}

/**
 * Splits a LeRobot tensor batch into per-sample observations (views of one read-back per tensor).
 * Its float images thus come to JS and go back in the preprocessing call: tensor batches serve
 * parity with LeRobot's dataloaders and scripts, where a copy is nothing next to the model; robots
 * in a control loop send frames (RobotObservation), which cross once.
 */
export function splitTensorBatch(batch: TensorBatch): RobotObservation[] {
  let size: number | null = null;
  const samples: RobotObservation[] = [];
  const at = (i: number): RobotObservation => (samples[i] ??= {});
  const tasks: Array<{ key: string; value: string | readonly string[] }> = [];
  for (const [rawKey, value] of Object.entries(batch)) {
    if (value === undefined) continue;
    const key = canonicalKey(rawKey);
    if (typeof value === 'string' || Array.isArray(value)) {
      if (key !== 'task') fail('', rawKey, `a string entry must be 'task', got key '${rawKey}'`);
      tasks.push({ key: rawKey, value: value as string | readonly string[] });
      continue;
    }
    if (!(value instanceof Tensor)) fail('', rawKey, `in a tensor batch every entry is a Tensor (or 'task' strings), got ${describe(value)}`);
    const isImage = key.startsWith(IMAGE_PREFIX) && !key.endsWith(PADDING_MASK_SUFFIX);
    const isFloat = key === STATE_KEY || key === 'action';
    if (isImage && value.dtype !== 'float32') fail('', rawKey, `expected a float32 tensor in [0, 1], got ${value.dtype}`);
    if (isFloat && value.dtype !== 'float32' && value.dtype !== 'float64') fail('', rawKey, `expected a float tensor, got ${value.dtype}`);
    const ranks = isImage
      ? [4, 5]
      : key === STATE_KEY
        ? [2, 3]
        : key === 'action'
          ? [3]
          : key.endsWith(PADDING_MASK_SUFFIX)
            ? [1]
            : key === TOKENS_KEY || key === ATTENTION_MASK_KEY || key.endsWith('_is_pad')
              ? [2]
              : [1, 2, 3, 4, 5];
    const converted = isFloat && value.dtype === 'float64' ? value.to('float32') : null;
    // The views stay valid after dispose (Tensor.data contract).
    const { b, row, data, shape } = rowsOf(converted ?? value, rawKey, ranks, size);
    converted?.dispose();
    size = b;
    for (let i = 0; i < b; i++) {
      const slice = (data as unknown as { subarray(s: number, e: number): ArrayLike<number | bigint> }).subarray(i * row, (i + 1) * row);
      const item = at(i);
      if (isImage || isFloat) item[rawKey] = { data: slice as Float32Array, shape: shape.slice(1) };
      else if (key.endsWith(PADDING_MASK_SUFFIX)) item[rawKey] = Number(slice[0]) !== 0;
      else item[rawKey] = Array.from(slice as ArrayLike<number>, (x) => Number(x));
    }
  }
  if (size === null) fail('', 'batch', 'a tensor batch needs at least one tensor (observation.state)');
  for (let i = 0; i < size; i++) at(i);
  for (const { key, value } of tasks) {
    const list = typeof value === 'string' ? [value] : value;
    // LeRobot: one task for the whole batch is repeated for every sample.
    if (list.length !== 1 && list.length !== size) fail('', key, `expected 1 or ${size} task strings, got ${list.length}`);
    samples.forEach((s, i) => (s[key] = list.length === 1 ? list[0] : list[i]));
  }
  return samples;
}

/** A batch given as a tensor dict (any Tensor value) rather than robot observations. */
export function isTensorBatch(batch: PolicyBatch): batch is TensorBatch {
  return !Array.isArray(batch) && Object.values(batch as object).some((v) => v instanceof Tensor);
}
