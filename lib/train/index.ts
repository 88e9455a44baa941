/** Training the delta expert: the loop, its schedule, checkpoints, data and reports. */
export { train, METRICS_FILE, REPORT_FILE, VICREG_MIN_BATCH, type StepInfo, type TrainOptions, type TrainResult } from './loop';
export { Optimizer, type Objective, type StepInput, type StepOutput } from './optimizer';
export { CosineDecayWithWarmup, type CosineScheduleOptions, type ScheduleScaling } from './schedule';
export { datasetBatcher, type Batcher, type ToBatch, type TrainingBatch } from './batcher';
export { byteTokenizer, byteTokenizerFiles } from './byteTokenizer';
export { evaluate, type ClsProjections, type Evaluation, type EvaluateOptions } from './evaluate';
export {
  CHECKPOINTS_DIR,
  LAST_CHECKPOINT_LINK,
  PRETRAINED_MODEL_DIR,
  TRAINING_STATE_DIR,
  loadOptimizerState,
  locateCheckpoint,
  readTrainConfig,
  readTrainingState,
  saveCheckpoint,
  stepIdentifier,
  type CheckpointPaths,
  type SaveCheckpointOptions,
  type TrainingState,
} from './checkpoint';
export { lerobotParameterOrder, OPTIMIZER_PARAM_NAMES, OPTIMIZER_STATE } from './lerobotState';
export { MetricsLog, type MetricsKind, type MetricsRecord } from './metrics';
export { pca2, trainingReportHtml, writeTrainingReport, type ReportInput } from './report';
export { demoConfig, TINY_ACTION_DIM, TINY_CAMERA, TINY_IMAGE_SIZE, TINY_STATE_DIM, TINY_VLM_NAME, tinyConfig } from './presets';
export {
  applyConfigOverrides,
  BUILT_IN_DATASETS,
  checkDatasetFits,
  fitConfigToDataset,
  loadPolicy,
  openTrainingDataset,
  syntheticFor,
  tokenizerFor,
  type BuiltInDataset,
  type DatasetSettings,
} from './setup';
export { splitEpisodes, type EpisodeSplit } from './split';
export { stepSeed } from './seeds';
