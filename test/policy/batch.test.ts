/**
 * Robot data -> Observation against LeRobot's preprocessing computed by the
 * PyTorch reference (fixture policy/preprocess.safetensors, kind parity): uint8 HWC frames of odd sizes
 * (one with a time axis) resized with padding to 32 x 32 and mapped to [-1, 1], states normalised with
 * tiny_delta's statistics and zero-padded. Tolerance: relative error <= 1e-5 (single operations).
 * The rest checks key aliases, errors naming keys, empty cameras, padding masks, stacking and the
 * trainer's batch.
 */
import { disposeAll, Tensor } from '../../lib/index';
import type { DatasetSample } from '../../lib/data';
import { disposeBatch, type RobotObservation, type TensorBatch } from '../../lib/policy';
import { expectClose, loadFixture, type Fixture } from '../helpers';
import { select } from '../modelFixtures';
import { chwOf, frameOf, rowsOf, tinySetup, type TinySetup } from './fixtures';

const CAM = 'observation.images.cam0';
const OP_TOL = 1e-5;

let fx: Fixture;
let t: TinySetup;
let robots: RobotObservation[];
beforeAll(async () => {
  fx = await loadFixture('policy', 'preprocess.safetensors');
  t = await tinySetup();
  robots = [0, 1, 2].map((i) => {
    const st = fx.get(`in.r${i}.state`);
    return {
      [CAM]: frameOf(fx.get(`in.r${i}.frame`)),
      'observation.state': st.shape.length === 2 ? { data: st.toFloat32(), shape: st.shape } : st.toFloat32(),
      'observation.language.tokens': [9, 10, 11],
    };
  });
});

function stackedImages(obs: { images: Tensor[] }): Tensor {
  return obs.images[0]!;
}

describe('LeRobot preprocessing (parity)', () => {
  it(`matches resize_with_pad, x*2-1 and MEAN_STD state normalisation within ${OP_TOL}`, async () => {
    const p = await t.pre.prepare(robots);
    expect(p.size).toBe(3);
    expectClose(stackedImages(p.observation), fx.get('out.images'), OP_TOL, 'images');
    expectClose(p.observation.state, fx.get('out.state'), OP_TOL, 'state');
    expect(p.observation.imgMasks[0]!.toNumbers()).toEqual([1, 1, 1]);
    expect(p.observation.langTokens.shape).toEqual([3, 3]);
    disposeBatch(p);
  });

  it('gives the same result for float CHW [0, 1] images (with a time axis) and for the seeds\' obs. keys', async () => {
    const floats = robots.map((r, i) => {
      const f = frameOf(fx.get(`in.r${i}.frame`));
      const chw = chwOf(f);
      const shape = [3, f.height, f.width];
      return {
        ...r,
        [CAM]: i === 2 ? { data: Float32Array.from([...chw, ...chw]), shape: [2, ...shape] } : { data: chw, shape },
      };
    });
    const aliased = robots.map((r) => ({
      'obs.images.cam0': r[CAM],
      'obs.state': r['observation.state'],
      'obs.language.tokens': r['observation.language.tokens'],
    }));
    const ref = await t.pre.prepare(robots);
    for (const batch of [floats, aliased]) {
      const p = await t.pre.prepare(batch);
      expectClose(stackedImages(p.observation), stackedImages(ref.observation), OP_TOL, 'images');
      expect(p.observation.state.toNumbers()).toEqual(ref.observation.state.toNumbers());
      disposeBatch(p);
    }
    disposeBatch(ref);
  });

  it('accepts a LeRobot tensor batch (B, T, 3, H, W), (B, D) state, one task for all samples', async () => {
    const frame = chwOf(frameOf(fx.get('in.r0.frame')));
    const f = frameOf(fx.get('in.r0.frame'));
    const imgs = Tensor.from(Float32Array.from([...frame, ...frame, ...frame, ...frame]), [2, 2, 3, f.height, f.width]);
    const state = Tensor.from(Float32Array.from([...robots[0]!['observation.state'] as Float32Array, ...robots[1]!['observation.state'] as Float32Array]), [2, 5]);
    const batch: TensorBatch = { [CAM]: imgs, 'observation.state': state, task: 'pick up the cube', [`${CAM}_padding_mask`]: Tensor.fromBools([true, false], [2]) };
    const p = await t.pre.prepare(batch);
    const ref = await t.pre.prepare([0, 1].map((i) => ({ ...robots[i], [CAM]: robots[0]![CAM], 'observation.language.tokens': undefined, task: 'pick up the cube' })));
    expectClose(stackedImages(p.observation), stackedImages(ref.observation), OP_TOL, 'images');
    expect(p.observation.state.toNumbers()).toEqual(ref.observation.state.toNumbers());
    expect(p.observation.langTokens.toNumbers()).toEqual(ref.observation.langTokens.toNumbers());
    expect(p.observation.imgMasks[0]!.toNumbers()).toEqual([1, 0]);
    disposeAll([p, ref, imgs, state]);
  });
});

describe('errors name the key', () => {
  const one = (): RobotObservation => ({ ...robots[0]! });
  const cases: Array<[string, (o: RobotObservation) => void, RegExp]> = [
    ['an unknown camera', (o) => (o['observation.images.wrist'] = o[CAM]), /observation\.images\.wrist: not a camera of this policy; the config's cameras are observation\.images\.cam0/],
    ['a short frame', (o) => (o[CAM] = { data: new Uint8Array(10), width: 37, height: 24 }), /observation\.images\.cam0: 1 frame\(s\) of 37 x 24 x 3 need 2664 bytes, got 10/],
    ['a NaN in a float image', (o) => (o[CAM] = { data: Float32Array.from([0.5, NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), shape: [3, 2, 2] }), /observation\.images\.cam0: NaN at index 1/],
    ['a 0-255 float image', (o) => (o[CAM] = { data: new Float32Array(12).fill(200), shape: [3, 2, 2] }), /observation\.images\.cam0: value 200 .* outside \[0, 1\]/],
    ['HWC floats', (o) => (o[CAM] = { data: new Float32Array(12), shape: [2, 2, 3] }), /observation\.images\.cam0: expected 3 channels first/],
    ['a wrong image type', (o) => (o[CAM] = [1, 2, 3] as never), /observation\.images\.cam0: expected \{data: Uint8Array, width, height\}/],
    ['a NaN state', (o) => (o['observation.state'] = [0, 1, NaN, 2, 3]), /observation\.state: NaN at index 2/],
    ['an infinite state', (o) => (o['obs.state'] = [0, 1, 2, Infinity, 3]) && delete o['observation.state'], /obs\.state: non-finite value Infinity at index 3/],
    ['a state beyond float32', (o) => (o['observation.state'] = [0, 1, 1e39, 2, 3]), /observation\.state: value 1e\+39 \(beyond float32's range\) at index 2/],
    ['a state of the wrong width', (o) => (o['observation.state'] = [0, 1, 2]), /observation\.state: expected 5 values \(input_features\), got 3/],
    ['no state', (o) => delete o['observation.state'], /observation\.state: missing/],
    ['no language', (o) => delete o['observation.language.tokens'], /task: missing: give the task string or observation\.language\.tokens/],
    ['a token outside the vocabulary', (o) => (o['observation.language.tokens'] = [3, 96]), /observation\.language\.tokens: token 1 must be an integer in \[0, 96\)/],
    ['a mismatched attention mask', (o) => (o['observation.language.attention_mask'] = [1, 1]), /observation\.language\.attention_mask: expected 3 flags, got 2/],
    ['a key and its alias', (o) => (o['obs.state'] = o['observation.state']), /obs\.state: given twice \(also as 'observation\.state'\)/],
    ['an unknown key', (o) => (o['observation.gripper'] = 1), /observation\.gripper: unknown batch key/],
    ['a padding mask of an unknown camera', (o) => (o['observation.images.top_padding_mask'] = true), /observation\.images\.top_padding_mask: padding mask of an unknown camera/],
    ['a non-boolean padding mask', (o) => (o[`${CAM}_padding_mask`] = 'yes' as never), /observation\.images\.cam0_padding_mask: expected a boolean/],
    ['an action of the wrong size', (o) => (o.action = new Float32Array(5)), /action: expected chunk_size x action_dim = 8 x 4 = 32 values, got 5/],
    ['both padding flag names', (o) => ((o.action = new Float32Array(32)), (o.action_is_pad = new Array(8).fill(0)), (o.actions_id_pad = new Array(8).fill(0))), /actions_id_pad: given together with 'action_is_pad'/],
    ['no camera at all', (o) => delete o[CAM], /no camera image; expected at least one of observation\.images\.cam0/],
  ];
  it.each(cases)('rejects %s', async (_, edit, message) => {
    const o = one();
    edit(o);
    await expect(t.pre.prepare(o)).rejects.toThrow(message);
  });

  it('names the robot in a list and the key in a tensor batch', async () => {
    const bad = [robots[0]!, { ...robots[1]!, 'observation.state': [1, 2, 3, 4, NaN] }];
    await expect(t.pre.prepare(bad)).rejects.toThrow(/^robot 1: observation\.state: NaN at index 4/);
    const u8 = Tensor.from(new Uint8Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
    await expect(t.pre.prepare({ [CAM]: u8, 'observation.state': Tensor.from(new Float32Array(10), [2, 5]), task: 'x' })).rejects.toThrow(
      /observation\.images\.cam0: expected a float32 tensor in \[0, 1\], got uint8/,
    );
    const img = Tensor.from(new Float32Array(3 * 3 * 4 * 4), [3, 3, 4, 4]);
    await expect(t.pre.prepare({ [CAM]: img, 'observation.state': Tensor.from(new Float32Array(10), [2, 5]), task: 'x' })).rejects.toThrow(
      /observation\.state: batch size 2 differs from the other entries' 3/,
    );
    await expect(t.pre.prepare({ [CAM]: img, 'observation.state': Tensor.from(new Float32Array(15), [3, 5]), task: ['a', 'b'] })).rejects.toThrow(
      /task: expected 1 or 3 task strings, got 2/,
    );
    disposeAll([u8, img]);
  });

  it('needs a tokenizer for task strings and says where it looked', async () => {
    const { Preprocessor } = await import('../../lib/policy');
    const pre = new Preprocessor(t.config, t.normalizer, { missing: 'no tokenizer.json found for X' });
    await expect(pre.prepare({ ...robots[0]!, 'observation.language.tokens': undefined, task: 'pick' })).rejects.toThrow(
      /task: a task string needs the VLM's tokenizer .*no tokenizer\.json found for X/,
    );
  });
});

describe('cameras', () => {
  it('fills missing cameras up to empty_cameras with -1 images of mask 0, after the present ones', async () => {
    const s = await tinySetup({ emptyCameras: 1 });
    const p = await s.pre.prepare(robots.slice(0, 2));
    expect(p.observation.images).toHaveLength(2);
    expect(Array.from(new Set(p.observation.images[1]!.toNumbers()))).toEqual([-1]);
    expect(p.observation.images[1]!.shape).toEqual([2, 3, 32, 32]);
    expect(p.observation.imgMasks.map((m) => m.toNumbers())).toEqual([[1, 1], [0, 0]]);
    disposeBatch(p);
  });

  it('counts the empty_camera_<i> inputs among the missing and errors on a real camera missing beyond them', async () => {
    const base = await tinySetup();
    const inputFeatures = { ...base.config.inputFeatures, 'observation.images.cam1': { type: 'VISUAL' as const, shape: [3, 32, 32] } };
    const s = await tinySetup({ inputFeatures, emptyCameras: 1 });
    const both = { ...robots[0]!, 'observation.images.cam1': robots[1]![CAM] };
    const p = await s.pre.prepare(both);
    expect(p.observation.images).toHaveLength(3);
    expect(p.observation.imgMasks.map((m) => m.toNumbers())).toEqual([[1], [1], [0]]);
    disposeBatch(p);
    const onlyCam1 = { ...both, [CAM]: undefined };
    await expect(s.pre.prepare(onlyCam1)).rejects.toThrow(
      /^observation\.images\.cam0: camera missing from the batch; the config has 3 camera\(s\) and empty_cameras = 1 placeholder\(s\) for missing ones, 2 are missing/,
    );
  });

  it('puts present cameras first, then the placeholders (LeRobot order)', async () => {
    const base = await tinySetup();
    // cam0 is declared after the placeholder key here, so "present first" reorders them
    const inputFeatures = { 'observation.images.empty_camera_0': { type: 'VISUAL' as const, shape: [3, 32, 32] }, ...base.config.inputFeatures };
    const s = await tinySetup({ inputFeatures, emptyCameras: 1 });
    expect(s.pre.spec.cameras).toEqual(['observation.images.empty_camera_0', CAM]);
    const p = await s.pre.prepare(robots[0]!);
    const ref = await t.pre.prepare(robots[0]!);
    expect(p.observation.images[0]!.toNumbers()).toEqual(ref.observation.images[0]!.toNumbers());
    expect(p.observation.imgMasks.map((m) => m.toNumbers())).toEqual([[1], [0]]);
    disposeAll([p, ref]);
  });

  it('honours <camera>_padding_mask and masks a camera only one robot lacks', async () => {
    const base = await tinySetup();
    const inputFeatures = { ...base.config.inputFeatures, 'observation.images.cam1': { type: 'VISUAL' as const, shape: [3, 32, 32] } };
    const s = await tinySetup({ inputFeatures });
    const batch: RobotObservation[] = [
      { ...robots[0]!, 'observation.images.cam1': robots[1]![CAM], [`${CAM}_padding_mask`]: false },
      { ...robots[1]!, 'obs.images.cam1_padding_mask': 2 },
    ];
    await expect(s.pre.prepare(batch)).rejects.toThrow(/robot 1: obs\.images\.cam1_padding_mask: expected a boolean/);
    batch[1] = { ...robots[1]!, 'obs.images.cam1_padding_mask': true };
    const p = await s.pre.prepare(batch);
    expect(p.observation.imgMasks.map((m) => m.toNumbers())).toEqual([[0, 1], [1, 0]]);
    // robot 1 has no cam1 image: its slot is -1, robot 0's is robot 1's frame as robot 0 would see it
    const cam1 = rowsOf(p.observation.images[1]!);
    expect(new Set(cam1[1])).toEqual(new Set([-1]));
    const alone = await s.pre.prepare({ ...robots[1]!, 'observation.images.cam1': robots[1]![CAM] });
    expect(Array.from(cam1[0]!)).toEqual(Array.from(rowsOf(alone.observation.images[1]!)[0]!));
    disposeAll([p, alone]);
  });
});

describe('language and stacking', () => {
  it('tokenises tasks with the newline and pads to the longest or to tokenizer_max_length', async () => {
    const task = (s: string) => ({ ...robots[0]!, 'observation.language.tokens': undefined, task: s });
    const pick = t.tokenizer.encode('pick up the cube\n');
    const p = await t.pre.prepare([task('pick up the cube'), task('pickup')]);
    expect(p.observation.langTokens.shape).toEqual([2, pick.length]);
    expect(rowsOf(p.observation.langMasks.to('float32')).map((r) => Array.from(r))).toEqual([
      pick.map(() => 1),
      [1, 1, 1, 1, 0],
    ]);
    const s = await tinySetup({ padLanguageTo: 'max_length' });
    const q = await s.pre.prepare([task('pick up the cube'), { ...robots[1]!, 'observation.language.tokens': [20, 21] }]);
    expect(q.observation.langTokens.shape).toEqual([2, 12]);
    const ids = q.observation.langTokens.toNumbers();
    expect(ids.slice(0, 5)).toEqual(pick);
    expect(ids.slice(5, 12)).toEqual(new Array(7).fill(t.tokenizer.padTokenId));
    expect(ids.slice(12, 14)).toEqual([20, 21]);
    expect(q.observation.langMasks.toNumbers().slice(12)).toEqual([1, 1, ...new Array(10).fill(0)]);
    disposeAll([p, q]);
  });

  it('stacks robots with ragged ready tokens and splits actions back per robot, un-normalised', async () => {
    const p = await t.pre.prepare([robots[0]!, { ...robots[1]!, 'observation.language.tokens': [5, 6, 7, 8, 9], 'observation.language.attention_mask': [1, 1, 1, 1, 0] }]);
    expect(p.observation.langTokens.toNumbers()).toEqual([9, 10, 11, 2, 2, 5, 6, 7, 8, 9]);
    expect(p.observation.langMasks.toNumbers()).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 0]);
    disposeBatch(p);
    const model = Float32Array.from({ length: 2 * 8 * 6 }, (_, i) => (i % 7) / 7 - 0.5);
    const split = await t.pre.splitActions(Tensor.from(model, [2, 8, 6]));
    const mean = t.normalizer.stats.outputs.action!.mean!;
    const std = t.normalizer.stats.outputs.action!.std!;
    expect(split).toHaveLength(2);
    expect(split[1]!.length).toBe(8 * 4);
    const f = Math.fround;
    expect(split[1]![2 * 4 + 3]).toBe(f(f(model[(8 + 2) * 6 + 3]! * std[3]!) + mean[3]!));
  });
});

describe('trainingBatch', () => {
  const samples = (): DatasetSample[] =>
    [0, 1].map((i) => {
      const f = frameOf(fx.get('in.r2.frame'));
      return {
        images: { [CAM]: { data: chwOf(f), shape: [3, f.height, f.width] as [number, number, number] } },
        state: select(fx.get('in.r2.state'), 0, i).toFloat32(),
        actions: Float32Array.from({ length: 32 }, (_, k) => Math.sin(k + i)),
        actionIsPad: Uint8Array.from({ length: 8 }, (_, k) => (i === 1 && k >= 5 ? 1 : 0)),
        task: i === 0 ? 'pick up the cube' : 'stack the red block',
        episodeIndex: 0,
        frameIndex: i,
        index: i,
        timestamp: i / 30,
      };
    });

  it('builds the observation, normalised padded actions and action_is_pad', async () => {
    const s = samples();
    const b = await t.pre.trainingBatch(s);
    const first = Tensor.from(rowsOf(b.observation.images[0]!)[0]!, [3, 32, 32]);
    expectClose(first, select(fx.get('out.images'), 0, 2), OP_TOL, 'image of sample 0');
    expect(b.actions.shape).toEqual([2, 8, 6]);
    expect(b.actionIsPad.toNumbers()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    const a = b.actions.toFloat32();
    const mean = t.normalizer.stats.targets.action!.mean!;
    const std = t.normalizer.stats.targets.action!.std!;
    const f = Math.fround;
    expect(a[(8 + 3) * 6 + 2]).toBe(f(f(s[1]!.actions[3 * 4 + 2]! - mean[2]!) / f(std[2]! + 1e-8)));
    expect(a[(8 + 3) * 6 + 5]).toBe(0);
    expect(b.observation.langTokens.shape[0]).toBe(2);
    disposeBatch(b);
  });

  it('names the sample and field of bad data', async () => {
    const s = samples();
    s[1]!.actions = new Float32Array(31);
    await expect(t.pre.trainingBatch(s)).rejects.toThrow(/samples\[1\]\.actions: expected 8 x 4 values, got 31/);
    const n = samples();
    n[0]!.state[1] = NaN;
    await expect(t.pre.trainingBatch(n)).rejects.toThrow(/samples\[0\]\.state: NaN at index 1/);
    const i = samples();
    i[0]!.images[CAM]!.data[7] = 2;
    await expect(t.pre.trainingBatch(i)).rejects.toThrow(/samples\[0\]\.images\.observation\.images\.cam0: value 2 at index 7/);
  });
});
