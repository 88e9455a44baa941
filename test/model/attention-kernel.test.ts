/**
 * The AVX-512 vision-attention products against the libtorch path they replace, on a vision encoder
 * with head width 64 (the fixtures' tiny encoders use 8, which takes the libtorch path). The kernel
 * is chosen once per process, so each side runs in a child process (SMOLVLA_ATTENTION=aten forces
 * the libtorch path). Tolerance: relative error <= 1e-5 (float32, a single operation's rounding;
 * both accumulate in the same order with FMAs, so the results are often bit-identical).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

import { defaultConfig } from '../../lib/index';
import { nativeConfigJson } from '../../lib/model/model';
import { packageRoot } from '../../lib/native';

const config = defaultConfig({
  resizeImgsWithPadding: [64, 64],
  numVlmLayers: 2,
  chunkSize: 4,
  nActionSteps: 4,
  maxStateDim: 4,
  maxActionDim: 4,
  inputFeatures: { 'observation.images.top': { type: 'VISUAL', shape: [3, 64, 64] }, 'observation.state': { type: 'STATE', shape: [4] } },
  outputFeatures: { action: { type: 'ACTION', shape: [4] } },
  vlmBackbone: {
    textConfig: { vocabSize: 32, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 16, rmsNormEps: 1e-5, attentionBias: false },
    visionConfig: { hiddenSize: 128, intermediateSize: 256, numHiddenLayers: 2, numAttentionHeads: 2, patchSize: 4, imageSize: 64, layerNormEps: 1e-6 },
    scaleFactor: 2,
  },
});

interface Outputs {
  kernel: string;
  pointwise: string;
  actions: number[];
}

function prefixOutputs(env: NodeJS.ProcessEnv, dtype: 'float32' | 'bfloat16' = 'float32'): Outputs {
  const script = `
    const addon = require(${JSON.stringify(packageRoot)} + '/scripts/load-addon.js').loadAddon(${JSON.stringify(packageRoot)}).addon;
    const t = (a, shape, dtype) => addon.tensorFromBuffer(a, shape, dtype);
    (async () => {
      const model = await addon.createModel({ config: ${JSON.stringify(nativeConfigJson(config))}, dtype: '${dtype}' });
      const img = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37));
      const cache = await model.prefix({ observation: {
        images: [t(img, [1, 3, 64, 64], 'float32')], imgMasks: [t(new Uint8Array([1]), [1], 'bool')],
        langTokens: t(new BigInt64Array([1n, 2n, 3n]), [1, 3], 'int64'), langMasks: t(new Uint8Array([1, 1, 1]), [1, 3], 'bool'),
        state: t(new Float32Array(4), [1, 4], 'float32'),
      } });
      const { actions } = await model.sample({ cache, noise: t(new Float32Array(16).fill(0.5), [1, 4, 4], 'float32') });
      console.log(JSON.stringify({ kernel: addon.buildInfo().attentionKernel, pointwise: addon.buildInfo().pointwiseKernels, actions: Array.from(new Float32Array(actions.data())) }));
    })();
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Outputs;
}

function relativeError(actual: number[], expected: number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i]! - expected[i]!) ** 2;
    den += expected[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

// On CPUs without AVX-512 both sides take the libtorch path and the comparisons are trivially true.
const hasAvx512 = /avx512bw/.test(fs.readFileSync('/proc/cpuinfo', 'utf8')) && /avx512vl/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));

describe('vision attention kernel', () => {
  it('matches the libtorch path within 1e-5 (a sampled chunk through a head-width-64 encoder)', () => {
    const fast = prefixOutputs({ SMOLVLA_ATTENTION: '' });
    const reference = prefixOutputs({ SMOLVLA_ATTENTION: 'aten' });
    expect(reference.kernel).toBe('aten');
    if (!hasAvx512) return;
    expect(fast.kernel).toBe('avx512');
    expect(reference.actions.length).toBe(16);
    expect(relativeError(fast.actions, reference.actions)).toBeLessThanOrEqual(1e-5);
  });
});

/**
 * Every CPU kernel at once (the attention kernels for the vision encoder and, head width 16, the text
 * and expert layers; RoPE, SiLU·up and RMSNorm in one pass) against libtorch's ops in both dtypes.
 * float32: 1e-5 (accumulation order). bfloat16: the kernels round where libtorch's intermediate
 * tensors round, but a sum in another order can land on the other side of a bfloat16 rounding
 * boundary (2^-8 relative) and that flip travels through the layers: 5e-3 (measured 5.6e-4), a
 * quarter of the 2e-2 the bfloat16 parity test allows against the PyTorch reference.
 */
describe('all CPU kernels against libtorch ops', () => {
  it.each([
    ['float32', 1e-5],
    ['bfloat16', 5e-3],
  ] as const)('%s: a sampled chunk within %s', (dtype, tolerance) => {
    const fast = prefixOutputs({ SMOLVLA_ATTENTION: '', SMOLVLA_POINTWISE: '' }, dtype);
    const reference = prefixOutputs({ SMOLVLA_ATTENTION: 'aten', SMOLVLA_POINTWISE: 'aten' }, dtype);
    expect([reference.kernel, reference.pointwise]).toEqual(['aten', 'aten']);
    expect(reference.actions.every(Number.isFinite)).toBe(true);
    if (!hasAvx512) return;
    expect([fast.kernel, fast.pointwise]).toEqual(['avx512', 'avx512']);
    const error = relativeError(fast.actions, reference.actions);
    console.log(`${dtype}: CPU kernels vs libtorch ops, actions rel ${error.toExponential(2)}`);
    expect(error).toBeLessThanOrEqual(tolerance);
  });
});
