/** LeRobot's cosine_decay_with_warmup against its formula, written out independently here. */
import { CosineDecayWithWarmup } from '../../lib/train/schedule';
import { tinyConfig } from '../../lib/train/presets';

/** LeRobot's cosine_decay_with_warmup formula with W, D already in effect. */
function formula(step: number, w: number, d: number, peak: number, decay: number): number {
  if (step < w) return step <= 0 ? 1 / (w + 1) : (1 / (w + 1) - 1) * (1 - step / w) + 1;
  const alpha = decay / peak;
  return (1 - alpha) * 0.5 * (1 + Math.cos((Math.PI * Math.min(step, d)) / d)) + alpha;
}

describe('cosine decay with warmup', () => {
  const opts = { peakLr: 1e-4, decayLr: 2.5e-6, warmupSteps: 1000, decaySteps: 30000 };

  test('matches the formula at step 0, W-1, W, D, beyond D and many steps between', () => {
    const s = new CosineDecayWithWarmup(opts, 100000);
    expect(s.scaling).toBeNull();
    const steps = [0, 1, 2, 500, 999, 1000, 1001, 5000, 15000, 29999, 30000, 30001, 50000, 99999];
    for (let k = 0; k < 200; k++) steps.push(Math.floor((k * 100000) / 200));
    for (const step of steps) {
      expect(s.multiplier(step)).toBeCloseTo(formula(step, 1000, 30000, 1e-4, 2.5e-6), 12);
      expect(s.lr(step)).toBeCloseTo(1e-4 * formula(step, 1000, 30000, 1e-4, 2.5e-6), 16);
    }
    // The landmarks themselves.
    expect(s.multiplier(0)).toBeCloseTo(1 / 1001, 15);
    expect(s.multiplier(999)).toBeCloseTo((1 / 1001 - 1) * (1 / 1000) + 1, 15);
    expect(s.multiplier(1000)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI / 30)) * (1 - 0.025) + 0.025, 15);
    expect(s.lr(30000)).toBeCloseTo(2.5e-6, 18);
    expect(s.lr(123456)).toBeCloseTo(2.5e-6, 18);
  });

  test('a run shorter than D squeezes W and D into it (newer LeRobot) and says so', () => {
    const s = new CosineDecayWithWarmup(opts, 200);
    // int(1000 * 200 / 30000) = int(6.67) = 6
    expect(s.warmupSteps).toBe(6);
    expect(s.decaySteps).toBe(200);
    expect(s.scaling).toEqual({ trainingSteps: 200, scaleFactor: 200 / 30000, warmupSteps: { from: 1000, to: 6 }, decaySteps: { from: 30000, to: 200 } });
    expect(s.describeScaling()).toBe(
      'Auto-scaling LR scheduler: num_training_steps (200) < num_decay_steps (30000). Scaling warmup: 1000 → 6, decay: 30000 → 200 (scale factor: 0.007)',
    );
    for (const step of [0, 5, 6, 7, 100, 199, 200, 250]) expect(s.multiplier(step)).toBeCloseTo(formula(step, 6, 200, 1e-4, 2.5e-6), 12);
    expect(new CosineDecayWithWarmup(opts, 30000).scaling).toBeNull();
  });

  test('warmup scaled to zero starts at the peak', () => {
    const s = new CosineDecayWithWarmup(opts, 20);
    expect(s.warmupSteps).toBe(0);
    expect(s.multiplier(0)).toBe(1);
  });

  test('fromConfig reads the presets; bad values are errors naming the field', () => {
    const c = tinyConfig();
    const s = CosineDecayWithWarmup.fromConfig(c, 5000);
    expect([s.peakLr, s.decayLr, s.warmupSteps, s.decaySteps]).toEqual([c.optimizerLr, c.schedulerDecayLr, c.schedulerWarmupSteps, c.schedulerDecaySteps]);
    expect(() => new CosineDecayWithWarmup({ ...opts, decaySteps: 0 }, 10)).toThrow(/decaySteps \(scheduler_decay_steps\)/);
    expect(() => new CosineDecayWithWarmup({ ...opts, peakLr: 0 }, 10)).toThrow(/peakLr \(optimizer_lr\)/);
    expect(() => new CosineDecayWithWarmup(opts, 0)).toThrow(/trainingSteps \(steps\)/);
  });
});
