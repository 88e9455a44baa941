/**
 * Tensor: a typed handle to a native (libtorch) tensor. Data crosses into native memory by copy
 * (JS could change its buffer while native work runs on another thread) and comes back as a copy in
 * an ArrayBuffer V8 owns (so the GC sees and frees it like any buffer). Native memory is freed by
 * dispose() or, if forgotten, by GC finalisation.
 */
import { argumentError } from './errors';
import { native, type NativeTensor } from './native';

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export type TensorData =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array;

const BYTES: Record<DType, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

function inferDtype(data: TensorData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Uint16Array) throw argumentError('dtype', 'given for a Uint16Array ("bfloat16" or "float16")', undefined);
  throw argumentError('data', 'a Float32Array, Float64Array, BigInt64Array, Int32Array, Int16Array, Int8Array, Uint8Array or Uint16Array', data);
}

function checkShape(shape: readonly number[], name: string): number {
  if (!Array.isArray(shape) || shape.length > 16) throw argumentError(name, 'an array of at most 16 non-negative integers', shape);
  let numel = 1;
  for (const [i, s] of shape.entries()) {
    if (!Number.isInteger(s) || s < 0) {
      throw argumentError(`${name}[${i}]`, 'a non-negative integer', s);
    }
    numel *= s;
  }
  return numel;
}

function arrayLike<T>(name: string, values: ArrayLike<T>): ArrayLike<T> {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') throw argumentError(name, 'an array', values);
  return values;
}

export class Tensor {
  /** The native handle; library-internal. */
  readonly handle: NativeTensor;

  constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  /**
   * A tensor with a copy of `data`. The dtype follows the array type (Uint8Array is uint8 unless
   * dtype 'bool' is given; Uint16Array holds raw bfloat16/float16 bits and needs the dtype).
   */
  static from(data: TensorData, shape: readonly number[], dtype?: DType): Tensor {
    const type = dtype ?? inferDtype(data);
    if (typeof type !== 'string' || !Object.hasOwn(BYTES, type)) throw argumentError('dtype', `one of ${Object.keys(BYTES).join(', ')}`, type);
    if (!ArrayBuffer.isView(data) || data instanceof DataView) throw argumentError('data', 'a typed array', data);
    const numel = checkShape(shape, 'shape');
    if (data.byteLength !== numel * BYTES[type]) {
      throw argumentError('data', `${numel * BYTES[type]} bytes for shape [${shape.join(', ')}] of ${type}`, data);
    }
    return new Tensor(native.tensorFromBuffer(data, [...shape], type));
  }

  /** A float32 tensor from plain numbers. */
  static fromNumbers(values: readonly number[], shape: readonly number[]): Tensor {
    return Tensor.from(Float32Array.from(arrayLike('values', values)), shape);
  }

  /** A bool tensor from booleans (or 0/1). */
  static fromBools(values: ArrayLike<boolean | number>, shape: readonly number[]): Tensor {
    return Tensor.from(Uint8Array.from(arrayLike('values', values) as ArrayLike<number>, (v) => (v ? 1 : 0)), shape, 'bool');
  }

  /** An int64 tensor from plain integers. */
  static fromInts(values: readonly number[], shape: readonly number[]): Tensor {
    const ints = arrayLike('values', values);
    for (const [i, v] of Array.from(ints).entries()) if (!Number.isSafeInteger(v)) throw argumentError(`values[${i}]`, 'a safe integer', v);
    return Tensor.from(BigInt64Array.from(ints, (v) => BigInt(v)), shape);
  }

  get shape(): number[] {
    return this.handle.shape;
  }

  get dtype(): DType {
    return this.handle.dtype as DType;
  }

  get device(): string {
    return this.handle.device;
  }

  get disposed(): boolean {
    return this.handle.disposed;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * The elements as a typed array of the tensor's dtype (bool and uint8 as Uint8Array,
   * bfloat16/float16 as raw Uint16Array bits). A copy owned by V8: it stays valid after dispose(),
   * and writes to it never reach the tensor.
   */
  data(): TensorData {
    const buf = this.handle.data();
    switch (this.dtype) {
      case 'float32': return new Float32Array(buf);
      case 'float64': return new Float64Array(buf);
      case 'int64': return new BigInt64Array(buf);
      case 'int32': return new Int32Array(buf);
      case 'int16': return new Int16Array(buf);
      case 'int8': return new Int8Array(buf);
      case 'uint8':
      case 'bool': return new Uint8Array(buf);
      case 'float16':
      case 'bfloat16': return new Uint16Array(buf);
    }
  }

  /** The elements converted to float32 (any dtype). */
  toFloat32(): Float32Array {
    if (this.dtype === 'float32') return this.data() as Float32Array;
    const converted = this.to('float32');
    try {
      return converted.data() as Float32Array;
    } finally {
      converted.dispose();
    }
  }

  /** The elements as plain numbers (int64 converted; may lose precision beyond 2^53). */
  toNumbers(): number[] {
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, (v) => Number(v)) : Array.from(d as ArrayLike<number>);
  }

  /** A converted copy (or the same storage when nothing changes). Devices: 'cpu', 'cuda', 'cuda:N'. */
  to(dtype?: DType, device?: string): Tensor {
    return new Tensor(this.handle.to(dtype ?? null, device ?? null));
  }

  /** Frees the native memory now. Safe to call twice. */
  dispose(): void {
    this.handle.dispose();
  }

  /** `using t = Tensor.from(...)` frees the native memory at the end of the scope. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.handle.describe()})`;
  }
}

/** Disposes every tensor in a (possibly nested) result object. */
export function disposeAll(value: unknown): void {
  if (value instanceof Tensor) {
    value.dispose();
  } else if (Array.isArray(value)) {
    for (const v of value) disposeAll(v);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) disposeAll(v);
  }
}
