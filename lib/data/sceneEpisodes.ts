/**
 * The simulator's camera as a training dataset ('synthetic/scenes'): episodes of the demo's table-top
 * scenes (./scene.ts), the scene changing every `sceneEvery` frames while the moving target crosses
 * it, so a policy trained on it sees what `smolvla-node demo` shows. The demonstrated behaviour: the
 * first two action values point at the target's next position (fractions of the frame, what the
 * demo's tracking error measures), the others reach for the centres of the scene's blocks; the state
 * follows the actions as the simulated robot's joints do (first order, `gain` per frame, from zero).
 * Scene numbers start at FIRST_TRAINING_SCENE: the demo shows scenes 0, 1, 2, … of its camera, so
 * training never sees the demo's frames.
 */
import { checkPositiveInteger, checkSampleIndex, frameFields, generatedFeatures, resolveEpisodeShape, type EpisodeShape, type EpisodeShapeOptions } from './chunk';
import { seededRandom } from './random';
import { sceneCamera, sceneTarget, type SceneCamera } from './scene';
import { computeStats, imageStats } from './stats';
import { ACTION_KEY, STATE_KEY, type Dataset, type DatasetSample, type EpisodeInfo, type FeatureSpec, type SampleImage, type Stats } from './types';
import { SmolVLAError } from '../errors';

export interface SceneEpisodesOptions extends EpisodeShapeOptions {
  /** The one camera's key (default 'observation.images.top', the simulator's). */
  cameraKey?: string;
  /** Frames between scene changes within an episode (default 20). */
  sceneEvery?: number;
  /** How far the state moves toward the action per frame (default 0.3, the simulator's). */
  gain?: number;
  /** The instruction of every episode (default the demo's). */
  task?: string;
}

/** The first scene number training episodes show (the demo's runs show the low ones). */
export const FIRST_TRAINING_SCENE = 10_000;
export const SCENE_TASK = 'stack the blocks';

interface Resolved extends EpisodeShape {
  cameraKey: string;
  sceneEvery: number;
  gain: number;
  task: string;
}

// imageSize defaults to the simulator's 64 x 64, seed to 0 (camera seed and target phases).
function resolve(o: SceneEpisodesOptions): Resolved {
  const shape = resolveEpisodeShape(o, { episodes: 48, episodeLength: 60, fps: 30 });
  const gain = o.gain ?? 0.3;
  if (!(gain > 0 && gain <= 1)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `gain must be in (0, 1], got ${String(gain)}`);
  const cameraKey = o.cameraKey ?? 'observation.images.top';
  if (typeof cameraKey !== 'string' || !cameraKey.startsWith('observation.images.')) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `cameraKey: expected an 'observation.images.<name>' key, got ${JSON.stringify(cameraKey)}`);
  }
  return { ...shape, cameraKey, sceneEvery: checkPositiveInteger('sceneEvery', o.sceneEvery ?? 20), gain, task: o.task ?? SCENE_TASK };
}

/** The per-frame scene, target tick, state and action of every episode. */
class Episodes {
  readonly length: number;
  readonly camera: SceneCamera;
  /** Per frame: the scene shown and the simulator tick (the target's position and the sensor noise). */
  readonly scene: Int32Array;
  readonly tick: Int32Array;
  readonly states: Float32Array;
  readonly actions: Float32Array;

  constructor(readonly o: Resolved) {
    this.length = o.episodes * o.episodeLength;
    this.camera = sceneCamera(o.width, o.height, o.seed);
    this.scene = new Int32Array(this.length);
    this.tick = new Int32Array(this.length);
    this.states = new Float32Array(this.length * o.stateDim);
    this.actions = new Float32Array(this.length * o.actionDim);
    const phase = seededRandom(o.seed * 104729 + 17);
    const scenesPerEpisode = Math.ceil(o.episodeLength / o.sceneEvery);
    const state = new Float32Array(o.stateDim);
    for (let e = 0; e < o.episodes; e++) {
      // Each episode joins the target's path at its own point.
      const start = Math.floor(phase() * 100_000);
      state.fill(0);
      for (let k = 0; k < o.episodeLength; k++) {
        const i = e * o.episodeLength + k;
        const scene = FIRST_TRAINING_SCENE + e * scenesPerEpisode + Math.floor(k / o.sceneEvery);
        this.scene[i] = scene;
        this.tick[i] = start + k;
        const action = this.action(scene, start + k + 1);
        this.actions.set(action, i * o.actionDim);
        this.states.set(state, i * o.stateDim);
        for (let j = 0; j < o.stateDim; j++) state[j] = state[j]! + o.gain * ((action[j] ?? 0) - state[j]!);
      }
    }
  }

  /** Where the demonstrator sends the joints: the target's position at `tick`, then block centres. */
  private action(scene: number, tick: number): Float32Array {
    const { width, height, actionDim } = this.o;
    const target = sceneTarget(tick);
    const { blocks } = this.camera.layout(scene);
    const out = new Float32Array(actionDim);
    for (let j = 0; j < actionDim; j++) {
      if (j < 2) {
        out[j] = j === 0 ? target.x : target.y;
        continue;
      }
      const b = blocks[((j - 2) >> 1) % blocks.length]!;
      out[j] = (j - 2) % 2 === 0 ? (b.x + b.width / 2) / width : (b.y + b.height / 2) / height;
    }
    return out;
  }

  /** Frame `i`, CHW in [0, 1]. */
  render(i: number): SampleImage {
    const { width, height } = this.o;
    const tick = this.tick[i]!;
    const { data } = this.camera.frame(this.scene[i]!, tick, sceneTarget(tick));
    const plane = width * height;
    const chw = new Float32Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) chw[c * plane + p] = data[3 * p + c]! / 255;
    return { data: chw, shape: [3, height, width] };
  }
}

/** The dataset, with the ground truth of what each frame shows. */
export interface SceneEpisodes extends Dataset {
  /** The scene number and simulator tick (target position, sensor noise) of frame `index`. */
  shown(index: number): { scene: number; tick: number };
}

class SceneEpisodesDataset implements SceneEpisodes {
  readonly repoId = 'synthetic/scenes';
  readonly length: number;
  readonly cameraKeys: string[];
  readonly stateDim: number;
  readonly actionDim: number;
  readonly fps: number;
  readonly features: Record<string, FeatureSpec>;
  readonly stats: Record<string, Stats>;
  readonly episodes: EpisodeInfo[];

  constructor(private readonly e: Episodes) {
    const o = e.o;
    this.length = e.length;
    this.cameraKeys = [o.cameraKey];
    this.stateDim = o.stateDim;
    this.actionDim = o.actionDim;
    this.fps = o.fps;
    this.features = generatedFeatures([o.cameraKey], o);
    const plane = o.width * o.height;
    this.stats = {
      [STATE_KEY]: computeStats(e.states, e.length, o.stateDim),
      [ACTION_KEY]: computeStats(e.actions, e.length, o.actionDim),
      [o.cameraKey]: imageStats(e.length, o.width, o.height, (i) => {
        const { data } = e.render(i);
        return (x, y, c) => data[c * plane + y * o.width + x]!;
      }),
    };
    this.episodes = Array.from({ length: o.episodes }, (_, index) => ({ index, length: o.episodeLength, tasks: [o.task] }));
  }

  shown(index: number): { scene: number; tick: number } {
    const i = checkSampleIndex(index, this.length, this.repoId);
    return { scene: this.e.scene[i]!, tick: this.e.tick[i]! };
  }

  async get(index: number): Promise<DatasetSample> {
    const i = checkSampleIndex(index, this.length, this.repoId);
    const { cameraKey, task } = this.e.o;
    return { images: { [cameraKey]: this.e.render(i) }, task, ...frameFields(i, this.e.o, this.e.states, this.e.actions) };
  }

  async close(): Promise<void> {}
}

export function sceneEpisodesDataset(options: SceneEpisodesOptions): SceneEpisodes {
  return new SceneEpisodesDataset(new Episodes(resolve(options)));
}
