/**
 * Training on a real LeRobot dataset folder (v3.0: Parquet + MP4, written here with
 * writeLeRobotDataset from the synthetic episodes). A dataset never gets the toy preset: these runs
 * fine-tune a small checkpoint fitted to the dataset through --policy.path (the usual way to train),
 * then continue from the run's checkpoint; and a checkpoint loaded with changed config fields.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { runTrain } from '../../lib/cli/train';
import { readConfig } from '../../lib/config';
import { openLeRobotDataset, syntheticRecording, writeLeRobotDataset } from '../../lib/data';
import { SmolVLAModel } from '../../lib/model';
import { tinyConfig } from '../../lib/train/presets';
import { applyConfigOverrides, fitConfigToDataset, loadPolicy } from '../../lib/train/setup';
import { fixturesDir } from '../helpers';
import { captureIO, tempDir } from './helpers';

describe('training on a LeRobot dataset', () => {
  const tmp = tempDir('lerobot');
  const root = path.join(tmp, 'blocks');
  const out = path.join(tmp, 'run');
  const small = path.join(tmp, 'small');

  beforeAll(async () => {
    const rec = syntheticRecording({ episodes: 3, episodeLength: 10, imageSize: [40, 30], seed: 4 });
    await writeLeRobotDataset(root, { version: 'v3.0', fps: rec.fps, episodes: rec.episodes, imageSize: rec.imageSize, cameraKeys: rec.cameraKeys });
    const ds = await openLeRobotDataset({ repoId: 'local/blocks', root, chunkSize: tinyConfig().chunkSize });
    const model = await SmolVLAModel.create(fitConfigToDataset(tinyConfig(), ds, new Set()), { seed: 3 });
    await model.save(small);
    await ds.close();
  });

  test('a small checkpoint fitted to the dataset fine-tunes, evaluates and checkpoints', async () => {
    const c = captureIO();
    const argv = [`--policy.path=${small}`, '--dataset.repo_id=local/blocks', `--dataset.root=${root}`, '--dataset.eval_split=0.34', '--steps=4', '--batch_size=4', '--log_freq=2', '--save_freq=4', `--output_dir=${out}`];
    expect({ code: await runTrain(argv, c.io), err: c.err() }).toEqual({ code: 0, err: expect.not.stringContaining('smolvla-node train:') });
    const ckpt = path.join(out, 'checkpoints', '000004', 'pretrained_model');
    const config = await readConfig(ckpt);
    expect(config.inputFeatures).toEqual({
      'observation.images.top': { type: 'VISUAL', shape: [3, 30, 40] },
      'observation.state': { type: 'STATE', shape: [6] },
    });
    expect(config.outputFeatures).toEqual({ action: { type: 'ACTION', shape: [6] } });
    const tc = JSON.parse(fs.readFileSync(path.join(ckpt, 'train_config.json'), 'utf8'));
    expect(tc.dataset).toEqual({ repo_id: 'local/blocks', root, eval_split: 0.34 });
    const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.kind, l.step])).toEqual([['train', 2], ['train', 4], ['eval', 4]]);
    expect(lines[2].samples).toBe(10);
    expect(c.out()).toMatch(/held-out evaluation at step 4 \(10 samples\): .*delta_loss=/);
  });

  test('--policy.path continues from that checkpoint on the same dataset', async () => {
    const c = captureIO();
    const next = path.join(tmp, 'run2');
    const argv = [`--policy.path=${path.join(out, 'checkpoints', 'last', 'pretrained_model')}`, '--dataset.repo_id=local/blocks', `--dataset.root=${root}`, '--dataset.eval_split=0', '--steps=2', '--batch_size=4', `--output_dir=${next}`];
    expect({ code: await runTrain(argv, c.io), err: c.err() }).toEqual({ code: 0, err: expect.not.stringContaining('smolvla-node train:') });
    expect(fs.readlinkSync(path.join(next, 'checkpoints', 'last'))).toBe('000002');
  });

  test('--policy.path with a dataset of other shapes is refused', async () => {
    const c = captureIO();
    const argv = [`--policy.path=${path.join(fixturesDir, 'tiny_delta')}`, '--dataset.repo_id=local/blocks', `--dataset.root=${root}`, `--output_dir=${path.join(tmp, 'run3')}`];
    expect(await runTrain(argv, c.io)).toBe(1);
    expect(c.err()).toContain("dataset 'local/blocks' lacks the policy's camera(s) observation.images.cam0");
  });
});

test('a checkpoint without delta expert loads with the head turned on (fresh delta/CLS tensors)', async () => {
  const dir = path.join(fixturesDir, 'tiny_nodelta_ckpt');
  const config = applyConfigOverrides(await readConfig(dir), { train_delta_expert: true, use_cls_head: true });
  const { model, report } = await loadPolicy(dir, config, { seed: 3 });
  expect(model.config.useClsHead).toBe(true);
  expect(report.initialised).toEqual(expect.arrayContaining(['model.pre_cls_param', 'model.obs_cls_proj.fc1.weight']));
  expect(report.initialised.some((n) => n.startsWith('model.vlm_with_expert.delta_expert.'))).toBe(true);
});
