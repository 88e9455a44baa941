/**
 * How an arriving chunk is merged into the queue of timed actions (LeRobot's async inference
 * `aggregate_fn`, the published fork's weights). The merge is pluggable at two levels:
 *
 * - an `AggregateFn(old, incoming)` combines the two actions queued for the same control step;
 * - a `MergeFn(queued, incoming, info)` decides the whole new queue (e.g. real-time chunking's
 *   "replace everything from the first unexecuted step"). `aggregateMerge(fn)` is the default one.
 *
 * Whatever a merge returns, the queue enforces its invariants afterwards (strictly increasing
 * steps, nothing at or before the last executed step): see TimedActionQueue.merge.
 */
import { argumentError } from '../../errors';
import type { ChunkDecision } from '../chunkPolicy';

/** One action meant for one control step (robot space, actionDim values). */
export interface TimedAction {
  /** The control step this action is for (0 = the first executed action after start/reset). */
  step: number;
  action: Float32Array;
  /** The request whose chunk produced (or last aggregated into) this action. */
  request: number;
}

/** Combines the action already queued for a step with the incoming one for the same step. */
export type AggregateFn = (old: Float32Array, incoming: Float32Array) => Float32Array;

export const AGGREGATE_NAMES = ['weighted_average', 'latest_only', 'average', 'conservative'] as const;
export type AggregateName = (typeof AGGREGATE_NAMES)[number];

function blend(wOld: number, wNew: number): AggregateFn {
  return (old, incoming) => {
    if (old.length !== incoming.length) throw argumentError('aggregate: incoming action', `${old.length} values like the queued one`, incoming);
    const out = new Float32Array(old.length);
    for (let i = 0; i < old.length; i++) out[i] = wOld * old[i]! + wNew * incoming[i]!;
    return out;
  };
}

/** LeRobot's and the fork's aggregate functions (old = already queued, incoming = the new chunk's). */
export const AGGREGATE_FNS: Readonly<Record<AggregateName, AggregateFn>> = {
  weighted_average: blend(0.3, 0.7),
  latest_only: (_old, incoming) => Float32Array.from(incoming),
  average: blend(0.5, 0.5),
  conservative: blend(0.7, 0.3),
};

export function resolveAggregate(value: AggregateName | AggregateFn): AggregateFn {
  if (typeof value === 'function') return value;
  const fn = (AGGREGATE_FNS as Record<string, AggregateFn | undefined>)[value];
  if (!fn) throw argumentError('aggregate', `one of ${AGGREGATE_NAMES.join(', ')} or a function (old, incoming) => action`, value);
  return fn;
}

/** What a merge knows besides the two action lists. */
export interface MergeInfo {
  /** The last executed control step (-1 before the first action). */
  lastExecuted: number;
  /** The step the incoming chunk's first action is for (the observation's step). */
  chunkStart: number;
  decision: ChunkDecision;
  request: number;
}

/** Returns the new queue from the queued actions (oldest first) and the incoming chunk's actions. */
export type MergeFn = (queued: readonly TimedAction[], incoming: readonly TimedAction[], info: MergeInfo) => TimedAction[];

/**
 * The default merge: incoming actions for executed steps are dropped, those for already queued
 * steps are combined with `fn(old, incoming)`, the others are added; queued steps the chunk does
 * not cover stay (unlike LeRobot's client, which drops them; a skip/refine of a shorter context
 * must not shorten the queue).
 */
export function aggregateMerge(fn: AggregateFn): MergeFn {
  return (queued, incoming, info) => {
    const byStep = new Map<number, TimedAction>();
    for (const a of queued) byStep.set(a.step, a);
    for (const a of incoming) {
      if (a.step <= info.lastExecuted) continue;
      const old = byStep.get(a.step);
      byStep.set(a.step, old ? { step: a.step, action: fn(old.action, a.action), request: a.request } : a);
    }
    return [...byStep.values()].sort((x, y) => x.step - y.step);
  };
}
