/**
 * The chunk-seam figures (hand-computed records) and the RTC mode end to end: a tiny SmolVLA on the
 * simulated robot through ControlRuntime({ rtc }) and LocalChunkPolicy, guided chunks merged by
 * replacement, the measured delay carried by the next request.
 */
import { SmolVLAPolicy } from '../../../lib/policy';
import { compareSeams, seamStats, seamTableRows, type RequestRecord, type TickRecord } from '../../../lib/serving';
import { byteTokenizer } from '../../../lib/train/byteTokenizer';
import { tinyConfig, TINY_CAMERA } from '../../../lib/train/presets';

const tick = (t: number, action: number[] | null, request: number | null): TickRecord => ({
  tick: t,
  at: t,
  latenessMs: 0,
  step: action ? t : null,
  action: action ? Float32Array.from(action) : null,
  request,
  queue: 0,
  inFlight: false,
});

describe('seamStats', () => {
  it('counts jumps only where the source chunk changes, and tracks against the target', () => {
    const ticks = [tick(0, [0, 0], 0), tick(1, [0.1, 0], 0), tick(2, null, null), tick(3, [0.6, 0.2], 1), tick(4, [0.6, 0.1], 1), tick(5, [0.5, 0.1], 2)];
    const requests = [{ computeMs: 10 }, { computeMs: 30 }, { computeMs: null }] as RequestRecord[];
    const s = seamStats(ticks, requests, () => ({ x: 0.5, y: 0 }));
    // Seams: 1 -> 3 (max |Δa| 0.5) and 4 -> 5 (0.1); the idle tick does not break the pair.
    expect(s.seams).toBe(2);
    expect(s.largestJump).toBeCloseTo(0.5, 6);
    expect(s.meanJump).toBeCloseTo(0.3, 6);
    expect(s.idlePercent).toBeCloseTo(100 / 6, 6);
    expect(s.costMs).toBe(20);
    // Mean over executed ticks of (|a0 - 0.5| + |a1 - 0|) / 2.
    expect(s.trackingError).toBeCloseTo((0.5 + 0.4 + 0.3 + 0.2 + 0.1) / 2 / 5, 6);
  });
});

describe('RTC mode with a tiny SmolVLA on the simulated robot', () => {
  it('samples guided chunks, replaces the queue and carries the measured delay', async () => {
    const policy = await SmolVLAPolicy.create(tinyConfig(), { seed: 3, tokenizer: byteTokenizer() });
    const runs = await compareSeams(policy, {
      robot: { camera: TINY_CAMERA, sceneEvery: 30, seed: 3 },
      ticks: 45,
      fps: 30,
      chunkSizeThreshold: 0.5,
      modes: ['rtc', 'aggregation'],
    });
    const [rtc, aggregation] = runs;
    const merged = rtc!.requests.filter((r) => r.outcome === 'merged');
    expect(merged.length).toBeGreaterThanOrEqual(2);
    expect(merged.every((r) => r.decision === 'miss')).toBe(true);
    expect(rtc!.requests[0]!.inferenceDelay).toBe(0);
    // Every later request is guided with the consumption measured on the one before it.
    for (let i = 1; i < merged.length; i++) expect(merged[i]!.inferenceDelay).toBe(merged[i - 1]!.consumed);
    // Replacement: after a merge, executed actions come from the newest merged chunk only.
    const executed = rtc!.ticks.filter((t) => t.action);
    for (let i = 1; i < executed.length; i++) expect(executed[i]!.request!).toBeGreaterThanOrEqual(executed[i - 1]!.request!);
    expect(aggregation!.requests.every((r) => r.inferenceDelay === null)).toBe(true);
    expect(seamTableRows(runs)[0]).toEqual(['', 'RTC (VJP guidance)', 'aggregation (weighted_average)']);
  });
});
