/**
 * The matrix roof a dtype's model speed is measured against: the best GFLOP/s of every CPU GEMM route
 * available here (libtorch's linear and matmul, oneDNN reading the weight in place or prepacked) on the
 * model's largest projection shapes, probed several times (before, between and after the model runs) so
 * a noisy neighbour cannot make the roof look low. Probes of the winning route that differ by more than
 * 20 % are reported: the machine was not quiet.
 */
import { gemmRoutes, matmulThroughput, type GemmRoute } from '../lib/index';

/** The vision MLP's two GEMMs at 1024 patches: the model's largest. */
const SHAPES: ReadonlyArray<[number, number, number]> = [
  [1024, 768, 3072],
  [1024, 3072, 768],
];

export interface Roof {
  gflops: number;
  route: GemmRoute;
  /** (max - min) / max over the winning route's rounds. */
  spread: number;
  rounds: number;
}

export class RoofTracker {
  private readonly samples = new Map<GemmRoute, number[]>();

  constructor(
    private readonly dtype: 'float32' | 'bfloat16',
    private readonly seconds = 0.25,
  ) {}

  /** One round: every available route on every shape; a route's round value is its best shape. */
  probe(): void {
    for (const route of gemmRoutes().available) {
      const best = Math.max(...SHAPES.map(([m, k, n]) => matmulThroughput(m, k, n, this.dtype, this.seconds, 'cpu', route)));
      this.samples.set(route, [...(this.samples.get(route) ?? []), best]);
    }
  }

  roof(): Roof {
    let top: Roof | undefined;
    for (const [route, xs] of this.samples) {
      const max = Math.max(...xs);
      if (!top || max > top.gflops) top = { gflops: max, route, spread: (max - Math.min(...xs)) / max, rounds: xs.length };
    }
    if (!top) throw new Error('RoofTracker: no probe taken');
    return top;
  }

  /** Every route's best, for the log: "onednn-packed 266, aten-linear 120, ...". */
  describe(): string {
    return [...this.samples].map(([route, xs]) => `${route} ${Math.max(...xs).toFixed(0)}`).join(', ');
  }
}

/** Achieved over roof in percent, never above 100 (a model rate above the roof is flagged by the caller). */
export function percentOfRoof(gflops: number, roof: number): number {
  return Math.min(100, (100 * gflops) / roof);
}
