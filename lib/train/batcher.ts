/**
 * Dataset samples -> the optimiser's batches through the policy's own preprocessing (lib/policy
 * `trainingBatch`: resize with padding, [-1, 1], normalisation with the dataset statistics, padding,
 * task tokens), so training sees exactly what inference will.
 */
import type { SmolVLAConfig } from '../config';
import type { Dataset, DatasetSample } from '../data';
import { Preprocessor, type TrainingBatch } from '../policy/batch';
import { Normalizer, sharedStats } from '../policy/normalize';
import type { VlmTokenizer } from '../policy/tokenizer';

export type { TrainingBatch } from '../policy/batch';

/** Builds one batch from dataset samples (may be async, e.g. to decode or augment). */
export type ToBatch = (samples: DatasetSample[]) => TrainingBatch | Promise<TrainingBatch>;

export interface Batcher {
  toBatch: ToBatch;
  /** Normalisation with the dataset's statistics; checkpoints store it (`toTensors()`). */
  normalizer: Normalizer;
}

/** Batches for `config` normalised with `dataset`'s statistics and tokenised with `tokenizer`. */
export function datasetBatcher(config: SmolVLAConfig, dataset: Dataset, tokenizer: VlmTokenizer): Batcher {
  const normalizer = new Normalizer(config, sharedStats(dataset.stats));
  const preprocessor = new Preprocessor(config, normalizer, tokenizer);
  return { toBatch: (samples) => preprocessor.trainingBatch(samples), normalizer };
}
