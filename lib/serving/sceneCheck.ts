/**
 * The two steps every CLS-gated decision is made of, shared by PolicyServer (one action per call)
 * and LocalChunkPolicy (chunks for the control runtime):
 *
 * - `checkScene`: ONE prefix pass (`calCache` with the similarity) giving the cache and whether the
 *   scene is unchanged (`hit`, by the batch rule);
 * - `deltaRefine`: one delta-expert step on queued model-space actions against a cache (x = the
 *   actions, padded to the chunk by repeating the last; refined = x + v, the correction the delta
 *   expert is trained to predict).
 */
import { SmolVLAError } from '../errors';
import type { KVCache } from '../model';
import type { Tensor } from '../tensor';
import { Tensor as TensorClass } from '../tensor';
import type { DecisionRule, PolicyLike } from './server';

export interface SceneCheck {
  /** The prefix cache of this pass (the caller owns and disposes it). */
  cache: KVCache;
  /** (B, Ncp, Dv) prefix CLS outputs (the caller disposes them), or null. */
  obsClsOut: Tensor | null;
  /** Null on the first check after a reset. */
  similarity: { mean: number; perSample: Float32Array } | null;
  /** shouldCache under the rule (true on a first check, where similarity is null). */
  hit: boolean;
}

export async function checkScene(
  policy: PolicyLike,
  batch: unknown,
  rule: DecisionRule,
  cancel: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined },
  who: string,
): Promise<SceneCheck> {
  const checked = await policy.predictActionChunk(batch, {
    calCache: true,
    computeClsSimilarity: true,
    signal: cancel.signal,
    timeoutMs: cancel.timeoutMs,
  });
  checked.actionsTensor?.dispose();
  checked.deltaActions?.dispose();
  if (!checked.cache) {
    checked.obsClsOut?.dispose();
    throw new SmolVLAError('ERR_SMOLVLA', `${who}: policy.predictActionChunk({ calCache: true }) returned no cache`);
  }
  const hit = checked.shouldCache && (rule === 'batch-mean' || (checked.perSampleShouldCache?.every(Boolean) ?? true));
  return { cache: checked.cache, obsClsOut: checked.obsClsOut ?? null, similarity: checked.similarity, hit };
}

/**
 * x: (batch, n, modelDim) model-space actions, n >= 1 -> refined (batch, n, modelDim). The delta
 * expert sees a full chunk: rows past n repeat the last one (and their output is dropped).
 */
export async function deltaRefine(policy: PolicyLike, cache: KVCache, x: Float32Array, batch: number, n: number, who: string): Promise<Float32Array> {
  const { chunkSize: chunk, maxActionDim: modelDim } = policy.config;
  if (n < 1 || x.length !== batch * n * modelDim) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${who}: ${x.length} values to refine, expected ${batch} x ${n} x ${modelDim}`);
  if (typeof policy.deltaStep !== 'function') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${who}: refining needs policy.deltaStep`);
  const padded = new Float32Array(batch * chunk * modelDim);
  for (let b = 0; b < batch; b++) {
    for (let k = 0; k < chunk; k++) {
      const src = (b * n + Math.min(k, n - 1)) * modelDim;
      padded.set(x.subarray(src, src + modelDim), (b * chunk + k) * modelDim);
    }
  }
  const xt = TensorClass.from(padded, [batch, chunk, modelDim]);
  let v: Float32Array;
  try {
    const velocity = await policy.deltaStep(cache, xt);
    v = velocity.toFloat32().slice();
    velocity.dispose();
  } finally {
    xt.dispose();
  }
  if (v.length !== padded.length) throw new SmolVLAError('ERR_SMOLVLA', `${who}: policy.deltaStep returned ${v.length} values, expected ${batch} x ${chunk} x ${modelDim}`);
  const rows = Math.min(n, chunk);
  const refined = new Float32Array(batch * n * modelDim);
  for (let b = 0; b < batch; b++) {
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < modelDim; j++) {
        const o = (b * n + k) * modelDim + j;
        // Rows past the chunk (n > C) get no correction from this one step.
        refined[o] = k < rows ? padded[(b * chunk + k) * modelDim + j]! + v[(b * chunk + k) * modelDim + j]! : x[o]!;
      }
    }
  }
  return refined;
}
