/**
 * Native calls that touch the model's tensors run off the JS thread: while one waits for the model
 * (held here by a sampling call on another pool thread), timers keep firing. A call that locked the
 * model on the JS thread would block until the sampling finished, and no timer could fire.
 */
import { SmolVLAModel } from '../../lib/index';
import { Optimizer } from '../../lib/train';
import { loadModelFixture, type ModelFixture } from '../modelFixtures';

let f: ModelFixture;
/** The fixture's architecture with 400 Euler steps: a sampling call that keeps the model busy. */
let busy: SmolVLAModel;
beforeAll(async () => {
  f = await loadModelFixture('tiny_delta');
  busy = await SmolVLAModel.create({ ...f.model.config, numSteps: 400 }, { seed: 1 });
});
afterAll(() => busy.dispose());

/**
 * Runs `call` while the model is busy sampling; returns how often a 0 ms interval fired meanwhile.
 * The tiny model samples in a few ms, so the busy sampling runs many Euler steps (hundreds of ms)
 * and `call` starts only once the sampling has had time to take the model's lock on its pool
 * thread: otherwise `call` could take the lock first and finish before any timer is due.
 */
async function ticksDuring(call: (model: SmolVLAModel) => Promise<unknown>): Promise<number> {
  const sampling = busy.sample(f.obs);
  await new Promise((resolve) => setTimeout(resolve, 20));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  try {
    const pending = call(busy);
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
    ['info', (m: SmolVLAModel) => m.info()],
    ['parameters', (m: SmolVLAModel) => m.parameters()],
    ['trainableParameters', (m: SmolVLAModel) => m.trainableParameters()],
    ['Optimizer.create (createTrainer)', (m: SmolVLAModel) => Optimizer.create(m, 'delta')],
  ])('%s', async (_name, call) => {
    expect(await ticksDuring(call)).toBeGreaterThan(0);
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
