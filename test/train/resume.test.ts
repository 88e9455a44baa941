/**
 * Resume continues the same run: N steps straight equal k steps, interrupt (saves), resume, N - k
 * steps — same batches, same losses, same final weights. A non-finite loss stops the run at once and
 * leaves the last good checkpoint in place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SmolVLAModel } from '../../lib/model';
import { Tensor } from '../../lib/tensor';
import { locateCheckpoint } from '../../lib/train/checkpoint';
import type { ToBatch } from '../../lib/train/batcher';
import { train, type TrainOptions, type TrainResult } from '../../lib/train/loop';
import { tempDir, tinySetup, trainRecords, type Tiny } from './helpers';

const N = 8;
const K = 3;

interface Run {
  result: TrainResult;
  losses: number[];
  /** Dataset positions of each batch built, in order. */
  batches: number[][];
  out: string;
}

async function run(tiny: Tiny, out: string, extra: Partial<TrainOptions> = {}, toBatch: ToBatch = tiny.toBatch): Promise<Run> {
  const losses: number[] = [];
  const batches: number[][] = [];
  const result = await train({
    model: tiny.model,
    dataset: tiny.dataset,
    toBatch: (samples) => {
      batches.push(samples.map((s) => s.index));
      return toBatch(samples);
    },
    steps: N,
    batchSize: 4,
    seed: 11,
    outputDir: out,
    logFreq: 1,
    saveFreq: 100,
    normalizer: tiny.normalizer,
    tokenizer: tiny.tokenizer,
    trainConfig: {},
    ...extra,
    onStep: (s) => {
      losses.push(s.metrics.delta_loss as number);
      extra.onStep?.(s);
    },
  });
  return { result, losses, batches, out };
}

/** Relative error ||a - b|| / ||b||. */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

describe('resume', () => {
  let straight: Run;
  let first: Run;
  let resumed: Run;
  let straightModel: SmolVLAModel;
  let resumedModel: SmolVLAModel;
  let lastAfterAbort: string;

  beforeAll(async () => {
    const a = await tinySetup(5);
    straightModel = a.model;
    straight = await run(a, tempDir('straight'));

    const b = await tinySetup(5);
    const controller = new AbortController();
    first = await run(b, tempDir('first'), {
      signal: controller.signal,
      onStep: (s) => {
        if (s.step === K) controller.abort();
      },
    });

    lastAfterAbort = fs.readlinkSync(path.join(first.out, 'checkpoints', 'last'));
    const paths = await locateCheckpoint(path.join(first.out, 'checkpoints', 'last', 'pretrained_model', 'train_config.json'));
    const { model } = await SmolVLAModel.fromPretrained(paths.pretrainedDir);
    resumedModel = model;
    resumed = await run({ ...b, model }, first.out, { resume: paths });
  });

  test('an aborted run finishes its step, saves and reports cancelled', () => {
    expect(first.result).toMatchObject({ status: 'cancelled', step: K });
    expect(lastAfterAbort).toBe(`00000${K}`);
    expect(resumed.result).toMatchObject({ status: 'completed', step: N });
  });

  test('the resumed run draws the same batches and reproduces the losses', () => {
    expect([...first.batches.slice(0, K), ...resumed.batches]).toEqual(straight.batches);
    expect(first.losses).toHaveLength(K);
    // float32 CPU tolerance for a whole output; in practice the runs agree bit for bit.
    expect(relError([...first.losses, ...resumed.losses], straight.losses)).toBeLessThanOrEqual(1e-6);
  });

  test('the final weights match, and metrics.jsonl reads like one run', async () => {
    const names = (await straightModel.trainableParameters()).map((p) => p.name);
    const a = await straightModel.parameters(names);
    const b = await resumedModel.parameters(names);
    for (const n of names) expect({ n, rel: relError(b[n]!.toFloat32(), a[n]!.toFloat32()) <= 1e-5 }).toEqual({ n, rel: true });
    const x = trainRecords(path.join(straight.out, 'metrics.jsonl'));
    const y = trainRecords(path.join(first.out, 'metrics.jsonl'));
    expect([...y.keys()]).toEqual([...x.keys()]);
    for (const [step, r] of x) {
      const s = y.get(step)!;
      expect(relError([s.delta_loss!, s.lr!, s.vicreg!, s.grad_norm!], [r.delta_loss!, r.lr!, r.vicreg!, r.grad_norm!])).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe('resuming from an older checkpoint than `last`', () => {
  test('redoes the steps and replaces the newer checkpoint in place', async () => {
    const tiny = await tinySetup(5);
    const out = tempDir('again');
    await run(tiny, out, { saveFreq: 4 });
    const ck = path.join(out, 'checkpoints');
    const before = trainRecords(path.join(out, 'metrics.jsonl'));
    const paths = await locateCheckpoint(path.join(ck, '000004'));
    const { model } = await SmolVLAModel.fromPretrained(paths.pretrainedDir);
    const again = await run({ ...tiny, model }, out, { saveFreq: 4, resume: paths });
    expect(again.result).toMatchObject({ status: 'completed', step: N, lastCheckpoint: path.join(ck, '000008') });
    expect(fs.readdirSync(ck).sort()).toEqual(['000004', '000008', 'last']);
    expect(fs.readlinkSync(path.join(ck, 'last'))).toBe('000008');
    const after = trainRecords(path.join(out, 'metrics.jsonl'));
    expect([...after.keys()]).toEqual([...before.keys()]);
    expect(relError([...after.values()].map((r) => r.delta_loss!), [...before.values()].map((r) => r.delta_loss!))).toBeLessThanOrEqual(1e-6);
  });
});

describe('a non-finite loss', () => {
  test('stops training naming the step and keeps the last good checkpoint', async () => {
    const tiny = await tinySetup(2);
    let calls = 0;
    const poisoned: ToBatch = async (samples) => {
      const batch = await tiny.toBatch(samples);
      if (++calls === 4) {
        const s = batch.observation.state;
        batch.observation.state = Tensor.from(new Float32Array(s.numel).fill(NaN), s.shape);
        s.dispose();
      }
      return batch;
    };
    const out = tempDir('nan');
    const r = await run(tiny, out, { saveFreq: 2 }, poisoned);
    expect(r.result.status).toBe('diverged');
    expect(r.result.step).toBe(3);
    expect(r.result.message).toContain('training stopped at step 4: the loss (delta_loss) is NaN');
    expect(r.result.message).toContain(path.join(out, 'checkpoints', '000002'));
    const ck = path.join(out, 'checkpoints');
    expect(fs.readdirSync(ck).sort()).toEqual(['000002', 'last']);
    expect(fs.readlinkSync(path.join(ck, 'last'))).toBe('000002');
    const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ kind: 'diverged', step: 4, delta_loss: null });
    expect(fs.readFileSync(path.join(out, 'training_report.html'), 'utf8')).toContain('diverged');
    // `last` still finds the checkpoint before the failure.
    const paths = await locateCheckpoint(out);
    expect(paths.checkpointDir).toBe(path.join(ck, '000002'));
  });
});
