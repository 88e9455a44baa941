/**
 * The chunk seam, three ways, on the simulated robot (docs/rtc.md): the same policy drives the
 * asynchronous ControlRuntime with
 *
 * - **aggregation** — every request samples a full chunk, overlaps blended by `weighted_average`;
 * - **delta refinement** — the fork's async delta path (unchanged scene: one delta-expert step on the
 *   queued actions; changed scene or low queue: a full chunk), blended the same way;
 * - **RTC** — every request samples a chunk guided toward the queued leftover, with the delay
 *   measured at the queue, and replaces the queue (also with the stop-gradient guidance).
 *
 * Measured per run: the largest and the mean jump between consecutive executed actions where the
 * source chunk changes (max over action dimensions of |Δa|), the tracking error against the
 * simulator's moving target, idle ticks, requests and the compute per request.
 */
import type { AggregateName } from '../runtime/aggregate';
import { ControlRuntime } from '../runtime/controlRuntime';
import type { RequestRecord, TickRecord } from '../runtime/metrics';
import type { RtcRuntimeOptions } from '../runtime/rtc';
import { LocalChunkPolicy, type LocalPolicyLike } from '../localPolicy';
import { SimRobot, type SimRobotOptions } from './simRobot';

export const SEAM_MODES = ['aggregation', 'delta', 'rtc', 'rtc-stop-gradient'] as const;
export type SeamMode = (typeof SEAM_MODES)[number];

export interface SeamStats {
  /** Consecutive executed actions from different chunks. */
  seams: number;
  largestJump: number;
  meanJump: number;
  /** Mean |a_j - target_j| over executed ticks, j = the first two action dimensions against the target's (x, y). */
  trackingError: number;
  idlePercent: number;
  requests: number;
  /** Mean compute per answered request, ms (as measured where the work ran). */
  costMs: number;
}

export interface SeamRun {
  mode: SeamMode;
  label: string;
  stats: SeamStats;
  ticks: TickRecord[];
  requests: RequestRecord[];
}

export interface SeamCompareOptions {
  robot: SimRobotOptions;
  ticks: number;
  fps: number;
  chunkSizeThreshold: number;
  aggregate?: AggregateName;
  /** RTC settings of the two RTC runs (stopGradient is set per run). */
  rtc?: Omit<RtcRuntimeOptions, 'stopGradient'>;
  modes?: readonly SeamMode[];
}

const LABELS: Record<SeamMode, string> = {
  aggregation: 'aggregation (weighted_average)',
  delta: 'delta refinement',
  rtc: 'RTC (VJP guidance)',
  'rtc-stop-gradient': 'RTC (stop-gradient)',
};

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Seam, tracking and cost figures of one run's records. */
export function seamStats(ticks: readonly TickRecord[], requests: readonly RequestRecord[], targetAt: (tick: number) => { x: number; y: number }): SeamStats {
  const jumps: number[] = [];
  let prev: TickRecord | null = null;
  let tracking = 0;
  let executed = 0;
  for (const t of ticks) {
    if (!t.action) continue;
    if (prev?.action && prev.request !== t.request) jumps.push(maxAbsDiff(prev.action, t.action));
    const target = targetAt(t.tick);
    tracking += (Math.abs(t.action[0]! - target.x) + Math.abs((t.action[1] ?? target.y) - target.y)) / 2;
    executed++;
    prev = t;
  }
  const answered = requests.filter((r) => r.computeMs !== null);
  return {
    seams: jumps.length,
    largestJump: jumps.length === 0 ? 0 : Math.max(...jumps),
    meanJump: jumps.length === 0 ? 0 : jumps.reduce((a, b) => a + b, 0) / jumps.length,
    trackingError: executed === 0 ? 0 : tracking / executed,
    idlePercent: ticks.length === 0 ? 0 : (100 * (ticks.length - executed)) / ticks.length,
    requests: requests.length,
    costMs: answered.length === 0 ? 0 : answered.reduce((a, r) => a + r.computeMs!, 0) / answered.length,
  };
}

async function runMode(policy: LocalPolicyLike, mode: SeamMode, o: SeamCompareOptions): Promise<SeamRun> {
  policy.reset();
  const robot = new SimRobot(o.robot);
  // Aggregation samples on every request: a hit with at most a chunk queued is refilled anyway.
  const local = new LocalChunkPolicy(policy, { fps: o.fps, ...(mode === 'aggregation' ? { refillAt: policy.config.chunkSize } : {}) });
  const rtc = mode === 'rtc' || mode === 'rtc-stop-gradient' ? { ...(o.rtc ?? {}), stopGradient: mode === 'rtc-stop-gradient' } : undefined;
  const runtime = new ControlRuntime(local, robot, {
    fps: o.fps,
    chunkSizeThreshold: o.chunkSizeThreshold,
    ...(rtc ? { rtc } : { aggregate: o.aggregate ?? 'weighted_average' }),
    ...(mode === 'aggregation' ? { actionContextSteps: 0 } : {}),
  });
  try {
    await runtime.run(o.ticks);
  } finally {
    await local.dispose();
  }
  const { ticks, requests } = runtime.records();
  return { mode, label: LABELS[mode], stats: seamStats(ticks, requests, (t) => robot.targetAt(t)), ticks, requests };
}

/** Runs each mode for `ticks` ticks on a fresh simulated robot with the same seed. */
export async function compareSeams(policy: LocalPolicyLike, o: SeamCompareOptions): Promise<SeamRun[]> {
  const runs: SeamRun[] = [];
  for (const mode of o.modes ?? SEAM_MODES) runs.push(await runMode(policy, mode, o));
  return runs;
}

/** Rows: header, then one row per figure with one cell per run. */
export function seamTableRows(runs: readonly SeamRun[]): string[][] {
  const cell = (f: (s: SeamStats) => string) => runs.map((r) => f(r.stats));
  return [
    ['', ...runs.map((r) => r.label)],
    ['largest seam jump (max |Δa|)', ...cell((s) => s.largestJump.toFixed(3))],
    ['mean seam jump', ...cell((s) => s.meanJump.toFixed(3))],
    ['seams', ...cell((s) => String(s.seams))],
    ['tracking error vs target', ...cell((s) => s.trackingError.toFixed(3))],
    ['idle ticks', ...cell((s) => `${s.idlePercent.toFixed(1)} %`)],
    ['requests', ...cell((s) => String(s.requests))],
    ['compute per request', ...cell((s) => `${s.costMs.toFixed(1)} ms`)],
  ];
}

export function formatSeamTable(runs: readonly SeamRun[]): string[] {
  const rows = seamTableRows(runs);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}
