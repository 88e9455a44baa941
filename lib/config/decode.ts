/**
 * JSON shape checks for config files: each decoder checks one value's JSON type and throws an Error
 * naming where the value sits (e.g. `vlm_backbone.text_config.hidden_size`), what was expected and what
 * was received. Ranges and cross-field rules are validate.ts's job.
 */
import { SmolVLAError } from '../errors';

export type Decoder<T> = (value: unknown, where: string) => T;

/** A short description of a received JSON value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A deep copy of a JSON-like value (plain objects and arrays; other values are shared). */
export function cloneJson<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneJson(v)])) as T;
  return value;
}

function fail(where: string, expected: string, value: unknown): never {
  throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${where}: expected ${expected}, received ${describe(value)}`);
}

export const integer: Decoder<number> = (v, where) => (Number.isSafeInteger(v) ? (v as number) : fail(where, 'an integer', v));

export const number: Decoder<number> = (v, where) =>
  typeof v === 'number' && Number.isFinite(v) ? v : fail(where, 'a finite number', v);

export const boolean: Decoder<boolean> = (v, where) => (typeof v === 'boolean' ? v : fail(where, 'true or false', v));

export const string: Decoder<string> = (v, where) => (typeof v === 'string' ? v : fail(where, 'a string', v));

/** A string whose allowed values validate.ts checks (so TypeScript callers get the same message). */
export const stringAs =
  <T extends string>(): Decoder<T> =>
  (v, where) =>
    string(v, where) as T;

export const object: Decoder<Record<string, unknown>> = (v, where) => (isObject(v) ? v : fail(where, 'an object', v));

export const pair =
  <T>(item: Decoder<T>): Decoder<[T, T]> =>
  (v, where) => {
    if (!Array.isArray(v) || v.length !== 2) fail(where, 'an array of 2', v);
    return [item(v[0], `${where}[0]`), item(v[1], `${where}[1]`)];
  };

export const array =
  <T>(item: Decoder<T>): Decoder<T[]> =>
  (v, where) => {
    if (!Array.isArray(v)) fail(where, 'an array', v);
    return v.map((x, i) => item(x, `${where}[${i}]`));
  };

/** A JSON object with arbitrary keys (input_features, normalization_mapping); key order is kept. */
export const dictionary =
  <T>(item: Decoder<T>): Decoder<Record<string, T>> =>
  (v, where) => {
    if (!isObject(v)) fail(where, 'an object', v);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, item(x, `${where}[${JSON.stringify(k)}]`)]));
  };

/** camelCase TypeScript names <-> snake_case JSON names (mechanical; every config key fits the rule). */
export const camelToSnake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const snakeToCamel = (name: string): string => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

export type Fields<T> = { [K in keyof T]-?: Decoder<T[K]> };

/**
 * Decodes the snake_case keys of `json` named by `fields` (camelCase) into an object. Missing keys take
 * `defaults`; a missing key without a default is an error. Returns the keys it did not know, in order.
 */
export function decodeObject<T extends object>(
  json: unknown,
  where: string,
  fields: Fields<T>,
  defaults: Partial<T>,
): { value: T; unknown: [string, unknown][] } {
  const obj = object(json, where);
  const value: Partial<T> = {};
  for (const key of Object.keys(fields) as (keyof T & string)[]) {
    const snake = camelToSnake(key);
    const at = where ? `${where}.${snake}` : snake;
    if (obj[snake] !== undefined) value[key] = fields[key](obj[snake], at);
    else if (defaults[key] !== undefined) value[key] = cloneJson(defaults[key]);
    else throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${at}: missing (no default)`);
  }
  const known = new Set(Object.keys(fields).map(camelToSnake));
  return { value: value as T, unknown: Object.entries(obj).filter(([k]) => !known.has(k)) };
}

/** The inverse of decodeObject: camelCase object -> snake_case JSON object, in `fields` order. */
export function encodeObject<T extends object>(value: T, fields: Fields<T>): Record<string, unknown> {
  const keys = Object.keys(fields) as (keyof T & string)[];
  return Object.fromEntries(keys.map((k) => [camelToSnake(k), cloneJson(value[k])]));
}
