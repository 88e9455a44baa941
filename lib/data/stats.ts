/** Dataset statistics: parsing LeRobot's JSON, computing them, and aggregating per-episode ones. */
import type { Stats } from './types';
import { SmolVLAError } from '../errors';

const VECTOR_STATS = ['mean', 'std', 'min', 'max'] as const;

function flatNumbers(value: unknown, where: string): number[] {
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'number') out.push(v);
    else if (typeof v === 'bigint') out.push(Number(v));
    else throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: expected numbers, got ${JSON.stringify(v)}`);
  };
  walk(value);
  return out;
}

/**
 * `{feature: {mean, std, min, max, count}}` as in `meta/stats.json` or one line of
 * `meta/episodes_stats.jsonl`. Nested lists (image statistics are (3, 1, 1)) are flattened; other
 * entries (quantiles) are ignored.
 */
export function parseStats(json: unknown, where: string): Record<string, Stats> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: expected an object of per-feature statistics, got ${JSON.stringify(json)?.slice(0, 60)}`);
  }
  const out: Record<string, Stats> = {};
  for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
    if (typeof raw !== 'object' || raw === null) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: statistics of '${key}' must be an object`);
    const entry = raw as Record<string, unknown>;
    const vec = (name: string): Float32Array | undefined =>
      entry[name] === undefined ? undefined : Float32Array.from(flatNumbers(entry[name], `${where} '${key}'.${name}`));
    const mean = vec('mean');
    const std = vec('std');
    if (!mean || !std) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: statistics of '${key}' need 'mean' and 'std'`);
    if (mean.length !== std.length) {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: statistics of '${key}' have ${mean.length} means but ${std.length} stds`);
    }
    const stats: Stats = { mean, std };
    const min = vec('min');
    const max = vec('max');
    if (min) stats.min = min;
    if (max) stats.max = max;
    if (entry.count !== undefined) {
      const count = flatNumbers(entry.count, `${where} '${key}'.count`)[0];
      if (count !== undefined) stats.count = count;
    }
    out[key] = stats;
  }
  return out;
}

/** Statistics of `rows` vectors of width `dim` stored back to back (population std, as numpy). */
export function computeStats(values: ArrayLike<number>, rows: number, dim: number): Stats {
  const sum = new Float64Array(dim);
  const sq = new Float64Array(dim);
  const min = new Float32Array(dim).fill(Infinity);
  const max = new Float32Array(dim).fill(-Infinity);
  for (let r = 0; r < rows; r++) {
    for (let d = 0; d < dim; d++) {
      const v = values[r * dim + d] as number;
      sum[d] = (sum[d] as number) + v;
      if (v < (min[d] as number)) min[d] = v;
      if (v > (max[d] as number)) max[d] = v;
    }
  }
  const mean = sum.map((s) => s / rows);
  for (let r = 0; r < rows; r++) {
    for (let d = 0; d < dim; d++) {
      const dv = (values[r * dim + d] as number) - (mean[d] as number);
      sq[d] = (sq[d] as number) + dv * dv;
    }
  }
  return {
    mean: Float32Array.from(mean),
    std: Float32Array.from(sq, (s) => Math.sqrt(s / rows)),
    min,
    max,
    count: rows,
  };
}

/** numpy's round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** LeRobot's `sample_indices`: the frames of an episode its image statistics look at. */
export function sampleIndices(frames: number): number[] {
  const wanted = Math.max(Math.min(100, frames), Math.min(Math.floor(frames ** 0.75), 10_000));
  if (wanted === 1) return [0];
  return Array.from({ length: wanted }, (_, i) => roundHalfEven((i * (frames - 1)) / (wanted - 1)));
}

/**
 * Per-channel statistics of an episode's images in [0, 1], as LeRobot's `compute_episode_stats`:
 * over the sampled frames only, images of 300 px or more strided down to about 150 px, `count` the
 * number of sampled images. `frame(i)` gives pixel accessors of frame i.
 */
export function imageStats(
  frames: number,
  width: number,
  height: number,
  frame: (i: number) => (x: number, y: number, channel: number) => number,
): Stats {
  const step = Math.max(width, height) < 300 ? 1 : Math.floor((width > height ? width : height) / 150);
  const acc = [0, 1, 2].map(() => ({ sum: 0, sq: 0, min: Infinity, max: -Infinity }));
  const sampled = sampleIndices(frames);
  let n = 0;
  for (const i of sampled) {
    const pixel = frame(i);
    for (let y = 0; y < height; y += step) {
      for (let x = 0; x < width; x += step) {
        acc.forEach((a, c) => {
          const v = pixel(x, y, c);
          a.sum += v;
          a.sq += v * v;
          if (v < a.min) a.min = v;
          if (v > a.max) a.max = v;
        });
        n++;
      }
    }
  }
  const mean = acc.map((a) => a.sum / n);
  return {
    mean: Float32Array.from(mean),
    std: Float32Array.from(acc, (a, c) => Math.sqrt(Math.max(0, a.sq / n - (mean[c] as number) ** 2))),
    min: Float32Array.from(acc, (a) => a.min),
    max: Float32Array.from(acc, (a) => a.max),
    count: sampled.length,
  };
}

/**
 * Combines statistics of disjoint parts as LeRobot's `aggregate_stats`: count-weighted means, pooled
 * variance `Σ nᵢ(σᵢ² + (μᵢ − μ)²) / Σ nᵢ`, elementwise min/max.
 */
export function aggregateStats(parts: Array<Record<string, Stats>>, where: string): Record<string, Stats> {
  const keys = [...new Set(parts.flatMap((p) => Object.keys(p)))];
  const out: Record<string, Stats> = {};
  for (const key of keys) {
    const list = parts.map((p) => p[key]).filter((s): s is Stats => s !== undefined);
    const first = list[0] as Stats;
    if (list.length === 1) {
      out[key] = first;
      continue;
    }
    const dim = first.mean.length;
    let total = 0;
    const mean = new Float64Array(dim);
    for (const s of list) {
      if (s.count === undefined) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: statistics of '${key}' have no 'count' to aggregate with`);
      if (s.mean.length !== dim) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: statistics of '${key}' differ in width (${s.mean.length} vs ${dim})`);
      total += s.count;
      for (let d = 0; d < dim; d++) mean[d] = (mean[d] as number) + (s.mean[d] as number) * s.count;
    }
    for (let d = 0; d < dim; d++) mean[d] = (mean[d] as number) / total;
    const variance = new Float64Array(dim);
    for (const s of list) {
      for (let d = 0; d < dim; d++) {
        const dm = (s.mean[d] as number) - (mean[d] as number);
        variance[d] = (variance[d] as number) + ((s.std[d] as number) ** 2 + dm * dm) * (s.count as number);
      }
    }
    const agg: Stats = {
      mean: Float32Array.from(mean),
      std: Float32Array.from(variance, (v) => Math.sqrt(v / total)),
      count: total,
    };
    if (list.every((s) => s.min)) agg.min = elementwise(list.map((s) => s.min as Float32Array), Math.min);
    if (list.every((s) => s.max)) agg.max = elementwise(list.map((s) => s.max as Float32Array), Math.max);
    out[key] = agg;
  }
  return out;
}

function elementwise(arrays: Float32Array[], pick: (a: number, b: number) => number): Float32Array {
  const out = Float32Array.from(arrays[0] as Float32Array);
  for (const a of arrays.slice(1)) for (let d = 0; d < out.length; d++) out[d] = pick(out[d] as number, a[d] as number);
  return out;
}

/** JSON form of statistics; `imageKeys` get LeRobot's (3, 1, 1) nesting. */
export function statsToJson(stats: Record<string, Stats>, imageKeys: readonly string[]): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, s] of Object.entries(stats)) {
    const shape = (v: Float32Array): unknown => (imageKeys.includes(key) ? Array.from(v, (x) => [[x]]) : Array.from(v));
    const entry: Record<string, unknown> = {};
    for (const name of VECTOR_STATS) {
      const v = s[name];
      if (v) entry[name] = shape(v);
    }
    if (s.count !== undefined) entry.count = [s.count];
    out[key] = entry;
  }
  return out;
}
