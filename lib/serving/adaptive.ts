/**
 * Adaptive CLS-similarity threshold (the inference guide's "场景 3: 自适应阈值").
 *
 * **Direction.** The cache rule is `similarity > threshold → cache`, as in the published code, so a
 * *lower* threshold caches *more*. The guide's prose reads it the other way round: it calls 0.3
 * "strict" and 0.7 "relaxed, more caching", and its controller *raises* the threshold when the hit
 * rate is too low — which, under the rule it ships, lowers the hit rate further (and lowers the
 * threshold when the rate is too high, caching even more). This controller keeps the rule and does
 * what the guide says it wants: hit rate below the band → *lower* the threshold (cache more); above
 * it → *raise* the threshold (recompute more). Likewise, in the guide's scenario table read "static
 * workstation: lower threshold (≈0.3), dynamic scene: higher threshold (≈0.7)".
 */
import { SmolVLAError } from '../errors';

export interface AdaptiveThresholdOptions {
  /** Decisions the hit rate is measured over (default 100). */
  window?: number;
  /** Hit rates strictly below this lower the threshold (default 0.3). */
  minHitRate?: number;
  /** Hit rates strictly above this raise the threshold (default 0.8). */
  maxHitRate?: number;
  /** Size of one adjustment (default 0.05). */
  step?: number;
  /** Lowest threshold the controller sets (default 0.2). */
  minThreshold?: number;
  /** Highest threshold the controller sets (default 0.8). */
  maxThreshold?: number;
}

export interface ThresholdAdjustment {
  from: number;
  to: number;
  /** The window's hit rate that triggered it. */
  hitRate: number;
  direction: 'lower' | 'raise';
}

export interface AdaptiveUpdate {
  /** The threshold to use from now on (unchanged unless `adjustment` is set). */
  threshold: number;
  adjustment: ThresholdAdjustment | null;
}

function checkNumber(name: string, value: number, lo: number, hi: number, integer = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi || (integer && !Number.isInteger(value))) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `AdaptiveThreshold ${name}: expected ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got ${String(value)}`);
  }
  return value;
}

/** Thresholds move in steps like 0.05: rounding keeps 0.5 - 0.05 at 0.45, not 0.45000000000000001. */
function tidy(x: number): number {
  return Math.round(x * 1e9) / 1e9;
}

/**
 * Keeps the cache hit rate inside [minHitRate, maxHitRate] over a sliding window of decisions.
 *
 * Deterministic rule, evaluated after each observed decision once the window is full (`window`
 * decisions since construction, reset() or the last adjustment): rate < minHitRate → threshold −
 * step; rate > maxHitRate → threshold + step; the band's ends count as inside. Results are clamped
 * to [minThreshold, maxThreshold], and a clamp never moves the threshold against the intended
 * direction (a threshold already above the maximum is not "raised" down to it; lowering it lands
 * on the maximum). An adjustment
 * empties the window, so the next one is judged only on decisions made under the new threshold;
 * without one the window slides.
 */
export class AdaptiveThreshold {
  readonly window: number;
  readonly minHitRate: number;
  readonly maxHitRate: number;
  readonly step: number;
  readonly minThreshold: number;
  readonly maxThreshold: number;
  private readonly decisions: boolean[] = [];
  private hits = 0;

  constructor(options: AdaptiveThresholdOptions = {}) {
    this.window = checkNumber('window', options.window ?? 100, 1, Number.MAX_SAFE_INTEGER, true);
    this.minHitRate = checkNumber('minHitRate', options.minHitRate ?? 0.3, 0, 1);
    this.maxHitRate = checkNumber('maxHitRate', options.maxHitRate ?? 0.8, 0, 1);
    this.step = checkNumber('step', options.step ?? 0.05, Number.MIN_VALUE, 2);
    this.minThreshold = checkNumber('minThreshold', options.minThreshold ?? 0.2, -1, 1);
    this.maxThreshold = checkNumber('maxThreshold', options.maxThreshold ?? 0.8, -1, 1);
    if (this.minHitRate > this.maxHitRate) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `AdaptiveThreshold: minHitRate (${this.minHitRate}) must not exceed maxHitRate (${this.maxHitRate})`);
    }
    if (this.minThreshold > this.maxThreshold) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `AdaptiveThreshold: minThreshold (${this.minThreshold}) must not exceed maxThreshold (${this.maxThreshold})`);
    }
  }

  /** Decisions in the current window. */
  get size(): number {
    return this.decisions.length;
  }

  /** Hit rate of the current window; null when it is empty. */
  get hitRate(): number | null {
    return this.decisions.length > 0 ? this.hits / this.decisions.length : null;
  }

  /**
   * Records one similarity decision (`cached` = the similarity was above `threshold`) and returns
   * the threshold to use next.
   */
  observe(cached: boolean, threshold: number): AdaptiveUpdate {
    if (typeof cached !== 'boolean') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `AdaptiveThreshold.observe cached: expected a boolean, got ${String(cached)}`);
    if (!Number.isFinite(threshold)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `AdaptiveThreshold.observe threshold: expected a finite number, got ${String(threshold)}`);
    this.decisions.push(cached);
    if (cached) this.hits++;
    if (this.decisions.length > this.window) {
      const dropped = this.decisions.shift();
      if (dropped) this.hits--;
    }
    if (this.decisions.length < this.window) return { threshold, adjustment: null };

    const rate = this.hits / this.decisions.length;
    let to = threshold;
    let direction: ThresholdAdjustment['direction'] | null = null;
    if (rate < this.minHitRate) {
      direction = 'lower';
      to = Math.min(threshold, this.clamp(tidy(threshold - this.step)));
    } else if (rate > this.maxHitRate) {
      direction = 'raise';
      to = Math.max(threshold, this.clamp(tidy(threshold + this.step)));
    }
    if (direction === null || to === threshold) return { threshold, adjustment: null };
    this.reset();
    return { threshold: to, adjustment: { from: threshold, to, hitRate: rate, direction } };
  }

  private clamp(t: number): number {
    return Math.min(this.maxThreshold, Math.max(this.minThreshold, t));
  }

  /** Empties the window (the threshold itself lives with the caller). */
  reset(): void {
    this.decisions.length = 0;
    this.hits = 0;
  }
}
