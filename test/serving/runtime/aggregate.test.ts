import { AGGREGATE_FNS, aggregateMerge, resolveAggregate, type TimedAction } from '../../../lib/serving/runtime';

const f = (...v: number[]) => Float32Array.from(v);
const at = (step: number, request: number, ...v: number[]): TimedAction => ({ step, action: f(...v), request });

describe('aggregate functions (hand-computed)', () => {
  const old = f(1, 2, -4);
  const incoming = f(3, 0, 6);
  it('weighted_average = 0.3 old + 0.7 new', () => {
    expect(Array.from(AGGREGATE_FNS.weighted_average(old, incoming))).toEqual([0.3 + 2.1, 0.6, -1.2 + 4.2].map(Math.fround));
  });
  it('latest_only = new (a copy)', () => {
    const out = AGGREGATE_FNS.latest_only(old, incoming);
    expect(Array.from(out)).toEqual([3, 0, 6]);
    expect(out).not.toBe(incoming);
  });
  it('average = (old + new) / 2', () => {
    expect(Array.from(AGGREGATE_FNS.average(old, incoming))).toEqual([2, 1, 1]);
  });
  it('conservative = 0.7 old + 0.3 new', () => {
    expect(Array.from(AGGREGATE_FNS.conservative(old, incoming))).toEqual([0.7 + 0.9, 1.4, -2.8 + 1.8].map(Math.fround));
  });
  it('resolves names and user functions; rejects unknown names with a code', () => {
    const mine = (a: Float32Array) => a;
    expect(resolveAggregate(mine)).toBe(mine);
    expect(resolveAggregate('average')).toBe(AGGREGATE_FNS.average);
    expect(() => resolveAggregate('median' as never)).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
    expect(() => AGGREGATE_FNS.average(f(1), f(1, 2))).toThrow(/incoming action/);
  });
});

describe('aggregateMerge', () => {
  const info = { lastExecuted: 4, chunkStart: 4, decision: 'miss' as const, request: 9 };
  it('drops executed steps, combines overlaps, appends new steps, keeps uncovered queued steps', () => {
    const queued = [at(5, 1, 10), at(6, 1, 20), at(7, 1, 30), at(12, 1, 99)];
    const incoming = [at(4, 9, 0), at(5, 9, 0), at(6, 9, 40), at(8, 9, 50)];
    const out = aggregateMerge(AGGREGATE_FNS.average)(queued, incoming, info);
    expect(out.map((a) => [a.step, a.action[0], a.request])).toEqual([
      [5, 5, 9],
      [6, 30, 9],
      [7, 30, 1],
      [8, 50, 9],
      [12, 99, 1],
    ]);
  });
  it('latest_only replaces overlapping steps', () => {
    const out = aggregateMerge(AGGREGATE_FNS.latest_only)([at(5, 1, 1), at(6, 1, 2)], [at(6, 2, 7), at(7, 2, 8)], info);
    expect(out.map((a) => a.action[0])).toEqual([1, 7, 8]);
  });
});
