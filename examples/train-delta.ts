/**
 * Trains the delta expert (with the CLS head) of the built-in tiny model on the synthetic dataset for
 * a few dozen steps, evaluates it on a held-out episode and writes a checkpoint and a report.
 *
 *   npm run build:ts && node dist/examples/train-delta.js [output_dir]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { SmolVLAModel, training } from 'smolvla-node';

const { byteTokenizer, datasetBatcher, splitEpisodes, syntheticFor, tinyConfig, train } = training;

async function main(): Promise<void> {
  const outputDir = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-train-delta-'));
  const config = tinyConfig();
  const model = await SmolVLAModel.create(config, { seed: 0 });
  const dataset = syntheticFor(config);
  const split = splitEpisodes(dataset, 0.1);
  const tokenizer = byteTokenizer();
  const { toBatch, normalizer } = datasetBatcher(config, dataset, tokenizer);
  const result = await train({
    model,
    dataset: split.train,
    evalDataset: split.heldOut,
    toBatch,
    normalizer,
    tokenizer,
    steps: 60,
    batchSize: 8,
    seed: 0,
    outputDir,
    logFreq: 10,
    saveFreq: 60,
    trainConfig: { example: 'examples/train-delta.ts' },
    onLog: (line) => console.log(line),
    onStep: (s) => {
      if (s.step % 10 === 0) console.log(`step ${s.step}: delta_loss ${s.metrics.delta_loss?.toFixed(4)}, lr ${s.lr.toExponential(2)}`);
    },
  });
  console.log(`${result.status} after ${result.step} steps; checkpoint ${result.lastCheckpoint}`);
  console.log(`report: ${path.join(outputDir, 'training_report.html')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
