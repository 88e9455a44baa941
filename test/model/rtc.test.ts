/**
 * Real-Time Chunking (guided sampling) against the PyTorch reference (test/reference/smolvla_ref/rtc.py).
 * Tolerances: prefix and guidance weights 1e-6 absolute; the guided denoising step (step 0 starts
 * from the same x on both sides, so it is one step on its own), every later step and the whole
 * guided chunk: relative error <= 1e-4 (float32). Cases cover every schedule, the clip of the
 * guidance weight, a horizon past the leftover, a narrower leftover and the stop-gradient variant.
 */
import { rtcGuidanceWeight, rtcPrefixWeights, PREFIX_SCHEDULES, Tensor, type PrefixSchedule } from '../../lib/index';
import { expectClose, loadFixture, type Fixture } from '../helpers';
import { loadModelFixture, type ModelFixture } from '../modelFixtures';

const TOL = 1e-4;

describe('prefix and guidance weights', () => {
  let w: Fixture;
  beforeAll(async () => {
    w = await loadFixture('rtc', 'weights.safetensors');
  });

  it('match LeRobot get_prefix_weights for every schedule, delay and horizon', () => {
    const schedules = JSON.parse(w.metadata.schedules!) as PrefixSchedule[];
    expect(schedules).toEqual(PREFIX_SCHEDULES);
    const cases = w.keys().filter((k) => k.endsWith('.out') && k.startsWith('prefix')).map((k) => k.split('.')[0]!);
    expect(cases.length).toBeGreaterThanOrEqual(12);
    for (const c of cases) {
      const schedule = schedules[w.int(`${c}.schedule`)]!;
      const got = rtcPrefixWeights(schedule, w.int(`${c}.delay`), w.int(`${c}.horizon`), w.int(`${c}.chunk`));
      const want = w.get(`${c}.out`).toNumbers().map(Number);
      expect({ c, length: got.length }).toEqual({ c, length: want.length });
      got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-6));
    }
  });

  it('match min(c/r², max) over t, clipped, with t = 1 -> max and t = 0 -> 0', () => {
    const times = w.get('guidance.time').toNumbers().map(Number);
    const maxes = w.get('guidance.max').toNumbers().map(Number);
    const want = w.get('guidance.out').toNumbers().map(Number);
    maxes.forEach((m, i) =>
      times.forEach((t, j) => expect(Math.abs(rtcGuidanceWeight(t, m) - want[i * times.length + j]!)).toBeLessThanOrEqual(1e-6 * m)),
    );
    expect(rtcGuidanceWeight(1, 10)).toBe(10);
    expect(rtcGuidanceWeight(0, 10)).toBe(0);
    expect(rtcGuidanceWeight(2 / 3, 1.5)).toBe(1.5);
  });

  it('reject a bad schedule or argument with a coded error naming it', () => {
    expect(() => rtcPrefixWeights('cosine' as PrefixSchedule, 1, 2, 4)).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
    expect(() => rtcPrefixWeights('linear', -1, 2, 4)).toThrow(/delay/);
    expect(() => rtcGuidanceWeight(1.5, 10)).toThrow(/t/);
  });
});

describe.each(['tiny_equal', 'tiny_fewer'])('guided sampling on %s', (name) => {
  let f: ModelFixture;
  let r: Fixture;
  beforeAll(async () => {
    f = await loadModelFixture(name);
    r = await loadFixture(name, 'rtc.safetensors');
  });

  it(`matches the guided step, every later step and the chunk within ${TOL}`, async () => {
    const schedules = JSON.parse(r.metadata.schedules!) as PrefixSchedule[];
    const cases = (JSON.parse(r.metadata.cases!) as Array<{ name: string }>).map((c) => c.name);
    expect(cases.length).toBeGreaterThan(0);
    const cache = await f.model.prefix(f.obs);
    for (const c of cases) {
      const rtc = {
        leftover: r.get(`${c}.in.leftover`),
        inferenceDelay: r.int(`${c}.in.delay`),
        executionHorizon: r.int(`${c}.in.horizon`),
        schedule: schedules[r.int(`${c}.in.schedule`)]!,
        maxGuidanceWeight: r.float(`${c}.in.max_guidance_weight`),
        stopGradient: r.int(`${c}.in.stop_gradient`) === 1,
      };
      const { actions, trace } = await f.model.guided(cache, rtc, { noise: f.io.get('in.noise'), trace: true });
      const steps = r.keys().filter((k) => k.startsWith(`${c}.out.guided.`)).length;
      expect(steps).toBe(f.model.config.numSteps);
      expectClose(trace.weights!, r.get(`${c}.out.weights`), 1e-6, `${c} weights`);
      for (let s = 0; s < steps; s++) {
        for (const k of ['x', 'v', 'correction', 'guided']) expectClose(trace[`${k}.${s}`]!, r.get(`${c}.out.${k}.${s}`), TOL, `${c} ${k}.${s}`);
        expect(Math.abs(trace[`gw.${s}`]!.toNumbers()[0] as number - r.float(`${c}.out.gw.${s}`))).toBeLessThanOrEqual(1e-6);
      }
      expectClose(actions, r.get(`${c}.out.actions`), TOL, `${c} actions`);
    }
  });
});

describe('guided sampling through sample()', () => {
  let f: ModelFixture;
  beforeAll(async () => {
    f = await loadModelFixture('tiny_equal');
  });

  it('equals plain sampling when every prefix weight is zero', async () => {
    const noise = f.io.get('in.noise');
    const leftover = Tensor.fromNumbers(new Array(2 * 3 * 6).fill(5), [2, 3, 6]);
    const plain = await f.model.sample(f.obs, { noise });
    const guided = await f.model.sample(f.obs, { noise, rtc: { leftover, inferenceDelay: 0, executionHorizon: 0 } });
    expect(guided.cache).not.toBeNull();
    expectClose(guided.actions, plain.actions, 1e-6, 'zero-weight guidance');
  });

  it('pulls the frozen actions toward the leftover', async () => {
    const noise = f.io.get('in.noise');
    const target = 3;
    const leftover = Tensor.fromNumbers(new Array(2 * 8 * 6).fill(target), [2, 8, 6]);
    const gap = (t: Tensor): number => {
      const v = t.toNumbers().map(Number);
      let s = 0;
      for (let b = 0; b < 2; b++) for (let a = 0; a < 6; a++) s += Math.abs(v[b * 48 + a]! - target);
      return s;
    };
    const plain = await f.model.sample(f.obs, { noise });
    const guided = await f.model.sample(f.obs, { noise, rtc: { leftover, inferenceDelay: 3, executionHorizon: 8, schedule: 'exp' } });
    expect(gap(guided.actions)).toBeLessThan(0.5 * gap(plain.actions));
  });

  it('rejects bad options with coded errors naming them', async () => {
    const cache = await f.model.prefix(f.obs);
    const ok = Tensor.fromNumbers(new Array(2 * 3 * 6).fill(0), [2, 3, 6]);
    const bad = [
      [{ leftover: Tensor.fromNumbers(new Array(2 * 9 * 6).fill(0), [2, 9, 6]), inferenceDelay: 0 }, /leftover/],
      [{ leftover: Tensor.fromNumbers(new Array(3 * 6).fill(0), [1, 3, 6]), inferenceDelay: 0 }, /leftover/],
      [{ leftover: ok, inferenceDelay: -1 }, /inferenceDelay/],
      [{ leftover: ok, inferenceDelay: 1.5 }, /inferenceDelay/],
      [{ leftover: ok, inferenceDelay: 0, maxGuidanceWeight: 0 }, /maxGuidanceWeight/],
      [{ leftover: ok, inferenceDelay: 0, schedule: 'cosine' }, /schedule/],
    ] as const;
    for (const [rtc, message] of bad) {
      await expect(f.model.guided(cache, rtc as never)).rejects.toThrow(message);
      await expect(f.model.guided(cache, rtc as never)).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT' });
    }
  });
});
