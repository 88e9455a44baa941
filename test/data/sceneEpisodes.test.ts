/** The demo simulator's scenes as a training dataset: the simulator's frames, scene changes, demonstrated actions. */
import { FIRST_TRAINING_SCENE, SCENE_TASK, sceneCamera, sceneEpisodesDataset, sceneTarget } from '../../lib/data/index';
import { SimRobot } from '../../lib/serving';

const CAMERA = 'observation.images.top';

describe('sceneEpisodesDataset', () => {
  it('has the documented defaults: 48 episodes of 60 frames at 30 fps, one 64x64 camera, the demo task', async () => {
    const ds = sceneEpisodesDataset({ chunkSize: 20 });
    expect([ds.repoId, ds.length, ds.stateDim, ds.actionDim, ds.fps]).toEqual(['synthetic/scenes', 48 * 60, 6, 6, 30]);
    expect(ds.cameraKeys).toEqual([CAMERA]);
    expect(ds.episodes.every((e) => e.length === 60 && e.tasks[0] === SCENE_TASK)).toBe(true);
    expect(SCENE_TASK).toBe(new SimRobot().task);
    const s = await ds.get(0);
    expect(s.images[CAMERA]?.shape).toEqual([3, 64, 64]);
    expect(s.actions).toHaveLength(20 * 6);
    for (const key of ['observation.state', 'action', CAMERA]) {
      expect(ds.stats[key]?.mean.every(Number.isFinite)).toBe(true);
      expect(ds.stats[key]?.std.every((v) => v > 0)).toBe(true);
    }
  });

  it("shows the simulator camera's frames, a new training scene every sceneEvery frames, never the demo's scenes", async () => {
    const ds = sceneEpisodesDataset({ chunkSize: 2, episodes: 2, episodeLength: 9, sceneEvery: 4, seed: 3 });
    const camera = sceneCamera(64, 64, 3);
    const shown = Array.from({ length: 18 }, (_, i) => ds.shown(i));
    // Three scenes per episode (a change every 4 of 9 frames), numbered on from FIRST_TRAINING_SCENE.
    expect(shown.map((f) => f.scene - FIRST_TRAINING_SCENE)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5]);
    // Ticks run on within an episode; each episode joins the target's path elsewhere.
    for (let k = 1; k < 9; k++) expect([shown[k]!.tick - shown[k - 1]!.tick, shown[9 + k]!.tick - shown[8 + k]!.tick]).toEqual([1, 1]);
    expect(shown[9]!.tick).not.toBe(shown[0]!.tick);
    for (const i of [0, 3, 4, 8, 9, 17]) {
      const { data } = (await ds.get(i)).images[CAMERA]!;
      const { scene, tick } = shown[i]!;
      const expected = camera.frame(scene, tick, sceneTarget(tick)).data;
      const hwc = Uint8Array.from({ length: 64 * 64 * 3 }, (_, k) => Math.round(data[(k % 3) * 64 * 64 + Math.floor(k / 3)]! * 255));
      expect(Buffer.from(hwc).equals(Buffer.from(expected))).toBe(true);
    }
    expect(() => ds.shown(18)).toThrow("dataset 'synthetic/scenes': index must be an integer in [0, 18)");
  });

  it('demonstrates pointing at the next target position and reaching for the blocks; the state follows the actions', async () => {
    const ds = sceneEpisodesDataset({ chunkSize: 3, episodes: 1, episodeLength: 10, sceneEvery: 5, gain: 0.5 });
    const camera = sceneCamera(64, 64, 0);
    const samples = await Promise.all(Array.from({ length: 10 }, (_, i) => ds.get(i)));
    expect(Array.from(samples[0]!.state)).toEqual([0, 0, 0, 0, 0, 0]);
    for (let i = 1; i < 10; i++) {
      const prev = samples[i - 1]!;
      for (let j = 0; j < 6; j++) expect(samples[i]!.state[j]).toBeCloseTo(prev.state[j]! + 0.5 * (prev.actions[j]! - prev.state[j]!), 5);
    }
    // Actions 0 and 1 are the target's next position; 2..5 the centres of the shown scene's first two blocks.
    for (const i of [0, 4, 5, 9]) {
      const { scene, tick } = ds.shown(i);
      const a = samples[i]!.actions;
      const next = sceneTarget(tick + 1);
      expect([a[0], a[1]]).toEqual([Math.fround(next.x), Math.fround(next.y)]);
      const [b0, b1] = camera.layout(scene).blocks;
      const centres = [b0!.x + b0!.width / 2, b0!.y + b0!.height / 2, b1!.x + b1!.width / 2, b1!.y + b1!.height / 2].map((v) => Math.fround(v / 64));
      expect(Array.from(a.subarray(2, 6))).toEqual(centres);
    }
    // Chunks stay within the episode: the last frame's chunk repeats its action, flagged as padding.
    expect(Array.from(samples[9]!.actionIsPad)).toEqual([0, 1, 1]);
  });

  it('is deterministic under a seed and differs across seeds', async () => {
    const opts = { chunkSize: 2, episodes: 2, episodeLength: 5, imageSize: [24, 16] as [number, number] };
    const a = sceneEpisodesDataset({ ...opts, seed: 4 });
    const b = sceneEpisodesDataset({ ...opts, seed: 4 });
    const c = sceneEpisodesDataset({ ...opts, seed: 5 });
    expect(a.stats).toEqual(b.stats);
    for (const i of [0, 4, 9]) expect(await a.get(i)).toEqual(await b.get(i));
    expect((await a.get(3)).images[CAMERA]).not.toEqual((await c.get(3)).images[CAMERA]);
    expect((await a.get(3)).images[CAMERA]?.shape).toEqual([3, 16, 24]);
  });

  it('refuses bad options, naming them', () => {
    expect(() => sceneEpisodesDataset({ chunkSize: 0 })).toThrow('chunkSize must be a positive integer');
    expect(() => sceneEpisodesDataset({ chunkSize: 2, sceneEvery: 1.5 })).toThrow('sceneEvery must be a positive integer');
    expect(() => sceneEpisodesDataset({ chunkSize: 2, gain: 0 })).toThrow('gain must be in (0, 1]');
    expect(() => sceneEpisodesDataset({ chunkSize: 2, cameraKey: 'top' })).toThrow("cameraKey: expected an 'observation.images.<name>' key");
    expect(() => sceneEpisodesDataset({ chunkSize: 2, seed: 0.5 })).toThrow('seed must be an integer');
  });
});
