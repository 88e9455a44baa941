/** Shapes shared by the dataset readers, the synthetic dataset, the writer and the batch loader. */

/** One entry of LeRobot's `meta/info.json` `features` (extra keys such as `info` or `fps` pass through). */
export interface FeatureSpec {
  dtype: string;
  shape: number[];
  names?: unknown;
  [extra: string]: unknown;
}

/** Per-feature statistics, flattened (image statistics of shape (3, 1, 1) become 3 values). */
export interface Stats {
  mean: Float32Array;
  std: Float32Array;
  min?: Float32Array;
  max?: Float32Array;
  /** Number of samples the statistics were computed over (needed to aggregate them). */
  count?: number;
}

/** A camera frame: CHW float32 in [0, 1]. */
export interface SampleImage {
  data: Float32Array;
  shape: [number, number, number];
}

export interface DatasetSample {
  /** camera key ("observation.images.<name>") -> CHW float32 in [0, 1] */
  images: Record<string, SampleImage>;
  /** observation.state at this frame (real width, not padded). */
  state: Float32Array;
  /** (chunkSize * actionDim) row-major: the actions of this frame onward, within the same episode. */
  actions: Float32Array;
  /**
   * (chunkSize): 1 where the chunk runs past the episode end. As in LeRobot's delta-timestamp query,
   * those rows repeat the episode's last action (the query index is clamped) — LeRobot's key for
   * this is `action_is_pad`.
   */
  actionIsPad: Uint8Array;
  task: string;
  episodeIndex: number;
  frameIndex: number;
  /** The dataset's global `index` column of this frame. */
  index: number;
  /** Seconds since the episode start (`timestamp` column). */
  timestamp: number;
}

export interface EpisodeInfo {
  index: number;
  length: number;
  tasks: string[];
}

export interface Dataset {
  readonly repoId: string;
  readonly fps: number;
  /** Number of frames. */
  readonly length: number;
  readonly cameraKeys: string[];
  readonly stateDim: number;
  readonly actionDim: number;
  readonly features: Record<string, FeatureSpec>;
  /** At least `observation.state` and `action`; camera statistics when the source has them. */
  readonly stats: Record<string, Stats>;
  readonly episodes: EpisodeInfo[];
  /** The sample at position `index` in [0, length). */
  get(index: number): Promise<DatasetSample>;
  close(): Promise<void>;
}

/** Conventional LeRobot feature keys. */
export const STATE_KEY = 'observation.state';
export const ACTION_KEY = 'action';
