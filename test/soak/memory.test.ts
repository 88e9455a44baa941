/**
 * Memory soak: native and JS memory stay flat under long use. CI runs bounded versions; set
 * SMOLVLA_SOAK=1 for the full ones (100 000 PolicyServer steps: memory outside the JS heap must grow
 * under 2 % from step 1 000 to 100 000, and the whole RSS under 2 % from step 10 000, once V8 has
 * sized its heap). SMOLVLA_SOAK_STEPS overrides the step count.
 */
import * as path from 'node:path';

import { SmolVLAPolicy } from '../../lib/policy/policy';
import { PolicyServer } from '../../lib/serving';
import { setNumThreads } from '../../lib/runtime';
import { Tensor } from '../../lib/tensor';
import { fixturesDir } from '../helpers';

const FULL = process.env.SMOLVLA_SOAK === '1';
const MB = 1024 * 1024;
const rss = () => process.memoryUsage().rss;

describe('memory soak', () => {
  // One thread: the figures are about memory, and a soak beside other work should not starve it.
  if (process.env.SMOLVLA_SOAK_THREADS) setNumThreads(Number(process.env.SMOLVLA_SOAK_THREADS));

  it('Tensor from/toFloat32/dispose cycles of 4 MB stay flat (read-back buffers are V8-owned)', () => {
    const cycles = FULL ? 20_000 : 1_500;
    const values = new Float32Array(MB).fill(0.5); // 4 MB
    const warm = () => {
      const t = Tensor.from(values, [MB]);
      const out = t.toFloat32();
      t.dispose();
      return out[MB - 1]!;
    };
    for (let i = 0; i < 50; i++) warm();
    const before = rss();
    let sum = 0;
    for (let i = 0; i < cycles; i++) sum += warm();
    const grown = (rss() - before) / MB;
    console.log(`soak: ${cycles} Tensor cycles of 4 MB: RSS ${grown >= 0 ? '+' : ''}${grown.toFixed(1)} MB`);
    expect(sum).toBe(cycles * 0.5);
    // Before the fix 1 500 cycles grew RSS by 6.3 GB; V8 now collects the buffers as it goes.
    expect(grown).toBeLessThan(512);
  });

  it('PolicyServer.step on the tiny policy: RSS flat after warm-up', async () => {
    const steps = Number(process.env.SMOLVLA_SOAK_STEPS ?? (FULL ? 100_000 : 1_500));
    const warmup = Math.min(1_000, Math.floor(steps / 5));
    // V8 sizes its young generation from the survival it sees: in a long run it grows once, to its
    // default 2 x 16 MB semi-spaces, over the first few thousand steps (~31 MB here), then stays.
    // That is the JS heap's size, not a leak; the figures below separate it from the rest.
    const settled = Math.max(warmup, Math.floor(steps / 10));
    const policy = await SmolVLAPolicy.fromPretrained(path.join(fixturesDir, 'tiny_delta'), {
      tokenizer: path.join(fixturesDir, 'tokenizer', 'tokenizer.json'),
    });
    // Alternating scenes exercise misses, hits, reuse and cache-queue turnover.
    const server = new PolicyServer(policy, { hitMode: 'refine', reuseSteps: 1, maxCacheEntries: 4 });
    const frame = (shade: number) => ({
      'observation.images.cam0': { data: new Uint8Array(32 * 32 * 3).fill(shade), width: 32, height: 32 },
      'observation.state': Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5]),
      task: 'pick up the cube',
    });
    const scenes = [frame(40), frame(200)];
    const sample = () => {
      const m = process.memoryUsage();
      return { rss: m.rss, jsHeap: m.heapTotal };
    };
    let atWarmup = sample();
    let atSettled = sample();
    for (let i = 1; i <= steps; i++) {
      const r = await server.step(scenes[Math.floor(i / 7) % 2]);
      if (!Number.isFinite(r.actions[0]![0]!)) throw new Error(`step ${i}: non-finite action`);
      if (i === warmup) atWarmup = sample();
      if (i === settled) atSettled = sample();
    }
    const end = sample();
    const growth = (end.rss - atWarmup.rss) / atWarmup.rss;
    // Everything but the JS heap: native tensors, caches, allocator arenas, code.
    const outside = (end.rss - end.jsHeap - (atWarmup.rss - atWarmup.jsHeap)) / (atWarmup.rss - atWarmup.jsHeap);
    const afterSettled = (end.rss - atSettled.rss) / atSettled.rss;
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`;
    console.log(
      `soak: PolicyServer.step, ${steps} steps: RSS ${pct(growth)} from step ${warmup} (${(atWarmup.rss / MB).toFixed(0)} -> ${(end.rss / MB).toFixed(0)} MB),` +
        ` of which the JS heap ${((end.jsHeap - atWarmup.jsHeap) / MB).toFixed(1)} MB; outside the JS heap ${pct(outside)}; RSS from step ${settled}: ${pct(afterSettled)}`,
    );
    await server.dispose();
    // The full run holds the 2 % target outside the JS heap and for the whole process once V8's heap
    // has its size; the short CI run allows allocator noise on a small base.
    const bound = FULL ? 0.02 : 0.1;
    expect(outside).toBeLessThan(bound);
    expect(afterSettled).toBeLessThan(bound);
    // The JS heap grows by at most V8's default young generation (2 x 16 MB) and some old space.
    expect(end.jsHeap - atWarmup.jsHeap).toBeLessThan(64 * MB);
    // About 4 ms a step on a quiet 2-core machine, 30 ms on a busy one; the limit scales with the step count.
  }, Math.max(120_000, Number(process.env.SMOLVLA_SOAK_STEPS ?? (FULL ? 100_000 : 1_500)) * 100));

  it('policy create/dispose cycles: RSS flat after warm-up (model, caches and tokenizer are freed)', async () => {
    const cycles = FULL ? 2_000 : 150;
    const warmup = Math.min(50, Math.floor(cycles / 5));
    const options = { tokenizer: path.join(fixturesDir, 'tokenizer', 'tokenizer.json') };
    const obs = {
      'observation.images.cam0': { data: new Uint8Array(32 * 32 * 3).fill(90), width: 32, height: 32 },
      'observation.state': Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5]),
      task: 'pick up the cube',
    };
    let atWarmup = 0;
    for (let i = 1; i <= cycles; i++) {
      const policy = await SmolVLAPolicy.fromPretrained(path.join(fixturesDir, 'tiny_delta'), options);
      const server = new PolicyServer(policy, { hitMode: 'refine' });
      await server.step(obs);
      await server.dispose();
      policy.dispose();
      if (i === warmup) {
        (globalThis as { gc?: () => void }).gc?.();
        atWarmup = rss();
      }
    }
    (globalThis as { gc?: () => void }).gc?.();
    const growth = (rss() - atWarmup) / atWarmup;
    console.log(`soak: ${cycles} policy create/dispose cycles, RSS growth after ${warmup}: ${(growth * 100).toFixed(2)} % (${(rss() / MB).toFixed(0)} MB)`);
    // Before dispose existed 2 000 cycles grew RSS by 36 %.
    expect(growth).toBeLessThan(FULL ? 0.05 : 0.15);
  }, FULL ? 3_600_000 : 300_000);
});
