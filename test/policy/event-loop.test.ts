/**
 * The batch preprocessing runs off the event loop: while 4 robots x 3 cameras of 1280 x 720 uint8
 * frames are turned into SmolVLA's 512 x 512 inputs, setImmediate callbacks keep running. Counted,
 * not timed (the machine may be slow or busy): a blocked loop runs none until the call returns,
 * which is what the former JS preprocessing did.
 */
import { randomFillSync } from 'node:crypto';

import { disposeAll, ops, Tensor } from '../../lib/index';
import { Preprocessor, type RobotObservation } from '../../lib/policy';
import { expectClose } from '../helpers';
import { chwOf, tinySetup } from './fixtures';

const W = 1280;
const H = 720;
const CAMS = ['observation.images.cam0', 'observation.images.cam1', 'observation.images.cam2'];

it('keeps the event loop turning while a 4-robot, 3-camera batch of 1280 x 720 frames is preprocessed', async () => {
  const base = await tinySetup();
  const inputFeatures = { ...base.config.inputFeatures };
  for (const cam of CAMS) inputFeatures[cam] = { type: 'VISUAL', shape: [3, 512, 512] };
  const config = { ...base.config, inputFeatures, resizeImgsWithPadding: [512, 512] as [number, number] };
  const pre = new Preprocessor(config, base.normalizer, null);
  const robots: RobotObservation[] = Array.from({ length: 4 }, (_, r) => {
    const o: RobotObservation = { 'observation.state': Float32Array.from({ length: 5 }, (_, i) => r + i / 10), 'observation.language.tokens': [9, 10, 11] };
    for (const cam of CAMS) o[cam] = { data: randomFillSync(new Uint8Array(W * H * 3)), width: W, height: H };
    return o;
  });

  let ticks = 0;
  let spinning = true;
  const spin = (): void => {
    ticks++;
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
  const pending = pre.prepare(robots);
  // Nothing ran while the call was made: the frames were copied, the work queued.
  const before = ticks;
  const p = await pending;
  spinning = false;
  const during = ticks - before;
  try {
    expect(before).toBe(0);
    expect(during).toBeGreaterThanOrEqual(10);
    expect(p.observation.images.map((t) => t.shape)).toEqual(CAMS.map(() => [4, 3, 512, 512]));
    // One image of the batch against the parity-tested op: 1280 x 720 -> 512 x 288, 224 rows of padding on top.
    const frame = robots[2]![CAMS[1]!] as { data: Uint8Array; width: number; height: number };
    const src = Tensor.from(chwOf(frame), [1, 3, H, W]);
    const ref = ops.resizeWithPad(src, 512, 512, 0);
    const expected = Tensor.from(ref.toFloat32().map((v) => v * 2 - 1), [3, 512, 512]);
    const got = Tensor.from(p.observation.images[1]!.toFloat32().subarray(2 * 3 * 512 * 512, 3 * 3 * 512 * 512), [3, 512, 512]);
    expectClose(got, expected, 1e-6, 'robot 2, cam1');
    disposeAll([src, ref, expected, got]);
  } finally {
    disposeAll(p);
  }
});
