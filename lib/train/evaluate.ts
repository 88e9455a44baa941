/**
 * The training objective on held-out data, without updates: every held-out frame (up to a cap), in
 * one fixed shuffled order so that batches mix episodes as training batches do (VICReg's batch
 * statistics over consecutive frames of one episode would say little), each batch with its own
 * fixed seed, so two evaluations of the same weights agree. With the CLS head it also keeps each
 * sample's CLS projections for the report's 2-D view.
 */
import { manualSeed } from '../runtime';
import type { Dataset } from '../data';
import { seededRandom } from '../data/random';
import type { SmolVLAModel, TensorDict } from '../model';
import { disposeBatch } from '../policy/batch';
import { disposeAll, type Tensor } from '../tensor';
import type { ToBatch } from './batcher';
import { EVAL_STREAM, stepSeed } from './seeds';

export interface EvaluateOptions {
  batchSize: number;
  /** Samples to use at most; 0 or undefined: all of them. */
  maxSamples?: number;
  seed: number;
  /** Keep the per-sample CLS projections (delta objective with the CLS head). */
  projections?: boolean;
}

/** Per-sample CLS projections, averaged over the CLS tokens (width De). */
export interface ClsProjections {
  obs: Float32Array[];
  act: Float32Array[];
  tasks: string[];
  episodes: number[];
}

export interface Evaluation {
  samples: number;
  batches: number;
  /** Each loss term / monitoring value averaged over the samples. */
  metrics: Record<string, number>;
  projections: ClsProjections | null;
}

function mean(t: Tensor): number {
  const v = t.toFloat32();
  let s = 0;
  for (const x of v) s += x;
  return s / Math.max(1, v.length);
}

/** (B, T, D) -> B vectors of the token mean. */
function tokenMeans(t: Tensor): Float32Array[] {
  const [B, T, D] = t.shape as [number, number, number];
  const v = t.toFloat32();
  return Array.from({ length: B }, (_, b) => {
    const out = new Float32Array(D);
    for (let k = 0; k < T; k++) for (let d = 0; d < D; d++) out[d] = (out[d] as number) + (v[(b * T + k) * D + d] as number) / T;
    return out;
  });
}

export async function evaluate(model: SmolVLAModel, dataset: Dataset, toBatch: ToBatch, options: EvaluateOptions): Promise<Evaluation> {
  const delta = model.config.trainDeltaExpert;
  // VICReg needs batch statistics: a trailing batch of one is left out.
  const minBatch = delta && model.config.useClsHead ? 2 : 1;
  const limit = options.maxSamples && options.maxSamples > 0 ? Math.min(options.maxSamples, dataset.length) : dataset.length;
  const order = Array.from({ length: dataset.length }, (_, i) => i);
  const rand = seededRandom(stepSeed(options.seed, 0, EVAL_STREAM));
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const sums: Record<string, number> = {};
  const projections: ClsProjections | null = options.projections && delta && model.config.useClsHead ? { obs: [], act: [], tasks: [], episodes: [] } : null;
  let samples = 0;
  let batches = 0;
  for (let start = 0; start + minBatch <= limit; start += options.batchSize) {
    const indices = order.slice(start, Math.min(start + options.batchSize, limit));
    const raw = await Promise.all(indices.map((i) => dataset.get(i)));
    const batch = await toBatch(raw);
    manualSeed(stepSeed(options.seed, batches, EVAL_STREAM));
    let losses: TensorDict;
    let trace: TensorDict = {};
    try {
      if (delta) {
        ({ losses, trace } = await model.forwardDelta(batch.observation, { actionIsPad: batch.actionIsPad, trace: projections !== null }));
      } else {
        ({ losses } = await model.forwardMain(batch.observation, batch.actions, { actionIsPad: batch.actionIsPad }));
      }
    } finally {
      disposeBatch(batch);
    }
    for (const [k, t] of Object.entries(losses)) sums[k] = (sums[k] ?? 0) + mean(t) * indices.length;
    if (projections && trace.obs_proj && trace.act_proj) {
      projections.obs.push(...tokenMeans(trace.obs_proj));
      projections.act.push(...tokenMeans(trace.act_proj));
      projections.tasks.push(...raw.map((s) => s.task));
      projections.episodes.push(...raw.map((s) => s.episodeIndex));
    }
    disposeAll(losses);
    disposeAll(trace);
    samples += indices.length;
    batches++;
  }
  const metrics = Object.fromEntries(Object.entries(sums).map(([k, s]) => [k, s / Math.max(1, samples)]));
  return { samples, batches, metrics, projections };
}
