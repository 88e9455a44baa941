/**
 * Deterministic, resumable batches. Epoch e visits every position once in an order fixed by
 * (seed, e); batches are always full and run on into the next epoch, so VICReg never sees a batch
 * of one. `state()` taken after any `next()` and passed to `BatchLoader.restore` yields exactly the
 * batches the original loader would have produced next.
 */
import { checkPositiveInteger } from './chunk';
import { seededRandom } from './random';
import type { Dataset, DatasetSample } from './types';
import { SmolVLAError } from '../errors';

export interface BatchLoaderOptions {
  batchSize: number;
  seed: number;
  /** Default true; false visits positions in order. */
  shuffle?: boolean;
}

export interface BatchLoaderState {
  seed: number;
  /** Epoch the next sample comes from (0-based). */
  epoch: number;
  /** Offset of the next sample within that epoch's order. */
  position: number;
  batchSize: number;
  shuffle: boolean;
  /** Dataset length the state was taken with; restore refuses a different dataset size. */
  datasetLength: number;
}

/** Mixes seed and epoch into one 32-bit generator seed (splitmix-style finaliser). */
function epochSeed(seed: number, epoch: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export class BatchLoader {
  private readonly seed: number;
  private readonly batchSize: number;
  private readonly shuffle: boolean;
  private currentEpoch = 0;
  private position = 0;
  private order: Uint32Array;

  constructor(
    private readonly ds: Dataset,
    opts: BatchLoaderOptions,
  ) {
    this.batchSize = checkPositiveInteger('batchSize', opts.batchSize);
    if (!Number.isInteger(opts.seed)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `seed must be an integer, got ${String(opts.seed)}`);
    this.seed = opts.seed;
    this.shuffle = opts.shuffle ?? true;
    if (ds.length < 1) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `BatchLoader: dataset '${ds.repoId}' has no frames`);
    this.order = this.orderOf(0);
  }

  static restore(ds: Dataset, state: BatchLoaderState): BatchLoader {
    if (state.datasetLength !== ds.length) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT',
        `BatchLoader.restore: the state was taken on a dataset of ${state.datasetLength} frames, '${ds.repoId}' has ${ds.length}`,
      );
    }
    if (!Number.isInteger(state.epoch) || state.epoch < 0 || !Number.isInteger(state.position) || state.position < 0 || state.position >= ds.length) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `BatchLoader.restore: epoch must be >= 0 and position in [0, ${ds.length}), got epoch ${state.epoch}, position ${state.position}`);
    }
    const loader = new BatchLoader(ds, { batchSize: state.batchSize, seed: state.seed, shuffle: state.shuffle });
    loader.currentEpoch = state.epoch;
    loader.position = state.position;
    loader.order = loader.orderOf(state.epoch);
    return loader;
  }

  /** Epoch the next sample comes from (0-based). */
  get epoch(): number {
    return this.currentEpoch;
  }

  state(): BatchLoaderState {
    return {
      seed: this.seed,
      epoch: this.currentEpoch,
      position: this.position,
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      datasetLength: this.ds.length,
    };
  }

  /** Dataset positions of the next batch; advances the loader. */
  nextIndices(): number[] {
    const out: number[] = [];
    while (out.length < this.batchSize) {
      out.push(this.order[this.position] as number);
      if (++this.position === this.order.length) {
        this.currentEpoch++;
        this.position = 0;
        this.order = this.orderOf(this.currentEpoch);
      }
    }
    return out;
  }

  /** The next batch of samples. The indices are taken synchronously, so overlapping calls keep their order. */
  next(): Promise<DatasetSample[]> {
    return Promise.all(this.nextIndices().map((i) => this.ds.get(i)));
  }

  private orderOf(epoch: number): Uint32Array {
    const n = this.ds.length;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    if (!this.shuffle) return order;
    // Fisher–Yates with a generator seeded by (seed, epoch): any epoch's order can be rebuilt alone.
    const rand = seededRandom(epochSeed(this.seed, epoch));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i] as number;
      order[i] = order[j] as number;
      order[j] = t;
    }
    return order;
  }
}
