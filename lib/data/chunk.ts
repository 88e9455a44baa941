/** Action chunks and argument checks shared by every Dataset implementation. */
import { SmolVLAError } from '../errors';
import { ACTION_KEY, STATE_KEY, type FeatureSpec } from './types';

/**
 * The actions of positions [position, position + chunkSize) of one episode, rows of `actionDim`.
 * Like LeRobot's `_get_query_indices`, a query past the episode end is clamped to the episode's last
 * frame (so the last action repeats) and flagged in `actionIsPad`.
 */
export function actionChunk(
  actions: Float32Array,
  actionDim: number,
  position: number,
  episodeEnd: number,
  chunkSize: number,
): { actions: Float32Array; actionIsPad: Uint8Array } {
  const out = new Float32Array(chunkSize * actionDim);
  const isPad = new Uint8Array(chunkSize);
  for (let k = 0; k < chunkSize; k++) {
    let source = position + k;
    if (source >= episodeEnd) {
      source = episodeEnd - 1;
      isPad[k] = 1;
    }
    out.set(actions.subarray(source * actionDim, (source + 1) * actionDim), k * actionDim);
  }
  return { actions: out, actionIsPad: isPad };
}

export function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

export function checkSampleIndex(index: unknown, length: number, repoId: string): number {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= length) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `dataset '${repoId}': index must be an integer in [0, ${length}), got ${String(index)}`);
  }
  return index;
}

/** The options every generated dataset shares (the synthetic blocks and the demo's scenes). */
export interface EpisodeShapeOptions {
  chunkSize: number;
  /** [width, height], default [64, 64]. */
  imageSize?: [number, number];
  stateDim?: number;
  actionDim?: number;
  episodes?: number;
  episodeLength?: number;
  seed?: number;
  fps?: number;
}

export interface EpisodeShape {
  chunkSize: number;
  width: number;
  height: number;
  stateDim: number;
  actionDim: number;
  episodes: number;
  episodeLength: number;
  seed: number;
  fps: number;
}

/** Checked values of the shared options, with the dataset's own defaults where it has them. */
export function resolveEpisodeShape(o: EpisodeShapeOptions, defaults: { episodes: number; episodeLength: number; fps: number }): EpisodeShape {
  const [width, height] = o.imageSize ?? [64, 64];
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `seed must be an integer, got ${String(seed)}`);
  const fps = o.fps ?? defaults.fps;
  if (!(fps > 0)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `fps must be positive, got ${String(fps)}`);
  return {
    chunkSize: checkPositiveInteger('chunkSize', o.chunkSize),
    width: checkPositiveInteger('imageSize[0] (width)', width),
    height: checkPositiveInteger('imageSize[1] (height)', height),
    stateDim: checkPositiveInteger('stateDim', o.stateDim ?? 6),
    actionDim: checkPositiveInteger('actionDim', o.actionDim ?? 6),
    episodes: checkPositiveInteger('episodes', o.episodes ?? defaults.episodes),
    episodeLength: checkPositiveInteger('episodeLength', o.episodeLength ?? defaults.episodeLength),
    seed,
    fps,
  };
}

/** LeRobot's feature table of a generated dataset: video cameras, state, action and the index columns. */
export function generatedFeatures(cameraKeys: readonly string[], s: EpisodeShape): Record<string, FeatureSpec> {
  const features: Record<string, FeatureSpec> = {};
  for (const key of cameraKeys) features[key] = { dtype: 'video', shape: [s.height, s.width, 3], names: ['height', 'width', 'channels'] };
  features[STATE_KEY] = { dtype: 'float32', shape: [s.stateDim], names: null };
  features[ACTION_KEY] = { dtype: 'float32', shape: [s.actionDim], names: null };
  features.timestamp = { dtype: 'float32', shape: [1], names: null };
  for (const key of ['frame_index', 'episode_index', 'index', 'task_index']) features[key] = { dtype: 'int64', shape: [1], names: null };
  return features;
}

/** A generated frame's state, action chunk and indices (episodes laid end to end, all of one length). */
export function frameFields(i: number, s: EpisodeShape, states: Float32Array, actions: Float32Array) {
  const episode = Math.floor(i / s.episodeLength);
  const frame = i - episode * s.episodeLength;
  return {
    state: states.slice(i * s.stateDim, (i + 1) * s.stateDim),
    ...actionChunk(actions, s.actionDim, i, (episode + 1) * s.episodeLength, s.chunkSize),
    episodeIndex: episode,
    frameIndex: frame,
    index: i,
    timestamp: Math.fround(frame / s.fps),
  };
}
