/**
 * LeRobot dataset folders written by the JS writer (Parquet + ffmpeg MP4s) and read back: v2.1
 * (one file per episode) and v3.0 (episodes packed into files), videos and embedded PNG images.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { openLeRobotDataset, writeLeRobotDataset, type Dataset } from '../../lib/data/index';
import {
  ACTION_DIM, CAMERAS, FPS, HEIGHT, LENGTHS, STATE_DIM, TASKS, WIDTH,
  actionOf, frameImage, meanAbsDiff, recording, stateOf, tempDir, toChw,
} from './fixtures';

const CHUNK = 4;
const TOTAL = LENGTHS.reduce((a, b) => a + b, 0);
const tmp = tempDir('lerobot');
const roots = {
  'v2.1': path.join(tmp, 'v21'),
  'v3.0': path.join(tmp, 'v30'),
  'v3.0 (images)': path.join(tmp, 'v30img'),
};

beforeAll(async () => {
  await Promise.all([
    writeLeRobotDataset(roots['v2.1'], { version: 'v2.1', fps: FPS, episodes: recording(), imageSize: [WIDTH, HEIGHT], cameraKeys: CAMERAS }),
    writeLeRobotDataset(roots['v3.0'], {
      version: 'v3.0', fps: FPS, episodes: recording(), imageSize: [WIDTH, HEIGHT], cameraKeys: CAMERAS, episodesPerFile: 2,
    }),
    writeLeRobotDataset(roots['v3.0 (images)'], {
      version: 'v3.0', fps: FPS, episodes: recording(), imageSize: [WIDTH, HEIGHT], cameraKeys: CAMERAS, imageStorage: 'image',
    }),
  ]);
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Episode and frame of dataset position i. */
function locate(i: number): { e: number; k: number } {
  let e = 0;
  let k = i;
  while (k >= (LENGTHS[e] as number)) k -= LENGTHS[e++] as number;
  return { e, k };
}

describe.each(Object.keys(roots) as Array<keyof typeof roots>)('LeRobot %s folder', (layout) => {
  let ds: Dataset;
  beforeAll(async () => {
    ds = await openLeRobotDataset({ repoId: 'test/tiny', root: roots[layout], chunkSize: CHUNK });
  });
  afterAll(() => ds.close());

  it('has the written layout', () => {
    expect(fs.existsSync(path.join(roots[layout], 'meta', layout === 'v2.1' ? 'episodes.jsonl' : 'tasks.parquet'))).toBe(true);
    expect(ds.length).toBe(TOTAL);
    expect(ds.fps).toBe(FPS);
    expect(ds.cameraKeys).toEqual(CAMERAS);
    expect(ds.stateDim).toBe(STATE_DIM);
    expect(ds.actionDim).toBe(ACTION_DIM);
    expect(ds.features['observation.images.top']?.dtype).toBe(layout === 'v3.0 (images)' ? 'image' : 'video');
    expect(ds.episodes).toEqual(LENGTHS.map((length, index) => ({ index, length, tasks: [TASKS[index]] })));
  });

  it('aggregates the statistics over all frames (weighted mean, pooled std)', () => {
    const rows = Array.from({ length: TOTAL }, (_, i) => locate(i));
    for (const [key, dim, of] of [['observation.state', STATE_DIM, stateOf], ['action', ACTION_DIM, actionOf]] as const) {
      const s = ds.stats[key];
      if (!s) throw new Error(`no stats for ${key}`);
      for (let d = 0; d < dim; d++) {
        const v = rows.map(({ e, k }) => of(e, k)[d] as number);
        const mean = v.reduce((a, b) => a + b, 0) / v.length;
        const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
        expect(s.mean[d]).toBeCloseTo(mean, 3);
        expect(s.std[d]).toBeCloseTo(std, 3);
        expect(s.min?.[d]).toBe(Math.min(...v));
        expect(s.max?.[d]).toBe(Math.max(...v));
      }
      expect(s.count).toBe(TOTAL);
    }
    for (const key of CAMERAS) expect(ds.stats[key]?.mean).toHaveLength(3);
  });

  it('returns exact state and action chunks, padded at episode ends like LeRobot', async () => {
    for (let i = 0; i < TOTAL; i++) {
      const { e, k } = locate(i);
      const s = await ds.get(i);
      expect([s.episodeIndex, s.frameIndex, s.index]).toEqual([e, k, i]);
      expect(s.timestamp).toBe(Math.fround(k / FPS));
      expect(s.task).toBe(TASKS[e]);
      expect(s.state).toEqual(stateOf(e, k));
      const last = (LENGTHS[e] as number) - 1;
      for (let c = 0; c < CHUNK; c++) {
        expect(s.actions.subarray(c * ACTION_DIM, (c + 1) * ACTION_DIM)).toEqual(actionOf(e, Math.min(k + c, last)));
        expect(s.actionIsPad[c]).toBe(k + c > last ? 1 : 0);
      }
    }
  });

  it('decodes the camera frame at each timestamp', async () => {
    const lossless = layout === 'v3.0 (images)';
    for (const i of [0, 5, 9, 10, 16, 17, 25]) {
      const { e, k } = locate(i);
      const s = await ds.get(i);
      CAMERAS.forEach((key, c) => {
        const img = s.images[key];
        expect(img?.shape).toEqual([3, HEIGHT, WIDTH]);
        const want = toChw(frameImage(e, k, c), WIDTH, HEIGHT);
        if (lossless) expect(img?.data).toEqual(want);
        else expect(meanAbsDiff(img?.data as Float32Array, want)).toBeLessThan(0.06);
        // A neighbouring frame must look different: the right frame was picked, not just a similar one.
        const other = toChw(frameImage(e, k === 0 ? 1 : k - 1, c), WIDTH, HEIGHT);
        expect(meanAbsDiff(img?.data as Float32Array, other)).toBeGreaterThan(meanAbsDiff(img?.data as Float32Array, want));
      });
    }
  });

  it('refuses a bad index', async () => {
    for (const bad of [-1, TOTAL, 1.5, Number.NaN]) {
      await expect(ds.get(bad)).rejects.toThrow(new RegExp(`index must be an integer in \\[0, ${TOTAL}\\), got`));
    }
  });
});

describe('dataset location and errors', () => {
  const saved = { HF_LEROBOT_HOME: process.env.HF_LEROBOT_HOME, HF_HOME: process.env.HF_HOME, PATH: process.env.PATH };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('finds <repoId> under $HF_LEROBOT_HOME when no root is given', async () => {
    const home = path.join(tmp, 'home');
    fs.mkdirSync(path.join(home, 'test'), { recursive: true });
    fs.cpSync(roots['v2.1'], path.join(home, 'test', 'tiny'), { recursive: true });
    process.env.HF_LEROBOT_HOME = home;
    const ds = await openLeRobotDataset({ repoId: 'test/tiny', chunkSize: 2 });
    expect(ds.length).toBe(TOTAL);
    await ds.close();
  });

  it('lists every folder it tried when the dataset is missing', async () => {
    process.env.HF_LEROBOT_HOME = path.join(tmp, 'nowhere');
    process.env.HF_HOME = path.join(tmp, 'hf');
    await expect(openLeRobotDataset({ repoId: 'me/absent', chunkSize: 2 })).rejects.toThrow(
      `LeRobot dataset 'me/absent' not found: no meta/info.json in '${path.join(tmp, 'nowhere', 'me', 'absent')}', '${path.join(tmp, 'hf', 'lerobot', 'me', 'absent')}'`,
    );
    await expect(openLeRobotDataset({ repoId: 'me/absent', root: path.join(tmp, 'nope'), chunkSize: 2 })).rejects.toThrow(
      /not found: no meta\/info.json in '.*nope'\. Pass root .*never downloaded/,
    );
    await expect(openLeRobotDataset({ repoId: '../escape', chunkSize: 2 })).rejects.toThrow(/repoId must be a relative dataset id/);
    await expect(openLeRobotDataset({ repoId: 'test/tiny', root: roots['v2.1'], chunkSize: 0 })).rejects.toThrow(
      'chunkSize must be a positive integer, got 0',
    );
  });

  it('names the missing metadata file', async () => {
    const broken = (name: string, from: keyof typeof roots, remove: string): string => {
      const dir = path.join(tmp, name);
      fs.cpSync(roots[from], dir, { recursive: true });
      fs.rmSync(path.join(dir, remove), { recursive: true });
      return dir;
    };
    const open = (root: string): Promise<Dataset> => openLeRobotDataset({ repoId: 'x/y', root, chunkSize: 2 });
    await expect(open(broken('no-episodes', 'v2.1', 'meta/episodes.jsonl'))).rejects.toThrow(
      /episode list \(meta\/episodes.jsonl\) is missing: .*no-episodes\/meta\/episodes.jsonl does not exist/,
    );
    await expect(open(broken('no-tasks', 'v3.0', 'meta/tasks.parquet'))).rejects.toThrow(/task list \(meta\/tasks.parquet\) is missing/);
    await expect(open(broken('no-index', 'v3.0', 'meta/episodes'))).rejects.toThrow(/episode index \(meta\/episodes\/\) is missing/);
    await expect(open(broken('no-video', 'v2.1', 'videos/chunk-000/observation.images.wrist/episode_000001.mp4'))).rejects.toThrow(
      /video file of camera 'observation.images.wrist', episode 1 is missing: .*episode_000001.mp4/,
    );
    await expect(open(broken('no-data', 'v3.0', 'data/chunk-000/file-001.parquet'))).rejects.toThrow(/cannot open Parquet file .*file-001.parquet/);
    const miscounted = path.join(tmp, 'miscounted');
    fs.cpSync(roots['v2.1'], miscounted, { recursive: true });
    const infoFile = path.join(miscounted, 'meta', 'info.json');
    fs.writeFileSync(infoFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(infoFile, 'utf8')), total_frames: TOTAL + 1 }));
    await expect(open(miscounted)).rejects.toThrow(
      `meta/info.json counts 3 episodes and ${TOTAL + 1} frames, the episode index lists 3 episodes and ${TOTAL} frames`,
    );
  });

  it('falls back to the other statistics files LeRobot writes', async () => {
    const reference = await openLeRobotDataset({ repoId: 'x/y', root: roots['v3.0'], chunkSize: 2 });
    // v3.0 without meta/stats.json: aggregated from the episode index's stats/ columns.
    const v3 = path.join(tmp, 'v3-no-stats');
    fs.cpSync(roots['v3.0'], v3, { recursive: true });
    fs.rmSync(path.join(v3, 'meta', 'stats.json'));
    // v2.0 style: one meta/stats.json instead of meta/episodes_stats.jsonl.
    const v20 = path.join(tmp, 'v20');
    fs.cpSync(roots['v2.1'], v20, { recursive: true });
    fs.rmSync(path.join(v20, 'meta', 'episodes_stats.jsonl'));
    fs.copyFileSync(path.join(roots['v3.0'], 'meta', 'stats.json'), path.join(v20, 'meta', 'stats.json'));
    for (const root of [v3, v20]) {
      const ds = await openLeRobotDataset({ repoId: 'x/y', root, chunkSize: 2 });
      for (const key of ['observation.state', 'action', ...CAMERAS]) {
        expect(Array.from(ds.stats[key]?.mean ?? [])).toEqual(Array.from(reference.stats[key]?.mean ?? [0]));
        expect(Array.from(ds.stats[key]?.std ?? [])).toEqual(Array.from(reference.stats[key]?.std ?? [0]));
      }
      await ds.close();
    }
    await reference.close();
  });

  it('writer refuses inconsistent input and a non-empty folder', async () => {
    const base = { version: 'v3.0' as const, fps: FPS, imageSize: [WIDTH, HEIGHT] as [number, number], cameraKeys: CAMERAS };
    const episodes = recording();
    (episodes[1]?.frames[2] as { state: Float32Array }).state = new Float32Array(5);
    await expect(writeLeRobotDataset(path.join(tmp, 'bad1'), { ...base, episodes })).rejects.toThrow(
      'episodes[1].frames[2].state has 5 values, the first frame has 3',
    );
    await expect(writeLeRobotDataset(path.join(tmp, 'bad2'), { ...base, imageSize: [WIDTH, HEIGHT + 1], episodes: recording() })).rejects.toThrow(
      `episodes[0].frames[0].images['observation.images.top'] must be 20x17 HWC RGB (1020 bytes), got 960`,
    );
    await expect(writeLeRobotDataset(roots['v2.1'], { ...base, episodes: recording() })).rejects.toThrow(/already exists and is not empty/);
  });

  it('says how to install ffmpeg when it is missing', async () => {
    const ds = await openLeRobotDataset({ repoId: 'x/y', root: roots['v2.1'], chunkSize: 2 });
    process.env.PATH = path.join(tmp, 'empty-bin');
    await expect(ds.get(0)).rejects.toThrow(/ffmpeg was not found on PATH.*apt-get install ffmpeg/);
    await ds.close();
  });
});
