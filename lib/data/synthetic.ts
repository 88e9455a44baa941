/**
 * The built-in dataset: no files, deterministic under `seed`. Each episode moves coloured blocks
 * along smooth sinusoids whose frequencies depend on the task and whose phases depend on the
 * episode; the state is the block positions, the action is the next state, and the camera images
 * draw the blocks where the state says, so images, state, actions and task text are all correlated.
 */
import { checkSampleIndex, frameFields, generatedFeatures, resolveEpisodeShape, type EpisodeShape, type EpisodeShapeOptions } from './chunk';
import { seededRandom } from './random';
import { computeStats, imageStats } from './stats';
import { ACTION_KEY, STATE_KEY, type Dataset, type DatasetSample, type EpisodeInfo, type FeatureSpec, type SampleImage, type Stats } from './types';
import type { WriteEpisode } from './writer';
import { SmolVLAError } from '../errors';

export interface SyntheticOptions extends EpisodeShapeOptions {
  /** Default ['observation.images.top']; a second camera sees the scene mirrored. */
  cameraKeys?: string[];
}

export const SYNTHETIC_TASKS = [
  'pick up the red block',
  'push the green block to the left',
  'stack the blue block on the red block',
  'move the blocks apart',
] as const;

const PALETTE: Array<[number, number, number]> = [
  [0.9, 0.15, 0.15],
  [0.15, 0.8, 0.2],
  [0.2, 0.3, 0.95],
  [0.95, 0.85, 0.1],
  [0.85, 0.2, 0.85],
  [0.1, 0.85, 0.85],
];

interface Resolved extends EpisodeShape {
  cameraKeys: string[];
}

function resolve(opts: SyntheticOptions): Resolved {
  const cameraKeys = opts.cameraKeys ?? ['observation.images.top'];
  if (!Array.isArray(cameraKeys) || cameraKeys.some((k) => typeof k !== 'string' || k.length === 0)) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `cameraKeys must be a list of non-empty strings, got ${JSON.stringify(opts.cameraKeys)}`);
  }
  return { ...resolveEpisodeShape(opts, { episodes: 8, episodeLength: 40, fps: 10 }), cameraKeys };
}

/** Trajectories, tasks and the renderer shared by the dataset and the recording export. */
class Scene {
  readonly states: Float32Array;
  readonly actions: Float32Array;
  readonly taskOf: number[];
  readonly length: number;

  constructor(readonly o: Resolved) {
    const rand = seededRandom(o.seed);
    const dims = Math.max(o.stateDim, o.actionDim);
    this.length = o.episodes * o.episodeLength;
    this.states = new Float32Array(this.length * o.stateDim);
    this.actions = new Float32Array(this.length * o.actionDim);
    this.taskOf = [];
    for (let e = 0; e < o.episodes; e++) {
      const task = Math.floor(rand() * SYNTHETIC_TASKS.length);
      this.taskOf.push(task);
      const params = Array.from({ length: dims }, () => ({
        offset: 0.2 * (rand() - 0.5),
        amplitude: 0.5 + 0.4 * rand(),
        hz: 0.15 + 0.12 * task + 0.25 * rand(),
        phase: 2 * Math.PI * rand(),
      }));
      // |offset| + amplitude <= 1: every value stays in [-1, 1].
      const at = (j: number, t: number): number => {
        const p = params[j] as (typeof params)[number];
        return p.offset + p.amplitude * Math.sin(2 * Math.PI * p.hz * t + p.phase);
      };
      for (let k = 0; k < o.episodeLength; k++) {
        const i = e * o.episodeLength + k;
        for (let j = 0; j < o.stateDim; j++) this.states[i * o.stateDim + j] = at(j, k / o.fps);
        // The action is where the joints go next.
        for (let j = 0; j < o.actionDim; j++) this.actions[i * o.actionDim + j] = at(j, (k + 1) / o.fps);
      }
    }
  }

  /** Camera `c` at position `i`: blocks at (state[2b], state[2b+1]) on a plain background, CHW in [0, 1]. */
  render(i: number, c: number): SampleImage {
    const { width: w, height: h, stateDim } = this.o;
    const plane = w * h;
    const data = new Float32Array(3 * plane);
    const background = [0.1 + 0.05 * (c % 3), 0.12, 0.15];
    for (let ch = 0; ch < 3; ch++) data.fill(background[ch] as number, ch * plane, (ch + 1) * plane);
    const size = Math.max(2, Math.round(Math.min(w, h) / 8));
    const blocks = Math.ceil(stateDim / 2);
    for (let b = 0; b < blocks; b++) {
      const x = this.states[i * stateDim + 2 * b] as number;
      const y = 2 * b + 1 < stateDim ? (this.states[i * stateDim + 2 * b + 1] as number) : 0;
      // Odd cameras look from the other side: the scene is mirrored.
      const u = c % 2 === 1 ? -x : x;
      const cx = Math.round((0.5 + 0.4 * u) * (w - 1));
      const cy = Math.round((0.5 + 0.4 * y) * (h - 1));
      const color = PALETTE[b % PALETTE.length] as [number, number, number];
      const x0 = Math.max(0, cx - (size >> 1));
      const y0 = Math.max(0, cy - (size >> 1));
      for (let py = y0; py < Math.min(h, y0 + size); py++) {
        for (let px = x0; px < Math.min(w, x0 + size); px++) {
          for (let ch = 0; ch < 3; ch++) data[ch * plane + py * w + px] = color[ch] as number;
        }
      }
    }
    return { data, shape: [3, h, w] };
  }
}

class SyntheticDataset implements Dataset {
  readonly repoId = 'synthetic/blocks';
  readonly length: number;
  readonly cameraKeys: string[];
  readonly stateDim: number;
  readonly actionDim: number;
  readonly fps: number;
  readonly features: Record<string, FeatureSpec>;
  readonly stats: Record<string, Stats>;
  readonly episodes: EpisodeInfo[];

  constructor(private readonly scene: Scene) {
    const o = scene.o;
    this.length = scene.length;
    this.cameraKeys = [...o.cameraKeys];
    this.stateDim = o.stateDim;
    this.actionDim = o.actionDim;
    this.fps = o.fps;
    this.features = generatedFeatures(o.cameraKeys, o);
    this.stats = {
      [STATE_KEY]: computeStats(scene.states, scene.length, o.stateDim),
      [ACTION_KEY]: computeStats(scene.actions, scene.length, o.actionDim),
    };
    const plane = o.width * o.height;
    o.cameraKeys.forEach((key, c) => {
      // Sampled frames, as LeRobot computes image statistics (keeps construction cheap).
      this.stats[key] = imageStats(scene.length, o.width, o.height, (i) => {
        const { data } = scene.render(i, c);
        return (x, y, ch) => data[ch * plane + y * o.width + x] as number;
      });
    });
    this.episodes = scene.taskOf.map((t, e) => ({ index: e, length: o.episodeLength, tasks: [SYNTHETIC_TASKS[t] as string] }));
  }

  async get(index: number): Promise<DatasetSample> {
    const i = checkSampleIndex(index, this.length, this.repoId);
    const images: Record<string, SampleImage> = {};
    this.cameraKeys.forEach((key, c) => {
      images[key] = this.scene.render(i, c);
    });
    const fields = frameFields(i, this.scene.o, this.scene.states, this.scene.actions);
    return { images, task: SYNTHETIC_TASKS[this.scene.taskOf[fields.episodeIndex] as number] as string, ...fields };
  }

  async close(): Promise<void> {}
}

export function syntheticDataset(opts: SyntheticOptions): Dataset {
  return new SyntheticDataset(new Scene(resolve(opts)));
}

/**
 * The same synthetic episodes in `writeLeRobotDataset`'s input form (HWC uint8 images), to produce
 * a real LeRobot dataset folder from them.
 */
export function syntheticRecording(opts: Omit<SyntheticOptions, 'chunkSize'>): {
  fps: number;
  imageSize: [number, number];
  cameraKeys: string[];
  episodes: WriteEpisode[];
} {
  // A recording has no action chunks; chunkSize only has to pass validation.
  const scene = new Scene(resolve({ ...opts, chunkSize: 1 }));
  const o = scene.o;
  const plane = o.width * o.height;
  const episodes: WriteEpisode[] = scene.taskOf.map((t, e) => ({
    task: SYNTHETIC_TASKS[t] as string,
    frames: Array.from({ length: o.episodeLength }, (_, k) => {
      const i = e * o.episodeLength + k;
      const images: Record<string, Uint8Array> = {};
      o.cameraKeys.forEach((key, c) => {
        const { data } = scene.render(i, c);
        const hwc = new Uint8Array(3 * plane);
        for (let p = 0; p < plane; p++) for (let ch = 0; ch < 3; ch++) hwc[3 * p + ch] = Math.round((data[ch * plane + p] as number) * 255);
        images[key] = hwc;
      });
      return {
        images,
        state: scene.states.slice(i * o.stateDim, (i + 1) * o.stateDim),
        action: scene.actions.slice(i * o.actionDim, (i + 1) * o.actionDim),
      };
    }),
  }));
  return { fps: o.fps, imageSize: [o.width, o.height], cameraKeys: [...o.cameraKeys], episodes };
}
