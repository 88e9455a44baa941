/** The robot-facing policy: tokenizer, normalisation statistics, batching and the CLS state machine. */
export {
  FAKE_IMAGE_TOKEN,
  GLOBAL_IMAGE_TOKEN,
  VlmTokenizer,
  hubCacheDirs,
  loadTokenizer,
  type TaskTokenizer,
  type TokenizeOptions,
  type TokenizedBatch,
  type TokenizerSearch,
} from './tokenizer';
export {
  DEFAULT_EPS,
  Normalizer,
  bufferName,
  readBufferStats,
  readCheckpointStats,
  sharedStats,
  toPolicyStats,
  type CheckpointStats,
  type FeatureStats,
  type NormalizerOptions,
  type PolicyStats,
  type StatsMap,
} from './normalize';
export {
  canonicalKey,
  type CameraImage,
  type FlagsInput,
  type FloatImage,
  type PolicyBatch,
  type RgbFrame,
  type RobotObservation,
  type Series,
  type TensorBatch,
  type VectorInput,
} from './inputs';
export { writeProcessorFiles } from './processorFiles';
export { Preprocessor, disposeBatch, type PreparedBatch, type TokenizerSlot, type TrainingBatch } from './batch';
export {
  SmolVLAPolicy,
  type ChunkPrediction,
  type ClsSimilarityValue,
  type ForwardResult,
  type PolicyCreateOptions,
  type PolicyLoadOptions,
  type PredictOptions,
  type TokenizerOption,
} from './policy';
