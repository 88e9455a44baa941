/** calibrateThreshold and the policy-driven similarity measurement. */
import fc from 'fast-check';

import { calibratePolicy, calibrateThreshold, sequenceSimilarities } from '../../lib/serving/calibrate';
import { FakePolicy } from './fakePolicy';

describe('calibrateThreshold', () => {
  it('puts the threshold in the middle of the gap between separable sets', () => {
    const c = calibrateThreshold([0.9, 0.8, 0.95], [0.1, 0.3, 0.2]);
    expect(c.threshold).toBeCloseTo(0.55, 12);
    expect(c.interval).toEqual([0.3, 0.8]);
    expect([c.balancedAccuracy, c.falseHitRate, c.falseMissRate]).toEqual([1, 0, 0]);
    expect(c.unchanged).toEqual({ count: 3, min: 0.8, mean: expect.closeTo(0.8833, 3), max: 0.95 });
    expect(c.changed).toMatchObject({ count: 3, min: 0.1, max: 0.3 });
  });

  it('maximises balanced accuracy when the sets overlap, reporting both error rates', () => {
    // Unchanged 0.6 sits among the changed ones: giving it up (1 false miss of 4, 0.875) beats
    // caching the changed 0.7 and 0.75 with it (2 false hits of 5, 0.8).
    const c = calibrateThreshold([0.6, 0.85, 0.9, 0.95], [0.2, 0.3, 0.4, 0.7, 0.75]);
    expect(c.interval).toEqual([0.75, 0.85]);
    expect(c.threshold).toBeCloseTo(0.8, 12);
    expect(c.falseMissRate).toBe(0.25);
    expect(c.falseHitRate).toBe(0);
    expect(c.balancedAccuracy).toBe(0.875);
  });

  it('weights the classes equally whatever their sizes', () => {
    // 1 unchanged vs 9 changed: plain accuracy would prefer "never cache"; balanced accuracy does not.
    const c = calibrateThreshold([0.9], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75]);
    expect(c.threshold).toBeCloseTo(0.825, 12);
    expect(c.balancedAccuracy).toBe(1);
  });

  it('ties: adjacent equally good gaps form one interval, whose midpoint is taken', () => {
    // With equal class sizes, crossing a value present once in each class changes nothing.
    const c = calibrateThreshold([0.5, 0.9], [0.5, 0.1]);
    expect(c.interval).toEqual([0.1, 0.9]);
    expect(c.threshold).toBeCloseTo(0.5, 12);
    expect(c.balancedAccuracy).toBe(0.75);
  });

  it('ties between separate intervals: the widest, then the highest', () => {
    // Best 0.75 on (0.1, 0.5) and on (0.7, 0.9) of equal width 0.4 and 0.2: the wider wins.
    expect(calibrateThreshold([0.9, 0.5], [0.7, 0.1]).interval).toEqual([0.1, 0.5]);
    // Equal widths (0.2 each): the higher (fewer false hits) wins.
    expect(calibrateThreshold([0.9, 0.5], [0.7, 0.3]).interval).toEqual([0.7, 0.9]);
  });

  it('uses the cosine range as outer bounds and accepts float32 overshoot', () => {
    const c = calibrateThreshold([1.00001, 1], [0.999]);
    expect(c.interval).toEqual([0.999, 1]);
    expect(c.balancedAccuracy).toBe(1);
  });

  it('always returns a threshold whose reported rates match the rule similarity > threshold', () => {
    const sims = fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(sims, sims, (u, ch) => {
        const c = calibrateThreshold(u, ch);
        expect(c.falseMissRate).toBe(u.filter((s) => !(s > c.threshold)).length / u.length);
        expect(c.falseHitRate).toBe(ch.filter((s) => s > c.threshold).length / ch.length);
        // No partition does better: thresholds at every value (and below all) cover them all.
        for (const t of [-1.5, ...u, ...ch]) {
          const b = (u.filter((s) => s > t).length / u.length + ch.filter((s) => !(s > t)).length / ch.length) / 2;
          expect(b).toBeLessThanOrEqual(c.balancedAccuracy + 1e-12);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('names bad input', () => {
    expect(() => calibrateThreshold([], [0.1])).toThrow('calibrateThreshold unchangedSimilarities: expected a non-empty array');
    expect(() => calibrateThreshold([0.5], [0.1, Number.NaN])).toThrow('changedSimilarities[1]: expected a cosine similarity in [-1, 1], got NaN');
    expect(() => calibrateThreshold([1.5], [0.1])).toThrow('unchangedSimilarities[0]: expected a cosine similarity in [-1, 1], got 1.5');
  });
});

describe('measuring similarities with a policy', () => {
  it('takes one prefix pass per frame, per robot, resetting before and after', async () => {
    const policy = new FakePolicy({ batch: 2, script: [[0.9, 0.8], [0.7, 0.6]] });
    const sims = await sequenceSimilarities(policy, ['f0', 'f1', 'f2']);
    expect(sims.map((s) => Math.round(s * 10) / 10)).toEqual([0.9, 0.8, 0.7, 0.6]);
    expect(policy.calls).toMatchObject({ prefix: 3, sample: 0, reset: 2 });
    expect(policy.caches.every((c) => c.disposed)).toBe(true);
  });

  it('calibrates a policy from unchanged and changed scenes', async () => {
    const policy = new FakePolicy({ script: [0.9, 0.95, 0.85, 0.2, 0.3] });
    const c = await calibratePolicy(policy, { unchanged: [['a', 'a', 'a'], ['b', 'b']], changed: [['a', 'b'], ['b', 'c']] });
    expect(c.unchangedSimilarities.map((s) => Math.round(s * 100) / 100)).toEqual([0.9, 0.95, 0.85]);
    expect(c.changedSimilarities.map((s) => Math.round(s * 100) / 100)).toEqual([0.2, 0.3]);
    expect(c.threshold).toBeCloseTo(0.575, 6);
    expect(c.balancedAccuracy).toBe(1);
  });

  it('names the offending sequence', async () => {
    await expect(sequenceSimilarities(new FakePolicy(), ['only'])).rejects.toThrow('sequenceSimilarities frames: expected at least 2 frames, got 1');
    await expect(calibratePolicy(new FakePolicy({ script: [0.9] }), { unchanged: [['a', 'b']], changed: [['c']] })).rejects.toThrow(
      'calibratePolicy scenes.changed[0]: sequenceSimilarities frames: expected at least 2 frames, got 1',
    );
    await expect(calibratePolicy(new FakePolicy(), { unchanged: [], changed: [['a', 'b']] })).rejects.toThrow('scenes.unchanged: expected a non-empty array');
  });
});

describe('calibrateThreshold at the limits of float precision', () => {
  it('keeps the partition when the gap is narrower than its midpoint can express', () => {
    // Found by the property above: the midpoint of [-5e-324, 0] rounds to -0, which is not > 0's side.
    const c = calibrateThreshold([0], [-5e-324, 0]);
    expect(c.falseMissRate).toBe([0].filter((s) => !(s > c.threshold)).length);
    expect(c.balancedAccuracy).toBeGreaterThanOrEqual(0.75);
  });
});
