/**
 * Smoke test of the full-size SmolVLA shape (vision 12 x 768 at 512 px, 16 text layers of
 * 960, expert 720; ~0.5 B parameters) with random weights built from a seed: it constructs, runs
 * the prefix pass and samples a chunk. Timing lives in `npm run bench`, not here.
 */
import { defaultConfig, SmolVLAModel, Tensor } from '../../lib/index';

describe('full-size SmolVLA (random weights)', () => {
  it('builds, fills a cache and samples a finite (1, 50, 32) chunk', async () => {
    const config = defaultConfig({
      inputFeatures: {
        'observation.images.top': { type: 'VISUAL', shape: [3, 512, 512] },
        'observation.state': { type: 'STATE', shape: [6] },
      },
      outputFeatures: { action: { type: 'ACTION', shape: [6] } },
      useClsHead: true,
    });
    const model = await SmolVLAModel.create(config, { seed: 0 });
    expect((await model.info()).parameters).toBeGreaterThan(4.5e8);
    const obs = {
      images: [Tensor.from(Float32Array.from({ length: 3 * 512 * 512 }, (_, i) => Math.sin(i) * 0.5), [1, 3, 512, 512])],
      imgMasks: [Tensor.fromBools([1], [1])],
      langTokens: Tensor.fromInts(Array.from({ length: 48 }, (_, i) => i + 1), [1, 48]),
      langMasks: Tensor.fromBools(Array(48).fill(1), [1, 48]),
      state: Tensor.from(new Float32Array(32), [1, 32]),
    };
    const cache = await model.prefix(obs);
    // 2 CLS + 64 image tokens (32 x 32 patches, pixel shuffle 4) + 48 language + 1 state.
    expect(cache.prefixLength).toBe(115);
    expect(cache.obsClsOut()!.shape).toEqual([1, 2, 960]);
    const { actions } = await model.sample(cache);
    expect(actions.shape).toEqual([1, 50, 32]);
    expect(actions.toNumbers().every(Number.isFinite)).toBe(true);
    cache.dispose();
  });
});
