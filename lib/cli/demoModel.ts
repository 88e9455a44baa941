/**
 * The demo's built-in model: the checkpoint `npm run train:demo-model` trains with the train command
 * on the simulator's scenes (shipped in assets/demo-model), or the same architecture with random
 * weights from a seed (`--random`: what the similarity looks like before training; the tests' path).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { packageRoot } from '../native';
import { SmolVLAPolicy } from '../policy';
import { byteTokenizer } from '../train/byteTokenizer';
import { demoConfig } from '../train/presets';
import { SmolVLAError } from '../errors';

/** The trained checkpoint's folder (config.json, model.safetensors, processor files, training report). */
export const DEMO_MODEL_DIR = path.join(packageRoot, 'assets', 'demo-model');

export interface DemoModel {
  policy: SmolVLAPolicy;
  /** What was loaded, for the demo's first lines and its report. */
  description: string;
  trained: boolean;
}

/** The trained checkpoint at `dir` (default DEMO_MODEL_DIR), or random weights from `seed` with `random`. */
export async function loadDemoModel(options: { random: boolean; seed: number; dir?: string }): Promise<DemoModel> {
  if (options.random) {
    const policy = await SmolVLAPolicy.create(demoConfig(), { seed: options.seed, tokenizer: byteTokenizer() });
    return { policy, description: `random weights from seed ${options.seed} (--random)`, trained: false };
  }
  const dir = options.dir ?? DEMO_MODEL_DIR;
  if (!existsSync(path.join(dir, 'model.safetensors'))) {
    throw new SmolVLAError(
      'ERR_SMOLVLA_ARGUMENT',
      `demo model: no checkpoint at ${dir} (model.safetensors missing); regenerate it with 'npm run train:demo-model' in the repository, or pass --random for random weights`,
    );
  }
  const policy = await SmolVLAPolicy.fromPretrained(dir);
  const shown = path.relative(packageRoot, dir);
  const where = shown.startsWith('..') || path.isAbsolute(shown) ? dir : shown;
  return { policy, description: `trained checkpoint ${where}`, trained: true };
}
