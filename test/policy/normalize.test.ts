/**
 * Dataset statistics in both LeRobot layouts: the older in-file buffers of tiny_delta
 * and a newer processor-file pair written here by hand in LeRobot's format (policy_preprocessor.json +
 * policy_preprocessor_step_<i>_normalizer_processor.safetensors, the postprocessor likewise). Values
 * are compared exactly: both are float32 arithmetic on the same numbers; actions of a policy loaded
 * from the newer layout match the reference within 1e-4 (whole policy output).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { disposeAll, readConfig, readSafetensors, Tensor, writeSafetensors, type SmolVLAConfig } from '../../lib/index';
import { Normalizer, Preprocessor, readCheckpointStats, SmolVLAPolicy, type RobotObservation, type StatsMap } from '../../lib/policy';
import { expectClose, loadFixture } from '../helpers';
import { sequenceCall, TINY_DELTA } from './fixtures';

const f = Math.fround;
const STATE = 'observation.state';

let tmp: string;
let config: SmolVLAConfig;
let buffers: Map<string, Tensor>;
const vec = (name: string) => Float32Array.from(buffers.get(name)!.toFloat32());

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-norm-'));
  config = await readConfig(TINY_DELTA);
  buffers = (await readSafetensors(path.join(TINY_DELTA, 'model.safetensors'))).tensors;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** tiny_delta without its normalisation buffers, plus `extra` files: a checkpoint in another layout. */
async function strippedCheckpoint(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(TINY_DELTA, 'config.json'), path.join(dir, 'config.json'));
  const kept = new Map([...buffers].filter(([k]) => !k.includes('normalize_')));
  await writeSafetensors(path.join(dir, 'model.safetensors'), kept, { format: 'pt' });
  return dir;
}

/** LeRobot's newer layout, as DataProcessorPipeline.save_pretrained writes it. */
async function writeProcessorFiles(dir: string): Promise<void> {
  const features = { [STATE]: { type: 'STATE', shape: [5] }, 'observation.images.cam0': { type: 'VISUAL', shape: [3, 32, 32] }, action: { type: 'ACTION', shape: [4] } };
  const normMap = { VISUAL: 'IDENTITY', STATE: 'MEAN_STD', ACTION: 'MEAN_STD' };
  const pre = {
    name: 'policy_preprocessor',
    steps: [
      { registry_name: 'rename_observations_processor', config: { rename_map: {} } },
      { registry_name: 'to_batch_processor', config: {} },
      { registry_name: 'smolvla_new_line_processor', config: {} },
      { registry_name: 'tokenizer_processor', config: { max_length: 12, padding: 'longest', padding_side: 'right', tokenizer_name: 'tiny' } },
      { registry_name: 'device_processor', config: { device: 'cpu' } },
      {
        registry_name: 'normalizer_processor',
        config: { eps: 1e-8, features, norm_map: normMap },
        state_file: 'policy_preprocessor_step_5_normalizer_processor.safetensors',
      },
    ],
  };
  const post = {
    name: 'policy_postprocessor',
    steps: [
      {
        registry_name: 'unnormalizer_processor',
        config: { eps: 1e-8, features: { action: features.action }, norm_map: normMap },
        state_file: 'policy_postprocessor_step_0_unnormalizer_processor.safetensors',
      },
      { registry_name: 'device_processor', config: { device: 'cpu' } },
    ],
  };
  fs.writeFileSync(path.join(dir, 'policy_preprocessor.json'), JSON.stringify(pre, null, 2));
  fs.writeFileSync(path.join(dir, 'policy_postprocessor.json'), JSON.stringify(post, null, 2));
  const t = (name: string) => Tensor.from(vec(name), buffers.get(name)!.shape);
  await writeSafetensors(path.join(dir, pre.steps[5]!.state_file!), {
    [`${STATE}.mean`]: t('normalize_inputs.buffer_observation_state.mean'),
    [`${STATE}.std`]: t('normalize_inputs.buffer_observation_state.std'),
    'action.mean': t('normalize_targets.buffer_action.mean'),
    'action.std': t('normalize_targets.buffer_action.std'),
  });
  await writeSafetensors(path.join(dir, post.steps[0]!.state_file!), {
    'action.mean': t('unnormalize_outputs.buffer_action.mean'),
    'action.std': t('unnormalize_outputs.buffer_action.std'),
  });
}

describe('reading statistics', () => {
  it('reads the older in-file buffers (normalize_inputs, normalize_targets, unnormalize_outputs)', async () => {
    const r = await readCheckpointStats(TINY_DELTA, config);
    expect(r.sources).toEqual([path.join(TINY_DELTA, 'model.safetensors')]);
    expect(r.stats.inputs[STATE]!.mean).toEqual(vec('normalize_inputs.buffer_observation_state.mean'));
    expect(r.stats.inputs[STATE]!.std).toEqual(vec('normalize_inputs.buffer_observation_state.std'));
    expect(r.stats.targets.action!.mean).toEqual(vec('normalize_targets.buffer_action.mean'));
    expect(r.stats.outputs.action!.std).toEqual(vec('unnormalize_outputs.buffer_action.std'));
  });

  it('reads the newer processor files to the same numbers, and the policy gives the same actions', async () => {
    const dir = await strippedCheckpoint('processor');
    await writeProcessorFiles(dir);
    const r = await readCheckpointStats(dir, config);
    expect(r.sources.map((s) => path.basename(s))).toEqual([
      'policy_preprocessor_step_5_normalizer_processor.safetensors',
      'policy_postprocessor_step_0_unnormalizer_processor.safetensors',
    ]);
    const old = await readCheckpointStats(TINY_DELTA, config);
    expect(r.stats).toEqual(old.stats);
    expect(r.eps).toBe(1e-8);
    const seq = await loadFixture('policy', 'sequence.safetensors');
    const policy = await SmolVLAPolicy.fromPretrained(dir, { tokenizer: null });
    const out = await policy.predictActionChunk(sequenceCall(seq, 0), { noise: seq.get('in.call0.noise') });
    expectClose(Tensor.from(Float32Array.from(out.actions.flatMap((a) => [...a])), [2, 8, 4]), seq.get('out.call0.actions'), 1e-4, 'actions');
    // Without the JSON the state files are still found by LeRobot's name pattern.
    fs.rmSync(path.join(dir, 'policy_preprocessor.json'));
    expect((await readCheckpointStats(dir, config)).stats.inputs).toEqual(old.stats.inputs);
  });

  it('treats never-filled (+inf) buffers as missing and refuses MEAN_STD without statistics unless given explicitly', async () => {
    const dir = await strippedCheckpoint('inf');
    const inf = (name: string) => Tensor.from(new Float32Array(buffers.get(name)!.numel).fill(Infinity), buffers.get(name)!.shape);
    const withInf = new Map([...buffers]);
    for (const k of buffers.keys()) if (k.includes('normalize_')) withInf.set(k, inf(k));
    await writeSafetensors(path.join(dir, 'model.safetensors'), withInf, { format: 'pt' });
    await expect(SmolVLAPolicy.fromPretrained(dir, { tokenizer: null })).rejects.toThrow(
      /normalisation statistics missing for observation\.state \(MEAN_STD needs mean and std\), action \(MEAN_STD needs mean and std\)/,
    );
    const stats: StatsMap = {
      [STATE]: { mean: vec('normalize_inputs.buffer_observation_state.mean'), std: vec('normalize_inputs.buffer_observation_state.std') },
      action: { mean: vec('unnormalize_outputs.buffer_action.mean'), std: vec('unnormalize_outputs.buffer_action.std') },
    };
    const policy = await SmolVLAPolicy.fromPretrained(dir, { tokenizer: null, stats });
    expect(policy.normalizer.stats.inputs[STATE]!.mean).toEqual(stats[STATE]!.mean);
    expect(policy.usesIdentityStats).toBe(false);
  });
});

/**
 * The normaliser's statistics as the policy applies them (natively, in one preprocessing call):
 * the normalised state of two robots whose rows are x's two halves, and un-normalised action rows.
 * The training targets of the same call (action rows `a` at every chunk step) must equal the JS
 * normalizeTarget the serving adapter uses, bit for bit.
 */
async function applied(n: Normalizer, x: Float32Array, a: Float32Array): Promise<{ state: Float32Array; actions: Float32Array }> {
  const pre = new Preprocessor(n.config, n, null);
  const chunk = Float32Array.from({ length: 8 * 4 }, (_, i) => a[i % 4]!);
  const robot = (i: number): RobotObservation => ({
    'observation.images.cam0': { data: new Uint8Array(12), width: 2, height: 2 },
    'observation.state': x.slice(i * 5, (i + 1) * 5),
    'observation.language.tokens': [1],
    action: chunk,
  });
  const p = await pre.prepare([robot(0), robot(1)], { withActions: true });
  const padded = p.observation.state.toFloat32();
  const targets = p.actions!.toFloat32();
  disposeAll(p);
  const js = n.normalizeTarget('action', a);
  expect(Array.from(targets.subarray(0, 6))).toEqual([...js, 0, 0]);
  const model = Tensor.from(Float32Array.from([...a, 0, 0]), [1, 1, 6]);
  const [actions] = await pre.splitActions(model);
  model.dispose();
  // Rows of max_state_dim 6: the real 5 values, then the zero padding.
  expect([padded[5], padded[11]]).toEqual([0, 0]);
  return { state: Float32Array.from([...padded.subarray(0, 5), ...padded.subarray(6, 11)]), actions: actions! };
}

describe('Normalizer', () => {
  const stats = (): StatsMap => ({
    [STATE]: { mean: Float32Array.from([0.1, -2, 3.3, 0, 1]), std: Float32Array.from([0.5, 1.5, 2, 0, 3]), min: Float32Array.from([-1, -3, 0, 2, 2]), max: Float32Array.from([1, 5, 1, 2, 4]) },
    action: { mean: Float32Array.from([1, 2, 3, 4]), std: Float32Array.from([0.25, 2, 1, 0.1]), min: Float32Array.from([0, 0, 0, -1]), max: Float32Array.from([1, 2, 4, 1]) },
  });
  const x = Float32Array.from([0.3, -1, 7, 0.5, 2.5, 1, 1, 1, 1, 1]);

  it('MEAN_STD: (x - mean) / (std + 1e-8) forward, x * std + mean back (no eps), in float32', async () => {
    const n = new Normalizer(config, { inputs: stats(), targets: stats(), outputs: stats() });
    const s = stats()[STATE]!;
    const a = Float32Array.from([0.5, -1, 2, 0.25]);
    const { state: y, actions: back } = await applied(n, x, a);
    for (let i = 0; i < x.length; i++) {
      const j = i % 5;
      expect(y[i]).toBe(f(f(x[i]! - s.mean![j]!) / f(s.std![j]! + 1e-8)));
    }
    expect(Number.isFinite(y[3]!)).toBe(true); // std 0 divides by 1e-8, as LeRobot
    const st = stats().action!;
    a.forEach((v, i) => expect(back[i]).toBe(f(f(v * st.std![i]!) + st.mean![i]!)));
    expect(n.modeOf(STATE)).toBe('MEAN_STD');
    expect(n.modeOf('observation.images.cam0')).toBe('IDENTITY');
  });

  it('MIN_MAX: ((x - min) / (max - min + eps)) * 2 - 1 forward, (x + 1) / 2 * (max - min) + min back', async () => {
    const mm = { ...config, normalizationMapping: { VISUAL: 'IDENTITY' as const, STATE: 'MIN_MAX' as const, ACTION: 'MIN_MAX' as const } };
    const n = new Normalizer(mm, { inputs: stats(), targets: stats(), outputs: stats() });
    const s = stats()[STATE]!;
    const a = Float32Array.from([-1, 1, 0, 0.5]);
    const { state: y, actions: back } = await applied(n, x, a);
    for (let i = 0; i < x.length; i++) {
      const j = i % 5;
      expect(y[i]).toBe(f(f(f(f(x[i]! - s.min![j]!) / f(f(s.max![j]! - s.min![j]!) + 1e-8)) * 2) - 1));
    }
    const st = stats().action!;
    expect(Array.from(back)).toEqual(
      Array.from(a, (v, i) => f(f(f(f(v + 1) / 2) * f(st.max![i]! - st.min![i]!)) + st.min![i]!)),
    );
  });

  it('validates statistics and modes with messages naming the feature', () => {
    const bad = stats();
    bad[STATE]!.std = Float32Array.from([1, 2]);
    expect(() => new Normalizer(config, { inputs: bad, targets: bad, outputs: bad })).toThrow(/statistics of observation\.state: std has 2 values, the feature has 5/);
    const nan = stats();
    nan.action!.mean![2] = NaN;
    expect(() => new Normalizer(config, { inputs: nan, targets: nan, outputs: nan })).toThrow(/statistics of action: mean\[2\] is NaN/);
    const q = { ...config, normalizationMapping: { ...config.normalizationMapping, STATE: 'QUANTILES' as const } };
    expect(() => new Normalizer(q, { inputs: stats(), targets: stats(), outputs: stats() })).toThrow(/STATE uses QUANTILES, which this package does not support/);
  });

  it('falls back to identity with a warning flag when create() gets no statistics', async () => {
    const policy = await SmolVLAPolicy.create(config);
    expect(policy.usesIdentityStats).toBe(true);
    expect(policy.normalizer.missing.sort()).toEqual(['action', STATE]);
    expect(policy.warnings.join('\n')).toMatch(/no normalisation statistics for observation\.state: identity is used/);
    expect(Array.from((await applied(policy.normalizer, x, new Float32Array(4))).state)).toEqual(Array.from(x));
  });
});

describe('writing statistics', () => {
  it('writes the older buffers into a saved checkpoint, which reads back to the same statistics', async () => {
    const policy = await SmolVLAPolicy.fromPretrained(TINY_DELTA, { tokenizer: null });
    const tensors = policy.normalizer.toTensors();
    expect(Object.keys(tensors).sort()).toEqual([
      'normalize_inputs.buffer_observation_state.mean',
      'normalize_inputs.buffer_observation_state.std',
      'normalize_targets.buffer_action.mean',
      'normalize_targets.buffer_action.std',
      'unnormalize_outputs.buffer_action.mean',
      'unnormalize_outputs.buffer_action.std',
    ]);
    for (const [k, t] of Object.entries(tensors)) expect(t.shape).toEqual(buffers.get(k)!.shape);
    const dir = path.join(tmp, 'saved');
    await policy.save(dir);
    const back = await readCheckpointStats(dir, config);
    expect(back.stats).toEqual((await readCheckpointStats(TINY_DELTA, config)).stats);
  });
});
