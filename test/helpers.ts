/** Shared test helpers: fixture loading and tolerance checks (relative error = |a-b|2 / |b|2). */
import * as path from 'node:path';

import { readSafetensors, Tensor } from '../lib/index';

export const fixturesDir = path.join(__dirname, 'fixtures');

export interface Fixture {
  get(key: string): Tensor;
  has(key: string): boolean;
  keys(): string[];
  metadata: Record<string, string>;
  /** Number of `case{k}.*` groups. */
  caseCount(): number;
  int(key: string): number;
  float(key: string): number;
}

export async function loadFixture(...parts: string[]): Promise<Fixture> {
  const file = path.join(fixturesDir, ...parts);
  const { tensors, metadata } = await readSafetensors(file);
  const get = (key: string): Tensor => {
    const t = tensors.get(key);
    if (!t) throw new Error(`fixture ${file} has no tensor '${key}'`);
    return t;
  };
  return {
    get,
    has: (key) => tensors.has(key),
    keys: () => [...tensors.keys()],
    metadata,
    caseCount: () => new Set([...tensors.keys()].filter((k) => k.startsWith('case')).map((k) => k.split('.')[0])).size,
    int: (key) => Number(get(key).toNumbers()[0]),
    float: (key) => Number(get(key).toNumbers()[0]),
  };
}

export interface Difference {
  rel: number;
  maxAbs: number;
}

export function difference(actual: Tensor, expected: Tensor): Difference {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.to('float64').toNumbers();
  const b = expected.to('float64').toNumbers();
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    num += d * d;
    den += (b[i] as number) * (b[i] as number);
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  const rel = den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  return { rel, maxAbs };
}

/** Asserts relative error <= tol; reports both figures in the failure message. */
export function expectClose(actual: Tensor, expected: Tensor, tol: number, label: string): Difference {
  const d = difference(actual, expected);
  if (!(d.rel <= tol)) {
    throw new Error(`${label}: relative error ${d.rel.toExponential(3)} (max abs ${d.maxAbs.toExponential(3)}) exceeds ${tol}`);
  }
  return d;
}

/** Exact equality for bool / integer tensors. */
export function expectEqual(actual: Tensor, expected: Tensor, label: string): void {
  expect({ label, shape: actual.shape }).toEqual({ label, shape: expected.shape });
  expect({ label, dtype: actual.dtype }).toEqual({ label, dtype: expected.dtype });
  expect({ label, values: actual.toNumbers() }).toEqual({ label, values: expected.toNumbers() });
}
