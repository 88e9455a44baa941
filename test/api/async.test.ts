/**
 * Native calls that touch the model's tensors run off the JS thread: while one waits for the model
 * (held here by a sampling call on another pool thread), timers keep firing. A call that locked the
 * model on the JS thread would block until the sampling finished, and no timer could fire.
 */
import { SmolVLAModel } from '../../lib/index';
import { Optimizer } from '../../lib/train';
import { loadModelFixture, type ModelFixture } from '../modelFixtures';

let f: ModelFixture;
beforeAll(async () => {
  f = await loadModelFixture('tiny_delta');
});

/** Runs `call` while the model is busy sampling; returns how often a 0 ms interval fired meanwhile. */
async function ticksDuring(model: SmolVLAModel, call: () => Promise<unknown>): Promise<number> {
  const sampling = model.sample(f.obs);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  try {
    const pending = call();
    expect(pending).toBeInstanceOf(Promise);
    await pending;
  } finally {
    clearInterval(timer);
    (await sampling).cache?.dispose();
  }
  return ticks;
}

describe('model calls do not block the event loop', () => {
  it.each([
    ['info', () => f.model.info()],
    ['parameters', () => f.model.parameters()],
    ['trainableParameters', () => f.model.trainableParameters()],
    ['Optimizer.create (createTrainer)', () => Optimizer.create(f.model, 'delta')],
  ])('%s', async (_name, call) => {
    expect(await ticksDuring(f.model, call)).toBeGreaterThan(0);
  });

  it('warmStartDelta (fromPretrained with warmStartDelta)', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      const { report } = await SmolVLAModel.fromPretrained(`${__dirname}/../fixtures/tiny_nodelta_ckpt`, { warmStartDelta: true });
      expect(report.warmStarted).toBe(true);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
  });
});

describe('seeded creation', () => {
  it('gives each of several concurrent creates exactly its seed’s weights', async () => {
    const config = f.model.config;
    const [a, b, c] = await Promise.all([
      SmolVLAModel.create(config, { seed: 11 }),
      SmolVLAModel.create(config, { seed: 12 }),
      SmolVLAModel.create(config, { seed: 11 }),
    ]);
    const name = 'model.vlm_with_expert.delta_expert.layers.0.mlp.up_proj.weight';
    const values = async (m: SmolVLAModel) => [...(await m.parameters([name]))[name]!.toFloat32()];
    expect(await values(a)).toEqual(await values(c));
    expect(await values(a)).not.toEqual(await values(b));
    for (const m of [a, b, c]) m.dispose();
  });
});
