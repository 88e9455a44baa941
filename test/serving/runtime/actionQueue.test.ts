import { AGGREGATE_FNS, aggregateMerge, TimedActionQueue, type MergeFn, type TimedAction } from '../../../lib/serving/runtime';

const chunk = (start: number, n: number, request: number, value = start): TimedAction[] =>
  Array.from({ length: n }, (_, k) => ({ step: start + k, action: Float32Array.of(value + k), request }));
const info = (request: number, chunkStart: number) => ({ chunkStart, decision: 'miss' as const, request });

describe('TimedActionQueue bookkeeping', () => {
  it('executes each step once, in order, and drops actions for executed steps', () => {
    const q = new TimedActionQueue();
    expect(q.lastExecuted).toBe(-1);
    expect(q.pop()).toBeNull();
    expect(q.merge(chunk(0, 3, 0), aggregateMerge(AGGREGATE_FNS.latest_only), info(0, 0))).toBe(0);
    expect(q.pop()!.step).toBe(0);
    expect(q.pop()!.step).toBe(1);
    // A late chunk made for step 0: steps 0 and 1 are past.
    expect(q.merge(chunk(0, 4, 1, 100), aggregateMerge(AGGREGATE_FNS.latest_only), info(1, 0))).toBe(2);
    expect(q.peek(10).map((a) => [a.step, a.action[0]])).toEqual([
      [2, 102],
      [3, 103],
    ]);
    expect(q.pop()!.step).toBe(2);
    expect(q.pop()!.step).toBe(3);
    expect(q.pop()).toBeNull();
    expect(q.lastExecuted).toBe(3);
    expect(q.nextStep).toBe(4);
  });

  it('a user merge cannot put back past steps or duplicates', () => {
    const q = new TimedActionQueue();
    q.merge(chunk(0, 2, 0), aggregateMerge(AGGREGATE_FNS.latest_only), info(0, 0));
    q.pop();
    const sloppy: MergeFn = (queued, incoming) => [...incoming, ...queued, ...incoming];
    q.merge(chunk(0, 4, 1, 50), sloppy, info(1, 0));
    expect(q.peek(10).map((a) => a.step)).toEqual([1, 2, 3]);
  });

  it('reset forgets the queue and restarts the step count', () => {
    const q = new TimedActionQueue();
    q.merge(chunk(0, 2, 0), aggregateMerge(AGGREGATE_FNS.average), info(0, 0));
    q.pop();
    q.reset();
    expect(q.length).toBe(0);
    expect(q.lastExecuted).toBe(-1);
  });
});
