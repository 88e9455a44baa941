/**
 * Per-update seeds. libtorch's generator state cannot be saved through the addon, so instead of
 * carrying one stream through the run, every update reseeds it from (run seed, step): the CLS noise
 * of step k is then the same in a straight run and in one resumed before k.
 */

/** Evaluation batches use their own stream, so evaluating never shifts training's. */
export const EVAL_STREAM = 0x5eed_e7a1;

/** A 32-bit seed mixed from (seed, stream, index) with a murmur3-style finaliser. */
export function stepSeed(seed: number, index: number, stream = 0): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul((index | 0) + 1, 0x85ebca6b) ^ Math.imul(stream | 0, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}
