/**
 * Writes the normalisation statistics as newer LeRobot keeps them: the processor pipelines
 * `policy_preprocessor.json` / `policy_postprocessor.json` with SmolVLA's steps (processor_smolvla.py)
 * and the state files of their normaliser steps (`<feature key>.<stat>` float32 tensors). Python's
 * `PolicyProcessorPipeline.from_pretrained` and readCheckpointStats here both read them.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import type { SmolVLAConfig } from '../config';
import { writeSafetensors } from '../safetensors';
import { Tensor, disposeAll } from '../tensor';
import type { FeatureStats, Normalizer, StatsMap } from './normalize';

const PRE_STATE = 'policy_preprocessor_step_5_normalizer_processor.safetensors';
const POST_STATE = 'policy_postprocessor_step_0_unnormalizer_processor.safetensors';

function featureJson(features: SmolVLAConfig['inputFeatures']): Record<string, { type: string; shape: number[] }> {
  return Object.fromEntries(Object.entries(features).map(([k, f]) => [k, { type: f.type, shape: [...f.shape] }]));
}

const NORMALIZATION_STATS = ['mean', 'std', 'min', 'max'] as const satisfies ReadonlyArray<keyof FeatureStats>;

async function writeStats(file: string, maps: StatsMap[]): Promise<void> {
  const tensors = new Map<string, Tensor>();
  try {
    for (const map of maps) {
      for (const [key, entry] of Object.entries(map)) {
        // Only the statistics normalisation uses: a dataset's stats object also carries counts and
        // other keys that the FeatureStats type does not describe.
        for (const stat of NORMALIZATION_STATS) {
          const values = entry[stat];
          if (values === undefined || tensors.has(`${key}.${stat}`)) continue;
          tensors.set(`${key}.${stat}`, Tensor.from(Float32Array.from(values), [values.length]));
        }
      }
    }
    await writeSafetensors(file, tensors);
  } finally {
    disposeAll([...tensors.values()]);
  }
}

/** Writes the two pipelines and their state files into the checkpoint folder `dir`. */
export async function writeProcessorFiles(dir: string, config: SmolVLAConfig, normalizer: Normalizer): Promise<void> {
  const normMap = { ...config.normalizationMapping };
  const inputs = featureJson(config.inputFeatures);
  const outputs = featureJson(config.outputFeatures);
  const eps = normalizer.eps;
  const pre = {
    name: 'policy_preprocessor',
    steps: [
      { registry_name: 'rename_observations_processor', config: { rename_map: {} } },
      { registry_name: 'to_batch_processor', config: {} },
      { registry_name: 'smolvla_new_line_processor', config: {} },
      {
        registry_name: 'tokenizer_processor',
        config: {
          max_length: config.tokenizerMaxLength,
          task_key: 'task',
          padding_side: 'right',
          padding: config.padLanguageTo,
          truncation: true,
          tokenizer_name: config.vlmModelName,
        },
      },
      { registry_name: 'device_processor', config: { device: 'cpu', float_dtype: null } },
      { registry_name: 'normalizer_processor', config: { eps, features: { ...inputs, ...outputs }, norm_map: normMap }, state_file: PRE_STATE },
    ],
  };
  const post = {
    name: 'policy_postprocessor',
    steps: [
      { registry_name: 'unnormalizer_processor', config: { eps, features: outputs, norm_map: normMap }, state_file: POST_STATE },
      { registry_name: 'device_processor', config: { device: 'cpu', float_dtype: null } },
    ],
  };
  const { stats } = normalizer;
  await writeStats(path.join(dir, PRE_STATE), [stats.inputs, stats.targets]);
  await writeStats(path.join(dir, POST_STATE), [stats.outputs]);
  await fsp.writeFile(path.join(dir, 'policy_preprocessor.json'), `${JSON.stringify(pre, null, 2)}\n`);
  await fsp.writeFile(path.join(dir, 'policy_postprocessor.json'), `${JSON.stringify(post, null, 2)}\n`);
}
