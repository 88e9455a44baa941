/**
 * LeRobot's `cosine_decay_with_warmup` learning-rate schedule (`optim/schedulers.py`): a
 * multiplier of the peak lr, linear warmup from 1/(W+1) to 1 over W steps, then a cosine from 1 down
 * to alpha = decay_lr / peak_lr at step D, flat after D. As in newer LeRobot, a run shorter than D
 * squeezes both phases into it: W' = int(W * steps / D), D' = steps.
 *
 * Steps count optimiser updates already taken, as torch's LambdaLR counts them: the first update
 * (step 0) runs at peak_lr / (W + 1).
 */
import type { SmolVLAConfig } from '../config';
import { SmolVLAError } from '../errors';

export interface CosineScheduleOptions {
  /** Peak learning rate (the optimizer's lr). */
  peakLr: number;
  /** Final learning rate, reached at decaySteps. */
  decayLr: number;
  warmupSteps: number;
  decaySteps: number;
}

/** How the schedule was fitted into a short run (null when it was not). */
export interface ScheduleScaling {
  trainingSteps: number;
  scaleFactor: number;
  warmupSteps: { from: number; to: number };
  decaySteps: { from: number; to: number };
}

export class CosineDecayWithWarmup {
  readonly peakLr: number;
  readonly decayLr: number;
  /** The warmup and decay lengths in effect (after any scaling). */
  readonly warmupSteps: number;
  readonly decaySteps: number;
  readonly scaling: ScheduleScaling | null;

  /** `trainingSteps`: the run's total steps (LeRobot's num_training_steps), which may scale W and D. */
  constructor(options: CosineScheduleOptions, trainingSteps: number) {
    const { peakLr, decayLr, warmupSteps, decaySteps } = options;
    if (!(Number.isFinite(peakLr) && peakLr > 0)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `peakLr (optimizer_lr): expected a positive number, got ${peakLr}`);
    if (!(Number.isFinite(decayLr) && decayLr >= 0)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `decayLr (scheduler_decay_lr): expected a non-negative number, got ${decayLr}`);
    if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `warmupSteps (scheduler_warmup_steps): expected a non-negative integer, got ${warmupSteps}`);
    }
    if (!Number.isInteger(decaySteps) || decaySteps < 1) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `decaySteps (scheduler_decay_steps): expected a positive integer, got ${decaySteps}`);
    }
    if (!Number.isInteger(trainingSteps) || trainingSteps < 1) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `trainingSteps (steps): expected a positive integer, got ${trainingSteps}`);
    }
    this.peakLr = peakLr;
    this.decayLr = decayLr;
    if (trainingSteps < decaySteps) {
      const scaleFactor = trainingSteps / decaySteps;
      this.warmupSteps = Math.trunc(warmupSteps * scaleFactor);
      this.decaySteps = trainingSteps;
      this.scaling = {
        trainingSteps,
        scaleFactor,
        warmupSteps: { from: warmupSteps, to: this.warmupSteps },
        decaySteps: { from: decaySteps, to: this.decaySteps },
      };
    } else {
      this.warmupSteps = warmupSteps;
      this.decaySteps = decaySteps;
      this.scaling = null;
    }
  }

  static fromConfig(config: SmolVLAConfig, trainingSteps: number): CosineDecayWithWarmup {
    return new CosineDecayWithWarmup(
      {
        peakLr: config.optimizerLr,
        decayLr: config.schedulerDecayLr,
        warmupSteps: config.schedulerWarmupSteps,
        decaySteps: config.schedulerDecaySteps,
      },
      trainingSteps,
    );
  }

  /** The multiplier of peakLr for the update at `step` (0-based). */
  multiplier(step: number): number {
    const w = this.warmupSteps;
    if (step < w) {
      if (step <= 0) return 1 / (w + 1);
      const frac = 1 - step / w;
      return (1 / (w + 1) - 1) * frac + 1;
    }
    const s = Math.min(step, this.decaySteps);
    const cosineDecay = 0.5 * (1 + Math.cos((Math.PI * s) / this.decaySteps));
    const alpha = this.decayLr / this.peakLr;
    return (1 - alpha) * cosineDecay + alpha;
  }

  /** The learning rate of the update at `step` (0-based). */
  lr(step: number): number {
    return this.peakLr * this.multiplier(step);
  }

  /** LeRobot's log line for a scaled schedule, or null. */
  describeScaling(): string | null {
    const s = this.scaling;
    if (!s) return null;
    return (
      `Auto-scaling LR scheduler: num_training_steps (${s.trainingSteps}) < num_decay_steps (${s.decaySteps.from}). ` +
      `Scaling warmup: ${s.warmupSteps.from} → ${s.warmupSteps.to}, decay: ${s.decaySteps.from} → ${s.decaySteps.to} ` +
      `(scale factor: ${s.scaleFactor.toFixed(3)})`
    );
  }
}
