/**
 * ControlRuntime: a robot control loop that never waits for the policy (LeRobot's async inference,
 * the published fork's async delta inference, in one Node process where the event loop is the
 * control loop).
 *
 * Every tick (at `fps`) hands the robot exactly one action while the queue holds one; each action
 * carries the control step it is for. After the tick, when `queue / actionsPerChunk ≤
 * chunkSizeThreshold` and no request is in flight, the current observation goes to the ChunkPolicy
 * (must_go when the queue is empty: always sent; otherwise an observation whose joint state is within
 * `stateTolerance` of the last sent one may be skipped, LeRobot's `observations_similar`). With
 * `actionContextSteps > 0` the next queued actions travel with it for delta refinement. The answer is
 * merged when it arrives: actions for executed steps are dropped, overlapping steps combined by the
 * merge (aggregate_fn), the rest appended. reset()/stop() discard answers to earlier requests.
 *
 * Inference runs off the event loop (native work on the libuv pool, or another process), so ticks
 * keep firing while a chunk is computed.
 */
import { argumentError, SmolVLAError } from '../../errors';
import type { RobotObservation } from '../../policy/inputs';
import type { ChunkPolicy, ChunkResult } from '../chunkPolicy';
import { RingBuffer } from '../stats';
import { aggregateMerge, resolveAggregate, type AggregateFn, type AggregateName, type MergeFn, type TimedAction } from './aggregate';
import { TimedActionQueue } from './actionQueue';
import { summarizeRun, type RequestRecord, type RunSummary, type TickRecord } from './metrics';

/** The robot side: where observations come from and actions go. Called on the event loop. */
export interface RuntimeRobot {
  /** The current observation (cheap: conversion and resizing happen in the policy, off the loop). */
  observe(): RobotObservation;
  /** Executes one action (robot space) meant for control step `step`. */
  act(action: Float32Array, step: number): void;
  /** A tick with nothing queued (the robot holds still). */
  idle?(tick: number): void;
}

/** Time source and timers (injectable for tests). */
export interface RuntimeClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: RuntimeClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface ControlRuntimeOptions {
  /** Control rate (default 30). */
  fps?: number;
  /** Actions per chunk for the threshold rule (default policy.info.chunkSize). */
  actionsPerChunk?: number;
  /** LeRobot's g: request when queue / actionsPerChunk ≤ this (default 0.5; 0 = only when empty). */
  chunkSizeThreshold?: number;
  /** How overlapping steps combine (default 'weighted_average'). Ignored when `merge` is given. */
  aggregate?: AggregateName | AggregateFn;
  /** Replaces the whole merge (e.g. real-time chunking); the queue's invariants are enforced after it. */
  merge?: MergeFn;
  /** Queued actions sent as action_context for delta refinement (default 5; 0 sends none). */
  actionContextSteps?: number;
  /** Skip an observation (unless must_go) whose state is within this L2 distance of the last sent one (default null: never). */
  stateTolerance?: number | null;
  /** Tick and request records kept for the summary (default 100000 each). */
  historySize?: number;
  clock?: RuntimeClock;
  /** A request failed (the runtime goes on; the next tick may ask again). Default: records it only. */
  onError?: (err: Error) => void;
}

function stateOf(obs: RobotObservation): Float32Array | null {
  const v = obs['observation.state'] ?? obs['obs.state'];
  if (v === undefined) return null;
  if (v instanceof Float32Array || v instanceof Float64Array || Array.isArray(v)) return Float32Array.from(v as ArrayLike<number>);
  const s = v as { data: ArrayLike<number>; shape: readonly number[] };
  const dim = s.shape[s.shape.length - 1] ?? s.data.length;
  return Float32Array.from(Array.prototype.slice.call(s.data, s.data.length - dim) as number[]);
}

function distance(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}

function checkNumber(name: string, v: number, min: number, integer: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw argumentError(`ControlRuntime ${name}`, `${integer ? 'an integer' : 'a number'} >= ${min}`, v);
  }
  return v;
}

export class ControlRuntime {
  readonly policy: ChunkPolicy;
  readonly robot: RuntimeRobot;
  readonly fps: number;
  readonly periodMs: number;
  readonly actionsPerChunk: number;
  readonly chunkSizeThreshold: number;
  readonly actionContextSteps: number;
  readonly stateTolerance: number | null;
  private readonly mergeFn: MergeFn;
  private readonly clock: RuntimeClock;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly queue = new TimedActionQueue();
  private readonly ticks: RingBuffer<TickRecord>;
  private readonly requests: RingBuffer<RequestRecord>;
  private tickCount = 0;
  private requestCount = 0;
  private skippedSimilar = 0;
  private generation = 0;
  private inFlight: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private lastSentState: Float32Array | null = null;
  /** Requests whose first executed action is not yet recorded. */
  private awaitingFirst = new Map<number, RequestRecord>();
  private timer: unknown = null;
  private running = false;
  private tickLimit: { at: number; done: () => void } | null = null;
  private resetting = 0;

  constructor(policy: ChunkPolicy, robot: RuntimeRobot, options: ControlRuntimeOptions = {}) {
    if (typeof policy?.requestChunk !== 'function') throw argumentError('ControlRuntime policy', 'a ChunkPolicy', policy);
    if (typeof robot?.observe !== 'function' || typeof robot.act !== 'function') {
      throw argumentError('ControlRuntime robot', 'an object with observe() and act(action, step)', robot);
    }
    this.policy = policy;
    this.robot = robot;
    this.fps = checkNumber('fps', options.fps ?? 30, Number.MIN_VALUE, false);
    this.periodMs = 1000 / this.fps;
    this.actionsPerChunk = checkNumber('actionsPerChunk', options.actionsPerChunk ?? policy.info.chunkSize, 1, true);
    this.chunkSizeThreshold = checkNumber('chunkSizeThreshold', options.chunkSizeThreshold ?? 0.5, 0, false);
    if (this.chunkSizeThreshold > 1) throw argumentError('ControlRuntime chunkSizeThreshold', 'a number in [0, 1]', this.chunkSizeThreshold);
    this.actionContextSteps = checkNumber('actionContextSteps', options.actionContextSteps ?? 5, 0, true);
    const tol = options.stateTolerance ?? null;
    this.stateTolerance = tol === null ? null : checkNumber('stateTolerance', tol, 0, false);
    this.mergeFn = options.merge ?? aggregateMerge(resolveAggregate(options.aggregate ?? 'weighted_average'));
    this.clock = options.clock ?? systemClock;
    this.onError = options.onError;
    const history = checkNumber('historySize', options.historySize ?? 100000, 1, true);
    this.ticks = new RingBuffer(history);
    this.requests = new RingBuffer(history);
  }

  /** Actions queued now. */
  get queueLength(): number {
    return this.queue.length;
  }

  /** The last executed control step (-1 before the first action of the episode). */
  get lastExecutedStep(): number {
    return this.queue.lastExecuted;
  }

  get requestInFlight(): boolean {
    return this.inFlight !== null;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** The queued actions, oldest first (copies of the list). */
  queuedActions(): TimedAction[] {
    return this.queue.peek(this.queue.length);
  }

  /** Starts ticking at `fps` on the event loop (the first tick runs now). */
  start(): void {
    if (this.running) throw new SmolVLAError('ERR_SMOLVLA', 'ControlRuntime.start: already running');
    this.running = true;
    this.schedule(this.clock.now());
  }

  /** Runs `ticks` ticks at `fps`, then stops (waiting for the request in flight, whose answer is discarded). */
  async run(ticks: number): Promise<RunSummary> {
    checkNumber('run ticks', ticks, 1, true);
    const target = this.tickCount + ticks;
    await new Promise<void>((resolve) => {
      this.tickLimit = { at: target, done: resolve };
      this.start();
    });
    await this.stop();
    return this.summary();
  }

  /**
   * Stops ticking; the request in flight is cancelled and its answer discarded (awaited, so no work
   * of this runtime is left running). The queue stays; start() resumes from it.
   */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.discardInFlight();
  }

  /** A new episode: stops answers of earlier requests from reaching the robot, clears the queue and the policy's scene state. */
  async reset(): Promise<void> {
    // No request until the policy has forgotten the old scene (ticks keep firing, idle).
    this.resetting++;
    try {
      // The answer in flight is not awaited: the generation check discards it whenever it comes.
      void this.discardInFlight();
      this.queue.reset();
      this.lastSentState = null;
      this.awaitingFirst.clear();
      await this.policy.reset();
    } finally {
      this.resetting--;
    }
  }

  /**
   * One control tick (the timer calls this; tests may drive it directly): execute the next queued
   * action or idle, then maybe send the observation. `latenessMs` is how late the timer fired.
   */
  tick(latenessMs = 0): void {
    const tick = this.tickCount++;
    const at = this.clock.now();
    const next = this.queue.pop();
    if (next) {
      const first = this.awaitingFirst.get(next.request);
      if (first) {
        first.firstActionMs = at - first.sentAt;
        this.awaitingFirst.delete(next.request);
      }
      this.guard(() => this.robot.act(next.action, next.step));
    } else {
      this.guard(() => this.robot.idle?.(tick));
    }
    this.maybeRequest(tick);
    this.ticks.push({
      tick,
      at,
      latenessMs,
      step: next?.step ?? null,
      action: next ? Float32Array.from(next.action) : null,
      request: next?.request ?? null,
      queue: this.queue.length,
      inFlight: this.inFlight !== null,
    });
    if (this.tickLimit && this.tickCount >= this.tickLimit.at) {
      const { done } = this.tickLimit;
      this.tickLimit = null;
      this.running = false;
      done();
    }
  }

  /** Ticks and requests recorded (oldest first, within historySize). */
  records(): { ticks: TickRecord[]; requests: RequestRecord[] } {
    return { ticks: this.ticks.toArray(), requests: this.requests.toArray() };
  }

  summary(): RunSummary {
    return summarizeRun(this.ticks.toArray(), this.requests.toArray(), this.skippedSimilar);
  }

  private schedule(at: number): void {
    const delay = Math.max(0, at - this.clock.now());
    this.timer = this.clock.setTimeout(() => this.fire(at), delay);
  }

  private fire(scheduled: number): void {
    this.timer = null;
    if (!this.running) return;
    const now = this.clock.now();
    this.tick(Math.max(0, now - scheduled));
    if (!this.running) return;
    // A tick more than a period late does not burst to catch up: the schedule restarts from now.
    const next = scheduled + this.periodMs;
    this.schedule(now - next > this.periodMs ? now : next);
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.report(err);
    }
  }

  private report(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.onError) this.onError(e);
  }

  private maybeRequest(tick: number): void {
    if (this.inFlight || this.resetting > 0) return;
    const size = this.queue.length;
    const mustGo = size === 0;
    if (!mustGo && size / this.actionsPerChunk > this.chunkSizeThreshold) return;
    let observation: RobotObservation;
    try {
      observation = this.robot.observe();
    } catch (err) {
      this.report(err);
      return;
    }
    const state = stateOf(observation);
    if (!mustGo && this.stateTolerance !== null && state && this.lastSentState && distance(state, this.lastSentState) <= this.stateTolerance) {
      this.skippedSimilar++;
      return;
    }
    this.lastSentState = state;
    const step = this.queue.lastExecuted + 1;
    const context = this.actionContextSteps > 0 ? this.queue.peek(this.actionContextSteps).map((a) => a.action) : [];
    const record: RequestRecord = {
      id: this.requestCount++,
      tick,
      step,
      mustGo,
      sentAt: this.clock.now(),
      receivedAt: null,
      decision: null,
      similarity: null,
      sceneChanged: null,
      actions: 0,
      late: 0,
      computeMs: null,
      firstActionMs: null,
      outcome: 'pending',
      error: null,
    };
    this.requests.push(record);
    const generation = this.generation;
    const abort = new AbortController();
    this.abort = abort;
    const options = { signal: abort.signal, step, queued: size, ...(context.length > 0 ? { actionContext: context } : {}) };
    let request: Promise<ChunkResult>;
    try {
      request = this.policy.requestChunk(observation, options);
    } catch (err) {
      request = Promise.reject(err);
    }
    const settled = request.then(
      (result) => this.arrive(record, result, generation),
      (err: unknown) => {
        record.receivedAt = this.clock.now();
        if (generation !== this.generation) {
          record.outcome = 'discarded';
          return;
        }
        record.outcome = 'failed';
        record.error = err instanceof Error ? err.message : String(err);
        this.report(err);
      },
    ).finally(() => {
      if (this.inFlight === settled) {
        this.inFlight = null;
        this.abort = null;
      }
    });
    this.inFlight = settled;
  }

  private arrive(record: RequestRecord, result: ChunkResult, generation: number): void {
    record.receivedAt = this.clock.now();
    record.decision = result.decision;
    record.similarity = result.similarity;
    record.sceneChanged = result.sceneChanged ?? null;
    record.computeMs = result.computeMs;
    record.actions = result.chunk;
    if (generation !== this.generation) {
      record.outcome = 'discarded';
      return;
    }
    const dim = result.actionDim;
    if (result.actions.length !== result.chunk * dim) {
      record.outcome = 'failed';
      record.error = `the policy answered ${result.actions.length} values for ${result.chunk} x ${dim} actions`;
      this.report(new SmolVLAError('ERR_SMOLVLA', `ControlRuntime: ${record.error}`));
      return;
    }
    const incoming: TimedAction[] = Array.from({ length: result.chunk }, (_, k) => ({
      step: record.step + k,
      action: result.actions.slice(k * dim, (k + 1) * dim),
      request: record.id,
    }));
    record.late = this.queue.merge(incoming, this.mergeFn, { chunkStart: record.step, decision: result.decision, request: record.id });
    record.outcome = 'merged';
    if (result.chunk > record.late) this.awaitingFirst.set(record.id, record);
  }

  private async discardInFlight(): Promise<void> {
    this.generation++;
    this.abort?.abort(new SmolVLAError('ERR_SMOLVLA_ABORTED', 'ControlRuntime: reset or stopped'));
    const pending = this.inFlight;
    this.inFlight = null;
    this.abort = null;
    await pending;
  }
}
