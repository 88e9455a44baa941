/** The built-in synthetic dataset: defaults, determinism, correlations, and export to a LeRobot folder. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  SYNTHETIC_TASKS, openLeRobotDataset, syntheticDataset, syntheticRecording, writeLeRobotDataset,
} from '../../lib/data/index';
import { meanAbsDiff, tempDir, toChw } from './fixtures';

describe('syntheticDataset', () => {
  it('has the documented defaults', async () => {
    const ds = syntheticDataset({ chunkSize: 5 });
    expect([ds.length, ds.stateDim, ds.actionDim, ds.fps]).toEqual([320, 6, 6, 10]);
    expect(ds.cameraKeys).toEqual(['observation.images.top']);
    expect(ds.episodes).toHaveLength(8);
    expect(ds.episodes.every((e) => e.length === 40 && SYNTHETIC_TASKS.includes(e.tasks[0] as (typeof SYNTHETIC_TASKS)[number]))).toBe(true);
    expect(new Set(ds.episodes.map((e) => e.tasks[0])).size).toBeGreaterThan(1);
    const s = await ds.get(0);
    expect(s.images['observation.images.top']?.shape).toEqual([3, 64, 64]);
    expect(s.actions).toHaveLength(5 * 6);
    for (const key of ['observation.state', 'action', 'observation.images.top']) {
      expect(ds.stats[key]?.mean.every(Number.isFinite)).toBe(true);
      expect(ds.stats[key]?.std.every((v) => v > 0)).toBe(true);
    }
  });

  it('is deterministic under a seed and differs across seeds', async () => {
    const opts = { chunkSize: 3, cameraKeys: ['observation.images.a', 'observation.images.b'], imageSize: [24, 16] as [number, number], episodes: 3, episodeLength: 12 };
    const a = syntheticDataset({ ...opts, seed: 7 });
    const b = syntheticDataset({ ...opts, seed: 7 });
    const c = syntheticDataset({ ...opts, seed: 8 });
    expect(a.stats).toEqual(b.stats);
    for (const i of [0, 11, 12, 35]) expect(await a.get(i)).toEqual(await b.get(i));
    expect((await a.get(5)).state).not.toEqual((await c.get(5)).state);
    expect((await a.get(5)).images['observation.images.a']?.shape).toEqual([3, 16, 24]);
  });

  it('chunks actions within the episode and pads with the last action', async () => {
    const ds = syntheticDataset({ chunkSize: 4, episodes: 2, episodeLength: 6, stateDim: 3, actionDim: 2 });
    const s = await ds.get(4); // frames 4, 5 exist; 2 steps run past the end
    expect(Array.from(s.actionIsPad)).toEqual([0, 0, 1, 1]);
    const next = await ds.get(5);
    expect(s.actions.subarray(2, 4)).toEqual(next.actions.subarray(0, 2));
    expect(s.actions.subarray(4, 6)).toEqual(next.actions.subarray(0, 2));
    expect(s.actions.subarray(6, 8)).toEqual(next.actions.subarray(0, 2));
    // The action is the next state: smooth trajectories.
    expect(Array.from(s.actions.subarray(0, 2))).toEqual(Array.from(next.state.subarray(0, 2)));
    expect(s.episodeIndex).toBe(0);
    expect((await ds.get(6)).episodeIndex).toBe(1);
  });

  it('draws the state into the image: the picture changes with the state', async () => {
    const ds = syntheticDataset({ chunkSize: 1, episodes: 1, episodeLength: 30 });
    const first = await ds.get(0);
    const later = await ds.get(20);
    const img = (s: typeof first): Float32Array => s.images['observation.images.top']?.data as Float32Array;
    expect(img(first).every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(meanAbsDiff(img(first), img(later))).toBeGreaterThan(0.001);
    expect(syntheticDataset({ chunkSize: 1, episodes: 1, episodeLength: 30 }).get(20)).resolves.toEqual(later);
  });

  it('refuses bad options and indices', async () => {
    expect(() => syntheticDataset({ chunkSize: 0 })).toThrow('chunkSize must be a positive integer, got 0');
    expect(() => syntheticDataset({ chunkSize: 2, imageSize: [0, 4] })).toThrow('imageSize[0] (width) must be a positive integer, got 0');
    await expect(syntheticDataset({ chunkSize: 2 }).get(320)).rejects.toThrow('index must be an integer in [0, 320), got 320');
  });

  it('exports to a LeRobot folder that reads back the same data', async () => {
    const dir = tempDir('synthetic');
    try {
      const rec = syntheticRecording({ episodes: 2, episodeLength: 5, imageSize: [16, 16], seed: 3 });
      await writeLeRobotDataset(path.join(dir, 'ds'), { version: 'v3.0', ...rec });
      const ds = await openLeRobotDataset({ repoId: 'synthetic/blocks', root: path.join(dir, 'ds'), chunkSize: 3 });
      const ref = syntheticDataset({ chunkSize: 3, episodes: 2, episodeLength: 5, imageSize: [16, 16], seed: 3 });
      for (const i of [0, 4, 7]) {
        const [got, want] = await Promise.all([ds.get(i), ref.get(i)]);
        expect(got.state).toEqual(want.state);
        expect(got.actions).toEqual(want.actions);
        expect(got.actionIsPad).toEqual(want.actionIsPad);
        expect(got.task).toBe(want.task);
        const frame = rec.episodes[Math.floor(i / 5)]?.frames[i % 5]?.images['observation.images.top'] as Uint8Array;
        expect(meanAbsDiff(got.images['observation.images.top']?.data as Float32Array, toChw(frame, 16, 16))).toBeLessThan(0.06);
      }
      await ds.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
