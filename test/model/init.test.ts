/**
 * A freshly created model is initialised as the published code initialises what it does not load
 * (transformers' N(0, 0.02^2) / zero biases / unit norms for the VLM and both experts, nn.Linear's
 * default for the experts' cross-attention k/v and every projection, CLS parameters N(0, 0.02^2)).
 * Compared per parameter with the PyTorch reference's init_published, run live: constants exactly,
 * random tensors by their spread (the generators differ, so values cannot match one for one).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { readConfig } from '../../lib/config';
import { SmolVLAModel } from '../../lib/model';
import { fixturesDir } from '../helpers';

const TINY_DELTA_DIR = path.join(fixturesDir, 'tiny_delta');

interface Stats {
  mean: number;
  std: number;
  min: number;
  max: number;
  numel: number;
}

function statsOf(values: Float32Array): Stats {
  const n = values.length;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = sum / n;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(sq / (n - 1)) : 0, min, max, numel: n };
}

describe('initialisation of a fresh model', () => {
  test('matches the reference init statistics parameter by parameter', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-init-')), 'init.json');
    const cfg = path.join(TINY_DELTA_DIR, 'config.json');
    execFileSync('/usr/bin/python3', ['lerobot_interop.py', 'init-stats', cfg, out], { cwd: path.join(__dirname, '..', 'reference'), timeout: 300_000 });
    const reference = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, Stats>;
    const model = await SmolVLAModel.create(await readConfig(TINY_DELTA_DIR), { seed: 5 });
    const names = await model.parameterNames();
    expect([...names].sort()).toEqual(Object.keys(reference).sort());
    const params = await model.parameters(names);
    const problems: string[] = [];
    for (const name of names) {
      const ref = reference[name]!;
      const got = statsOf(params[name]!.toFloat32());
      if (ref.std === 0) {
        // zero biases, unit norm weights
        if (got.min !== ref.min || got.max !== ref.max) problems.push(`${name}: constant ${ref.min} expected, got [${got.min}, ${got.max}]`);
        continue;
      }
      const weight = name.endsWith('.bias') ? params[`${name.slice(0, -5)}.weight`] : undefined;
      if (ref.numel < 256 && weight) {
        // A Linear bias of a few values: sample statistics say little; nn.Linear's own rule is
        // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), checked exactly.
        const fanIn = weight.shape.slice(1).reduce((a, b) => a * b, 1);
        if (Math.max(Math.abs(got.min), Math.abs(got.max)) > 1 / Math.sqrt(fanIn)) problems.push(`${name}: values outside ±1/sqrt(${fanIn})`);
        continue;
      }
      const slack = ref.numel >= 256 ? 0.15 : 0.5;
      if (Math.abs(got.std - ref.std) > slack * ref.std) problems.push(`${name}: std ${got.std.toPrecision(3)}, reference ${ref.std.toPrecision(3)}`);
      const bound = Math.max(Math.abs(ref.min), Math.abs(ref.max));
      // a uniform init never passes its bound; the reference's extremes are within 5 % of it there
      if (ref.std > 0.05 && Math.max(Math.abs(got.min), Math.abs(got.max)) > bound * 1.05) problems.push(`${name}: values reach ${got.max}, reference bound ${bound}`);
    }
    expect(problems).toEqual([]);
  });

  test('a model built in bfloat16 holds exactly the float32 model cast to bfloat16 (built layer by layer, drawn in float32)', async () => {
    const config = await readConfig(TINY_DELTA_DIR);
    const direct = await SmolVLAModel.create(config, { seed: 7, dtype: 'bfloat16' });
    const cast = await SmolVLAModel.create(config, { seed: 7 });
    await cast.to('bfloat16');
    const names = await direct.parameterNames();
    const [a, b] = await Promise.all([direct.parameters(names), cast.parameters(names)]);
    const differing = names.filter((n) => a[n]!.dtype !== b[n]!.dtype || Buffer.compare(Buffer.from(a[n]!.toFloat32().buffer), Buffer.from(b[n]!.toFloat32().buffer)) !== 0);
    expect(differing).toEqual([]);
    expect(a['model.vlm_with_expert.lm_expert.layers.0.mlp.up_proj.weight']!.dtype).toBe('bfloat16');
    expect(a['model.action_in_proj.weight']!.dtype).toBe('float32');
    direct.dispose();
    cast.dispose();
  });
});
