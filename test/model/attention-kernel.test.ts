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

function prefixOutputs(env: NodeJS.ProcessEnv): { kernel: string; actions: number[] } {
  const script = `
    const addon = require(${JSON.stringify(packageRoot)} + '/scripts/load-addon.js').loadAddon(${JSON.stringify(packageRoot)}).addon;
    const t = (a, shape, dtype) => addon.tensorFromBuffer(a, shape, dtype);
    (async () => {
      const model = await addon.createModel({ config: ${JSON.stringify(nativeConfigJson(config))} });
      const img = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37));
      const cache = await model.prefix({ observation: {
        images: [t(img, [1, 3, 64, 64], 'float32')], imgMasks: [t(new Uint8Array([1]), [1], 'bool')],
        langTokens: t(new BigInt64Array([1n, 2n, 3n]), [1, 3], 'int64'), langMasks: t(new Uint8Array([1, 1, 1]), [1, 3], 'bool'),
        state: t(new Float32Array(4), [1, 4], 'float32'),
      } });
      const { actions } = await model.sample({ cache, noise: t(new Float32Array(16).fill(0.5), [1, 4, 4], 'float32') });
      console.log(JSON.stringify({ kernel: addon.buildInfo().attentionKernel, actions: Array.from(new Float32Array(actions.data())) }));
    })();
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { kernel: string; actions: number[] };
}

describe('vision attention kernel', () => {
  it('matches the libtorch path within 1e-5 (a sampled chunk through a head-width-64 encoder)', () => {
    const fast = prefixOutputs({ SMOLVLA_ATTENTION: '' });
    const reference = prefixOutputs({ SMOLVLA_ATTENTION: 'aten' });
    expect(reference.kernel).toBe('aten');
    // On CPUs without AVX-512 both sides take the libtorch path and the test is trivially true.
    if (!/avx512f/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'))) return;
    expect(fast.kernel).toBe('avx512');
    const kernel = fast.actions;
    const aten = reference.actions;
    let num = 0;
    let den = 0;
    for (let i = 0; i < aten.length; i++) {
      num += (kernel[i]! - aten[i]!) ** 2;
      den += aten[i]! ** 2;
    }
    expect(aten.length).toBe(16);
    expect(Math.sqrt(num / den)).toBeLessThanOrEqual(1e-5);
  });
});
