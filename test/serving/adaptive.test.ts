/** AdaptiveThreshold: the inference guide's controller (direction inverted relative to the seed's prose). */
import fc from 'fast-check';

import { AdaptiveThreshold } from '../../lib/serving/adaptive';

/** Feeds `decisions` starting at `threshold`; returns the threshold after each one. */
function drive(c: AdaptiveThreshold, decisions: boolean[], threshold: number): number[] {
  return decisions.map((d) => (threshold = c.observe(d, threshold).threshold));
}

const hits = (n: number) => new Array<boolean>(n).fill(true);
const misses = (n: number) => new Array<boolean>(n).fill(false);

describe('AdaptiveThreshold', () => {
  it('uses the defaults: window 100, band [0.3, 0.8], step 0.05, clamp [0.2, 0.8]', () => {
    const c = new AdaptiveThreshold();
    expect([c.window, c.minHitRate, c.maxHitRate, c.step, c.minThreshold, c.maxThreshold]).toEqual([100, 0.3, 0.8, 0.05, 0.2, 0.8]);
  });

  it('LOWERS the threshold (caches more) when the hit rate is below the band', () => {
    const c = new AdaptiveThreshold({ window: 10 });
    const t = drive(c, misses(10), 0.5);
    expect(t.slice(0, 9)).toEqual(new Array(9).fill(0.5));
    expect(t[9]).toBe(0.45);
  });

  it('RAISES the threshold (recomputes more) when the hit rate is above the band', () => {
    const c = new AdaptiveThreshold({ window: 10 });
    const u = [...hits(9)].map((d) => c.observe(d, 0.5));
    expect(u.every((x) => x.adjustment === null)).toBe(true);
    expect(c.observe(true, 0.5)).toEqual({ threshold: 0.55, adjustment: { from: 0.5, to: 0.55, hitRate: 1, direction: 'raise' } });
  });

  it('treats the band ends as inside: exactly 0.3 and exactly 0.8 change nothing', () => {
    const c = new AdaptiveThreshold({ window: 10 });
    expect(drive(c, [...hits(3), ...misses(7)], 0.5)[9]).toBe(0.5);
    c.reset();
    expect(drive(c, [...hits(8), ...misses(2)], 0.5)[9]).toBe(0.5);
    c.reset();
    expect(drive(c, [...hits(2), ...misses(8)], 0.5)[9]).toBe(0.45);
    c.reset();
    expect(drive(c, [...hits(9), ...misses(1)], 0.5)[9]).toBe(0.55);
  });

  it('waits for a full window, empties it after an adjustment, slides otherwise', () => {
    const c = new AdaptiveThreshold({ window: 4 });
    // Full after 4: rate 0.5, inside. Sliding: the 5th decision drops the first hit -> 0.25 -> lower.
    const t = drive(c, [true, false, true, false, false], 0.5);
    expect(t).toEqual([0.5, 0.5, 0.5, 0.5, 0.45]);
    expect(c.size).toBe(0);
    // After the adjustment a fresh window of 4 is needed before the next one.
    expect(drive(c, misses(4), 0.45)).toEqual([0.45, 0.45, 0.45, 0.4]);
    expect(c.hitRate).toBeNull();
  });

  it('clamps to [0.2, 0.8] and never moves against the intended direction', () => {
    const c = new AdaptiveThreshold({ window: 1 });
    expect(drive(c, misses(8), 0.5)).toEqual([0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.2, 0.2]);
    expect(drive(c, hits(8), 0.5)).toEqual([0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.8, 0.8]);
    // Already outside the clamp range: no "raise" down to 0.8, no "lower" up to 0.2.
    expect(c.observe(true, 0.9)).toEqual({ threshold: 0.9, adjustment: null });
    expect(c.observe(false, 0.1)).toEqual({ threshold: 0.1, adjustment: null });
    // From outside in the intended direction it lands on the bound.
    expect(c.observe(false, 0.82).threshold).toBe(0.77);
    expect(c.observe(false, 0.9).threshold).toBe(0.8);
  });

  it('at a clamp bound the window keeps sliding (no adjustment happened)', () => {
    const c = new AdaptiveThreshold({ window: 3 });
    drive(c, misses(3), 0.2);
    expect(c.size).toBe(3);
    expect(c.hitRate).toBe(0);
  });

  it('is deterministic and stays in bounds for any decision sequence', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 300 }), fc.integer({ min: 1, max: 20 }), (ds, window) => {
        const a = drive(new AdaptiveThreshold({ window }), ds, 0.5);
        const b = drive(new AdaptiveThreshold({ window }), ds, 0.5);
        expect(a).toEqual(b);
        for (const t of a) {
          expect(t).toBeGreaterThanOrEqual(0.2);
          expect(t).toBeLessThanOrEqual(0.8);
          expect(Math.round(t * 100) / 100).toBe(t);
        }
      }),
    );
  });

  it('names bad options and inputs', () => {
    expect(() => new AdaptiveThreshold({ window: 0 })).toThrow('window: expected an integer in [1,');
    expect(() => new AdaptiveThreshold({ minHitRate: 0.9 })).toThrow('minHitRate (0.9) must not exceed maxHitRate (0.8)');
    expect(() => new AdaptiveThreshold({ minThreshold: 0.9 })).toThrow('minThreshold (0.9) must not exceed maxThreshold (0.8)');
    expect(() => new AdaptiveThreshold({ step: 0 })).toThrow('step');
    expect(() => new AdaptiveThreshold().observe(true, Number.NaN)).toThrow('threshold: expected a finite number, got NaN');
    expect(() => new AdaptiveThreshold().observe(1 as never, 0.5)).toThrow('cached: expected a boolean, got 1');
  });
});
