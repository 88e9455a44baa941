/** BatchLoader: deterministic order under a seed, full batches across epochs, exact resume. */
import { BatchLoader, syntheticDataset } from '../../lib/data/index';

const ds = syntheticDataset({ chunkSize: 2, episodes: 3, episodeLength: 7, imageSize: [8, 8] }); // 21 frames

function drain(loader: BatchLoader, batches: number): number[][] {
  return Array.from({ length: batches }, () => loader.nextIndices());
}

describe('BatchLoader', () => {
  it('repeats the same order for the same seed, and another for another seed', () => {
    const a = drain(new BatchLoader(ds, { batchSize: 4, seed: 1 }), 12);
    expect(drain(new BatchLoader(ds, { batchSize: 4, seed: 1 }), 12)).toEqual(a);
    expect(drain(new BatchLoader(ds, { batchSize: 4, seed: 2 }), 12)).not.toEqual(a);
  });

  it('visits every frame once per epoch, with full batches running into the next epoch', () => {
    const loader = new BatchLoader(ds, { batchSize: 5, seed: 3 });
    const flat = drain(loader, 9).flat(); // 45 samples = 2 epochs + 3
    expect([...flat.slice(0, 21)].sort((x, y) => x - y)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect([...flat.slice(21, 42)].sort((x, y) => x - y)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect(flat.slice(0, 21)).not.toEqual(flat.slice(21, 42));
    expect(loader.epoch).toBe(2);
    expect(loader.state()).toMatchObject({ seed: 3, epoch: 2, position: 3, batchSize: 5, shuffle: true, datasetLength: 21 });
  });

  it('keeps dataset order without shuffling', () => {
    const loader = new BatchLoader(ds, { batchSize: 8, seed: 0, shuffle: false });
    expect(drain(loader, 3).flat()).toEqual([...Array.from({ length: 21 }, (_, i) => i), 0, 1, 2]);
  });

  it('resumes from state() with exactly the batches that would have come next', async () => {
    const original = new BatchLoader(ds, { batchSize: 6, seed: 42 });
    drain(original, 5); // into the second epoch
    const saved = JSON.parse(JSON.stringify(original.state()));
    const expected = drain(original, 8);
    const resumed = BatchLoader.restore(ds, saved);
    expect(drain(resumed, 8)).toEqual(expected);

    // next() serves those samples.
    const again = BatchLoader.restore(ds, saved);
    const batch = await again.next();
    expect(batch.map((s) => s.index)).toEqual(expected[0]);
  });

  it('refuses bad options and a state from another dataset', () => {
    expect(() => new BatchLoader(ds, { batchSize: 0, seed: 1 })).toThrow('batchSize must be a positive integer, got 0');
    expect(() => new BatchLoader(ds, { batchSize: 2, seed: 0.5 })).toThrow('seed must be an integer, got 0.5');
    const state = new BatchLoader(ds, { batchSize: 2, seed: 1 }).state();
    const other = syntheticDataset({ chunkSize: 2, episodes: 2, episodeLength: 7, imageSize: [8, 8] });
    expect(() => BatchLoader.restore(other, state)).toThrow(
      "BatchLoader.restore: the state was taken on a dataset of 21 frames, 'synthetic/blocks' has 14",
    );
    expect(() => BatchLoader.restore(ds, { ...state, position: 21 })).toThrow(/position in \[0, 21\)/);
  });
});
