/** What the v2.x and v3.0 metadata readers hand to the dataset: where each episode's data lives. */
import type { Stats } from '../types';

export interface VideoSource {
  /** Absolute path of the MP4 holding the episode. */
  file: string;
  /** Start of the episode inside that file in seconds (v3.0 concatenates episodes; 0 in v2.x). */
  fromTimestamp: number;
  /** Whether other episodes share the file (v3.0): then only this episode's time range is decoded. */
  shared: boolean;
}

export interface EpisodeSource {
  index: number;
  length: number;
  tasks: string[];
  /** Absolute path of the Parquet file holding the episode's rows. */
  dataFile: string;
  /** One entry per video camera key. */
  videos: Record<string, VideoSource>;
}

export interface DatasetLayout {
  /** Sorted by episode index. */
  episodes: EpisodeSource[];
  /** task_index -> task text. */
  tasks: Map<number, string>;
  /** Dataset statistics when the metadata has them. */
  stats: Record<string, Stats> | undefined;
}
