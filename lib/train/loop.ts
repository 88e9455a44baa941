/**
 * The training loop, LeRobot's `lerobot-train` step for step: batches from a
 * deterministic BatchLoader, one AdamW update per batch at the cosine-with-warmup learning rate,
 * metrics every `logFreq` updates into metrics.jsonl, checkpoints every `saveFreq` updates and at the
 * end, held-out evaluation, and training_report.html. A NaN or infinite loss stops the run naming the
 * step and leaves the last good checkpoint alone; an aborted signal finishes the current step, saves
 * and returns.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

import { BatchLoader, type BatchLoaderState, type Dataset } from '../data';
import type { SmolVLAModel } from '../model';
import { disposeBatch } from '../policy/batch';
import type { Normalizer } from '../policy/normalize';
import type { VlmTokenizer } from '../policy/tokenizer';
import { manualSeed } from '../runtime';
import { disposeAll } from '../tensor';
import type { ToBatch, TrainingBatch } from './batcher';
import {
  loadOptimizerState,
  readTrainingState,
  saveCheckpoint,
  type CheckpointPaths,
  type TrainingState,
} from './checkpoint';
import type { ProcessGroup } from './distributed';
import { evaluate, type ClsProjections, type Evaluation } from './evaluate';
import { MetricsLog, type MetricsRecord } from './metrics';
import { Optimizer, type StepOutput } from './optimizer';
import { writeTrainingReport } from './report';
import { CosineDecayWithWarmup } from './schedule';
import { stepSeed } from './seeds';
import { SmolVLAError } from '../errors';

export const METRICS_FILE = 'metrics.jsonl';
export const REPORT_FILE = 'training_report.html';

/** The VICReg FAQ's smallest batch for stable batch statistics. */
export const VICREG_MIN_BATCH = 32;

export interface TrainOptions {
  /** A fresh model, one loaded with --policy.path, or (resuming) the checkpoint's pretrained_model. */
  model: SmolVLAModel;
  dataset: Dataset;
  /** Held-out frames, evaluated every `evalSteps` updates and after training; null for none. */
  evalDataset?: Dataset | null;
  toBatch: ToBatch;
  steps: number;
  /** Samples per update and process: a data-parallel update sees batchSize × world size samples. */
  batchSize: number;
  seed: number;
  outputDir: string;
  logFreq: number;
  saveFreq: number;
  /** Default true. */
  saveCheckpoint?: boolean;
  /** 0 (default): evaluate only after training. */
  evalSteps?: number;
  /** 0 (default): every held-out frame. */
  maxEvalSamples?: number;
  /** The normalisation the batches use: its statistics are stored with each checkpoint's weights. */
  normalizer: Normalizer;
  /** The tokenizer the batches use, saved into each checkpoint. */
  tokenizer?: VlmTokenizer;
  /** Written to every checkpoint as pretrained_model/train_config.json. */
  trainConfig: Record<string, unknown>;
  /** Continue this checkpoint's run (`model` must be loaded from its pretrained_model). */
  resume?: CheckpointPaths;
  signal?: AbortSignal;
  /** Informational lines and warnings. */
  onLog?: (line: string) => void;
  /** Called after every update. */
  onStep?: (info: StepInfo) => void;
  /** Data-parallel training: this process's group (see `DataParallel`). */
  distributed?: DataParallel | null;
}

/**
 * One worker of a data-parallel run. Every rank draws the same global batches (same seed) and
 * trains on its slice; gradients and metrics are averaged over the ranks, so N ranks of batch b
 * follow the run of one process of batch N·b. Rank 0 alone writes metrics, checkpoints and the report.
 */
export interface DataParallel {
  group: ProcessGroup;
  /** Gradient bucket size in MiB (default 25). */
  bucketMb?: number;
  /** After every update, compare a hash of every rank's parameters; a difference stops the run. */
  checkSync?: boolean;
}

export interface StepInfo {
  /** Updates taken, this one included. */
  step: number;
  totalSteps: number;
  lr: number;
  gradNorm: number;
  /** The step's loss terms and monitoring values (tensor outputs averaged). */
  metrics: Record<string, number>;
}

export interface TrainResult {
  status: 'completed' | 'cancelled' | 'diverged';
  /** Updates taken when the run ended (the diverging update is not counted). */
  step: number;
  /** The newest checkpoint folder written by this run or the one it resumed; null when none. */
  lastCheckpoint: string | null;
  /** The final held-out evaluation (completed runs with held-out data). */
  evaluation: Evaluation | null;
  /** Why a diverged run stopped. */
  message: string | null;
}

interface Drawn {
  batch: Promise<TrainingBatch>;
  /** Loader state right after this batch: what a checkpoint taken after it must store. */
  stateAfter: BatchLoaderState;
}

function checkPositive(name: string, value: number, allowZero = false): void {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${name}: expected ${allowZero ? 'a non-negative' : 'a positive'} integer, got ${value}`);
  }
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  checkPositive('steps', o.steps);
  checkPositive('batchSize', o.batchSize);
  checkPositive('logFreq', o.logFreq);
  checkPositive('saveFreq', o.saveFreq);
  checkPositive('evalSteps', o.evalSteps ?? 0, true);
  checkPositive('maxEvalSamples', o.maxEvalSamples ?? 0, true);
  if (!Number.isSafeInteger(o.seed)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `seed: expected an integer, got ${o.seed}`);
  const log = o.onLog ?? (() => {});
  const { model } = o;
  const config = model.config;
  const objective = config.trainDeltaExpert ? 'delta' : 'main';
  const dp = o.distributed ?? null;
  const world = dp?.group.worldSize ?? 1;
  const rank = dp?.group.rank ?? 0;
  const isMain = rank === 0;
  /** The batch of one update over all ranks: what the loader draws and a checkpoint records. */
  const globalBatch = o.batchSize * world;
  const lossKey = objective === 'delta' ? 'delta_loss' : 'loss';
  const withVicreg = objective === 'delta' && config.useClsHead;
  if (withVicreg && o.batchSize < 2) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `batchSize: VICReg (use_cls_head) needs batches of at least 2 samples, got ${o.batchSize}`);
  if (withVicreg && o.batchSize < VICREG_MIN_BATCH) {
    log(`warning: batch size ${o.batchSize} < ${VICREG_MIN_BATCH}: the VICReg term's batch statistics are noisy at this size (the seeds' FAQ recommends at least ${VICREG_MIN_BATCH})`);
  }
  const schedule = CosineDecayWithWarmup.fromConfig(config, o.steps);
  const scaling = schedule.describeScaling();
  if (scaling) log(scaling);
  const saving = o.saveCheckpoint ?? true;
  const extraTensors = o.normalizer.toTensors();
  const optimizer = await Optimizer.create(model, objective, dp ? { group: dp.group, ...(dp.bucketMb !== undefined ? { bucketMb: dp.bucketMb } : {}) } : undefined);
  if (isMain) await fsp.mkdir(o.outputDir, { recursive: true });
  const metricsFile = path.join(o.outputDir, METRICS_FILE);

  let step = 0;
  let loader: BatchLoader;
  let metrics: MetricsLog;
  let lastCheckpoint: string | null = null;
  let loaderState: BatchLoaderState;
  if (o.resume) {
    const state = await readTrainingState(o.resume);
    if (state.seed !== o.seed) throw new SmolVLAError('ERR_SMOLVLA_IO', `resume: the checkpoint's run used seed ${state.seed}, this run has ${o.seed}`);
    if (state.loader && state.loader.batchSize !== globalBatch) {
      throw new SmolVLAError(
        'ERR_SMOLVLA_IO',
        `resume: the checkpoint's run used a batch of ${state.loader.batchSize} samples per update, this run has ${globalBatch}` +
          (world > 1 ? ` (${world} processes × batch_size ${o.batchSize})` : '') +
          '; keep batch_size × processes equal to resume on another number of processes',
      );
    }
    await loadOptimizerState(optimizer, model, o.resume);
    if (optimizer.steps !== state.step) {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `resume: ${o.resume.checkpointDir} is inconsistent: training_step.json says ${state.step} updates, the optimizer state ${optimizer.steps}`);
    }
    step = state.step;
    if (state.loader) {
      loader = BatchLoader.restore(o.dataset, state.loader);
    } else {
      // A run from Python LeRobot: its sampler position does not carry over.
      loader = new BatchLoader(o.dataset, { batchSize: globalBatch, seed: o.seed });
      log('resume: the checkpoint has no loader state (written by Python LeRobot): batches start again at the beginning of this run\'s order');
    }
    const keep = state.metricsBytes >= 0 ? state.metricsBytes : await fsp.stat(metricsFile).then((st) => st.size, () => 0);
    metrics = isMain ? await MetricsLog.open(metricsFile, keep) : MetricsLog.discard();
    lastCheckpoint = o.resume.checkpointDir;
    log(`resuming from ${o.resume.checkpointDir} at step ${step}`);
  } else {
    loader = new BatchLoader(o.dataset, { batchSize: globalBatch, seed: o.seed });
    metrics = isMain ? await MetricsLog.open(metricsFile) : MetricsLog.discard();
  }
  loaderState = loader.state();
  const total = (await model.info()).parameters;
  const millions = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 3 : 1)} M`;
  log(`parameters: ${total} total (${millions(total)}), ${optimizer.parameterCount} trainable (${millions(optimizer.parameterCount)})`);
  log(
    `training the ${objective === 'delta' ? 'delta expert' : 'action expert'}: ${o.dataset.length} frames, batch ${o.batchSize}` +
      (dp ? ` per process × ${world} processes (${dp.group.backend})` : '') +
      `, ${o.steps} steps`,
  );

  let projections: ClsProjections | null = null;
  const runEvaluation = async (): Promise<Evaluation | null> => {
    if (!o.evalDataset || !isMain) return null;
    const ev = await evaluate(model, o.evalDataset, o.toBatch, {
      batchSize: o.batchSize,
      maxSamples: o.maxEvalSamples ?? 0,
      seed: o.seed,
      projections: true,
    });
    if (ev.projections) projections = ev.projections;
    await metrics.append({ kind: 'eval', step, samples: ev.samples, ...ev.metrics });
    return ev;
  };
  const report = async (status: string): Promise<void> => {
    if (!isMain) return;
    const records = await MetricsLog.read(metricsFile);
    const lastEval = [...records].reverse().find((r) => r.kind === 'eval');
    await writeTrainingReport(path.join(o.outputDir, REPORT_FILE), {
      title: `smolvla-node training: ${o.dataset.repoId}`,
      summary: {
        status,
        objective: objective === 'delta' ? 'delta expert (train_delta_expert)' : 'action expert',
        'CLS head': config.useClsHead ? 'on' : 'off',
        step: `${step} / ${o.steps}`,
        'batch size': dp ? `${globalBatch} (${world} processes × ${o.batchSize})` : o.batchSize,
        'training frames': o.dataset.length,
        'held-out frames': o.evalDataset?.length ?? 0,
        [`held-out ${lossKey}`]: typeof lastEval?.[lossKey] === 'number' ? (lastEval[lossKey] as number) : 'not evaluated',
      },
      records,
      projections,
    });
  };
  const save = async (): Promise<void> => {
    if (!saving || !isMain) return;
    const state: TrainingState = { step, seed: o.seed, loader: loaderState, metricsBytes: metrics.bytes };
    lastCheckpoint = await saveCheckpoint({
      outputDir: o.outputDir,
      step,
      totalSteps: o.steps,
      model,
      extraTensors,
      normalizer: o.normalizer,
      ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
      optimizer,
      trainConfig: o.trainConfig,
      state,
      scheduler: {
        peakLr: schedule.peakLr,
        decayLr: schedule.decayLr,
        warmupSteps: schedule.warmupSteps,
        decaySteps: schedule.decaySteps,
        nextLr: schedule.lr(step),
      },
    });
    log(`checkpoint saved: ${lastCheckpoint}`);
    await report('running');
  };

  const draw = (): Drawn => {
    // Data-parallel: every rank draws the same global batch and keeps its own contiguous slice.
    const samples = dp ? Promise.all(loader.nextIndices().slice(rank * o.batchSize, (rank + 1) * o.batchSize).map((i) => o.dataset.get(i))) : loader.next();
    const batch = samples.then(o.toBatch);
    // Awaited later; until then a failure must not count as an unhandled rejection.
    batch.catch(() => {});
    return { batch, stateAfter: loader.state() };
  };
  const discard = (d: Drawn | null) => {
    d?.batch.then(disposeBatch, () => {});
  };

  let status: TrainResult['status'] = 'completed';
  let message: string | null = null;
  let next: Drawn | null = step < o.steps ? draw() : null;
  let windowStart = Date.now();
  let windowSteps = 0;
  let savedAt = o.resume ? step : -1;
  try {
    while (next) {
      const current: Drawn = next;
      const batch = await current.batch;
      next = step + 1 < o.steps ? draw() : null;
      const lr = schedule.lr(step);
      manualSeed(stepSeed(o.seed, step));
      let out: StepOutput;
      try {
        out = await optimizer.step({ observation: batch.observation, actions: batch.actions, actionIsPad: batch.actionIsPad }, lr);
      } finally {
        disposeBatch(batch);
      }
      let stopAll = false;
      let paramHash: string | null = null;
      if (dp) {
        // Averaged metrics for the log, and one stop decision for all ranks (Ctrl-C reaches them at different steps).
        const reduced = await dp.group.reduceStep({ ...out.metrics, comm_wait_s: out.commSeconds }, o.signal?.aborted ?? false);
        out = { ...out, metrics: reduced.metrics };
        stopAll = reduced.stop;
        if (dp.checkSync) paramHash = await dp.group.checkInSync(model, step + 1);
      }
      if (out.skipped || !Number.isFinite(out.gradNorm)) {
        const what = out.skipped ? `the loss (${lossKey}) is ${out.metrics[lossKey]}` : `the gradient norm is ${out.gradNorm}`;
        message =
          `training stopped at step ${step + 1}: ${what}` +
          (out.skipped ? ' (that update was not applied). ' : ' (the weights are no longer finite). ') +
          (lastCheckpoint ? `The last good checkpoint is ${lastCheckpoint}.` : 'No checkpoint was written.') +
          ' Lower the learning rate or check the data (the FAQ also suggests a larger batch).';
        await metrics.append({ kind: 'diverged', step: step + 1, message, lr, grad_norm: out.gradNorm, ...out.metrics });
        status = 'diverged';
        break;
      }
      step++;
      loaderState = current.stateAfter;
      windowSteps++;
      o.onStep?.({ step, totalSteps: o.steps, lr, gradNorm: out.gradNorm, metrics: out.metrics });
      if (step % o.logFreq === 0) {
        const now = Date.now();
        const record: MetricsRecord = {
          kind: 'train',
          step,
          samples: step * globalBatch,
          epoch: (step * globalBatch) / o.dataset.length,
          lr,
          grad_norm: out.gradNorm,
          steps_per_s: (windowSteps * 1000) / Math.max(1, now - windowStart),
          ...out.metrics,
          ...(paramHash !== null ? { param_hash: paramHash } : {}),
        };
        await metrics.append(record);
        windowStart = now;
        windowSteps = 0;
      }
      if (o.evalSteps && step % o.evalSteps === 0 && step < o.steps) await runEvaluation();
      if (step % o.saveFreq === 0 || step === o.steps) {
        await save();
        savedAt = step;
      }
      if ((dp ? stopAll : o.signal?.aborted) && next) {
        if (savedAt !== step) await save();
        status = 'cancelled';
        break;
      }
    }
  } finally {
    // The batch prefetched for a step that never ran (stop, cancellation or an error) is freed here.
    discard(next);
  }
  const evaluation = status === 'completed' ? await runEvaluation() : null;
  if (evaluation) {
    const shown = Object.entries(evaluation.metrics)
      .map(([k, v]) => `${k}=${v.toPrecision(5)}`)
      .join(' ');
    log(`held-out evaluation at step ${step} (${evaluation.samples} samples): ${shown}`);
  }
  await report(status);
  disposeAll(extraTensors);
  return { status, step, lastCheckpoint, evaluation, message };
}
