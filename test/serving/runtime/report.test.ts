import { lineChartSvg } from '../../../lib/report/html';
import { similarityRange } from '../../../lib/serving/report';
import { formatRunTable, realtimeReportHtml, summarizeRun, type ReportRun, type RequestRecord, type TickRecord } from '../../../lib/serving/runtime';
import { scoreDetection } from '../../../lib/serving/sim/detection';

const tick = (t: number, step: number | null, request: number | null, v: number, queue: number): TickRecord => ({
  tick: t,
  at: t * 33,
  latenessMs: t % 3,
  step,
  action: step === null ? null : Float32Array.of(v, -v),
  request,
  queue,
  inFlight: false,
});

const request = (id: number, t: number, decision: RequestRecord['decision'], similarity: number | null, sceneChanged: boolean | null): RequestRecord => ({
  id,
  tick: t,
  step: 0,
  mustGo: false,
  sentAt: t * 33,
  receivedAt: t * 33 + 50,
  decision,
  similarity,
  sceneChanged,
  actions: 2,
  late: 0,
  computeMs: 50,
  firstActionMs: 66,
  outcome: 'merged',
  error: null,
});

describe('run summary, detection score and the real-time report', () => {
  const ticks = [tick(0, null, null, 0, 0), tick(1, 0, 0, 1, 1), tick(2, 1, 0, 1.5, 0), tick(3, 2, 1, 3.5, 0)];
  const requests = [request(0, 0, 'miss', null, null), request(1, 1, 'hit-refine', 0.9, false), request(2, 3, 'miss', 0.2, true)];

  it('summarises idle ticks, boundary jumps and decisions (hand-computed)', () => {
    const s = summarizeRun(ticks, requests, 0);
    expect(s).toMatchObject({ ticks: 4, idleTicks: 1, idlePercent: 25, executed: 3, byDecision: { miss: 2, 'hit-refine': 1 } });
    // 1 -> 1.5 within request 0, 1.5 -> 3.5 across the boundary to request 1.
    expect(s.boundaryJump).toBe(2);
    expect(s.maxJump).toBe(2);
    expect(s.firstActionMs.p50).toBe(66);
  });

  it('scores flagged changes against the ground truth', () => {
    const sceneAt = (t: number) => Math.floor(t / 10);
    const checks = [
      { tick: 2, flagged: false },
      { tick: 8, flagged: true }, // false hit
      { tick: 12, flagged: true }, // true change, 2 ticks after 10
      { tick: 25, flagged: false }, // missed change at 20
    ];
    expect(scoreDetection(checks, sceneAt, [10, 20], 5)).toEqual({
      changes: 2,
      detectedWithinK: 1,
      k: 5,
      checks: 4,
      truePositives: 1,
      falsePositives: 1,
      falseNegatives: 1,
      trueNegatives: 0,
    });
  });

  it('renders the report: tables, unique clip ids, a legend for scene-change lines', () => {
    const run: ReportRun = { label: 'async', summary: summarizeRun(ticks, requests, 0), detection: null, ticks, requests, observedAt: [1, 2, 4] };
    const html = realtimeReportHtml([run], { sceneChanges: [2], threshold: 0.5 });
    const ids = [...html.matchAll(/<clipPath id="([^"]+)">/g)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThan(2);
    expect(new Set(ids).size).toBe(ids.length);
    expect(html).toContain('true scene change');
    expect(html).toContain('Queue length over time');
    expect(formatRunTable([run]).some((l) => l.includes('idle ticks') && l.includes('25.0 %'))).toBe(true);
  });

  it('pads extents so edge points are inside the frame; the similarity axis has a margin around the threshold', () => {
    const svg = lineChartSvg([{ name: 's', points: [[0, 0], [10, 1]] }], { width: 400, height: 200 });
    const ys = [...svg.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => Number(m[1]));
    expect(Math.min(...ys)).toBeLessThanOrEqual(0);
    expect(similarityRange([0.8, 0.82, 0.5])).toEqual([0.45, 0.87].map((v) => expect.closeTo(v, 10)) as never);
  });
});
