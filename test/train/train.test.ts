/** A short synthetic training run: the loss falls, the checkpoint layout is LeRobot's, metrics and report are written. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { readSafetensors } from '../../lib/safetensors';
import { SmolVLAModel } from '../../lib/model';
import { SmolVLAPolicy } from '../../lib/policy';
import { stepIdentifier } from '../../lib/train/checkpoint';
import { train, type StepInfo, type TrainResult } from '../../lib/train/loop';
import { splitEpisodes } from '../../lib/train/split';
import { tempDir, tinySetup, type Tiny } from './helpers';

const STEPS = 30;

describe('training the delta expert on the synthetic dataset', () => {
  let tiny: Tiny;
  let out: string;
  let result: TrainResult;
  const steps: StepInfo[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    tiny = await tinySetup();
    out = tempDir('run');
    const split = splitEpisodes(tiny.dataset, 0.1);
    result = await train({
      model: tiny.model,
      dataset: split.train,
      evalDataset: split.heldOut,
      toBatch: tiny.toBatch,
      steps: STEPS,
      batchSize: 8,
      seed: 3,
      outputDir: out,
      logFreq: 5,
      saveFreq: 20,
      normalizer: tiny.normalizer,
      tokenizer: tiny.tokenizer,
      trainConfig: { note: 'test' },
      onStep: (s) => steps.push(s),
      onLog: (l) => logs.push(l),
    });
  });

  test('the loss falls (mean of the first 5 steps vs the last 5)', () => {
    expect(result.status).toBe('completed');
    expect(result.step).toBe(STEPS);
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    const mean = (xs: StepInfo[]) => xs.reduce((a, s) => a + (s.metrics.delta_loss as number), 0) / xs.length;
    const first = mean(steps.slice(0, 5));
    const last = mean(steps.slice(-5));
    expect(last).toBeLessThan(0.8 * first);
    for (const s of steps) {
      for (const key of ['delta_loss', 'delta_losses_after_forward', 'delta_losses_after_in_ep_bound', 'delta_losses_after_rm_padding', 'vicreg_invariance', 'vicreg_variance', 'vicreg_covariance', 'cls_cosine']) {
        expect(Number.isFinite(s.metrics[key])).toBe(true);
      }
    }
    expect(logs.some((l) => l.startsWith('warning: batch size 8 < 32'))).toBe(true);
    expect(logs.filter((l) => l.startsWith('warning:'))).toHaveLength(1);
    expect(logs.some((l) => l.startsWith('Auto-scaling LR scheduler: num_training_steps (30) < num_decay_steps (1000)'))).toBe(true);
  });

  test("checkpoints follow LeRobot's layout and `last` points at the newest", () => {
    expect(stepIdentifier(20, 30)).toBe('000020');
    expect(stepIdentifier(20, 1234567)).toBe('0000020');
    const ck = path.join(out, 'checkpoints');
    expect(fs.readdirSync(ck).sort()).toEqual(['000020', '000030', 'last']);
    expect(fs.readlinkSync(path.join(ck, 'last'))).toBe('000030');
    expect(result.lastCheckpoint).toBe(path.join(ck, '000030'));
    for (const id of ['000020', '000030']) {
      expect(fs.readdirSync(path.join(ck, id, 'pretrained_model')).sort()).toEqual([
        'config.json',
        'model.safetensors',
        'policy_postprocessor.json',
        'policy_postprocessor_step_0_unnormalizer_processor.safetensors',
        'policy_preprocessor.json',
        'policy_preprocessor_step_5_normalizer_processor.safetensors',
        'smolvla_node.json',
        'tokenizer.json',
        'tokenizer_config.json',
        'train_config.json',
      ]);
      expect(fs.readdirSync(path.join(ck, id, 'training_state')).sort()).toEqual([
        'loader_state.json',
        'metrics_state.json',
        'optimizer_param_groups.json',
        'optimizer_param_names.json',
        'optimizer_state.safetensors',
        'rng_state.safetensors',
        'scheduler_state.json',
        'training_step.json',
      ]);
    }
    const state = (f: string) => JSON.parse(fs.readFileSync(path.join(ck, '000020', 'training_state', f), 'utf8'));
    expect(state('training_step.json')).toEqual({ step: 20, dp_world_size: 1, batch_size: 8, grad_accum_steps: 1 });
    expect(state('scheduler_state.json')).toMatchObject({ last_epoch: 20, _step_count: 21, lr_lambdas: [null] });
    expect(state('loader_state.json')).toMatchObject({ seed: 3, batchSize: 8, epoch: 0, position: 160 });
    expect(JSON.parse(fs.readFileSync(path.join(ck, '000020', 'pretrained_model', 'train_config.json'), 'utf8'))).toEqual({ note: 'test' });
  });

  test('a checkpoint loads standalone, with the normalisation statistics next to the weights', async () => {
    const dir = path.join(out, 'checkpoints', 'last', 'pretrained_model');
    const { model, report } = await SmolVLAModel.fromPretrained(dir);
    expect(report.initialised).toEqual([]);
    expect(model.config.trainDeltaExpert).toBe(true);
    const { tensors } = await readSafetensors(path.join(dir, 'model.safetensors'));
    const stats = tiny.dataset.stats;
    expect([...tensors.get('normalize_inputs.buffer_observation_state.mean')!.toFloat32()]).toEqual([...stats['observation.state']!.mean]);
    expect([...tensors.get('normalize_targets.buffer_action.mean')!.toFloat32()]).toEqual([...stats.action!.mean]);
    expect([...tensors.get('unnormalize_outputs.buffer_action.std')!.toFloat32()]).toEqual([...stats.action!.std]);
    // The saved weights are the trained ones.
    const name = (await tiny.model.trainableParameters())[0]!.name;
    expect([...(await model.parameters([name]))[name]!.toFloat32()]).toEqual([...(await tiny.model.parameters([name]))[name]!.toFloat32()]);
  });

  test('the policy loads a checkpoint on its own (statistics and tokenizer included) and predicts', async () => {
    const policy = await SmolVLAPolicy.fromPretrained(path.join(out, 'checkpoints', 'last', 'pretrained_model'));
    const sample = await tiny.dataset.get(3);
    const image = sample.images['observation.images.top']!;
    const r = await policy.predictActionChunk({ 'observation.images.top': { data: image.data, shape: image.shape }, 'observation.state': sample.state, task: sample.task });
    expect(r.actions).toHaveLength(1);
    expect(r.actions[0]!.length).toBe(10 * 6);
    expect(r.actions[0]!.every(Number.isFinite)).toBe(true);
  });

  test('metrics.jsonl holds every monitoring value each log_freq steps, then the held-out evaluation', () => {
    const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const trainLines = lines.filter((l) => l.kind === 'train');
    expect(trainLines.map((l) => l.step)).toEqual([5, 10, 15, 20, 25, 30]);
    for (const key of ['delta_loss', 'delta_losses_after_forward', 'delta_losses_after_in_ep_bound', 'delta_losses_after_rm_padding', 'vicreg', 'vicreg_invariance', 'vicreg_variance', 'vicreg_covariance', 'cls_cosine', 'lr', 'grad_norm', 'steps_per_s', 'epoch', 'samples']) {
      expect(typeof trainLines[0][key]).toBe('number');
    }
    expect(trainLines[1].delta_loss).toBe(steps[9]!.metrics.delta_loss);
    const evals = lines.filter((l) => l.kind === 'eval');
    expect(evals).toHaveLength(1);
    expect(evals[0]).toMatchObject({ step: 30, samples: 40 });
    expect(result.evaluation?.samples).toBe(40);
    expect(result.evaluation?.metrics.delta_loss).toBe(evals[0].delta_loss);
    expect(Number.isFinite(evals[0].vicreg)).toBe(true);
  });

  test('training_report.html is one self-contained page with the curves and the CLS projection view', () => {
    const html = fs.readFileSync(path.join(out, 'training_report.html'), 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|src=|href=/);
    for (const title of ['Loss', 'VICReg terms (train)', 'Cosine similarity of obs / act CLS projections', 'Learning rate', 'Held-out observation CLS projections (PCA), by episode']) {
      expect(html).toContain(title);
    }
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(6);
    expect(html).toContain('completed');
  });
});
