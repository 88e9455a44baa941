/**
 * The native batch preprocessing (one call per batch, native/ops/batch_inputs.h) against LeRobot's
 * preprocessing computed by the PyTorch reference (fixture policy/batch_inputs.safetensors, kind
 * parity): two robots, two cameras with odd frame sizes (an RGBA frame, a time axis, a masked
 * camera), a placeholder camera, under IDENTITY, MEAN_STD and MIN_MAX normalisation of cameras, state
 * and actions; and the way back, model-space actions to un-normalised robot actions. Tolerance:
 * relative error <= 1e-5 (single operations); masks and tokens exact. Then the codes and names of the
 * errors the native side raises, and the binding's own argument checks.
 */
import { disposeAll, SmolVLAError, Tensor } from '../../lib/index';
import { Normalizer, Preprocessor, sharedStats, type RobotObservation, type StatsMap } from '../../lib/policy';
import type { NormalizationMode } from '../../lib/config';
import { native, type NativeBatchRequest } from '../../lib/native';
import { expectClose, expectEqual, loadFixture, type Fixture } from '../helpers';
import { chwOf, rowsOf, tinySetup } from './fixtures';

const OP_TOL = 1e-5;
const CAMS = ['observation.images.cam0', 'observation.images.cam1'];
const MODES: NormalizationMode[] = ['IDENTITY', 'MEAN_STD', 'MIN_MAX'];

let fx: Fixture;
beforeAll(async () => {
  fx = await loadFixture('policy', 'batch_inputs.safetensors');
});

/** tiny_delta's dims with two cameras and a placeholder, normalised in `mode` with the fixture's statistics. */
async function preprocessor(mode: NormalizationMode): Promise<Preprocessor> {
  const base = await tinySetup();
  const inputFeatures = { ...base.config.inputFeatures, [CAMS[1]!]: { type: 'VISUAL' as const, shape: [3, 32, 32] } };
  const config = { ...base.config, inputFeatures, emptyCameras: 1, normalizationMapping: { VISUAL: mode, STATE: mode, ACTION: mode } };
  const stats: StatsMap = {};
  for (const key of [...CAMS, 'observation.state', 'action']) {
    stats[key] = Object.fromEntries(['mean', 'std', 'min', 'max'].map((n) => [n, fx.get(`stats.${key}.${n}`).toFloat32()]));
  }
  return new Preprocessor(config, new Normalizer(config, sharedStats(stats)), null);
}

/** The fixture's frame as the robot sends it: HWC bytes, channels from the last axis, a time axis as frames. */
function frame(r: number, c: number): { data: Uint8Array; width: number; height: number; channels: 3 | 4; frames: number } {
  const t = fx.get(`in.r${r}.cam${c}.frame`);
  const [h, w, ch] = t.shape.slice(-3) as [number, number, 3 | 4];
  return { data: t.data() as Uint8Array, width: w, height: h, channels: ch, frames: t.shape.length === 4 ? t.shape[0]! : 1 };
}

function robots(): RobotObservation[] {
  const actions = rowsOf(fx.get('in.actions'));
  const isPad = rowsOf(fx.get('in.action_is_pad').to('float32'));
  return [0, 1].map((r) => {
    const state = fx.get(`in.r${r}.state`);
    return {
      [CAMS[0]!]: frame(r, 0),
      [CAMS[1]!]: frame(r, 1),
      ...(r === 1 ? { [`${CAMS[1]}_padding_mask`]: false } : {}),
      'observation.state': { data: state.toFloat32(), shape: state.shape },
      'observation.language.tokens': r === 0 ? [9, 10, 11] : [5, 6, 7, 8, 9],
      ...(r === 1 ? { 'observation.language.attention_mask': [1, 1, 1, 1, 0] } : {}),
      action: actions[r]!,
      action_is_pad: Array.from(isPad[r]!),
    };
  });
}

/** The same robots with each camera's last frame as RGB bytes (alpha dropped) in another form. */
function robotsWith(form: (rgb: Uint8Array, width: number, height: number) => unknown): RobotObservation[] {
  return robots().map((o) => {
    const out: RobotObservation = { ...o };
    for (const cam of CAMS) {
      const f = o[cam] as ReturnType<typeof frame>;
      const last = f.data.subarray((f.frames - 1) * f.width * f.height * f.channels);
      const rgb = Uint8Array.from({ length: f.width * f.height * 3 }, (_, i) => last[Math.floor(i / 3) * f.channels + (i % 3)]!);
      out[cam] = form(rgb, f.width, f.height);
    }
    return out;
  });
}

/** CHW float [0, 1] frames. */
const floatRobots = () => robotsWith((data, width, height) => ({ data: chwOf({ data, width, height }), shape: [3, height, width] }));

/** uint8 CHW frames (openpi's ALOHA layout). */
const chwByteRobots = () =>
  robotsWith((rgb, width, height) => {
    const plane = width * height;
    return { data: Uint8Array.from({ length: 3 * plane }, (_, i) => rgb[(i % plane) * 3 + Math.floor(i / plane)]!), width, height, layout: 'chw' };
  });

describe.each(MODES)('%s normalisation (parity with the reference)', (mode) => {
  const m = mode.toLowerCase();

  it.each([
    ['uint8 HWC frames', robots],
    ['float CHW frames', floatRobots],
    ['uint8 CHW frames', chwByteRobots],
  ])(`turns %s, states, tokens and action targets into the model inputs within ${OP_TOL}`, async (_, batch) => {
    const pre = await preprocessor(mode);
    const p = await pre.prepare(batch(), { withActions: true });
    try {
      expect(p.observation.images).toHaveLength(3);
      expectClose(p.observation.images[0]!, fx.get(`out.${m}.image0`), OP_TOL, 'cam0');
      expectClose(p.observation.images[1]!, fx.get(`out.${m}.image1`), OP_TOL, 'cam1');
      expect(new Set(p.observation.images[2]!.toNumbers())).toEqual(new Set([-1]));
      expect(p.observation.images[2]!.shape).toEqual([2, 3, 32, 32]);
      expect(p.observation.imgMasks.map((t) => t.toNumbers())).toEqual(rowsOf(fx.get('out.img_masks').to('float32')).map((r) => Array.from(r)));
      expectClose(p.observation.state, fx.get(`out.${m}.state`), OP_TOL, 'state');
      expectEqual(p.observation.langTokens, fx.get('out.lang_tokens'), 'langTokens');
      expectEqual(p.observation.langMasks, fx.get('out.lang_masks'), 'langMasks');
      expectClose(p.actions!, fx.get(`out.${m}.action_targets`), OP_TOL, 'action targets');
      expectEqual(p.actionIsPad!, fx.get('in.action_is_pad'), 'actionIsPad');
    } finally {
      disposeAll(p);
    }
  });

  it(`un-normalises model-space actions per robot, cut to the action dim, within ${OP_TOL}`, async () => {
    const pre = await preprocessor(mode);
    const split = await pre.splitActions(fx.get('in.actions_model'));
    expect(split.map((a) => a.length)).toEqual([32, 32]);
    const got = Tensor.from(Float32Array.from([...split[0]!, ...split[1]!]), [2, 8, 4]);
    expectClose(got, fx.get(`out.${m}.actions`), OP_TOL, 'actions');
    got.dispose();
  });
});

describe('native errors', () => {
  it('refuse NaN, infinity and 0-255 values in float frames with the package codes, naming robot and camera', async () => {
    const pre = await preprocessor('MEAN_STD');
    const bad = (v: number): RobotObservation[] => {
      const b = floatRobots();
      const img = b[1]![CAMS[0]!] as { data: Float32Array; shape: number[] };
      img.data[7] = v;
      return b;
    };
    const nan = pre.prepare(bad(Number.NaN));
    await expect(nan).rejects.toThrow(/^robot 1: observation\.images\.cam0: NaN at index 7 \(float images are finite values in \[0, 1\]\)$/);
    await expect(nan).rejects.toBeInstanceOf(SmolVLAError);
    await expect(nan).rejects.toMatchObject({ code: 'ERR_SMOLVLA_NOT_FINITE' });
    await expect(pre.prepare(bad(-Infinity))).rejects.toMatchObject({ code: 'ERR_SMOLVLA_NOT_FINITE', message: expect.stringMatching(/-Infinity at index 7/) });
    await expect(pre.prepare(bad(255))).rejects.toMatchObject({
      code: 'ERR_SMOLVLA_ARGUMENT',
      message: 'robot 1: observation.images.cam0: value 255 at index 7 is outside [0, 1] (float images are expected in [0, 1], not 0-255)',
    });
    // validate() runs the same value checks without building the batch
    await expect(pre.validate(bad(Number.NaN))).rejects.toMatchObject({ code: 'ERR_SMOLVLA_NOT_FINITE' });
    await expect(pre.validate(floatRobots())).resolves.toBe(2);
    await expect(pre.validate(robots())).resolves.toBe(2);
  });

  it('refuse a CHW byte frame with 4 channels or an unknown layout, naming robot and camera', async () => {
    const pre = await preprocessor('MEAN_STD');
    const patched = (patch: Record<string, unknown>): RobotObservation[] => {
      const b = chwByteRobots();
      b[1]![CAMS[0]!] = { ...(b[1]![CAMS[0]!] as object), ...patch };
      return b;
    };
    await expect(pre.validate(patched({ channels: 4 }))).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT', message: expect.stringMatching(/robot 1.*observation\.images\.cam0.*CHW frames have 3 channels, got 4/) });
    await expect(pre.validate(patched({ layout: 'nhwc' }))).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT', message: expect.stringMatching(/robot 1.*observation\.images\.cam0.*layout must be 'hwc' or 'chw', got nhwc/) });
  });

  it('refuse a chunk with a non-finite value, naming robot, step and dimension', async () => {
    const pre = await preprocessor('MEAN_STD');
    const model = fx.get('in.actions_model').toFloat32();
    model[(8 + 3) * 6 + 2] = Number.POSITIVE_INFINITY;
    const t = Tensor.from(model, [2, 8, 6]);
    await expect(pre.splitActions(t)).rejects.toMatchObject({
      code: 'ERR_SMOLVLA_NOT_FINITE',
      message: 'actions: the chunk of robot 1 has Infinity at step 3, dimension 2 (non-finite weights, noise or normalisation statistics)',
    });
    await expect(pre.splitActions(Tensor.from(new Float32Array(4), [4]))).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT', message: 'actions: expected a (B, C, A) tensor, got [4]' });
    await expect(pre.splitActions(Tensor.from(new Float32Array(6), [1, 2, 3]))).rejects.toMatchObject({
      code: 'ERR_SMOLVLA_ARGUMENT',
      message: expect.stringMatching(/actionDim.*\[1, 3\], got 4/),
    });
    t.dispose();
  });

  it('copy the frames when the call starts: changing them afterwards changes nothing', async () => {
    const pre = await preprocessor('IDENTITY');
    const batch = robots();
    const pending = pre.prepare(batch);
    for (const o of batch) for (const cam of CAMS) (o[cam] as { data: Uint8Array }).data.fill(0);
    const p = await pending;
    expectClose(p.observation.images[0]!, fx.get('out.identity.image0'), OP_TOL, 'cam0');
    disposeAll(p);
  });
});

describe('the native binding', () => {
  const frame = { name: 'robot 0: observation.images.cam0', data: new Uint8Array(12), width: 2, height: 2, channels: 3 };
  const request = (): NativeBatchRequest => ({
    size: 1,
    width: 32,
    height: 32,
    cameras: [{ frames: [frame], valid: Uint8Array.of(1) }],
    emptyCameras: 0,
    state: new Float32Array(5),
    stateDim: 5,
    maxStateDim: 6,
    tokens: Int32Array.of(1),
    tokenLengths: Int32Array.of(1),
    tokenMask: Uint8Array.of(1),
    padId: 0,
  });
  const norm = { mode: 'MEAN_STD' as const, a: new Float32Array(5), b: new Float32Array(5).fill(1), eps: 1e-8 };

  it.each<[string, Partial<NativeBatchRequest> | Record<string, unknown>, RegExp]>([
    ['a short frame', { cameras: [{ frames: [{ ...frame, data: new Uint8Array(11) }], valid: Uint8Array.of(1) }] }, /'robot 0: observation\.images\.cam0': expected HWC uint8 data of 12 values \(shape \[2, 2, 3\]\), got 11/],
    ['a frame of another type', { cameras: [{ frames: [{ ...frame, data: new Float64Array(12) }], valid: Uint8Array.of(1) }] }, /'robot 0: observation\.images\.cam0': expected HWC uint8 data/],
    ['5 channels', { cameras: [{ frames: [{ ...frame, channels: 5 }], valid: Uint8Array.of(1) }] }, /'robot 0: observation\.images\.cam0: channels': expected an integer in \[3, 4\], got 5/],
    ['an unknown layout', { cameras: [{ frames: [{ ...frame, layout: 'hcw' }], valid: Uint8Array.of(1) }] }, /'robot 0: observation\.images\.cam0: layout': expected 'hwc' or 'chw', got 'hcw'/],
    ['a short CHW frame', { cameras: [{ frames: [{ ...frame, data: new Uint8Array(11), layout: 'chw' }], valid: Uint8Array.of(1) }] }, /'robot 0: observation\.images\.cam0': expected CHW uint8 data of 12 values \(shape \[3, 2, 2\]\), got 11/],
    ['a frame above 8192 pixels', { cameras: [{ frames: [{ ...frame, width: 9000 }], valid: Uint8Array.of(1) }] }, /'robot 0: observation\.images\.cam0: width': expected an integer in \[1, 8192\]/],
    ['a frame per robot missing', { cameras: [{ frames: [frame, frame], valid: Uint8Array.of(1) }] }, /'cameras\[0\]\.frames': expected an array of 1 frames/],
    ['no camera', { cameras: [] }, /'cameras': expected at least one camera/],
    ['a short state', { state: new Float32Array(4) }, /'state': expected a Float32Array of 5 values/],
    ['token rows longer than the ids', { tokenLengths: Int32Array.of(2) }, /'tokens': expected an Int32Array of 2 values/],
    ['statistics of the wrong width', { stateNorm: { ...norm, a: new Float32Array(4) } }, /'stateNorm\.a': expected a Float32Array of 5 values/],
    ['non-finite statistics', { stateNorm: { ...norm, b: Float32Array.of(1, 1, Number.NaN, 1, 1) } }, /'stateNorm\.b': entry 2 is not finite/],
    ['an unknown mode', { stateNorm: { ...norm, mode: 'QUANTILES' } }, /'stateNorm\.mode': expected 'MEAN_STD' or 'MIN_MAX', got 'QUANTILES'/],
    ['padding flags without actions', { actionIsPad: new Uint8Array(8) }, /'actionIsPad': given without actions/],
  ])('refuses %s before copying anything, naming the argument', (_, patch, message) => {
    expect(() => native.preprocessBatch({ ...request(), ...patch } as NativeBatchRequest)).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT', message: expect.stringMatching(message) }));
  });

  it('builds a valid request into handles that the caller owns', async () => {
    const r = await native.preprocessBatch({ ...request(), stateNorm: norm });
    const all = [...r.images, ...r.imgMasks, r.state, r.langTokens, r.langMasks];
    expect(all.map((t) => t.shape)).toEqual([[1, 3, 32, 32], [1], [1, 6], [1, 1], [1, 1]]);
    expect([r.actions, r.actionIsPad]).toEqual([null, null]);
    for (const t of all) t.dispose();
  });
});
