/**
 * A simulated robot for the real-time runtime's demo, tests and benchmark: a table-top camera (the
 * demo's synthetic scene of coloured blocks) whose scene changes every `sceneEvery` ticks, with a
 * small target moving across it, and joints that follow the commanded actions (first order). It
 * counts ticks itself (one `act` or `idle` per tick), so the ground truth of "which scene was
 * observed" is known for every observation.
 */
import type { RobotObservation } from '../../policy/inputs';
import type { RuntimeRobot } from '../runtime/controlRuntime';
import { sceneCamera, sceneTarget, type SceneCamera } from '../../data/scene';
import { SmolVLAError } from '../../errors';

export interface SimRobotOptions {
  /** Camera key (default 'observation.images.top'). */
  camera?: string;
  width?: number;
  height?: number;
  /** Ticks between scene changes (default 45: 1.5 s at 30 Hz). */
  sceneEvery?: number;
  stateDim?: number;
  task?: string;
  /** Ready language token ids instead of the task string (a policy without a tokenizer). */
  tokens?: readonly number[];
  seed?: number;
  /** How far the joints move toward the commanded action per tick (default 0.3). */
  gain?: number;
}

export class SimRobot implements RuntimeRobot {
  readonly camera: `observation.images.${string}`;
  readonly sceneEvery: number;
  readonly task: string;
  private readonly tokens: readonly number[] | null;
  private readonly cam: SceneCamera;
  private readonly gain: number;
  private readonly state: Float32Array;
  private ticks = 0;
  /** Actions executed, with the tick they ran at. */
  readonly executed: Array<{ tick: number; step: number; action: Float32Array }> = [];

  constructor(options: SimRobotOptions = {}) {
    const camera = options.camera ?? 'observation.images.top';
    if (!camera.startsWith('observation.images.')) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `SimRobot camera: expected an 'observation.images.<name>' key, got '${camera}'`);
    this.camera = camera as `observation.images.${string}`;
    this.sceneEvery = options.sceneEvery ?? 45;
    if (!Number.isInteger(this.sceneEvery) || this.sceneEvery < 2) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `SimRobot sceneEvery: expected an integer >= 2, got ${String(this.sceneEvery)}`);
    this.task = options.task ?? 'stack the blocks';
    this.tokens = options.tokens ?? null;
    this.cam = sceneCamera(options.width ?? 64, options.height ?? 64, options.seed ?? 0);
    this.gain = options.gain ?? 0.3;
    this.state = new Float32Array(options.stateDim ?? 6);
  }

  /** Ticks elapsed (acts + idles). */
  get tick(): number {
    return this.ticks;
  }

  /** The scene shown at `tick`. */
  sceneAt(tick: number): number {
    return Math.floor(tick / this.sceneEvery);
  }

  /** Ticks where the scene changed, below `ticks`. */
  sceneChanges(ticks: number): number[] {
    const out: number[] = [];
    for (let t = this.sceneEvery; t < ticks; t += this.sceneEvery) out.push(t);
    return out;
  }

  /** The moving target at `tick`, as fractions of the frame's width and height. */
  targetAt(tick: number): { x: number; y: number } {
    return sceneTarget(tick);
  }

  observe(): RobotObservation {
    const t = this.ticks;
    const obs: RobotObservation = { 'observation.state': Float32Array.from(this.state) };
    if (this.tokens) obs['observation.language.tokens'] = this.tokens;
    else obs.task = this.task;
    obs[this.camera] = this.cam.frame(this.sceneAt(t), t, this.targetAt(t));
    return obs;
  }

  act(action: Float32Array, step: number): void {
    for (let i = 0; i < this.state.length && i < action.length; i++) {
      const a = Math.max(-10, Math.min(10, action[i]!));
      this.state[i] = this.state[i]! + this.gain * (a - this.state[i]!);
    }
    this.executed.push({ tick: this.ticks, step, action: Float32Array.from(action) });
    this.ticks++;
  }

  idle(): void {
    this.ticks++;
  }
}
