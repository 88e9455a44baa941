/**
 * openpi's wire format (openpi-client `msgpack_numpy`): msgpack values, with numpy arrays as maps
 * `{__ndarray__: true, data: <bytes>, dtype: <numpy dtype str>, shape: [...]}` and numpy scalars as
 * `{__npgeneric__: true, data: <value>, dtype: <str>}`. openpi's packer writes those four keys as
 * msgpack *bytes* (Python `b"__ndarray__"`) and its unpacker looks them up as bytes, so frames sent
 * here use bytes keys too; frames received may use bytes or string keys.
 *
 * Decoding is typed and bounded: a structural scan (scan.ts) first, then msgpackr with records,
 * extensions and object maps off (maps arrive as Map, so no key reaches an object prototype), then a
 * conversion that accepts only the values listed in `WireValue`.
 */
import { Packr, Unpackr } from 'msgpackr';

import { SmolVLAError } from '../../errors';
import { scanMsgpack, type ScanLimits } from './scan';

export type NumericArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

interface DtypeInfo {
  /** numpy's `dtype.str` on a little-endian machine. */
  str: string;
  bytes: number;
  /** A typed array over (aligned) bytes. */
  view(buffer: ArrayBuffer, offset: number, length: number): NumericArray;
}

const DTYPES: Record<string, DtypeInfo> = {
  bool: { str: '|b1', bytes: 1, view: (b, o, n) => new Uint8Array(b, o, n) },
  uint8: { str: '|u1', bytes: 1, view: (b, o, n) => new Uint8Array(b, o, n) },
  int8: { str: '|i1', bytes: 1, view: (b, o, n) => new Int8Array(b, o, n) },
  uint16: { str: '<u2', bytes: 2, view: (b, o, n) => new Uint16Array(b, o, n) },
  int16: { str: '<i2', bytes: 2, view: (b, o, n) => new Int16Array(b, o, n) },
  uint32: { str: '<u4', bytes: 4, view: (b, o, n) => new Uint32Array(b, o, n) },
  int32: { str: '<i4', bytes: 4, view: (b, o, n) => new Int32Array(b, o, n) },
  uint64: { str: '<u8', bytes: 8, view: (b, o, n) => new BigUint64Array(b, o, n) },
  int64: { str: '<i8', bytes: 8, view: (b, o, n) => new BigInt64Array(b, o, n) },
  float32: { str: '<f4', bytes: 4, view: (b, o, n) => new Float32Array(b, o, n) },
  float64: { str: '<f8', bytes: 8, view: (b, o, n) => new Float64Array(b, o, n) },
};

export type Dtype = keyof typeof DTYPES;

/** numpy dtype strings (and plain names, for clients without numpy) -> dtype. Big-endian is refused. */
const DTYPE_BY_STR = new Map<string, Dtype>(
  Object.entries(DTYPES).flatMap(([name, d]) => [
    [d.str, name],
    [name, name],
    // numpy writes '=' for native order and '<' for little-endian; a one-byte type may carry either.
    [`=${d.str.slice(1)}`, name],
    [`<${d.str.slice(1)}`, name],
  ]),
);

/** The dtypes this server decodes (numpy `dtype.str`). */
export const DTYPE_WHITELIST: readonly string[] = Object.values(DTYPES).map((d) => d.str);

export class NdArray {
  constructor(
    readonly dtype: Dtype,
    readonly shape: readonly number[],
    readonly data: NumericArray,
  ) {}
}

export class NpScalar {
  constructor(
    readonly dtype: Dtype,
    readonly value: number | boolean,
  ) {}
}

export type WireValue = null | boolean | number | string | Uint8Array | NdArray | NpScalar | WireValue[] | WireMap;
export type WireMap = Map<string, WireValue>;

export interface WireLimits extends ScanLimits {
  /** Largest frame, bytes. */
  maxFrameBytes: number;
  /** Most dimensions of one array. */
  maxNdim: number;
}

export const DEFAULT_WIRE_LIMITS: WireLimits = {
  maxFrameBytes: 16 * 1024 * 1024,
  maxDepth: 8,
  maxStringBytes: 4096,
  maxEntries: 4096,
  maxNdim: 6,
};

function fail(path: string, message: string): never {
  throw new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `${path}: ${message}`);
}

const unpackr = new Unpackr({ mapsAsObjects: false, useRecords: false, moreTypes: false, structuredClone: false, int64AsType: 'number' });
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false });
const utf8 = new TextDecoder('utf-8', { fatal: true });

function keyText(key: unknown, path: string): string {
  if (typeof key === 'string') return key;
  if (key instanceof Uint8Array) {
    try {
      return utf8.decode(key);
    } catch {
      return fail(path, 'a bytes map key is not valid UTF-8');
    }
  }
  return fail(path, 'map keys must be strings or bytes');
}

function dtypeOf(v: WireValue | undefined, path: string): Dtype {
  if (typeof v !== 'string') return fail(`${path}.dtype`, 'expected a numpy dtype string');
  const d = DTYPE_BY_STR.get(v);
  if (!d) return fail(`${path}.dtype`, `'${v.slice(0, 16)}' is not accepted (accepted: ${DTYPE_WHITELIST.join(', ')}; little-endian only)`);
  return d;
}

function toNdArray(m: WireMap, path: string, limits: WireLimits): NdArray {
  for (const k of m.keys()) if (!['__ndarray__', 'data', 'dtype', 'shape'].includes(k)) fail(path, `unexpected key '${k.slice(0, 32)}' in an __ndarray__ map`);
  if (m.get('__ndarray__') !== true) fail(path, '__ndarray__ must be true');
  const dtype = dtypeOf(m.get('dtype'), path);
  const shape = m.get('shape');
  if (!Array.isArray(shape) || shape.length > limits.maxNdim || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    return fail(`${path}.shape`, `expected a list of at most ${limits.maxNdim} non-negative integers`);
  }
  const dims = shape as number[];
  const data = m.get('data');
  if (!(data instanceof Uint8Array)) return fail(`${path}.data`, 'expected bytes');
  const info = DTYPES[dtype]!;
  const count = dims.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count * info.bytes) || count * info.bytes !== data.length) {
    fail(`${path}.data`, `shape [${dims.join(', ')}] of ${info.str} needs ${count * info.bytes} bytes, got ${data.length}`);
  }
  // A view when the bytes are aligned for the element type, else one copy (msgpack has no alignment).
  const aligned = data.byteOffset % info.bytes === 0;
  const bytes = aligned ? data : new Uint8Array(data);
  return new NdArray(dtype, dims, info.view(bytes.buffer as ArrayBuffer, bytes.byteOffset, count));
}

function toNpScalar(m: WireMap, path: string): NpScalar {
  for (const k of m.keys()) if (!['__npgeneric__', 'data', 'dtype'].includes(k)) fail(path, `unexpected key '${k.slice(0, 32)}' in an __npgeneric__ map`);
  if (m.get('__npgeneric__') !== true) fail(path, '__npgeneric__ must be true');
  const dtype = dtypeOf(m.get('dtype'), path);
  const data = m.get('data');
  // openpi writes the Python value (`obj.item()`); the raw element bytes are accepted too.
  if (typeof data === 'number' || typeof data === 'boolean') return new NpScalar(dtype, data);
  if (data instanceof Uint8Array && data.length === DTYPES[dtype]!.bytes) {
    const v = DTYPES[dtype]!.view(new Uint8Array(data).buffer, 0, 1)[0]!;
    return new NpScalar(dtype, typeof v === 'bigint' ? Number(v) : v);
  }
  return fail(`${path}.data`, 'expected a number, a boolean or the element bytes');
}

function convert(v: unknown, path: string, limits: WireLimits): WireValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x, i) => convert(x, `${path}[${i}]`, limits));
  if (v instanceof Map) {
    const m: WireMap = new Map();
    for (const [rawKey, value] of v) {
      const key = keyText(rawKey, path);
      if (m.has(key)) fail(path, `key '${key.slice(0, 32)}' appears twice`);
      m.set(key, convert(value, `${path}.${key.slice(0, 64)}`, limits));
    }
    if (m.has('__ndarray__')) return toNdArray(m, path, limits);
    if (m.has('__npgeneric__')) return toNpScalar(m, path);
    return m;
  }
  return fail(path, `value of type ${typeof v} is not accepted`);
}

/** One frame -> a typed value. Throws ERR_SMOLVLA_PROTOCOL for anything outside the format or limits. */
export function decodeFrame(frame: Uint8Array, limits: WireLimits = DEFAULT_WIRE_LIMITS): WireValue {
  if (frame.length > limits.maxFrameBytes) fail('frame', `${frame.length} bytes exceeds the limit of ${limits.maxFrameBytes}`);
  scanMsgpack(frame, limits);
  let raw: unknown;
  try {
    raw = unpackr.unpack(frame);
  } catch (err) {
    return fail('frame', `not valid msgpack (${err instanceof Error ? err.message : String(err)})`);
  }
  return convert(raw, 'frame', limits);
}

/** A decoded frame that must be a map (observations, metadata, responses). */
export function decodeMap(frame: Uint8Array, limits: WireLimits = DEFAULT_WIRE_LIMITS): WireMap {
  const v = decodeFrame(frame, limits);
  if (!(v instanceof Map)) fail('frame', 'expected a msgpack map at the top level');
  return v;
}

const NDARRAY_KEY = Buffer.from('__ndarray__');
const NPGENERIC_KEY = Buffer.from('__npgeneric__');
const DATA_KEY = Buffer.from('data');
const DTYPE_KEY = Buffer.from('dtype');
const SHAPE_KEY = Buffer.from('shape');

function dtypeName(data: NumericArray): Dtype {
  const name = data.constructor.name.replace(/Array$/, '').toLowerCase();
  const d = name === 'bigint64' ? 'int64' : name === 'biguint64' ? 'uint64' : name;
  if (!(d in DTYPES)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `ndarray data: a ${data.constructor.name} has no numpy dtype here`);
  return d;
}

/** The wire form of an array, keys as bytes exactly as openpi's packer writes them. */
export function ndarray(data: NumericArray, shape: readonly number[], dtype: Dtype = dtypeName(data)): Map<Buffer, unknown> {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `ndarray: shape [${shape.join(', ')}] needs ${count} values, got ${data.length}`);
  return new Map<Buffer, unknown>([
    [NDARRAY_KEY, true],
    [DATA_KEY, Buffer.from(data.buffer, data.byteOffset, data.byteLength)],
    [DTYPE_KEY, DTYPES[dtype]!.str],
    [SHAPE_KEY, [...shape]],
  ]);
}

/** The wire form of a numpy scalar (openpi writes the Python value as `data`). */
export function npScalar(value: number | boolean, dtype: Dtype): Map<Buffer, unknown> {
  return new Map<Buffer, unknown>([
    [NPGENERIC_KEY, true],
    [DATA_KEY, value],
    [DTYPE_KEY, DTYPES[dtype]!.str],
  ]);
}

/**
 * Encodes plain objects (string keys), arrays, strings, numbers, booleans, null, Buffers and the
 * maps made by `ndarray` / `npScalar`. Callers pass only such values (no typed arrays directly).
 */
export function encodeFrame(value: unknown): Buffer {
  return packr.pack(value);
}
