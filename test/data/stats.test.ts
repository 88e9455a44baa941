/** Statistics: LeRobot's aggregation (weighted mean, pooled std) equals statistics of the whole. */
import fc from 'fast-check';

import { aggregateStats, computeStats } from '../../lib/data/index';
import { parseStats, statsToJson } from '../../lib/data/stats';

describe('statistics', () => {
  it('aggregating per-episode statistics equals the statistics of all rows', () => {
    const value = fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true });
    const episode = fc.integer({ min: 1, max: 12 }).chain((n) => fc.array(value, { minLength: n * 2, maxLength: n * 2 }));
    fc.assert(
      fc.property(fc.array(episode, { minLength: 1, maxLength: 5 }), (episodes) => {
        const parts = episodes.map((e) => ({ x: computeStats(e, e.length / 2, 2) }));
        const all = episodes.flat();
        const whole = computeStats(all, all.length / 2, 2);
        const agg = aggregateStats(parts, 'test').x;
        expect(agg?.count).toBe(all.length / 2);
        for (let d = 0; d < 2; d++) {
          expect(agg?.mean[d]).toBeCloseTo(whole.mean[d] as number, 2);
          expect(agg?.std[d]).toBeCloseTo(whole.std[d] as number, 2);
          expect(agg?.min?.[d]).toBe(whole.min?.[d]);
          expect(agg?.max?.[d]).toBe(whole.max?.[d]);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('round-trips LeRobot JSON, with image statistics nested as (3, 1, 1)', () => {
    const stats = { 'observation.images.top': computeStats([0.1, 0.2, 0.3, 0.5, 0.6, 0.7], 2, 3), action: computeStats([1, 2, 3], 3, 1) };
    const json = statsToJson(stats, ['observation.images.top']);
    expect(json['observation.images.top']?.mean).toEqual([[[Math.fround(0.3)]], [[Math.fround(0.4)]], [[Math.fround(0.5)]]]);
    expect(json.action?.count).toEqual([3]);
    expect(parseStats(JSON.parse(JSON.stringify(json)), 'json')).toEqual(stats);
    expect(() => parseStats({ action: { mean: [1] } }, 'meta/stats.json')).toThrow("meta/stats.json: statistics of 'action' need 'mean' and 'std'");
    expect(() => aggregateStats([{ a: { mean: new Float32Array(1), std: new Float32Array(1) } }, { a: { mean: new Float32Array(1), std: new Float32Array(1) } }], 'eps')).toThrow(
      "eps: statistics of 'a' have no 'count' to aggregate with",
    );
  });
});
