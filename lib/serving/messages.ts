/**
 * The typed JSON messages PolicyHttpServer accepts, and their validation. Only plain data crosses
 * the network: numbers (a JSON array or base64 little-endian bytes), shapes and strings. Nothing is
 * ever deserialised into code or objects with behaviour — unlike LeRobot's async inference, whose
 * gRPC policy server calls `pickle.loads` on what clients send (remote code execution for anyone
 * who can reach the port: huggingface/lerobot issue #3047).
 */
import { cameraKeys, type SmolVLAConfig } from '../config';
import { stateDim } from '../config';
import { Tensor } from '../tensor';

/** A validation failure; `field` is the JSON path of the offending value. */
export class MessageError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'MessageError';
    this.field = field;
  }
}

/**
 * `{shape, dtype, data}`: `data` is a JSON array of numbers or a base64 string of the raw
 * little-endian elements. uint8 images are scaled by 1/255; float32 images must lie in [0, 1].
 */
export interface TensorMessage {
  shape: number[];
  dtype: 'float32' | 'uint8';
  data: number[] | string;
}

/**
 * POST /act: `observation` maps LeRobot keys (`observation.images.<camera>`, `observation.state`)
 * to tensors; `task` is one instruction for every robot or one per robot.
 */
export interface ActMessage {
  observation: Record<string, TensorMessage>;
  task: string | string[];
}

/** POST /reset (the body may also be empty). */
export interface ResetMessage {
  keepStats?: boolean;
}

export interface MessageLimits {
  /** Robots per request (default 16). */
  maxBatch?: number;
  /** Largest image height or width (default 2048). */
  maxImageSide?: number;
  /** Longest task text, characters (default 1000). */
  maxTaskLength?: number;
}

/** A validated observation, values as float32 (images in [0, 1]). */
export interface DecodedObservation {
  batchSize: number;
  /** Per present camera key: (B, 3, H, W). */
  images: Record<string, { data: Float32Array; shape: [number, number, number, number] }>;
  /** (B, stateDim) */
  state: { data: Float32Array; shape: [number, number] };
  /** One per robot. */
  tasks: string[];
}

const STATE_KEY = 'observation.state';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'string') return `a string of length ${v.length}`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

function checkKeys(field: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new MessageError(`${field}.${key}`, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

function decodeTensor(field: string, value: unknown, rank: number): { data: Float32Array; shape: number[]; dtype: 'float32' | 'uint8' } {
  if (!isObject(value)) throw new MessageError(field, `expected an object {shape, dtype, data}, got ${describe(value)}`);
  checkKeys(field, value, ['shape', 'dtype', 'data']);
  const { shape, dtype, data } = value;
  if (dtype !== 'float32' && dtype !== 'uint8') throw new MessageError(`${field}.dtype`, `expected "float32" or "uint8", got ${describe(dtype)}`);
  if (!Array.isArray(shape) || shape.length !== rank) throw new MessageError(`${field}.shape`, `expected ${rank} dimensions, got ${describe(shape)}`);
  shape.forEach((s, i) => {
    if (!Number.isInteger(s) || (s as number) < 1) throw new MessageError(`${field}.shape[${i}]`, `expected a positive integer, got ${describe(s)}`);
  });
  const dims = shape as number[];
  // Sizes are checked against the data before anything is allocated: a shape alone cannot make the
  // server allocate more than the (size-limited) body holds.
  const numel = dims.reduce((a, b) => a * b, 1);
  let out: Float32Array;
  if (typeof data === 'string') {
    if (data.length % 4 !== 0 || !BASE64.test(data)) throw new MessageError(`${field}.data`, 'expected base64 (RFC 4648, padded) or an array of numbers');
    const bytes = Buffer.from(data, 'base64');
    const width = dtype === 'float32' ? 4 : 1;
    if (bytes.length !== numel * width) throw new MessageError(`${field}.data`, `shape [${dims.join(', ')}] of ${dtype} needs ${numel * width} bytes, got ${bytes.length}`);
    out = new Float32Array(numel);
    for (let i = 0; i < numel; i++) out[i] = dtype === 'float32' ? bytes.readFloatLE(4 * i) : bytes[i]!;
  } else if (Array.isArray(data)) {
    if (data.length !== numel) throw new MessageError(`${field}.data`, `shape [${dims.join(', ')}] needs ${numel} values, got ${data.length}`);
    out = new Float32Array(numel);
    for (let i = 0; i < numel; i++) {
      const x = data[i];
      if (typeof x !== 'number') throw new MessageError(`${field}.data[${i}]`, `expected a number, got ${describe(x)}`);
      if (dtype === 'uint8' && !(Number.isInteger(x) && x >= 0 && x <= 255)) throw new MessageError(`${field}.data[${i}]`, `expected an integer in [0, 255], got ${x}`);
      out[i] = x;
    }
  } else {
    throw new MessageError(`${field}.data`, `expected an array of numbers or a base64 string, got ${describe(data)}`);
  }
  for (let i = 0; i < numel; i++) {
    if (!Number.isFinite(out[i]!)) throw new MessageError(`${field}.data[${i}]`, `expected a finite number, got ${out[i]}`);
  }
  return { data: out, shape: dims, dtype };
}

/** Validates a POST /act body against the policy's config. */
export function parseActMessage(body: unknown, config: SmolVLAConfig, limits: MessageLimits = {}): DecodedObservation {
  const maxBatch = limits.maxBatch ?? 16;
  const maxSide = limits.maxImageSide ?? 2048;
  const maxTask = limits.maxTaskLength ?? 1000;
  if (!isObject(body)) throw new MessageError('body', `expected a JSON object, got ${describe(body)}`);
  checkKeys('body', body, ['observation', 'task']);
  const obs = body.observation;
  if (!isObject(obs)) throw new MessageError('observation', `expected an object of tensors, got ${describe(obs)}`);

  const placeholderKeys = Array.from({ length: config.emptyCameras }, (_, i) => `observation.images.empty_camera_${i}`);
  const cameras = cameraKeys(config).filter((k) => !placeholderKeys.includes(k));
  checkKeys('observation', obs, [...cameras, STATE_KEY]);
  if (!(STATE_KEY in obs)) throw new MessageError(`observation.${STATE_KEY}`, 'required');

  const s = decodeTensor(`observation.${STATE_KEY}`, obs[STATE_KEY], 2);
  const batchSize = s.shape[0]!;
  if (batchSize > maxBatch) throw new MessageError(`observation.${STATE_KEY}.shape[0]`, `at most ${maxBatch} robots per request, got ${batchSize}`);
  const sd = stateDim(config);
  if (s.shape[1] !== sd) throw new MessageError(`observation.${STATE_KEY}.shape[1]`, `expected the state dimension ${sd}, got ${s.shape[1]}`);

  const present = cameras.filter((k) => k in obs);
  if (present.length === 0) throw new MessageError('observation', `expected at least one camera of ${cameras.join(', ')}`);
  const missing = cameras.filter((k) => !(k in obs));
  if (missing.length > config.emptyCameras) {
    throw new MessageError(`observation.${missing[0]}`, `required (the config has ${config.emptyCameras} empty-camera placeholder(s) for ${missing.length} missing camera(s))`);
  }
  const images: DecodedObservation['images'] = {};
  for (const key of present) {
    const field = `observation.${key}`;
    const img = decodeTensor(field, obs[key], 4);
    const [b, c, h, w] = img.shape as [number, number, number, number];
    if (b !== batchSize) throw new MessageError(`${field}.shape[0]`, `expected the batch size ${batchSize} of ${STATE_KEY}, got ${b}`);
    if (c !== 3) throw new MessageError(`${field}.shape[1]`, `expected 3 channels, got ${c}`);
    if (h > maxSide || w > maxSide) throw new MessageError(`${field}.shape`, `images at most ${maxSide} x ${maxSide}, got ${h} x ${w}`);
    if (img.dtype === 'uint8') {
      for (let i = 0; i < img.data.length; i++) img.data[i] = img.data[i]! / 255;
    } else {
      const bad = img.data.findIndex((x) => x < 0 || x > 1);
      if (bad >= 0) throw new MessageError(`${field}.data[${bad}]`, `float32 images must lie in [0, 1], got ${img.data[bad]}`);
    }
    images[key] = { data: img.data, shape: [b, c, h, w] };
  }

  const task = body.task;
  let tasks: string[];
  if (typeof task === 'string') tasks = Array.from({ length: batchSize }, () => task);
  else if (Array.isArray(task)) {
    if (task.length !== batchSize) throw new MessageError('task', `expected one task per robot (${batchSize}), got ${task.length}`);
    tasks = task.map((t, i) => {
      if (typeof t !== 'string') throw new MessageError(`task[${i}]`, `expected a string, got ${describe(t)}`);
      return t;
    });
  } else throw new MessageError('task', `expected a string or an array of strings, got ${describe(task)}`);
  tasks.forEach((t, i) => {
    if (t.length > maxTask) throw new MessageError(typeof task === 'string' ? 'task' : `task[${i}]`, `at most ${maxTask} characters, got ${t.length}`);
  });

  return { batchSize, images, state: { data: s.data, shape: [batchSize, sd] }, tasks };
}

/** Validates a POST /reset body (undefined for an empty body). */
export function parseResetMessage(body: unknown): { keepStats: boolean } {
  if (body === undefined) return { keepStats: false };
  if (!isObject(body)) throw new MessageError('body', `expected a JSON object, got ${describe(body)}`);
  checkKeys('body', body, ['keepStats']);
  const keepStats = body.keepStats ?? false;
  if (typeof keepStats !== 'boolean') throw new MessageError('keepStats', `expected a boolean, got ${describe(keepStats)}`);
  return { keepStats };
}

/** A policy batch built from a decoded observation, with what frees it. */
export interface BatchHandle {
  batch: unknown;
  dispose(): void;
}

/**
 * The default batch: LeRobot keys -> tensors (`observation.images.<camera>` (B, 3, H, W) float32 in
 * [0, 1], `observation.state` (B, stateDim) float32) and `task` (one string per robot).
 */
export function observationToBatch(obs: DecodedObservation): BatchHandle {
  const tensors: Tensor[] = [];
  const batch: Record<string, Tensor | string[]> = { task: obs.tasks };
  for (const [key, img] of Object.entries(obs.images)) {
    const t = Tensor.from(img.data, img.shape);
    tensors.push(t);
    batch[key] = t;
  }
  const state = Tensor.from(obs.state.data, obs.state.shape);
  tensors.push(state);
  batch[STATE_KEY] = state;
  return { batch, dispose: () => tensors.forEach((t) => t.dispose()) };
}
