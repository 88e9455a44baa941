/**
 * What a control runtime measured: per tick (executed step or idle, queue length, lateness) and per
 * request (decision, similarity, when it was sent, arrived and first acted on). `summarizeRun`
 * turns them into the figures of the real-time table: idle ticks %, observation→first-action
 * latency, requests by decision, the largest jump at chunk boundaries, tick lateness.
 */
import type { ChunkDecision } from '../chunkPolicy';

export interface TickRecord {
  tick: number;
  /** ms (runtime clock) when the tick ran. */
  at: number;
  /** How late the tick fired against its schedule, ms (0 for manually driven ticks). */
  latenessMs: number;
  /** The executed step, or null for an idle tick (empty queue). */
  step: number | null;
  /** The executed action (a copy), or null. */
  action: Float32Array | null;
  /** The request whose chunk the action came from, or null. */
  request: number | null;
  /** Queue length after the tick. */
  queue: number;
  /** A request was in flight after the tick. */
  inFlight: boolean;
}

export type RequestOutcome = 'pending' | 'merged' | 'discarded' | 'failed';

export interface RequestRecord {
  id: number;
  /** The tick after which the observation was taken. */
  tick: number;
  /** The control step the chunk's first action is for. */
  step: number;
  /** The queue was empty: the observation had to be processed. */
  mustGo: boolean;
  sentAt: number;
  receivedAt: number | null;
  decision: ChunkDecision | null;
  similarity: number | null;
  /** The policy flagged this observation as a new scene. */
  sceneChanged: boolean | null;
  /** Actions in the answer (0 for a skip). */
  actions: number;
  /** Incoming actions dropped because their step had already been executed. */
  late: number;
  computeMs: number | null;
  /** ms from sending to the first executed action of this chunk (null: none executed). */
  firstActionMs: number | null;
  outcome: RequestOutcome;
  error: string | null;
}

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface RunSummary {
  ticks: number;
  idleTicks: number;
  /** Idle ticks as a percentage of all ticks (0-100). */
  idlePercent: number;
  executed: number;
  requests: number;
  byDecision: Record<string, number>;
  /** Observations skipped because the joint state was within the tolerance of the last sent one. */
  skippedSimilar: number;
  discarded: number;
  failed: number;
  firstActionMs: Percentiles;
  /** Largest max-abs difference between consecutive executed actions where the source chunk changes. */
  boundaryJump: number;
  /** Largest such difference anywhere (for comparison). */
  maxJump: number;
  latenessMs: Percentiles;
}

/** Nearest-rank percentile of unsorted values; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function percentiles(values: readonly number[]): Percentiles {
  return { p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99) };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function summarizeRun(ticks: readonly TickRecord[], requests: readonly RequestRecord[], skippedSimilar: number): RunSummary {
  const idle = ticks.filter((t) => t.step === null).length;
  const byDecision: Record<string, number> = {};
  for (const r of requests) if (r.decision) byDecision[r.decision] = (byDecision[r.decision] ?? 0) + 1;
  let boundaryJump = 0;
  let maxJump = 0;
  let prev: TickRecord | null = null;
  for (const t of ticks) {
    if (!t.action) continue;
    if (prev?.action) {
      const d = maxAbsDiff(prev.action, t.action);
      maxJump = Math.max(maxJump, d);
      if (prev.request !== t.request) boundaryJump = Math.max(boundaryJump, d);
    }
    prev = t;
  }
  return {
    ticks: ticks.length,
    idleTicks: idle,
    idlePercent: ticks.length === 0 ? 0 : (100 * idle) / ticks.length,
    executed: ticks.length - idle,
    requests: requests.length,
    byDecision,
    skippedSimilar,
    discarded: requests.filter((r) => r.outcome === 'discarded').length,
    failed: requests.filter((r) => r.outcome === 'failed').length,
    firstActionMs: percentiles(requests.flatMap((r) => (r.firstActionMs === null ? [] : [r.firstActionMs]))),
    boundaryJump,
    maxJump,
    latenessMs: percentiles(ticks.map((t) => t.latenessMs)),
  };
}
