/**
 * Checkpoints and training states between this project and Python LeRobot, both ways, against the
 * PyTorch reference run live (test/reference/lerobot_interop.py, /usr/bin/python3):
 *  - a checkpoint saved here loads the way LeRobot loads one (config.json keys checked against
 *    LeRobot's SmolVLAConfig fields, state-dict names, statistics in the processor files) and the
 *    reference reproduces this project's chunk (float32, whole output: relative error <= 1e-4);
 *  - the optimizer state written here loads into torch.optim.AdamW.load_state_dict with LeRobot's
 *    param-group and scheduler keys, and one AdamW step from it lands on this project's next step
 *    (<= 1e-5 relative);
 *  - a checkpoint and training_state the reference wrote as LeRobot does (no backbone in config.json,
 *    statistics only in processor files, an unused lm_head, torch's AdamW state) load here: same chunk,
 *    same statistics, same optimizer moments.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { runTrain } from '../../lib/cli/train';
import { SmolVLAModel } from '../../lib/model';
import { readCheckpointStats } from '../../lib/policy';
import { readSafetensors, writeSafetensors } from '../../lib/safetensors';
import { Tensor } from '../../lib/tensor';
import { loadOptimizerState, type CheckpointPaths } from '../../lib/train/checkpoint';
import { Optimizer } from '../../lib/train/optimizer';
import { expectClose, loadFixture } from '../helpers';
import { observationOf } from '../modelFixtures';
import { captureIO, tempDir } from './helpers';

const REFERENCE = path.join(__dirname, '..', 'reference');

function python(...args: string[]): void {
  execFileSync('/usr/bin/python3', ['lerobot_interop.py', ...args], { cwd: REFERENCE, stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
}

function randomTensor(shape: number[], seed: number, map: (u: number) => number): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = map(s / 2 ** 32);
  }
  return Tensor.from(out, shape);
}

describe('LeRobot interop', () => {
  const tmp = tempDir('interop');
  const run = path.join(tmp, 'run');
  const ckpt = (step: number) => path.join(run, 'checkpoints', String(step).padStart(6, '0'));

  beforeAll(async () => {
    const c = captureIO();
    const argv = ['--policy.preset=tiny', '--steps=2', '--batch_size=2', '--save_freq=1', '--log_freq=1', '--dataset.eval_split=0', '--seed=3', `--output_dir=${run}`];
    const code = await runTrain(argv, c.io);
    if (code !== 0) throw new Error(`training failed: ${c.err()}`);
  });

  test('config.json holds only LeRobot keys; the reference loads the checkpoint and reproduces the chunk', async () => {
    const dir = path.join(ckpt(2), 'pretrained_model');
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(config.vlm_backbone).toBeUndefined();
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'smolvla_node.json'), 'utf8')).vlm_backbone).toBeDefined();
    const { model } = await SmolVLAModel.fromPretrained(dir);
    const c = model.config;
    const io = new Map<string, Tensor>([
      ['in.images', randomTensor([1, 1, 3, ...c.resizeImgsWithPadding], 1, (u) => 2 * u - 1)],
      ['in.img_masks', Tensor.fromBools([1], [1, 1])],
      ['in.lang_tokens', Tensor.from(BigInt64Array.from([5n, 17n, 99n, 200n, 3n, 0n]), [1, 6])],
      ['in.lang_masks', Tensor.fromBools([1, 1, 1, 1, 1, 0], [1, 6])],
      ['in.state', randomTensor([1, c.maxStateDim], 2, (u) => u - 0.5)],
      ['in.noise', randomTensor([1, c.chunkSize, c.maxActionDim], 3, (u) => 2 * u - 1)],
    ]);
    const ioFile = path.join(tmp, 'io.safetensors');
    await writeSafetensors(ioFile, io);
    const out = path.join(tmp, 'python_chunk.safetensors');
    python('load', dir, ioFile, out);
    const images = io.get('in.images')!;
    const obs = {
      images: [Tensor.from(images.toFloat32(), [1, 3, ...c.resizeImgsWithPadding])],
      imgMasks: [Tensor.fromBools([1], [1])],
      langTokens: io.get('in.lang_tokens')!,
      langMasks: io.get('in.lang_masks')!,
      state: io.get('in.state')!,
    };
    const { actions } = await model.sample(obs, { noise: io.get('in.noise')! });
    const expected = (await readSafetensors(out)).tensors.get('out.actions')!;
    expectClose(actions, expected, 1e-4, 'chunk of the checkpoint saved here, sampled by the reference');
  });

  test("torch.optim.AdamW loads this project's optimizer state and one step matches the next checkpoint", () => {
    const out = path.join(tmp, 'adamw.json');
    python('adamw', ckpt(1), ckpt(2), out);
    const r = JSON.parse(fs.readFileSync(out, 'utf8')) as { param: number; exp_avg_sq: number; count: number };
    expect(r.count).toBeGreaterThan(10);
    expect(r.param).toBeLessThanOrEqual(1e-5);
    expect(r.exp_avg_sq).toBeLessThanOrEqual(1e-5);
  });

  test('a checkpoint and training_state written by the reference as LeRobot writes them load here', async () => {
    const dir = path.join(tmp, 'from_python');
    python('save', dir, '11');
    const expected = (await readSafetensors(path.join(dir, 'expected.safetensors'))).tensors;
    const pretrained = path.join(dir, 'pretrained_model');
    const { model, report } = await SmolVLAModel.fromPretrained(pretrained);
    expect(report.unused).toEqual(['model.vlm_with_expert.vlm.lm_head.weight']);
    expect(report.initialised).toEqual([]);
    const io = await loadFixture('tiny_delta', 'io.safetensors');
    const { actions } = await model.sample(observationOf(io), { noise: io.get('in.noise') });
    expectClose(actions, expected.get('out.actions')!, 1e-4, 'chunk of the reference-saved checkpoint');

    const { stats } = await readCheckpointStats(pretrained, model.config);
    for (const [role, key] of [['inputs', 'observation.state'], ['targets', 'action'], ['outputs', 'action']] as const) {
      for (const stat of ['mean', 'std'] as const) {
        expect(Array.from(stats[role][key]![stat]!)).toEqual(Array.from(expected.get(`stats.${key}.${stat}`)!.toFloat32()));
      }
    }

    const optimizer = await Optimizer.create(model);
    const paths = { trainingStateDir: path.join(dir, 'training_state') } as CheckpointPaths;
    await loadOptimizerState(optimizer, model, paths);
    expect(optimizer.steps).toBe(1);
    const saved = path.join(tmp, 'native_state.safetensors');
    await optimizer.saveState(saved);
    const moments = (await readSafetensors(saved)).tensors;
    const names = [...expected.keys()].filter((k) => k.startsWith('exp_avg'));
    expect(names.length).toBeGreaterThan(10);
    expect(names.sort()).toEqual([...moments.keys()].filter((k) => k.startsWith('exp_avg')).sort());
    for (const name of names) expectClose(moments.get(name)!, expected.get(name)!, 0, name);
  });
});
