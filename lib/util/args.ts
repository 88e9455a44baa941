/**
 * Argument checks for the public wrappers, run before any native handle is touched: a wrong
 * argument becomes an ERR_SMOLVLA_ARGUMENT naming it (never a raw "Cannot read properties of
 * undefined"), and numbers are bounded so a typo such as 1e9 or Infinity fails at once instead of
 * allocating gigabytes or looping forever in native code.
 */
import { argumentError, SmolVLAError } from '../errors';
import { Tensor } from '../tensor';

/** A live Tensor; ERR_SMOLVLA_ARGUMENT when it is not one, ERR_SMOLVLA_DISPOSED when disposed. */
export function tensorArg(name: string, value: unknown): Tensor {
  if (!(value instanceof Tensor)) throw argumentError(name, 'a Tensor', value);
  if (value.disposed) throw new SmolVLAError('ERR_SMOLVLA_DISPOSED', `${name}: the Tensor was disposed`);
  return value;
}

/** undefined/null, or a live Tensor. */
export function optionalTensorArg(name: string, value: unknown): Tensor | undefined {
  return value === undefined || value === null ? undefined : tensorArg(name, value);
}

/** An array of live Tensors of length within [min, max]. */
export function tensorListArg(name: string, value: unknown, min = 0, max = 1024): Tensor[] {
  if (!Array.isArray(value) || value.length < min || value.length > max) {
    throw argumentError(name, `an array of ${min} to ${max} Tensors`, value);
  }
  return value.map((t, i) => tensorArg(`${name}[${i}]`, t));
}

/** An integer in [min, max]. */
export function intArg(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw argumentError(name, `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

export interface NumberBounds {
  min?: number;
  max?: number;
  /** Exclude min itself (e.g. a positive period). */
  aboveMin?: boolean;
}

/** A finite number within the bounds. */
export function numberArg(name: string, value: unknown, bounds: NumberBounds = {}): number {
  const { min = -Number.MAX_VALUE, max = Number.MAX_VALUE, aboveMin = false } = bounds;
  const ok = typeof value === 'number' && Number.isFinite(value) && (aboveMin ? value > min : value >= min) && value <= max;
  if (!ok) throw argumentError(name, `a finite number in ${aboveMin ? '(' : '['}${min}, ${max}]`, value);
  return value;
}

export function boolArg(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw argumentError(name, 'a boolean', value);
  return value;
}

/** One of the listed strings. */
export function choiceArg<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw argumentError(name, `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`, value);
  }
  return value as T;
}

/** An options bag: undefined (→ {}) or a plain object. */
export function optionsArg<T extends object>(name: string, value: T | undefined): T {
  if (value === undefined) return {} as T;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw argumentError(name, 'an options object', value);
  return value;
}

/** An array of strings (names). */
export function stringListArg(name: string, value: unknown, max = 1_000_000): string[] {
  if (!Array.isArray(value) || value.length > max || value.some((s) => typeof s !== 'string')) {
    throw argumentError(name, `an array of at most ${max} strings`, value);
  }
  return value as string[];
}
