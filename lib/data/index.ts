/** Training data: LeRobot v2.x / v3.0 dataset folders, the synthetic dataset, a writer and a batch loader. */
export type { Dataset, DatasetSample, EpisodeInfo, FeatureSpec, SampleImage, Stats } from './types';
export { ACTION_KEY, STATE_KEY } from './types';
export { openLeRobotDataset, type OpenOptions } from './lerobot/dataset';
export { candidateRoots } from './lerobot/location';
export { syntheticDataset, syntheticRecording, SYNTHETIC_TASKS, type SyntheticOptions } from './synthetic';
export { writeLeRobotDataset, type WriteEpisode, type WriteFrame, type WriteOptions } from './writer';
export { BatchLoader, type BatchLoaderOptions, type BatchLoaderState } from './loader';
export { aggregateStats, computeStats } from './stats';
export { sceneCamera, sceneTarget, type SceneBlock, type SceneCamera, type SceneLayout, type SceneTarget } from './scene';
export { FIRST_TRAINING_SCENE, SCENE_TASK, sceneEpisodesDataset, type SceneEpisodes, type SceneEpisodesOptions } from './sceneEpisodes';
