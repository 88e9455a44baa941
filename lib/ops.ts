/**
 * Standalone tensor operations of SmolVLA, computed in C++. Exposed for users who
 * assemble their own pipelines and for parity tests; the model uses the same C++ functions.
 */
import { argumentError } from './errors';
import { native } from './native';
import { Tensor, type DType } from './tensor';
import { boolArg, choiceArg, intArg, numberArg, optionsArg, tensorArg } from './util/args';

/**
 * Largest size an op accepts for a feature dimension, a pad target, an image side or a token
 * count: far above SmolVLA's (960 hidden, 512 px, 48 tokens), low enough that a typo fails at once
 * instead of allocating gigabytes on the main thread.
 */
export const MAX_OP_SIZE = 1 << 16;

/** Attention mask from pad (B, N) bool and block marks (B, N): i sees j iff cumsum(marks)[j] <= cumsum(marks)[i] and both are valid. */
export function makeAtt2dMasks(pad: Tensor, marks: Tensor): Tensor {
  tensorArg('pad', pad);
  tensorArg('marks', marks);
  return new Tensor(native.makeAtt2dMasks(pad.handle, marks.handle));
}

export interface ClsMaskOptions {
  numClsPrefix: number;
  numClsSuffix: number;
  /** Action tokens a suffix CLS row sees at each end of the chunk (default 5). */
  numActionContext?: number;
  /** Action tokens just before the suffix CLS tokens. */
  chunkSize: number;
}

/**
 * The opt-in suffix-CLS mask: the last numClsSuffix rows see the valid prefix, the first
 * and last numActionContext valid action tokens and the suffix CLS tokens; other rows are standard.
 * No shipped path uses it (they match the published code); it is offered for experiments.
 */
export function makeAtt2dMasksWithCls(pad: Tensor, marks: Tensor, options: ClsMaskOptions): Tensor {
  tensorArg('pad', pad);
  tensorArg('marks', marks);
  if (options === undefined) throw argumentError('options', 'an options object', options);
  optionsArg('options', options);
  intArg('options.numClsPrefix', options.numClsPrefix, 0, MAX_OP_SIZE);
  intArg('options.numClsSuffix', options.numClsSuffix, 0, MAX_OP_SIZE);
  intArg('options.numActionContext', options.numActionContext ?? 5, 0, MAX_OP_SIZE);
  intArg('options.chunkSize', options.chunkSize, 0, MAX_OP_SIZE);
  return new Tensor(
    native.makeAtt2dMasksWithCls(
      pad.handle,
      marks.handle,
      options.numClsPrefix,
      options.numClsSuffix,
      options.numActionContext ?? 5,
      options.chunkSize,
    ),
  );
}

/** Flow-matching time embedding: time (B) -> (B, dim) = [sin(2πt/p), cos(2πt/p)], computed in float64. */
export function timeEmbedding(time: Tensor, dim: number, minPeriod = 0.004, maxPeriod = 4.0, dtype: DType = 'float32'): Tensor {
  tensorArg('time', time);
  if (intArg('dim', dim, 2, MAX_OP_SIZE) % 2 !== 0) throw argumentError('dim', 'even (sin and cos halves)', dim);
  numberArg('minPeriod', minPeriod, { min: 0, aboveMin: true });
  numberArg('maxPeriod', maxPeriod, { min: minPeriod });
  choiceArg('dtype', dtype, ['float32', 'float64', 'bfloat16', 'float16'] as const);
  return new Tensor(native.timeEmbedding(time.handle, dim, minPeriod, maxPeriod, dtype));
}

/** SmolVLA's RoPE (max wavelength 10 000, rotate-half) of x (B, L, H, d) at integer positions (B, L). */
export function applyRope(x: Tensor, positions: Tensor): Tensor {
  tensorArg('x', x);
  tensorArg('positions', positions);
  return new Tensor(native.applyRope(x.handle, positions.handle));
}

/** Zero-pads the last axis to newDim. */
export function padVector(x: Tensor, newDim: number): Tensor {
  tensorArg('x', x);
  intArg('newDim', newDim, 0, MAX_OP_SIZE);
  return new Tensor(native.padVector(x.handle, newDim));
}

/** Aspect-preserving bilinear resize of (B, C, H, W) into width x height, padded left/top with padValue. */
export function resizeWithPad(img: Tensor, width: number, height: number, padValue = 0): Tensor {
  tensorArg('img', img);
  intArg('width', width, 1, MAX_OP_SIZE);
  intArg('height', height, 1, MAX_OP_SIZE);
  numberArg('padValue', padValue);
  return new Tensor(native.resizeWithPad(img.handle, width, height, padValue));
}

export interface VicregOptions {
  lambda?: number;
  mu?: number;
  nu?: number;
  gamma?: number;
  eps?: number;
  /** Also return the gradients of loss.mean() w.r.t. z1 and z2. */
  withGrad?: boolean;
}

export interface VicregResult {
  /** (B, T) */
  loss: Tensor;
  /** (B, T) */
  invariance: Tensor;
  /** (T) */
  variance: Tensor;
  /** (T) */
  covariance: Tensor;
  gradZ1?: Tensor;
  gradZ2?: Tensor;
}

/** VICReg between z1 and z2 (B >= 2, T, D) with its three terms (defaults 25, 25, 1, gamma 1, eps 1e-4). */
export function vicregLoss(z1: Tensor, z2: Tensor, options: VicregOptions = {}): VicregResult {
  tensorArg('z1', z1);
  tensorArg('z2', z2);
  optionsArg('options', options);
  for (const key of ['lambda', 'mu', 'nu', 'gamma'] as const) {
    if (options[key] !== undefined) numberArg(`options.${key}`, options[key]);
  }
  if (options.eps !== undefined) numberArg('options.eps', options.eps, { min: 0, aboveMin: true });
  if (options.withGrad !== undefined) boolArg('options.withGrad', options.withGrad);
  const r = native.vicregLoss(
    z1.handle,
    z2.handle,
    options.lambda ?? 25.0,
    options.mu ?? 25.0,
    options.nu ?? 1.0,
    options.gamma ?? 1.0,
    options.eps ?? 1e-4,
    options.withGrad ?? false,
  );
  const out: VicregResult = {
    loss: new Tensor(r.loss),
    invariance: new Tensor(r.invariance),
    variance: new Tensor(r.variance),
    covariance: new Tensor(r.covariance),
  };
  if (r.gradZ1 && r.gradZ2) {
    out.gradZ1 = new Tensor(r.gradZ1);
    out.gradZ2 = new Tensor(r.gradZ2);
  }
  return out;
}

export interface ClsSimilarity {
  /** (B) cosine of the current CLS token 0 and the previous call's CLS token 1. */
  perSample: Float32Array;
  /** Batch mean: the value the cache decision uses. */
  mean: number;
}

/** The inference state machine's similarity: current, previous (B, N >= 2, D). */
export function clsSimilarity(current: Tensor, previous: Tensor): ClsSimilarity {
  tensorArg('current', current);
  tensorArg('previous', previous);
  const t = new Tensor(native.clsSimilarity(current.handle, previous.handle));
  try {
    const perSample = Float32Array.from(t.toFloat32());
    const mean = perSample.reduce((a, b) => a + b, 0) / perSample.length;
    return { perSample, mean };
  } finally {
    t.dispose();
  }
}
