/**
 * Threshold calibration. Nothing in the training objective teaches CLS token 0 at step t
 * to match token 1 at step t − 1, so a usable `cls_similarity_threshold` depends on the model:
 * measure similarities of consecutive frames from unchanged scenes and from scene changes, and pick
 * the threshold that separates them best under the rule `similarity > threshold → cache`.
 */
import type { PolicyLike } from './server';
import { SmolVLAError } from '../errors';

export interface SimilaritySummary {
  count: number;
  min: number;
  mean: number;
  max: number;
}

export interface Calibration {
  threshold: number;
  /** (1 − falseMissRate + 1 − falseHitRate) / 2 at `threshold`. */
  balancedAccuracy: number;
  /** Changed-scene similarities above the threshold: a stale chunk would be kept. */
  falseHitRate: number;
  /** Unchanged-scene similarities not above the threshold: compute that could have been saved. */
  falseMissRate: number;
  /** The range of equally good thresholds; `threshold` is its midpoint. */
  interval: [number, number];
  unchanged: SimilaritySummary;
  changed: SimilaritySummary;
}

/** Float32 cosines may overshoot ±1 by rounding; more than this is not a cosine similarity. */
const COSINE_SLACK = 1e-4;

function checkSimilarities(name: string, values: readonly number[]): number[] {
  if (!Array.isArray(values) || values.length === 0) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `calibrateThreshold ${name}: expected a non-empty array of similarities`);
  return values.map((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > 1 + COSINE_SLACK) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `calibrateThreshold ${name}[${i}]: expected a cosine similarity in [-1, 1], got ${String(v)}`);
    }
    return Math.min(1, Math.max(-1, v));
  });
}

function summarise(sorted: readonly number[]): SimilaritySummary {
  return {
    count: sorted.length,
    min: sorted[0]!,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    max: sorted[sorted.length - 1]!,
  };
}

/** Count of sorted `values` that are <= x. */
function countAtMost(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The threshold that best separates similarities of unchanged scenes (should cache) from those of
 * changed scenes (should recompute), maximising balanced accuracy (so unequal sample counts do not
 * bias it). Candidate partitions are the gaps between consecutive distinct values of
 * {−1, the similarities, 1}. Equally good adjacent gaps form one interval; the threshold is that
 * interval's midpoint (the largest margin on both sides). When separate intervals tie, the widest
 * wins, then the highest (fewer false hits: recomputing is the safe error).
 */
export function calibrateThreshold(unchangedSimilarities: readonly number[], changedSimilarities: readonly number[]): Calibration {
  const unchanged = checkSimilarities('unchangedSimilarities', unchangedSimilarities).sort((a, b) => a - b);
  const changed = checkSimilarities('changedSimilarities', changedSimilarities).sort((a, b) => a - b);
  const nu = unchanged.length;
  const nc = changed.length;
  const points = [...new Set([-1, ...unchanged, ...changed, 1])].sort((a, b) => a - b);

  // Balanced accuracy scaled by 2·nu·nc: an exact integer, so ties are exact. A threshold anywhere
  // in [lo, hi) caches exactly the values > lo.
  const score = (t: number) => (nu - countAtMost(unchanged, t)) * nc + countAtMost(changed, t) * nu;
  const gaps = points.slice(0, -1).map((lo, i) => ({ lo, hi: points[i + 1]!, score: score(lo) }));
  const best = gaps.reduce((m, g) => Math.max(m, g.score), -Infinity);

  let chosen: [number, number] | null = null;
  for (let i = 0; i < gaps.length; i++) {
    if (gaps[i]!.score !== best) continue;
    let j = i;
    while (j + 1 < gaps.length && gaps[j + 1]!.score === best) j++;
    const run: [number, number] = [gaps[i]!.lo, gaps[j]!.hi];
    if (!chosen || run[1] - run[0] >= chosen[1] - chosen[0]) chosen = run;
    i = j;
  }
  const interval = chosen!;
  // The midpoint, unless it rounds onto an end (adjacent values a few ulps apart, denormals): then
  // the low end, which gives the same partition under `similarity > threshold`.
  const mid = (interval[0] + interval[1]) / 2;
  const threshold = mid > interval[0] && mid < interval[1] ? mid : interval[0];
  const falseMissRate = countAtMost(unchanged, threshold) / nu;
  const falseHitRate = (nc - countAtMost(changed, threshold)) / nc;
  return {
    threshold,
    balancedAccuracy: (2 - falseMissRate - falseHitRate) / 2,
    falseHitRate,
    falseMissRate,
    interval,
    unchanged: summarise(unchanged),
    changed: summarise(changed),
  };
}

/**
 * Per-robot CLS similarities of each consecutive pair of `frames` (policy batches) as the policy
 * measures them: one `calCache` prefix pass per frame, no sampling. Resets the policy before and
 * after (its stored previous CLS output is consumed).
 */
export async function sequenceSimilarities(policy: PolicyLike, frames: readonly unknown[], options: { signal?: AbortSignal } = {}): Promise<number[]> {
  if (!Array.isArray(frames) || frames.length < 2) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `sequenceSimilarities frames: expected at least 2 frames, got ${Array.isArray(frames) ? frames.length : String(frames)}`);
  }
  const out: number[] = [];
  policy.reset();
  try {
    for (const [i, frame] of frames.entries()) {
      const r = await policy.predictActionChunk(frame, { calCache: true, computeClsSimilarity: true, signal: options.signal });
      r.cache?.dispose();
      r.deltaActions?.dispose();
      r.actionsTensor?.dispose();
      r.obsClsOut?.dispose();
      if (i === 0) continue;
      if (!r.similarity) throw new SmolVLAError('ERR_SMOLVLA', `sequenceSimilarities: the policy measured no similarity for frame ${i}`);
      out.push(...r.similarity.perSample);
    }
  } finally {
    policy.reset();
  }
  return out;
}

export interface CalibrationScenes {
  /** Sequences of frames of scenes that do not change (each at least 2 frames). */
  unchanged: ReadonlyArray<readonly unknown[]>;
  /** Sequences whose every consecutive pair is a scene change (typically pairs). */
  changed: ReadonlyArray<readonly unknown[]>;
}

/** Measures both sets with `policy` and calibrates; also returns the measured similarities. */
export async function calibratePolicy(
  policy: PolicyLike,
  scenes: CalibrationScenes,
  options: { signal?: AbortSignal } = {},
): Promise<Calibration & { unchangedSimilarities: number[]; changedSimilarities: number[] }> {
  const measure = async (name: keyof CalibrationScenes): Promise<number[]> => {
    const sequences = scenes[name];
    if (!Array.isArray(sequences) || sequences.length === 0) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `calibratePolicy scenes.${name}: expected a non-empty array of frame sequences`);
    const all: number[] = [];
    for (const [i, frames] of sequences.entries()) {
      try {
        all.push(...(await sequenceSimilarities(policy, frames, options)));
      } catch (err) {
        if (err instanceof Error) err.message = `calibratePolicy scenes.${name}[${i}]: ${err.message}`;
        throw err;
      }
    }
    return all;
  };
  const unchangedSimilarities = await measure('unchanged');
  const changedSimilarities = await measure('changed');
  return { ...calibrateThreshold(unchangedSimilarities, changedSimilarities), unchangedSimilarities, changedSimilarities };
}
