/**
 * RobotObservation -> an openpi observation frame (the client side of observation.ts): camera
 * frames as uint8 HWC or float32 CHW arrays, the state as float32, the task as a string, queued
 * actions as `action_context` (n, action_dim) float32.
 */
import { argumentError } from '../../errors';
import type { RobotObservation } from '../../policy/inputs';
import { encodeFrame, ndarray } from './wire';

function floatArray(v: unknown, key: string): Map<Buffer, unknown> {
  if (v instanceof Float32Array) return ndarray(v, [v.length]);
  if (v instanceof Float64Array || (Array.isArray(v) && v.every((x) => typeof x === 'number'))) {
    const data = Float32Array.from(v as ArrayLike<number>);
    return ndarray(data, [data.length]);
  }
  if (typeof v === 'object' && v !== null && 'data' in v && 'shape' in v) {
    const s = v as { data: ArrayLike<number>; shape: readonly number[] };
    const data = s.data instanceof Float32Array ? s.data : Float32Array.from(s.data);
    return ndarray(data, s.shape);
  }
  throw argumentError(key, 'a Float32Array, number[] or {data, shape}', v);
}

function image(v: unknown, key: string): Map<Buffer, unknown> {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (o.data instanceof Float32Array && Array.isArray(o.shape)) return ndarray(o.data, o.shape as number[]);
  if ((o.data instanceof Uint8Array || o.data instanceof Uint8ClampedArray) && typeof o.width === 'number' && typeof o.height === 'number') {
    const channels = (o.channels as number | undefined) ?? 3;
    const frames = (o.frames as number | undefined) ?? 1;
    const data = o.data instanceof Uint8Array ? o.data : new Uint8Array(o.data.buffer, o.data.byteOffset, o.data.length);
    return ndarray(data, frames === 1 ? [o.height, o.width, channels] : [frames, o.height, o.width, channels], 'uint8');
  }
  throw argumentError(key, 'an RgbFrame {data: Uint8Array, width, height} or a FloatImage {data: Float32Array, shape}', v);
}

/** Encodes one observation (and the queued actions, if any) as one binary frame. */
export function encodeObservation(observation: RobotObservation, actionContext?: readonly Float32Array[]): Buffer {
  const out: Record<string, unknown> = {};
  for (const [rawKey, value] of Object.entries(observation)) {
    if (value === undefined) continue;
    const key = rawKey.startsWith('obs.') ? `observation.${rawKey.slice(4)}` : rawKey;
    if (key === 'task') {
      if (typeof value !== 'string') throw argumentError('task', 'a string', value);
      out.task = value;
    } else if (key === 'observation.state') {
      out[key] = floatArray(value, rawKey);
    } else if (key.startsWith('observation.images.') && key.endsWith('_padding_mask')) {
      out[key] = Boolean(value);
    } else if (key.startsWith('observation.images.')) {
      out[key] = image(value, rawKey);
    } else if (key === 'observation.language.tokens' || key === 'observation.language.attention_mask') {
      out[key] = ndarray(Int32Array.from(value as ArrayLike<number>, (x) => Number(x)), [(value as ArrayLike<number>).length]);
    } else {
      throw argumentError(`observation key '${rawKey}'`, 'a camera, observation.state, task or language tokens (what the protocol carries)', value);
    }
  }
  if (actionContext && actionContext.length > 0) {
    const dim = actionContext[0]!.length;
    const rows = new Float32Array(actionContext.length * dim);
    actionContext.forEach((row, i) => {
      if (row.length !== dim) throw argumentError(`actionContext[${i}]`, `${dim} values like the first row`, row);
      rows.set(row, i * dim);
    });
    out.action_context = ndarray(rows, [actionContext.length, dim]);
  }
  return encodeFrame(out);
}
