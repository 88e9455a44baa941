/**
 * The CUDA path (device 'cuda:0' at creation) on the tiny fixtures: the sampled chunk against the
 * CPU chunk and the PyTorch reference, bfloat16 within a bound, tensors kept on the GPU, and device
 * errors as JS errors. These need a CUDA libtorch and a GPU: where there is none every test here is
 * reported as skipped, by name (jest's "skipped" count), never as passed.
 * Tolerances: float32 chunk within 1e-4 of the CPU chunk and of the reference (TF32 is off for
 * float32, so the products are float32 on the GPU too); bfloat16 within 5 % of the reference.
 */
import * as path from 'node:path';

import { cudaDeviceCount, matmulThroughput, ops, SmolVLAModel, Tensor } from '../../lib/index';
import { expectClose, fixturesDir, loadFixture } from '../helpers';
import { observationOf } from '../modelFixtures';

const hasCuda = cudaDeviceCount() > 0;
const itCuda = hasCuda ? it : it.skip;
const DEVICE = 'cuda:0';

/** The `code` of what fn throws (undefined when it does not throw). */
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    // Native errors are made in the addon's realm, so instanceof Error does not hold inside jest.
    expect(typeof (err as Error).message).toBe('string');
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe(`CUDA (${hasCuda ? `${cudaDeviceCount()} device(s)` : 'no CUDA device here: every test below is skipped'})`, () => {
  describe.each(['tiny_equal', 'tiny_fewer'])('%s', (name) => {
    itCuda('float32 on cuda:0: the chunk matches the CPU chunk and the PyTorch reference within 1e-4', async () => {
      const io = await loadFixture(name, 'io.safetensors');
      const obs = observationOf(io);
      const noise = io.get('in.noise');
      const dir = path.join(fixturesDir, name);
      const { model: gpu } = await SmolVLAModel.fromPretrained(dir, { device: DEVICE });
      const { model: cpu } = await SmolVLAModel.fromPretrained(dir);
      const onGpu = (await gpu.sample(obs, { noise })).actions;
      const onCpu = (await cpu.sample(obs, { noise })).actions;
      expect(onGpu.device).toBe(DEVICE);
      expectClose(onGpu, onCpu, 1e-4, `${name} cuda vs cpu`);
      expectClose(onGpu, io.get('out.actions'), 1e-4, `${name} cuda vs reference`);
    });
  });

  itCuda('keeps weights, the cache and the chunk on the GPU; only inputs go up and actions come down', async () => {
    const io = await loadFixture('tiny_equal', 'io.safetensors');
    const { model } = await SmolVLAModel.fromPretrained(path.join(fixturesDir, 'tiny_equal'), { device: DEVICE });
    expect((await model.info()).device).toBe(DEVICE);
    const trace = await model.trace(observationOf(io), io.get('in.noise'));
    for (const key of ['vision.0', 'prefix_embs', 'cache.0.k', 'velocity.0', 'actions']) expect({ key, device: trace[key]!.device }).toEqual({ key, device: DEVICE });
    expect(trace.actions!.toNumbers().every(Number.isFinite)).toBe(true);
  });

  itCuda('bfloat16 on cuda:0: the chunk stays within 5 % of the float32 reference', async () => {
    const io = await loadFixture('tiny_equal', 'io.safetensors');
    const { model } = await SmolVLAModel.fromPretrained(path.join(fixturesDir, 'tiny_equal'), { device: DEVICE, dtype: 'bfloat16' });
    const { actions } = await model.sample(observationOf(io), { noise: io.get('in.noise') });
    expect(actions.dtype).toBe('float32');
    expectClose(actions, io.get('out.actions'), 0.05, 'bf16 cuda actions');
  });

  itCuda('a device out of memory becomes ERR_SMOLVLA_OOM, and the device stays usable', () => {
    // 1 PiB of input: more than any GPU has.
    expect(codeOf(() => matmulThroughput(1 << 24, 1 << 24, 1, 'float32', 0.01, DEVICE))).toBe('ERR_SMOLVLA_OOM');
    expect(matmulThroughput(256, 256, 256, 'float32', 0.01, DEVICE)).toBeGreaterThan(0);
  });
});

describe('out of memory (CPU)', () => {
  it('an allocation the machine cannot satisfy becomes ERR_SMOLVLA_OOM, not a crash', () => {
    // A resize of 64 one-pixel images to 65536² (inside every argument bound) asks for 3.3 PB of
    // output: more than any address space, so the allocation fails before any memory is touched.
    const img = Tensor.from(new Float32Array(64 * 3), [64, 3, 1, 1]);
    try {
      expect(codeOf(() => ops.resizeWithPad(img, 65536, 65536))).toBe('ERR_SMOLVLA_OOM');
    } finally {
      img.dispose();
    }
  });
});
