/**
 * Real-Time Chunking (Black, Galliker, Levine 2025) options for guided sampling: the new chunk is
 * inpainted so that its first actions agree with the leftover of the chunk still executing. Off
 * unless `sample(..., { rtc })` is given. The formulas are in native/model/rtc.h and docs/rtc.md.
 */
import { argumentError } from '../errors';
import { native, type NativeRtcOptions } from '../native';
import type { Tensor } from '../tensor';
import { PREFIX_SCHEDULES, type PrefixSchedule } from './rtcSchedule';

export { PREFIX_SCHEDULES, type PrefixSchedule };

export interface RtcOptions {
  /**
   * (B, n, a) model-space (normalised) actions of the previous chunk that have not been executed
   * when the request starts, n <= chunk_size, a <= max_action_dim (zero-padded to the model's width).
   */
  leftover: Tensor;
  /** Actions that will execute while this chunk is computed (weight 1). Measure it; never guess. */
  inferenceDelay: number;
  /** Weight 0 from this action on (clamped to the leftover's length). Default 10 (LeRobot's). */
  executionHorizon?: number;
  /** Default 'linear' (LeRobot's default). */
  schedule?: PrefixSchedule;
  /** Clip of the guidance weight min(c/r², max). Default 10 (LeRobot's value for 10 Euler steps). */
  maxGuidanceWeight?: number;
  /**
   * true: treat the velocity as a constant in the guidance (no backward pass; what LeRobot's shipped
   * code computes). Default false: the paper's vector-Jacobian product through the expert.
   */
  stopGradient?: boolean;
}

function nonNegativeInteger(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw argumentError(name, 'a non-negative integer', v);
  return v;
}

/** Validated options with defaults, as the native call takes them. */
export function resolveRtcOptions(o: RtcOptions): NativeRtcOptions {
  if (typeof o !== 'object' || o === null) throw argumentError('rtc', 'an object with a leftover tensor', o);
  const schedule = o.schedule ?? 'linear';
  if (!PREFIX_SCHEDULES.includes(schedule)) throw argumentError('rtc.schedule', `one of ${PREFIX_SCHEDULES.join(', ')}`, schedule);
  const maxGuidanceWeight = o.maxGuidanceWeight ?? 10;
  if (typeof maxGuidanceWeight !== 'number' || !Number.isFinite(maxGuidanceWeight) || maxGuidanceWeight <= 0) {
    throw argumentError('rtc.maxGuidanceWeight', 'a finite number > 0', maxGuidanceWeight);
  }
  const stopGradient = o.stopGradient ?? false;
  if (typeof stopGradient !== 'boolean') throw argumentError('rtc.stopGradient', 'a boolean', stopGradient);
  return {
    leftover: o.leftover.handle,
    inferenceDelay: nonNegativeInteger('rtc.inferenceDelay', o.inferenceDelay),
    executionHorizon: nonNegativeInteger('rtc.executionHorizon', o.executionHorizon ?? 10),
    schedule,
    maxGuidanceWeight,
    stopGradient,
  };
}

/** LeRobot's prefix weights over a chunk of `chunk` actions for `delay` and `horizon`. */
export function rtcPrefixWeights(schedule: PrefixSchedule, delay: number, horizon: number, chunk: number): number[] {
  return native.rtcPrefixWeights(schedule, delay, horizon, chunk);
}

/** The clipped guidance weight min(c/r², max) at SmolVLA flow time t (1 = noise, 0 = actions). */
export function rtcGuidanceWeight(t: number, maxGuidanceWeight: number): number {
  return native.rtcGuidanceWeight(t, maxGuidanceWeight);
}
