/**
 * The control runtime's RTC mode with a scripted policy: the delay is the count of actions executed
 * while the previous request was in flight (0 first, measured at the queue, whatever the latency),
 * the leftover is the queue at request time, and answers replace the queue from the first
 * unexecuted step (LeRobot's ActionQueue in RTC mode).
 */
import type { ChunkRequestOptions } from '../../../lib/serving/chunkPolicy';
import { ControlRuntime, rtcMerge, type RuntimeClock, type TimedAction } from '../../../lib/serving/runtime';
import { FakeChunkPolicy, flush } from './fakeChunkPolicy';

function manualClock(): RuntimeClock {
  return { now: () => 0, setTimeout: () => null, clearTimeout: () => undefined };
}

const act = (step: number, request: number): TimedAction => ({ step, action: Float32Array.of(step), request });

describe('rtcMerge', () => {
  it('replaces the queue from the first unexecuted step and drops the chunk’s executed steps', () => {
    const queued = [act(5, 0), act(6, 0), act(7, 0), act(8, 0)];
    const incoming = [act(3, 1), act(4, 1), act(5, 1), act(6, 1), act(7, 1), act(8, 1), act(9, 1), act(10, 1)];
    const merged = rtcMerge(queued, incoming, { lastExecuted: 4, chunkStart: 3, decision: 'miss', request: 1 });
    expect(merged.map((a) => [a.step, a.request])).toEqual([5, 6, 7, 8, 9, 10].map((s) => [s, 1]));
  });

  it('keeps the queue when the answer has no actions', () => {
    const queued = [act(5, 0), act(6, 0)];
    expect(rtcMerge(queued, [], { lastExecuted: 4, chunkStart: 5, decision: 'hit-skip', request: 1 })).toEqual(queued);
  });
});

describe('ControlRuntime in RTC mode', () => {
  function setup(latencies: number[]) {
    let k = 0;
    const policy = new FakeChunkPolicy(() => ({ latency: latencies[Math.min(k++, latencies.length - 1)]!, rows: 8 }));
    const seen: ChunkRequestOptions[] = [];
    const original = policy.requestChunk.bind(policy);
    policy.requestChunk = (obs, options) => {
      seen.push(options ?? {});
      return original(obs, options);
    };
    const executed: Array<{ step: number; request: number }> = [];
    const robot = {
      observe: () => ({ 'observation.state': [0, 0], task: 'x' }),
      act: (a: Float32Array, step: number) => executed.push({ step, request: a[2]! }),
    };
    const rt = new ControlRuntime(policy, robot, { clock: manualClock(), chunkSizeThreshold: 0.5, actionContextSteps: 5, rtc: { schedule: 'exp' } });
    const tick = async () => {
      policy.advance();
      await flush();
      rt.tick();
    };
    return { policy, seen, executed, rt, tick };
  }

  it('guides with the measured consumption of the previous request, never the latency', async () => {
    // The first answer takes 6 ticks (a warm-up); the robot stands still meanwhile: nothing is consumed.
    const { policy, seen, executed, rt, tick } = setup([6, 2, 3]);
    rt.tick();
    expect(seen[0]!.rtc).toMatchObject({ inferenceDelay: 0, leftover: [], schedule: 'exp', executionHorizon: 10, maxGuidanceWeight: 10, stopGradient: false });
    expect(seen[0]!.actionContext).toBeUndefined();
    for (let i = 0; i < 7; i++) await tick();
    // Warm-up answer merged whole (consumed 0): steps 0.. execute from request 0.
    const first = rt.records().requests[0]!;
    expect(first.consumed).toBe(0);
    expect(first.late).toBe(0);
    expect(executed[0]).toEqual({ step: 0, request: 0 });
    // The second request went out at queue 4/8 with the 4 queued actions as leftover and delay 0.
    while (policy.requests < 2) await tick();
    const second = seen[1]!;
    expect(second.rtc!.inferenceDelay).toBe(0);
    expect(second.rtc!.leftover.map((a) => a[0])).toEqual([4, 5, 6, 7]);
    expect(second.actionContext).toBeUndefined();
    while (rt.records().requests[1]!.outcome !== 'merged') await tick();
    const r1 = rt.records().requests[1]!;
    // Latency 2 advances: the robot executed 3 steps before the answer was merged.
    expect(r1.consumed).toBe(r1.late);
    expect(r1.consumed).toBeGreaterThan(0);
    // Replaced from the first unexecuted step: everything queued now comes from request 1.
    expect(rt.queuedActions().every((a) => a.request === 1)).toBe(true);
    expect(rt.queuedActions()[0]!.step).toBe(rt.lastExecutedStep + 1);
    while (policy.requests < 3) await tick();
    expect(seen[2]!.rtc!.inferenceDelay).toBe(r1.consumed);
    expect(rt.records().requests[2]!.inferenceDelay).toBe(r1.consumed);
    // No step executed twice, none skipped.
    const steps = executed.map((e) => e.step);
    expect(steps).toEqual(steps.map((_, i) => i));
  });

  it('starts every episode at delay 0', async () => {
    const { policy, seen, rt, tick } = setup([2]);
    rt.tick();
    for (let i = 0; i < 12; i++) await tick();
    expect(seen.some((o) => (o.rtc?.inferenceDelay ?? 0) > 0)).toBe(true);
    await rt.reset();
    const before = policy.requests;
    rt.tick();
    expect(policy.requests).toBe(before + 1);
    expect(seen[seen.length - 1]!.rtc).toMatchObject({ inferenceDelay: 0, leftover: [] });
  });

  it('rejects a custom merge or bad RTC options with coded errors', () => {
    const policy = new FakeChunkPolicy(() => ({ latency: 0, rows: 8 }));
    const robot = { observe: () => ({}), act: () => undefined };
    expect(() => new ControlRuntime(policy, robot, { rtc: true, merge: (q) => [...q] })).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
    expect(() => new ControlRuntime(policy, robot, { rtc: { schedule: 'cosine' as never } })).toThrow(/schedule/);
    expect(() => new ControlRuntime(policy, robot, { rtc: { executionHorizon: -1 } })).toThrow(/executionHorizon/);
    expect(() => new ControlRuntime(policy, robot, { rtc: { maxGuidanceWeight: 0 } })).toThrow(/maxGuidanceWeight/);
  });
});
