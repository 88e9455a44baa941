import fc from 'fast-check';

import { ControlRuntime, type RuntimeClock } from '../../../lib/serving/runtime';
import { FakeChunkPolicy, flush } from './fakeChunkPolicy';

/** Virtual time: the test drives ticks itself. */
function manualClock(): RuntimeClock & { t: number } {
  return { t: 0, now() { return this.t; }, setTimeout: () => null, clearTimeout: () => undefined };
}

interface Executed {
  step: number;
  action: Float32Array;
}

function robot(executed: Executed[]) {
  return {
    observe: () => ({ 'observation.state': [0, 0], task: 'x' }),
    act: (action: Float32Array, step: number) => executed.push({ step, action: Float32Array.from(action) }),
  };
}

describe('ControlRuntime with a scripted policy', () => {
  it('must_go: the first tick sends the observation; actions carry their steps', async () => {
    const policy = new FakeChunkPolicy(() => ({ latency: 2, rows: 8 }));
    const executed: Executed[] = [];
    const clock = manualClock();
    const rt = new ControlRuntime(policy, robot(executed), { clock, chunkSizeThreshold: 0.5 });
    rt.tick();
    expect(policy.requests).toBe(1);
    expect(policy.steps).toEqual([0]);
    expect(rt.requestInFlight).toBe(true);
    for (let i = 0; i < 4; i++) {
      policy.advance();
      await flush();
      rt.tick();
    }
    // Idle until the answer (3 ticks), then steps 0, 1.
    expect(executed.map((e) => e.step)).toEqual([0, 1]);
    expect(executed.every((e) => e.action[0] === e.step)).toBe(true);
    const s = rt.summary();
    expect(s.idleTicks).toBe(3);
    expect(s.byDecision).toEqual({ miss: 1 });
  });

  it('asks again once queue / chunk <= threshold, with the next queued actions as context', async () => {
    const contexts: number[] = [];
    const policy = new FakeChunkPolicy(() => ({ latency: 0, rows: 8 }));
    const original = policy.requestChunk.bind(policy);
    policy.requestChunk = (obs, options) => {
      contexts.push(options?.actionContext?.length ?? 0);
      return original(obs, options);
    };
    const rt = new ControlRuntime(policy, robot([]), { clock: manualClock(), chunkSizeThreshold: 0.5, actionContextSteps: 5 });
    rt.tick();
    policy.advance();
    await flush();
    // 8 queued: 8/8, 7/8, 6/8, 5/8 > 0.5; 4/8 asks.
    for (let i = 0; i < 4; i++) rt.tick();
    expect(policy.requests).toBe(2);
    expect(contexts).toEqual([0, 4]);
    expect(policy.steps).toEqual([0, 4]);
  });

  it('skips an observation whose state is within the tolerance unless must_go', async () => {
    const policy = new FakeChunkPolicy(() => ({ latency: 0, rows: 2 }));
    const rt = new ControlRuntime(policy, robot([]), { clock: manualClock(), chunkSizeThreshold: 1, stateTolerance: 0.5 });
    rt.tick(); // must_go
    policy.advance();
    await flush();
    rt.tick(); // queue 1 of 8: asks, but the state did not move
    expect(policy.requests).toBe(1);
    expect(rt.summary().skippedSimilar).toBe(1);
    rt.tick(); // empty again: must_go
    expect(policy.requests).toBe(2);
  });

  it('rejects bad options with coded errors', () => {
    const policy = new FakeChunkPolicy(() => ({ latency: 0, rows: 8 }));
    expect(() => new ControlRuntime(policy, robot([]), { chunkSizeThreshold: 2 })).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
    expect(() => new ControlRuntime(policy, robot([]), { fps: 0 })).toThrow(/fps/);
    expect(() => new ControlRuntime(policy, {} as never)).toThrow(/robot/);
  });
});

describe('ControlRuntime properties (random latency, decisions and resets)', () => {
  const script = fc.array(
    fc.record({ latency: fc.integer({ min: 0, max: 12 }), rows: fc.constantFrom(0, 3, 5, 8), resetAfter: fc.boolean() }),
    { minLength: 1, maxLength: 40 },
  );
  it('one action per tick while queued, never a step twice or a past step, must_go when empty, nothing from before a reset', async () => {
    await fc.assert(
      fc.asyncProperty(script, fc.integer({ min: 30, max: 120 }), fc.boolean(), fc.double({ min: 0, max: 1, noNaN: true }), async (answers, ticks, honourAbort, g) => {
        let i = 0;
        const resets = new Set<number>();
        const policy = new FakeChunkPolicy(() => {
          const a = answers[i++ % answers.length]!;
          if (a.resetAfter) resets.add(policy.requests);
          return a;
        }, honourAbort);
        const executed: Executed[] = [];
        const clock = manualClock();
        const rt = new ControlRuntime(policy, robot(executed), { clock, chunkSizeThreshold: g, aggregate: 'average' });
        let lastStep = -1;
        for (let t = 0; t < ticks; t++) {
          const queuedBefore = rt.queueLength;
          const before = executed.length;
          rt.tick();
          clock.t += 33;
          // Exactly one action when the queue held one, none otherwise.
          expect(executed.length - before).toBe(queuedBefore > 0 ? 1 : 0);
          if (executed.length > before) {
            const e = executed[executed.length - 1]!;
            expect(e.step).toBeGreaterThan(lastStep);
            expect(e.action[0]).toBeCloseTo(e.step, 5);
            // Only this episode's answers reach the robot.
            expect(e.action[1]).toBe(policy.episode);
            lastStep = e.step;
          }
          // must_go: an empty queue with nothing in flight always sends.
          if (rt.queueLength === 0) expect(rt.requestInFlight).toBe(true);
          policy.advance();
          await flush();
          if (resets.has(policy.requests) && t % 7 === 3) {
            resets.delete(policy.requests);
            policy.episode++;
            await rt.reset();
            lastStep = -1;
          }
        }
        const stopping = rt.stop();
        policy.drain();
        await stopping;
        // Answers that arrive after stop() are discarded too.
        expect(rt.records().requests.every((r) => r.outcome !== 'pending')).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
