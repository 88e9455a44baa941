/**
 * A decoded observation frame -> the policy's RobotObservation. Keys come in LeRobot's dotted form
 * or openpi's slash form; the table below is the one the README and docs/serving.md show. Shapes
 * and sizes are checked against the policy's features here, before a frame joins a batch, so one
 * robot's bad frame fails alone. Error messages name keys, dtypes and shapes, never values.
 */
import { SmolVLAError } from '../../errors';
import type { FloatImage, InputSpec, RgbFrame, RobotObservation, Series } from '../../policy/inputs';
import { NdArray, NpScalar, type NumericArray, type WireMap, type WireValue } from './wire';

export interface ObservationLimits {
  /** Largest image height or width, pixels. */
  maxImageSide: number;
  /** Most frames stacked on an image's or the state's time axis. */
  maxTimeSteps: number;
  /** Longest task text, characters. */
  maxTaskChars: number;
  /** Most language tokens. */
  maxTokens: number;
}

export const DEFAULT_OBSERVATION_LIMITS: ObservationLimits = { maxImageSide: 2048, maxTimeSteps: 4, maxTaskChars: 1000, maxTokens: 1024 };

/** One frame's request: the observation, and the queued actions sent for refinement (if any). */
export interface DecodedRequest {
  observation: RobotObservation;
  actionContext?: Float32Array[];
}

/** Key forms (`<camera>` is a camera name from the policy's input features). */
export const KEY_TABLE: ReadonlyArray<{ wire: string; policy: string }> = [
  { wire: 'observation.images.<camera>, observation/images/<camera>, observation/<camera>', policy: 'observation.images.<camera>' },
  { wire: 'observation.images.<camera>_padding_mask, observation/images/<camera>_padding_mask', policy: 'observation.images.<camera>_padding_mask' },
  { wire: 'observation.state, observation/state', policy: 'observation.state' },
  { wire: 'task, prompt', policy: 'task' },
  { wire: 'observation.language.tokens, observation/language/tokens', policy: 'observation.language.tokens' },
  { wire: 'observation.language.attention_mask, observation/language/attention_mask', policy: 'observation.language.attention_mask' },
  { wire: 'action_context', policy: '(queued actions for delta refinement)' },
];

function fail(key: string, message: string): never {
  throw new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `observation ${key}: ${message}`);
}

function describe(v: WireValue): string {
  if (v instanceof NdArray) return `an array ${v.dtype} [${v.shape.join(', ')}]`;
  if (v instanceof NpScalar) return `a numpy ${v.dtype} scalar`;
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof Map) return 'a map';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  return v === null ? 'nil' : typeof v;
}

/** The policy key a wire key names, or null when it is not one of the table's forms. */
export function policyKey(wireKey: string, cameras: readonly string[]): string | null {
  if (wireKey === 'prompt' || wireKey === 'task') return 'task';
  if (wireKey === 'action_context') return wireKey;
  if (wireKey.startsWith('observation.')) return wireKey;
  if (!wireKey.startsWith('observation/')) return null;
  const rest = wireKey.slice('observation/'.length);
  const dotted = `observation.${rest.replace(/\//g, '.')}`;
  if (!rest.includes('/')) {
    // openpi's short camera form (`observation/wrist_image`): a bare camera name.
    const camera = `observation.images.${rest}`;
    const base = camera.replace(/_padding_mask$/, '');
    if (cameras.includes(base)) return camera;
  }
  return dotted;
}

function floats(a: NdArray, key: string): Float32Array {
  if (a.data instanceof Float32Array) return a.data;
  if (a.data instanceof Float64Array) return Float32Array.from(a.data);
  return fail(key, `expected float32 or float64 values, got ${describe(a)}`);
}

function checkSides(h: number, w: number, key: string, limits: ObservationLimits): void {
  if (h < 1 || w < 1 || h > limits.maxImageSide || w > limits.maxImageSide) {
    fail(key, `image sides must be in [1, ${limits.maxImageSide}], got ${h} x ${w}`);
  }
}

function toImage(v: WireValue, key: string, limits: ObservationLimits): RgbFrame | FloatImage {
  if (!(v instanceof NdArray)) return fail(key, `expected an image array (uint8 HWC or float32 CHW), got ${describe(v)}`);
  const s = v.shape;
  if (s.length !== 3 && s.length !== 4) return fail(key, `expected [H, W, 3] uint8 or [3, H, W] float32 (a leading time axis allowed), got ${describe(v)}`);
  const frames = s.length === 4 ? s[0]! : 1;
  if (frames < 1 || frames > limits.maxTimeSteps) fail(key, `time axis must be in [1, ${limits.maxTimeSteps}], got ${frames}`);
  const [a, b, c] = s.slice(-3) as [number, number, number];
  if (v.dtype === 'uint8' && (c === 3 || c === 4)) {
    checkSides(a, b, key, limits);
    return { data: v.data as Uint8Array, height: a, width: b, channels: c, frames };
  }
  if (a !== 3) return fail(key, `expected [H, W, 3] uint8 or [3, H, W] float32 (a leading time axis allowed), got ${describe(v)}`);
  checkSides(b, c, key, limits);
  // openpi's ALOHA clients send uint8 CHW: passed as is, the planes are read in native code.
  if (v.dtype === 'uint8') return { data: v.data as Uint8Array, height: b, width: c, channels: 3, frames, layout: 'chw' };
  if (v.dtype !== 'float32') return fail(key, `expected uint8 or float32, got ${describe(v)}`);
  return { data: v.data as Float32Array, shape: [...s] };
}

function toState(v: WireValue, key: string, spec: InputSpec, limits: ObservationLimits): Series {
  let data: Float32Array;
  let shape: number[];
  if (v instanceof NdArray) {
    if (v.shape.length !== 1 && v.shape.length !== 2) fail(key, `expected [D] or [T, D], got ${describe(v)}`);
    data = floats(v, key);
    shape = [...v.shape];
  } else if (Array.isArray(v) && v.every((x) => typeof x === 'number')) {
    data = Float32Array.from(v as number[]);
    shape = [data.length];
  } else {
    return fail(key, `expected a float array [D] or [T, D], got ${describe(v)}`);
  }
  const width = shape[shape.length - 1]!;
  const ok = spec.stateDim !== null ? width === spec.stateDim : width <= spec.maxStateDim;
  if (!ok) fail(key, `expected ${spec.stateDim ?? `at most ${spec.maxStateDim}`} values per step (input_features), got shape [${shape.join(', ')}]`);
  if (shape.length === 2 && (shape[0]! < 1 || shape[0]! > limits.maxTimeSteps)) fail(key, `time axis must be in [1, ${limits.maxTimeSteps}], got ${shape[0]}`);
  return { data, shape };
}

function toFlag(v: WireValue, key: string): boolean {
  const x = v instanceof NpScalar ? v.value : v;
  if (typeof x === 'boolean') return x;
  if (x === 0 || x === 1) return x === 1;
  return fail(key, `expected a boolean, got ${describe(v)}`);
}

function integers(v: WireValue, key: string, limits: ObservationLimits): number[] {
  let values: ArrayLike<number | bigint>;
  if (v instanceof NdArray && v.shape.length <= 2 && (v.shape.length < 2 || v.shape[0] === 1) && !(v.data instanceof Float32Array || v.data instanceof Float64Array)) {
    values = v.data as Exclude<NumericArray, Float32Array | Float64Array>;
  } else if (Array.isArray(v) && v.every((x) => typeof x === 'number' || typeof x === 'boolean')) {
    values = v.map(Number);
  } else {
    return fail(key, `expected an integer or boolean array [L] or [1, L], got ${describe(v)}`);
  }
  if (values.length > limits.maxTokens) fail(key, `at most ${limits.maxTokens} entries, got ${values.length}`);
  return Array.from(values, (x) => Number(x));
}

function toActionContext(v: WireValue, key: string, spec: InputSpec): Float32Array[] {
  if (!(v instanceof NdArray) || v.shape.length !== 2) return fail(key, `expected a float array [n, ${spec.actionDim}], got ${describe(v)}`);
  const [n, dim] = v.shape as [number, number];
  if (dim !== spec.actionDim || n < 1 || n > spec.chunkSize) fail(key, `expected [n, ${spec.actionDim}] with 1 <= n <= ${spec.chunkSize} (chunk_size), got [${n}, ${dim}]`);
  const data = floats(v, key);
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) fail(key, `non-finite value at index ${i}`);
  return Array.from({ length: n }, (_, r) => data.slice(r * dim, (r + 1) * dim));
}

/** Validates one observation frame against the policy's features and maps its keys. */
export function toRequest(frame: WireMap, spec: InputSpec, limits: ObservationLimits = DEFAULT_OBSERVATION_LIMITS): DecodedRequest {
  const observation: RobotObservation = {};
  const request: DecodedRequest = { observation };
  const seen = new Map<string, string>();
  for (const [wireKey, value] of frame) {
    const shown = wireKey.slice(0, 80);
    const key = policyKey(wireKey, spec.cameras);
    if (key === null) {
      fail(shown, 'unknown key; expected observation.images.<camera>, observation.state, task or prompt, action_context (or the observation/... slash forms)');
    }
    const earlier = seen.get(key);
    if (earlier !== undefined) fail(shown, `names the same input as '${earlier}'`);
    seen.set(key, shown);
    if (key === 'task') {
      if (typeof value !== 'string') fail(shown, `expected a string, got ${describe(value)}`);
      if (value.length > limits.maxTaskChars) fail(shown, `longer than ${limits.maxTaskChars} characters`);
      observation.task = value;
    } else if (key === 'action_context') {
      request.actionContext = toActionContext(value, shown, spec);
    } else if (key === 'observation.state') {
      observation[key] = toState(value, shown, spec, limits);
    } else if (key === 'observation.language.tokens' || key === 'observation.language.attention_mask') {
      observation[key] = integers(value, shown, limits);
    } else if (key.startsWith('observation.images.') && key.endsWith('_padding_mask')) {
      if (!spec.cameras.includes(key.slice(0, -'_padding_mask'.length))) fail(shown, `padding mask of a camera this policy does not have (${spec.cameras.join(', ')})`);
      observation[key as `observation.images.${string}`] = toFlag(value, shown);
    } else if (key.startsWith('observation.images.')) {
      if (!spec.cameras.includes(key)) fail(shown, `not a camera of this policy; its cameras are ${spec.cameras.join(', ')}`);
      observation[key as `observation.images.${string}`] = toImage(value, shown, limits);
    } else {
      fail(shown, 'unknown key; expected observation.images.<camera>, observation.state, task or prompt, action_context (or the observation/... slash forms)');
    }
  }
  if (!observation['observation.state']) fail('observation.state', 'missing (the robot state is required)');
  if (observation.task === undefined && !observation['observation.language.tokens']) fail('task', 'missing: send task (or prompt) or observation.language.tokens');
  return request;
}
