/**
 * Optimisation of the trainable parameters (the config's freezing) in libtorch: AdamW with LeRobot's
 * SmolVLA presets and global-norm clipping; one async native call per step (native/train/trainer.h).
 */
import { native, type NativeTrainer } from '../native';
import type { Observation, SmolVLAModel } from '../model';
import { toNative } from '../model/model';
import { Tensor } from '../tensor';
import { DEFAULT_BUCKET_MB, type ProcessGroup } from './distributed';

export type Objective = 'delta' | 'main';

export interface StepInput {
  observation: Observation;
  /** (B, C, A) model-space targets; required by the main objective. */
  actions?: Tensor;
  /** (B, C) bool: chunk steps past the episode end. */
  actionIsPad?: Tensor;
}

export interface StepOutput {
  /** Scalar losses and monitoring values, reduced to numbers (tensors averaged). */
  metrics: Record<string, number>;
  gradNorm: number;
  /** True when the loss was NaN or infinite: no update was applied. */
  skipped: boolean;
  /** Data-parallel: seconds spent after backward waiting for the gradient all-reduce (0 otherwise). */
  commSeconds: number;
}

export interface DataParallelOptions {
  group: ProcessGroup;
  /** Gradient bucket size (default 25 MiB, as DDP). */
  bucketMb?: number;
}

export class Optimizer {
  private readonly trainer: NativeTrainer;
  readonly objective: Objective;

  private constructor(trainer: NativeTrainer, objective: Objective) {
    this.trainer = trainer;
    this.objective = objective;
  }

  /** An optimiser over the model's trainable parameters (the model must be float32). */
  /** With `dataParallel`, every step averages the gradients over the group's ranks before AdamW. */
  static async create(
    model: SmolVLAModel,
    objective: Objective = model.config.trainDeltaExpert ? 'delta' : 'main',
    dataParallel?: DataParallelOptions,
  ): Promise<Optimizer> {
    const c = model.config;
    const trainer = await native.createTrainer({
      model: model.handle,
      betas: c.optimizerBetas,
      eps: c.optimizerEps,
      weightDecay: c.optimizerWeightDecay,
      gradClipNorm: c.optimizerGradClipNorm,
      ...(dataParallel ? { processGroup: dataParallel.group.handle, bucketMb: dataParallel.bucketMb ?? DEFAULT_BUCKET_MB } : {}),
    });
    return new Optimizer(trainer, objective);
  }

  /** Optimiser steps taken (restored by loadState). */
  get steps(): number {
    return this.trainer.steps;
  }

  /** Number of trainable scalars. */
  get parameterCount(): number {
    return this.trainer.parameterCount;
  }

  /** One forward/backward/clip/AdamW step at learning rate `lr`. */
  async step(input: StepInput, lr: number): Promise<StepOutput> {
    const r = await this.trainer.step({
      observation: toNative(input.observation),
      ...(input.actions ? { actions: input.actions.handle } : {}),
      ...(input.actionIsPad ? { actionIsPad: input.actionIsPad.handle } : {}),
      lr,
      objective: this.objective,
    });
    const metrics: Record<string, number> = {};
    for (const [k, h] of Object.entries(r.losses)) {
      const t = new Tensor(h);
      const values = t.toFloat32();
      metrics[k] = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
      t.dispose();
    }
    return { metrics, gradNorm: r.gradNorm, skipped: r.skipped, commSeconds: r.commSeconds };
  }

  async saveState(file: string): Promise<void> {
    await this.trainer.saveState({ path: file });
  }

  async loadState(file: string): Promise<void> {
    await this.trainer.loadState({ path: file });
  }
}
