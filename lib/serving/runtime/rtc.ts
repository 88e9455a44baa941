/**
 * Real-Time Chunking in the control runtime (docs/rtc.md). Two rules, both LeRobot's ActionQueue in
 * RTC mode with the delay *measured at the queue* (lerobot PR #4223: a delay estimated from latency
 * skipped most of the first chunk after the warm-up and stayed inflated by a running max):
 *
 * - the delay a request is guided with is the number of actions the robot executed while the
 *   previous request was in flight (0 for the first request of an episode), never a latency figure;
 * - an arriving chunk replaces the queue from the first unexecuted step: its actions for steps that
 *   executed while it was computed (exactly the consumed count, as the chunk starts at the step the
 *   observation was taken for) are dropped, the rest become the queue.
 */
import { argumentError } from '../../errors';
import { PREFIX_SCHEDULES, type PrefixSchedule } from '../../model/rtcSchedule';
import type { ChunkRtcRequest } from '../chunkPolicy';
import type { MergeFn } from './aggregate';

export interface RtcRuntimeOptions {
  /** Weight 0 from this action of the new chunk on (default 10, LeRobot's). */
  executionHorizon?: number;
  /** Prefix weight schedule (default 'linear'). */
  schedule?: PrefixSchedule;
  /** Clip of the guidance weight (default 10). */
  maxGuidanceWeight?: number;
  /** Velocity as a constant in the guidance: no backward pass (LeRobot's shipped computation). Default false. */
  stopGradient?: boolean;
}

export type RtcSettings = Omit<ChunkRtcRequest, 'leftover' | 'inferenceDelay'>;

export function resolveRtcRuntime(o: RtcRuntimeOptions | true): RtcSettings {
  const opts: RtcRuntimeOptions = o === true ? {} : o;
  if (typeof opts !== 'object' || opts === null) throw argumentError('ControlRuntime rtc', 'true or an object of RTC options', o);
  const executionHorizon = opts.executionHorizon ?? 10;
  if (!Number.isInteger(executionHorizon) || executionHorizon < 0) {
    throw argumentError('ControlRuntime rtc.executionHorizon', 'an integer >= 0', executionHorizon);
  }
  const schedule = opts.schedule ?? 'linear';
  if (!PREFIX_SCHEDULES.includes(schedule)) throw argumentError('ControlRuntime rtc.schedule', `one of ${PREFIX_SCHEDULES.join(', ')}`, schedule);
  const maxGuidanceWeight = opts.maxGuidanceWeight ?? 10;
  if (!(typeof maxGuidanceWeight === 'number' && Number.isFinite(maxGuidanceWeight) && maxGuidanceWeight > 0)) {
    throw argumentError('ControlRuntime rtc.maxGuidanceWeight', 'a finite number > 0', maxGuidanceWeight);
  }
  const stopGradient = opts.stopGradient ?? false;
  if (typeof stopGradient !== 'boolean') throw argumentError('ControlRuntime rtc.stopGradient', 'a boolean', stopGradient);
  return { executionHorizon, schedule, maxGuidanceWeight, stopGradient };
}

/**
 * The RTC merge: the incoming chunk replaces the queue from the first unexecuted step. An answer
 * without actions (a policy that did not sample) leaves the queue as it is.
 */
export const rtcMerge: MergeFn = (queued, incoming, info) =>
  incoming.length === 0 ? [...queued] : incoming.filter((a) => a.step > info.lastExecuted);
